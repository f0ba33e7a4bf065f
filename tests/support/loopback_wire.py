"""The wire side of the loopback server (``loopback.py``): one connection's request parser
(an ``asyncio.Protocol``: keep-alive, sized or chunked bodies, pipelining-safe) and the raw
writing helpers handlers use. Import these names from ``loopback``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .loopback import LoopbackServer

SAFETY = 20.0  # seconds: a bound on anything a test waits for, never an expected duration

REASONS = {
    200: "OK",
    301: "Moved Permanently",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class Request:
    """One request as received (headers lower-cased; ``body`` possibly only its two ends when
    the server keeps a bounded sample, see ``body_size``)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    body_size: int = 0

    @property
    def json(self) -> Any:
        """The body parsed as JSON (None when empty or not JSON)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def wants_stream(self) -> bool:
        data = self.json
        return isinstance(data, dict) and data.get("stream") is True


Handler = Callable[["Connection", Request], bytes | Awaitable[bool] | None]
"""Answers one request (see the module docstring)."""


def response_bytes(
    status: int,
    body: bytes,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> bytes:
    """A whole sized response: status line, headers and ``body``."""
    return head_bytes(status, content_type, len(body), headers) + body


def head_bytes(
    status: int, content_type: str, length: int | None, headers: dict[str, str] | None = None
) -> bytes:
    """The status line and headers; ``length=None`` announces a chunked body."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", f"content-type: {content_type}"]
    lines.append("transfer-encoding: chunked" if length is None else f"content-length: {length}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk_bytes(data: bytes) -> bytes:
    """``data`` framed as one HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


class _Body:
    """A request body: whole, or (``keep`` set) only its two ends and its size."""

    __slots__ = ("head", "keep", "size", "tail")

    def __init__(self, keep: int | None) -> None:
        self.keep = keep
        self.head = bytearray()
        self.tail = bytearray()
        self.size = 0

    def add(self, data: bytes | bytearray) -> None:
        self.size += len(data)
        keep = self.keep
        if keep is None:
            self.head += data
            return
        room = keep - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > 2 * keep:
                del self.tail[:-keep]

    def sample(self) -> bytes:
        if self.keep is None:
            return bytes(self.head)
        return bytes(self.head + self.tail[-self.keep :])


class Connection(asyncio.Protocol):
    """One accepted connection: the request parser, and the helpers handlers write with."""

    def __init__(self, server: LoopbackServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.leak = ""  # text a handler may quote back in error payloads (secret-hygiene tests)
        self._buf = bytearray()
        self._state = "head"  # head | length | chunk-size | chunk-data | chunk-crlf | trailers
        self._remaining = 0
        self._request: Request | None = None
        self._body = _Body(None)
        self._busy = False  # a handler coroutine runs: parse the next request after it
        self._paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._lost: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._lost = asyncio.get_running_loop().create_future()
        self.server._opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._wake()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        self.server._closed(self)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._busy:
            self._parse()

    # -- parsing -------------------------------------------------------------------------------
    def _parse(self) -> None:
        buf = self._buf
        while self.transport is not None and not self._busy:
            state = self._state
            if state == "head":
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                self._start_request(bytes(buf[:end]))
                del buf[: end + 4]
            elif state == "length" or state == "chunk-data":
                take = min(self._remaining, len(buf))
                if take:
                    self._body.add(buf[:take])
                    del buf[:take]
                    self._remaining -= take
                if self._remaining:
                    return
                if state == "length":
                    self._dispatch()
                else:
                    self._state = "chunk-crlf"
            elif state == "chunk-crlf":
                if len(buf) < 2:
                    return
                del buf[:2]
                self._state = "chunk-size"
            else:  # chunk-size or trailers: line based
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                line = bytes(buf[:end])
                del buf[: end + 2]
                if state == "trailers":
                    if not line:
                        self._dispatch()
                    continue
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                self._state, self._remaining = ("chunk-data", size) if size else ("trailers", 0)

    def _start_request(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self._request = Request(parts[0], parts[1] if len(parts) > 1 else "/", headers, b"")
        self._body = _Body(self.server.body_limit)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            self._state = "chunk-size"
        else:
            self._remaining = int(headers.get("content-length") or 0)
            self._state = "length"

    def _dispatch(self) -> None:
        self._state = "head"
        request = self._request
        assert request is not None
        request.body, request.body_size = self._body.sample(), self._body.size
        server = self.server
        server.stats.requests += 1
        if server.record:
            server.requests.append(request)
        outcome = server.handler_for(self, request)(self, request)
        close = request.headers.get("connection", "").lower() == "close"
        if isinstance(outcome, bytes):
            self.transport.write(outcome)  # type: ignore[union-attr]
            if close:
                self.close()
        elif outcome is not None:
            self._busy = True
            task = asyncio.ensure_future(outcome)
            server._tasks.add(task)
            task.add_done_callback(lambda t: self._handled(t, close))

    def _handled(self, task: asyncio.Future[bool], close: bool) -> None:
        self.server._tasks.discard(task)
        self._busy = False
        if task.cancelled():
            self.abort()
            return
        if task.exception() is not None:
            if not isinstance(task.exception(), ConnectionError):
                self.server.failures.append(task.exception())  # type: ignore[arg-type]
            self.abort()
            return
        if not task.result():
            self.abort()
        elif close:
            self.close()
        elif self.transport is not None:
            self._parse()

    # -- writing (for handlers) ----------------------------------------------------------------
    async def write(self, data: bytes) -> None:
        """Write raw bytes and wait while the client is slow to read them."""
        if self.transport is None:
            raise ConnectionResetError("the client closed the connection")
        self.transport.write(data)
        if self._paused:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter
            if self.transport is None:
                raise ConnectionResetError("the client closed the connection")

    async def head(
        self,
        status: int,
        *,
        content_type: str = "application/json",
        length: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The status line and headers; ``length=None`` means a chunked body follows."""
        await self.write(head_bytes(status, content_type, length, headers))

    async def respond(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        await self.write(response_bytes(status, body, content_type=content_type, headers=headers))

    async def chunk(self, data: bytes) -> None:
        await self.write(chunk_bytes(data))

    async def end_chunks(self) -> None:
        await self.write(LAST_CHUNK)

    async def sse(self, events: list[bytes], *, end: bool = True) -> None:
        """An event stream, one HTTP chunk per event (``end=False``: the body stays open)."""
        await self.head(200, content_type="text/event-stream")
        for item in events:
            await self.chunk(item)
        if end:
            await self.end_chunks()

    async def reset(self) -> None:
        """Abort with a TCP reset (SO_LINGER 0), whatever the client is doing."""
        if self.transport is None:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.abort()

    async def stall(self) -> None:
        """Send nothing more; return once the client gives up and closes the connection."""
        self.server.stalled.set()
        if self._lost is not None:
            await self._lost

    async def client_progress(self) -> None:
        """Wait (bounded) until the test's consumer reports that it received streamed text."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.server.progress.wait(), SAFETY)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _wake(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
