"""A pure Server-Sent Events decoder: bytes in, events out (WHATWG event-stream rules).

No I/O and no JSON happen here; the stream reader feeds network chunks in and parses the
``data`` of the events it gets back.

One deliberate departure from the spec: at the end of the stream the spec discards an event
that was not closed by a blank line, but OpenAI-compatible servers sometimes omit that last
blank line, so :meth:`SSEDecoder.flush` dispatches a pending event when it has data.
"""

from __future__ import annotations

from codecs import utf_8_decode
from dataclasses import dataclass

__all__ = ["DONE", "SSEDecoder", "ServerSentEvent"]

DONE = "[DONE]"
"""The ``data`` of the event OpenAI-compatible servers send to end a stream."""

_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event.

    ``event`` is the event type (``"message"`` when the server named none), ``data`` the
    ``data:`` lines joined with ``"\\n"``, ``id`` the last event id seen so far in the stream
    (``None`` until the server sends one; it carries over to later events, as the spec says),
    and ``retry`` the reconnection time in milliseconds sent within this event, if any.
    """

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


# Building the frozen dataclass through its slot descriptors skips the per-field
# object.__setattr__ calls of the generated __init__; this is the hot path of streaming.
_new_event = object.__new__
_set_event = ServerSentEvent.__dict__["event"].__set__
_set_data = ServerSentEvent.__dict__["data"].__set__
_set_id = ServerSentEvent.__dict__["id"].__set__
_set_retry = ServerSentEvent.__dict__["retry"].__set__


class SSEDecoder:
    """Incremental event-stream decoder.

    Call :meth:`feed` with each network chunk as it arrives (chunks may split the stream at
    any byte, even inside a UTF-8 character or between the CR and LF of a line end) and
    :meth:`flush` once at the end of the stream. Invalid UTF-8 becomes U+FFFD; decoding never
    raises. ``last_event_id`` and ``retry`` keep the stream's last id and reconnection time.
    """

    __slots__ = (
        "_data",
        "_event",
        "_event_retry",
        "_partial",
        "_pending",
        "_skip_lf",
        "_started",
        "comments",
        "last_event_id",
        "retry",
    )

    def __init__(self) -> None:
        self._pending = b""  # bytes of a UTF-8 character cut by the chunk boundary
        self._partial: list[str] = []  # pieces of a line whose end has not arrived yet
        self._skip_lf = False  # the last chunk ended with CR: a leading LF completes a CRLF
        self._started = False  # a byte-order mark is only stripped at the stream start
        self._data: list[str] = []
        self._event = ""
        self._event_retry: int | None = None
        self.last_event_id: str | None = None
        self.retry: int | None = None
        self.comments = 0  # comment lines seen (servers send ": ping" to keep a stream alive)

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode one network chunk; return the events it completed (often none or one)."""
        if self._pending:
            chunk = self._pending + chunk
            self._pending = b""
        elif not chunk:
            return []
        if chunk[-1] < 0x80:  # ends on an ASCII byte, so no character is cut: one-shot decode
            text = chunk.decode("utf-8", "replace")
        else:
            text, used = utf_8_decode(chunk, "replace", False)
            if used != len(chunk):
                self._pending = chunk[used:]
            if not text:
                return []
        if not self._started:
            self._started = True
            if text[0] == _BOM:
                text = text[1:]
        if self._skip_lf and text:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        if "\r" in text:
            # A CR ends a line on its own; remember it in case its LF opens the next chunk.
            self._skip_lf = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        partial = self._partial
        if len(lines) == 1:  # no line end yet: collect pieces, joined once the line completes
            if text:
                partial.append(text)
            return []
        if partial:
            partial.append(lines[0])
            lines[0] = "".join(partial)
            partial.clear()
        last = lines.pop()
        if last:
            partial.append(last)
        events: list[ServerSentEvent] = []
        data = self._data
        for line in lines:
            if line:
                if line.startswith("data:"):  # the common case, kept first and inline
                    data.append(line[6:] if line.startswith(" ", 5) else line[5:])
                elif line[0] != ":":  # lines starting with a colon are comments
                    self._field(line)
                else:
                    self.comments += 1  # keep-alive pings: signs of life for timeouts
            elif data:
                event = _new_event(ServerSentEvent)
                _set_event(event, self._event or "message")
                _set_data(event, "\n".join(data))  # one line: the line itself, no copy
                _set_id(event, self.last_event_id)
                _set_retry(event, self._event_retry)
                events.append(event)
                data.clear()
                self._event = ""
                self._event_retry = None
            else:  # a blank line without data dispatches nothing but resets the event
                self._event = ""
                self._event_retry = None
        return events

    def feed_text(self, text: str) -> list[ServerSentEvent]:
        """Like :meth:`feed`, for a stream that is already decoded to text."""
        return self.feed(text.encode("utf-8", "surrogatepass"))

    def flush(self) -> list[ServerSentEvent]:
        """End the stream: finish a cut line and dispatch a pending event that has data.

        The decoder is then ready for a new stream; ``last_event_id`` and ``retry`` remain.
        """
        self._skip_lf = False  # the line ends fed below are line ends of their own
        events = self.feed(b"\n\n" if self._partial or self._pending else b"\n")
        self._started = False
        return events

    def _field(self, line: str) -> None:
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:  # the spec ignores an id containing NUL
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = self._event_retry = int(value)
        # Any other field (and a retry that is not all ASCII digits) is ignored, per the spec.
