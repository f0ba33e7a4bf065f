"""Names a crashed embedded local model server instead of retrying against its dead port.

A running ``LocalModelServer`` registers its loopback address here. An agent whose base URL
is that address (and that was given no ``http_transport`` of its own) sends through
``WatchedTransport``: before each request, and when a request or a streamed body fails at the
network level, it checks the server's child process; once that has exited, the failure is
raised as the server's ``LocalServerExitedError``. That exception is not an httpx error, so
the transport's retry loop does not catch it, and it is marked ``retryable = False`` for
callers that re-send. Nothing is ever sent to the port of a server known to have exited.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Protocol

import httpx

__all__ = ["ServerWatch", "WatchedTransport", "register", "unregister", "watched_transport"]

# After a network failure the child may not have been reaped yet (its sockets close a moment
# before it becomes a zombie): look for its exit this long, in steps, before giving up.
_EXIT_GRACE = 1.0
_EXIT_STEP = 0.02


class ServerWatch(Protocol):
    """What the registry needs from a running server."""

    def exited_error(self, action: str, *, before: bool = False) -> BaseException | None:
        """The error naming the server's exit, or None while its process runs; ``before``:
        it had exited before ``action`` was sent (else it stopped while answering it)."""
        ...


_lock = threading.Lock()
_servers: dict[tuple[str, int], ServerWatch] = {}


def _key(url: str | httpx.URL) -> tuple[str, int] | None:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return None
    if parsed.scheme != "http" or not parsed.host:
        return None
    return parsed.host, parsed.port or 80


def register(base_url: str, watch: ServerWatch) -> None:
    """Watch the server answering at ``base_url`` (until ``unregister``)."""
    key = _key(base_url)
    if key is not None:
        with _lock:
            _servers[key] = watch


def unregister(base_url: str, watch: ServerWatch) -> None:
    key = _key(base_url)
    if key is not None:
        with _lock:
            if _servers.get(key) is watch:
                del _servers[key]


def watched_transport(base_url: str, limits: httpx.Limits) -> httpx.AsyncBaseTransport | None:
    """A transport watching the local server at ``base_url``; None when none is registered
    there (the agent then uses httpx's own)."""
    key = _key(base_url)
    if key is None or not _servers:
        return None
    with _lock:
        watch = _servers.get(key)
    if watch is None:
        return None
    return WatchedTransport(watch, httpx.AsyncHTTPTransport(limits=limits))


async def _exit_error(
    watch: ServerWatch, action: str, exc: httpx.TransportError
) -> BaseException | None:
    error = watch.exited_error(action)
    if error is not None or isinstance(exc, httpx.TimeoutException):
        return error  # a slow server is not a dead one: no waiting for it to exit
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _EXIT_GRACE
    while error is None and loop.time() < deadline:
        await asyncio.sleep(_EXIT_STEP)
        error = watch.exited_error(action)
    return error


class _WatchedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, watch: ServerWatch, action: str) -> None:
        self._inner = inner
        self._watch = watch
        self._action = action

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx.TransportError as exc:
            error = await _exit_error(self._watch, self._action, exc)
            if error is not None:
                raise error from exc
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


class WatchedTransport(httpx.AsyncBaseTransport):
    """httpx's transport, with failures of an exited local server raised as its error."""

    def __init__(self, watch: ServerWatch, inner: httpx.AsyncBaseTransport) -> None:
        self._watch = watch
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        action = f"{request.method} {request.url}"
        error = self._watch.exited_error(action, before=True)
        if error is not None:
            raise error  # never knock on the port of a server known to be gone
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TransportError as exc:
            error = await _exit_error(self._watch, action, exc)
            if error is not None:
                raise error from exc
            raise
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_WatchedStream(stream, self._watch, action),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()
