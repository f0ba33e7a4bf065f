"""Request bodies that stream base64 media in chunks instead of building one huge string.

A payload refers to large media through *sentinel* strings registered in a
:class:`MediaSources`. :func:`encode_json_body` dumps the payload once and splits the
dump at the sentinels; the resulting :class:`RequestBody` knows its exact length and
base64-encodes each file piece by piece while it is sent, so a 100 MB video never
exists in memory as raw bytes, base64, a JSON string and an encoded body at once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import stat
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from .._errors import MediaProcessingError, truncate
from ._failures import os_error_reason

__all__ = [
    "CHUNK_INPUT_BYTES",
    "MediaSources",
    "RequestBody",
    "encode_json_body",
    "redacted_preview",
]

#: Raw bytes base64-encoded per step; a multiple of 3 so chunks join without padding.
CHUNK_INPUT_BYTES = 3 * 256 * 1024

_SENTINEL_SCHEME = "openai-chatapi-media://"
# Any sentinel (from any registry): token, index, then mime and size for log previews.
_ANY_SENTINEL = re.compile(
    re.escape(_SENTINEL_SCHEME) + r"([0-9a-f]{32})/(\d+)\?mime=([A-Za-z0-9.+/-]+)&size=(\d+)"
)
_DATA_URL_B64 = re.compile(r"^data:([A-Za-z0-9.+/-]+)((?:;[^;,]*)*);base64,", re.IGNORECASE)


def _b64_length(size: int) -> int:
    return 4 * ((size + 2) // 3)


@dataclass(frozen=True)
class _Source:
    """One registered medium: a file checked again when sent, or bytes held by reference."""

    mime: str
    size: int
    path: str | None = None
    data: bytes | None = None
    bare: bool = False  # base64 alone, without the data: URL prefix (input_audio)

    @property
    def prefix(self) -> bytes:
        return b"" if self.bare else f"data:{self.mime};base64,".encode("ascii")

    @property
    def encoded_length(self) -> int:
        return len(self.prefix) + _b64_length(self.size)

    def label(self) -> str:
        return self.path if self.path is not None else f"<{self.size} bytes of {self.mime}>"


class MediaSources:
    """Registry of media a payload refers to by sentinel strings.

    ``add_file`` / ``add_bytes`` return a sentinel to put where the ``data:`` URL goes
    (for example ``{"image_url": {"url": sentinel}}``); :func:`encode_json_body`
    replaces each sentinel by the streamed ``data:<mime>;base64,...`` URL (or by the base64
    alone for media registered with ``bare=True``, as ``input_audio`` wants). Sentinels are
    plain ASCII, unique to this registry, and carry the mime type and size so that
    :func:`redacted_preview` can describe them without the registry.
    """

    def __init__(self) -> None:
        self._token = secrets.token_hex(16)
        self._items: list[_Source] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"MediaSources({len(self._items)} items)"

    def _register(self, source: _Source) -> str:
        with self._lock:
            index = len(self._items)
            self._items.append(source)
        return f"{_SENTINEL_SCHEME}{self._token}/{index}?mime={source.mime}&size={source.size}"

    def add_file(self, path: str | os.PathLike[str], mime: str, *, bare: bool = False) -> str:
        """Register a local file; its current size is what the body will promise to send.

        Raises ``MediaProcessingError`` if the file is missing or not a regular file.
        """
        fspath = os.fspath(path)
        _check_mime(mime)
        try:
            st = os.stat(fspath)
        except OSError as exc:
            raise _file_error(fspath, exc) from exc
        if not _is_regular(st):
            raise MediaProcessingError(
                f"{fspath}: not a regular file", {"path": fspath, "reason": "not a regular file"}
            )
        return self._register(_Source(mime=mime, size=st.st_size, path=fspath, bare=bare))

    def add_bytes(self, data: bytes, mime: str, *, bare: bool = False) -> str:
        """Register in-memory bytes (kept by reference, base64-encoded only while sent)."""
        _check_mime(mime)
        return self._register(_Source(mime=mime, size=len(data), data=bytes(data), bare=bare))

    def _lookup(self, match: re.Match[str]) -> _Source:
        token, index = match.group(1), int(match.group(2))
        if token != self._token or index >= len(self._items):
            raise ValueError("the payload refers to media registered in another MediaSources")
        return self._items[index]

    def data_url(self, sentinel: str) -> str:
        """The full ``data:`` URL (or bare base64) a sentinel stands for (reads the whole
        medium; for tests and ``ChatMessage.to_wire``)."""
        match = _ANY_SENTINEL.fullmatch(sentinel)
        if match is None:
            raise ValueError("not a media sentinel")
        source = self._lookup(match)
        return b"".join(_iter_source(source)).decode("ascii")

    def materialize(self, payload: Any) -> Any:
        """A copy of ``payload`` with every sentinel replaced by its full ``data:`` URL.

        This builds the huge strings streaming avoids; use it for small payloads and tests.
        """
        if isinstance(payload, str):
            return self.data_url(payload) if _ANY_SENTINEL.fullmatch(payload) else payload
        if isinstance(payload, Mapping):
            return {key: self.materialize(value) for key, value in payload.items()}
        if isinstance(payload, (list, tuple)):
            return [self.materialize(value) for value in payload]
        return payload


def _check_mime(mime: str) -> None:
    if re.fullmatch(r"[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+", mime) is None:
        raise ValueError(f"invalid mime type {mime!r}")


def _is_regular(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode)


def _file_error(path: str, exc: OSError) -> MediaProcessingError:
    reason = os_error_reason(exc)
    return MediaProcessingError(f"{path}: {reason}", {"path": path, "reason": reason})


class _SourceReader:
    """Yields the ``data:`` URL of one source as base64 chunks, re-checking a file first."""

    def __init__(self, source: _Source) -> None:
        self._source = source
        self._prefix_sent = False
        self._remaining = source.size
        self._offset = 0
        self._file: Any = None
        self._buffer = bytearray(min(CHUNK_INPUT_BYTES, max(source.size, 1)))

    def _open(self) -> None:
        path = self._source.path
        assert path is not None
        try:
            self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
            st = os.fstat(self._file.fileno())
        except OSError as exc:
            self.close()
            raise _changed(path, "no longer readable: " + os_error_reason(exc)) from exc
        if st.st_size != self._source.size:
            self.close()
            raise _changed(
                path, f"changed size since it was attached ({self._source.size} → {st.st_size})"
            )

    def next_chunk(self) -> bytes:
        """The next piece of the data URL; ``b""`` when done."""
        if not self._prefix_sent:
            self._prefix_sent = True
            if self._source.path is not None:
                self._open()
            if self._source.prefix:
                return self._source.prefix
        if self._remaining <= 0:
            self.close()
            return b""
        want = min(len(self._buffer), self._remaining)
        if self._source.data is not None:
            view = memoryview(self._source.data)[self._offset : self._offset + want]
            chunk = base64.b64encode(view)
        else:
            chunk = base64.b64encode(self._read_exactly(want))
        self._offset += want
        self._remaining -= want
        return chunk

    def _read_exactly(self, want: int) -> memoryview:
        view = memoryview(self._buffer)[:want]
        got = 0
        while got < want:
            try:
                n = self._file.readinto(view[got:])
            except OSError as exc:
                self.close()
                raise _changed(self._source.label(), f"read failed: {exc}") from exc
            if not n:
                self.close()
                raise _changed(self._source.label(), "shrank while it was being sent")
            got += n
        return view

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _changed(path: str, reason: str) -> MediaProcessingError:
    return MediaProcessingError(f"{path}: {reason}", {"path": path, "reason": reason})


def _iter_source(source: _Source) -> Iterator[bytes]:
    reader = _SourceReader(source)
    try:
        while chunk := reader.next_chunk():
            yield chunk
    finally:
        reader.close()


async def _stream_source(source: _Source) -> AsyncIterator[bytes]:
    """``_iter_source`` with each file read and base64 step in a worker thread, keeping the
    event loop free. A cancelled step finishes in its thread before the file is closed."""
    loop = asyncio.get_running_loop()
    reader = _SourceReader(source)
    step: asyncio.Future[bytes] | None = None
    try:
        while True:
            step = loop.run_in_executor(None, reader.next_chunk)
            chunk = await asyncio.shield(step)
            if not chunk:
                return
            yield chunk
    finally:
        if step is None or step.done():
            reader.close()
        else:
            step.add_done_callback(lambda done: _close_after(done, reader))


def _close_after(step: asyncio.Future[bytes], reader: _SourceReader) -> None:
    if not step.cancelled():
        step.exception()  # retrieved: nobody awaits a step whose caller was cancelled
    reader.close()


class RequestBody(httpx.AsyncByteStream):
    """A JSON request body whose media parts are base64-encoded while it is sent.

    ``content_length`` is exact. The body can be iterated any number of times (sync or
    async); each pass re-reads the files, so retries resend the same bytes. A file that
    disappeared or changed size since :func:`encode_json_body` raises
    ``MediaProcessingError`` during iteration. Send it with an ``httpx.AsyncClient`` as
    ``client.post(url, content=body, headers=body.headers)`` (or ``build_request`` with
    the same arguments); with ``Content-Length`` given, httpx does not use chunked encoding.
    ``iter_bytes()`` is the blocking equivalent of async iteration.
    """

    def __init__(self, segments: tuple[bytes | _Source, ...]) -> None:
        self._segments = segments
        self.content_length: int = sum(
            len(s) if isinstance(s, bytes) else s.encoded_length for s in segments
        )

    @property
    def is_streaming(self) -> bool:
        """True when some part is read from media while sending (not all in memory)."""
        return any(isinstance(s, _Source) for s in self._segments)

    @property
    def headers(self) -> dict[str, str]:
        """``Content-Type`` and ``Content-Length`` headers for this body."""
        return {"Content-Type": "application/json", "Content-Length": str(self.content_length)}

    def __repr__(self) -> str:
        return f"<RequestBody {self.content_length} bytes, streaming={self.is_streaming}>"

    def contains(self, marker: bytes) -> bool:
        """Whether the JSON text around the media data contains ``marker``."""
        return any(isinstance(s, bytes) and marker in s for s in self._segments)

    def iter_bytes(self) -> Iterator[bytes]:
        """Iterate the body without an event loop (reads files in the calling thread)."""
        for segment in self._segments:
            if isinstance(segment, bytes):
                if segment:
                    yield segment
            else:
                yield from _iter_source(segment)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for segment in self._segments:
            if isinstance(segment, bytes):
                if segment:
                    yield segment
                continue
            async for chunk in _stream_source(segment):
                yield chunk

    def read_all(self) -> bytes:
        """The whole body as one ``bytes`` (for small bodies and tests)."""
        return b"".join(self.iter_bytes())

    async def aclose(self) -> None:
        """Nothing to release: files are opened and closed within each iteration."""


def encode_json_body(
    payload: Mapping[str, Any], sources: MediaSources | None = None
) -> RequestBody:
    """Serialise ``payload`` as compact UTF-8 JSON, streaming the media its sentinels name.

    The bytes produced equal ``json.dumps(materialized, ensure_ascii=False,
    separators=(",", ":")).encode()`` where ``materialized`` is the payload with each
    sentinel replaced by its ``data:`` URL. Raises ``ValueError`` for a sentinel that
    ``sources`` did not issue; text that merely mentions the sentinel scheme is left as is.
    """
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    matches = list(_ANY_SENTINEL.finditer(text)) if _SENTINEL_SCHEME in text else []
    if not matches:
        return RequestBody((text.encode("utf-8"),))
    if sources is None:
        raise ValueError("the payload contains media sentinels but no MediaSources was given")
    segments: list[bytes | _Source] = []
    position = 0
    for match in matches:
        segments.append(text[position : match.start()].encode("utf-8"))
        segments.append(sources._lookup(match))
        position = match.end()
    segments.append(text[position:].encode("utf-8"))
    return RequestBody(tuple(segments))


def _describe(value: str) -> str | None:
    """A short stand-in for a base64 data URL or a sentinel, or None for other strings."""
    sentinel = _ANY_SENTINEL.fullmatch(value)
    if sentinel is not None:
        return f"<{sentinel.group(3)} base64, {sentinel.group(4)} bytes>"
    match = _DATA_URL_B64.match(value)
    if match is None:
        return None
    encoded = len(value) - match.end()
    padding = len(value) - len(value.rstrip("="))
    return f"<{match.group(1).lower()} base64, {max(encoded * 3 // 4 - padding, 0)} bytes>"


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        described = _describe(value)
        return value if described is None else described
    if isinstance(value, Mapping):
        return {str(key): _redact(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact(item) for item in value]
    return value


def redacted_preview(payload: Any, limit: int | None = 2000) -> str:
    """JSON text of ``payload`` for logs, with base64 media shown as ``<mime base64, N bytes>``.

    Both ``data:...;base64,...`` URLs and media sentinels are elided; the result is cut
    to ``limit`` characters (``None`` for no limit).
    """
    text = json.dumps(_redact(payload), ensure_ascii=False, default=repr)
    return truncate(text, limit)
