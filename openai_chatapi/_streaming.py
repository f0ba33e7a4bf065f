"""The stream reader: SSE events → chunk models → typed events, merged into one completion.

``read_stream`` is the hot path of the package: per chunk it decodes SSE (``_sse``),
validates the JSON into the generated chunk model (or checks the common text-chunk shape by
hand), updates a ``StreamAccumulator`` (``_accumulator``) and yields typed events
(``_events``) in batches, one per network read. It also decides when a reply is over:
``[DONE]``, a whole reply, a truncated body, silence, or a JSON document instead of events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterable
from json import loads as _loads
from time import monotonic
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from . import _generated as gen
from ._errors import APIConnectionError, APIResponseError, APITimeoutError, error_from_payload
from ._parsing import validate_repaired, validation_error
from ._sse import DONE, ServerSentEvent, SSEDecoder

if TYPE_CHECKING:
    from ._accumulator import StreamAccumulator
    from ._events import StreamEvent

__all__ = ["FINISH_GRACE", "read_stream"]


_CHUNK_KEYS = frozenset(
    {"id", "object", "created", "model", "choices", "system_fingerprint", "service_tier"}
)
_CHOICE_KEYS = frozenset({"index", "delta", "finish_reason", "logprobs"})
_DELTA_KEYS = frozenset({"role", "content"})


def _plain_content(obj: Any) -> tuple[str | None, str | None, str | None] | None:
    """(role, content, finish_reason) when ``obj`` is a one-choice text chunk, else None.

    Most chunks of a stream are exactly this shape; checking it by hand is several times
    cheaper than model validation. Anything else (tool calls, logprobs, usage, errors,
    several choices, unknown fields) goes through the generated chunk model.
    """
    if type(obj) is not dict or not _CHUNK_KEYS.issuperset(obj):
        return None
    choices = obj.get("choices")
    if type(choices) is not list or len(choices) != 1:
        return None
    choice = choices[0]
    if type(choice) is not dict or not _CHOICE_KEYS.issuperset(choice):
        return None
    if choice.get("index", 0) != 0 or choice.get("logprobs") is not None:
        return None
    delta = choice.get("delta")
    if type(delta) is not dict or not _DELTA_KEYS.issuperset(delta):
        return None
    role = delta.get("role")
    content = delta.get("content")
    finish = choice.get("finish_reason")
    if not (
        (role is None or type(role) is str)
        and (content is None or type(content) is str)
        and (finish is None or type(finish) is str)
    ):
        return None
    return role, content, finish


def _validate_chunk(obj: Any, data: str, *, strict: bool) -> gen.ChatCompletionChunk:
    """The generated chunk model for a decoded payload; an error object raises its exception."""
    if isinstance(obj, dict) and obj.get("error"):
        raise error_from_payload(obj, body=data[:2000])
    try:
        if strict:
            gen.StrictChatCompletionChunk.model_validate(obj, strict=True)
        return gen.ChatCompletionChunk.model_validate(obj)
    except ValidationError as exc:
        repaired = None if strict else validate_repaired(gen.ChatCompletionChunk, obj, strict=False)
        if repaired is not None:
            return repaired
        raise validation_error("stream chunk", exc, data) from None


def _decode(data: str) -> Any:
    try:
        return _loads(data)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        raise APIResponseError(
            "invalid stream chunk: not valid JSON", {"field": "data", "body": data[:2000]}
        ) from None


def _stream_error(event_data: str) -> APIResponseError:
    try:
        payload = _loads(event_data)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        payload = None
    if not isinstance(payload, dict) or "error" not in payload:
        payload = {"error": {"message": event_data or "error event in stream"}}
    return error_from_payload(payload, body=event_data[:2000])


def _events_for(
    accumulator: StreamAccumulator, events: list[ServerSentEvent], strict: bool
) -> tuple[list[StreamEvent], bool, APIResponseError | None]:
    """The typed events of a batch of SSE events, whether ``[DONE]`` was among them, and the
    error that ended the batch (raised only after the events before it were delivered)."""
    out: list[StreamEvent] = []
    try:
        for sse in events:
            data = sse.data
            if sse.event == "error":
                raise _stream_error(data)
            if data == DONE:
                return out, True, None
            if not data:
                continue
            obj = _decode(data)
            plain = None if strict else _plain_content(obj)
            if plain is not None:
                event = accumulator.add_plain(obj, *plain)
                if event is not None:
                    out.append(event)
            else:
                out.extend(accumulator.add(_validate_chunk(obj, data, strict=strict)))
    except APIResponseError as exc:
        return out, False, exc
    return out, False, None


_JSON_ANSWER_LIMIT = 8 * 1024 * 1024

# Once every choice has its finish reason and no usage was asked for, only trailing chunks
# (usage some servers send unasked, then [DONE]) can follow: wait this long for each of them,
# then end the reply normally. A server that holds the body open after its finish reason
# therefore does not hold the call until ``timeout``.
FINISH_GRACE = 0.2


def _json_answer(raw: bytes, accumulator: StreamAccumulator, *, strict: bool) -> list[StreamEvent]:
    """Events for a JSON document answering a stream request: its error, or its completion.

    Some servers ignore ``stream: true`` or report errors as plain JSON with status 200.
    """
    from ._parsing import parse_completion

    completion = parse_completion(raw, strict=strict)
    choices = []
    for position, choice in enumerate(completion.choices):
        message = choice.message
        delta: dict[str, Any] = {}
        if message is not None:
            delta = message.model_dump(exclude_none=True)
            delta["tool_calls"] = [
                {**call, "index": i} for i, call in enumerate(delta.get("tool_calls") or [])
            ] or None
        choices.append(
            {
                "index": choice.index if choice.index is not None else position,
                "delta": delta,
                "finish_reason": choice.finish_reason or "stop",
                "logprobs": choice.logprobs.model_dump() if choice.logprobs else None,
            }
        )
    chunk = {
        "id": completion.id,
        "created": completion.created,
        "model": completion.model,
        "choices": choices,
        "usage": completion.usage.model_dump() if completion.usage else None,
    }
    return accumulator.add(gen.ChatCompletionChunk.model_validate(chunk))


def _phase(accumulator: StreamAccumulator) -> str:
    return "between_events" if accumulator.chunks else "waiting_for_first_event"


def _silence_timeout(timeout: float, accumulator: StreamAccumulator) -> APITimeoutError:
    phase = _phase(accumulator)
    if accumulator.chunks:
        what = f"no event for more than timeout={timeout:g}s (between events)"
    else:
        what = f"no event within timeout={timeout:g}s of the request (waiting for the first event)"
    return APITimeoutError(
        f"stream timed out: {what}; data trickled in without forming an event",
        {"phase": phase, "timeout": timeout, "chunks": accumulator.chunks},
    )


def _not_an_event_stream(content_type: str | None, head: bytes) -> APIResponseError:
    """A 200 that is an HTML page, plain text or empty: usually a wrong ``api_base_url``."""
    text = " ".join(head[:2000].decode("utf-8", "replace").split())
    snippet = (text[:200] + "…" if len(text) > 200 else text) or "(empty body)"
    return APIResponseError(
        f"the server did not answer with an event stream (content-type {content_type}): {snippet}",
        {"content_type": content_type, "body": text[:2000], "bytes": len(head)},
    )


async def read_stream(
    body: AsyncIterable[bytes],
    accumulator: StreamAccumulator,
    *,
    strict: bool,
    content_type: str | None = None,
    choices: int = 1,
    usage: bool = False,
    timeout: float | None = None,
    sent_at: float | None = None,
) -> AsyncGenerator[list[StreamEvent], None]:
    """Yield batches of typed events from an SSE body until ``[DONE]`` or its end.

    ``body`` is the response body as it arrives (the transport maps network failures to
    ``APIConnectionError``). The reply ends at ``[DONE]``, or as soon as it is whole
    (``choices`` finish reasons and, ``usage`` having been asked for, the usage), or when
    the body ends or goes silent after a finish reason. Without usage asked for, once every
    choice has finished it waits at most ``FINISH_GRACE`` for each trailing chunk (usage sent
    unasked, ``[DONE]``) and then ends. One batch per network read keeps the
    per-event cost low on fast streams. A body that ends without ``[DONE]`` and without a
    finish reason is truncated: it raises ``APIResponseError``.
    """
    decoder = SSEDecoder()
    done = False
    # Kept only until the first event: a server that answers a stream request with a JSON
    # document (an error, or a whole completion) sends no events at all.
    head: bytearray | None = bytearray()
    # ``timeout`` bounds the wait for the first event (from ``sent_at``) and every silence
    # between events; comments (keep-alive pings) count as signs of life. A connection that
    # goes fully silent hits the read timeout; this catches bytes trickling in.
    deadline = None if timeout is None else (sent_at or monotonic()) + timeout
    comments = 0
    reads = body.__aiter__()
    try:
        while True:
            if not usage and accumulator.all_finished(choices):
                try:
                    raw = await asyncio.wait_for(reads.__anext__(), FINISH_GRACE)
                except StopAsyncIteration:
                    break
                except asyncio.TimeoutError:
                    done = True  # the reply is whole; the server holds the body open
                    break
            else:
                try:
                    raw = await reads.__anext__()
                except StopAsyncIteration:
                    break
            if head is not None and len(head) < _JSON_ANSWER_LIMIT:
                head += raw
            events = decoder.feed(raw)
            if deadline is not None:
                now = monotonic()
                if events or decoder.comments != comments:
                    comments = decoder.comments
                    deadline = now + timeout  # type: ignore[operator]
                elif now > deadline:
                    if accumulator.finished:
                        done = True  # the reply is there; only [DONE] is missing
                        break
                    raise _silence_timeout(timeout, accumulator)  # type: ignore[arg-type]
            if not events:
                continue
            head = None
            batch, done, error = _events_for(accumulator, events, strict)
            if batch:
                yield batch
            if error is not None:
                raise error
            if done:
                break
            if accumulator.finish_reason is not None and accumulator.complete(choices, usage):
                # The reply is whole: the caller need not wait for [DONE] (the transport
                # reads the rest of the body in the background, for connection reuse).
                done = True
                break
        if not done:
            batch, done, error = _events_for(accumulator, decoder.flush(), strict)
            if batch:
                yield batch
            if error is not None:
                raise error
        tail = accumulator.flush()  # a surrogate no low half followed
        if tail:
            yield tail
    except APIConnectionError as exc:
        if not (isinstance(exc, APITimeoutError) and accumulator.finished):
            exc.details["chunks"] = accumulator.chunks
            if isinstance(exc, APITimeoutError) and "phase" not in exc.details:
                phase = _phase(accumulator)
                exc.details["phase"] = phase
                exc.message = f"{exc.message} ({phase.replace('_', ' ')})"
                exc.args = (exc.message,)
            raise
        # The finish reason arrived, then nothing more: the reply is there, [DONE] is not.
        done = True
    if head is not None and accumulator.chunks == 0 and head.lstrip()[:1] == b"{":
        yield _json_answer(bytes(head), accumulator, strict=strict)
        return
    if head is not None and not done and "event-stream" not in (content_type or "event-stream"):
        raise _not_an_event_stream(content_type, bytes(head))
    if not done and not accumulator.finished:
        raise APIResponseError(
            f"stream truncated: it ended after {accumulator.chunks} chunks without [DONE] "
            "or a finish reason",
            {"chunks": accumulator.chunks, "truncated": True},
        )
    if not accumulator.has_choices:
        # Same outcome as a non-streamed completion with an empty ``choices``.
        raise APIResponseError(
            f"invalid stream: none of its {accumulator.chunks} chunks has choices, "
            "so the response has no choices",
            {"field": "choices", "chunks": accumulator.chunks},
        )
