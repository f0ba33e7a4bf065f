"""One HTTP exchange of the transport: its time bound, its connection trace, its body.

The attempt is bounded as a whole (:func:`within`); :class:`ConnectionTracer` tells whether a
pooled connection was reused; the body is read whole, capped (error pages), or as it
arrives (:func:`body_chunks`, a stream), and what a stream's reader left unread is drained
so that the connection goes back to the pool.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from contextlib import AbstractContextManager, aclosing, suppress
from typing import TypeVar, cast

import httpx

from ._errors import ChatAPIException

__all__ = [
    "AttemptTimeout",
    "ConnectionTracer",
    "StreamBody",
    "body_chunks",
    "drain_and_close",
    "exchange",
    "local_server_transport",
    "read_capped",
    "within",
]

T = TypeVar("T")
# After [DONE], the end of a streamed body is read for this long at most (then the
# connection is closed instead of reused).
_DRAIN_SECONDS = 0.5
_DRAIN_BYTES = 64 * 1024


class AttemptTimeout(httpx.TimeoutException):
    """One attempt took longer than ``timeout`` as a whole (retried like any timeout)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no complete response within {seconds:g}s")
        self.seconds = seconds


async def exchange(
    client: httpx.AsyncClient, request: httpx.Request, stream: bool
) -> httpx.Response:
    """Send ``request``; unless streaming, read the whole body of a success."""
    response = await client.send(request, stream=True)
    if not stream and response.status_code < 300:
        # A connection lost mid-body is retried like one lost before the headers.
        try:
            await response.aread()
        except BaseException:
            await response.aclose()
            raise
    return response


if sys.version_info >= (3, 11):

    async def _bounded(seconds: float, work: Awaitable[T]) -> T:
        """``await work``, raising ``TimeoutError`` after ``seconds``.

        Not ``asyncio.wait_for``: on Python 3.10/3.11 it returns the result of work that
        finished just as the caller was cancelled, so a cancelled task keeps running.
        ``asyncio.timeout`` runs the work in the calling task and never loses a cancellation.
        """
        async with asyncio.timeout(seconds):
            return await work

else:  # pragma: no cover

    async def _bounded(seconds: float, work: Awaitable[T]) -> T:
        """``await work``, raising ``asyncio.TimeoutError`` after ``seconds`` (see above);
        a cancellation of the caller always cancels the work and is re-raised."""
        task = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait({task}, timeout=seconds)
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.wait({task})
            raise
        if not done:
            task.cancel()
            await asyncio.wait({task})
            raise asyncio.TimeoutError
        return task.result()


async def within(seconds: float, work: Awaitable[T]) -> T:
    """``await work``; past ``seconds`` it is cancelled and :class:`AttemptTimeout` raised."""
    try:
        return await _bounded(seconds, work)
    except asyncio.TimeoutError:  # the builtin TimeoutError on 3.11+
        raise AttemptTimeout(seconds) from None


class StreamBody:
    """The body of an open streaming response, as it arrives, its content type and when
    its attempt was sent (the stream's first-event deadline counts from there)."""

    __slots__ = ("_chunks", "content_type", "sent_at")

    def __init__(self, chunks: AsyncIterator[bytes], content_type: str, sent_at: float) -> None:
        self._chunks = chunks
        self.content_type = content_type
        self.sent_at = sent_at

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks


class ConnectionTracer:
    """httpcore's ``trace`` extension for one attempt: was a pooled connection reused?

    A new connection reports ``connection.connect_*`` events before the request is sent; a
    reused one goes straight to sending (``http11.*`` / ``http2.*``). A transport that reports
    nothing (a mock) counts as a new connection.
    """

    __slots__ = ("answered", "connected", "sent", "sent_at")

    def __init__(self) -> None:
        self.sent_at = time.monotonic()  # when this attempt started
        self.connected = False
        self.sent = False
        self.answered = False  # the response headers arrived

    async def __call__(self, name: str, info: dict[str, object]) -> None:
        if name.startswith("connection.connect_"):
            self.connected = True
        elif name.startswith(("http11.", "http2.")):
            self.sent = True
            if name.endswith("receive_response_headers.complete"):
                self.answered = True

    @property
    def reused(self) -> bool:
        return self.sent and not self.connected


async def body_chunks(
    response: httpx.Response, boundary: AbstractContextManager[None]
) -> AsyncGenerator[bytes, None]:
    """The response body as it arrives, read inside the transport's network ``boundary``
    (which maps a failure while reading to our exceptions)."""
    with boundary:
        async with aclosing(_generator(response.aiter_bytes())) as chunks:
            async for chunk in chunks:
                yield chunk


def _generator(chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """httpx's body iterators, typed as what they are (async generators, with ``aclose``)."""
    return cast("AsyncGenerator[bytes, None]", chunks)


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read the rest of a body whose reader stopped early, within a short bound.

    A body that does not end promptly (or fails) is left to be closed with its connection:
    the reply is already complete, so this must never turn it into an error.
    """

    async def rest() -> None:
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > _DRAIN_BYTES:
                return

    with suppress(asyncio.TimeoutError, ChatAPIException):
        await _bounded(_DRAIN_SECONDS, rest())  # a cancellation is never swallowed here


async def drain_and_close(chunks: AsyncGenerator[bytes, None], response: httpx.Response) -> None:
    """Read what a stream's reader left (for connection reuse), then close the response."""
    try:
        if not response.is_closed:
            await _drain(chunks)
    finally:
        await chunks.aclose()
        await response.aclose()


async def read_capped(response: httpx.Response, cap: int) -> bytes:
    """Read at most ``cap`` bytes of a body (error pages can be huge), then stop."""
    parts: list[bytes] = []
    size = 0
    async with aclosing(_generator(response.aiter_bytes())) as chunks:  # closed now, not by GC
        async for chunk in chunks:
            parts.append(chunk)
            size += len(chunk)
            if size >= cap:
                break
    return b"".join(parts)[:cap]


def body_size(response: httpx.Response, read: int, cap: int) -> str:
    """How big a body of which ``read`` bytes were read (at most ``cap``) is, in words: its
    declared length when one was sent uncompressed, else what was read or a lower bound."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and "content-encoding" not in response.headers:
        return f"{int(declared)} bytes"
    return f"more than {cap} bytes" if read >= cap else f"{read} bytes"


def local_server_transport(base_url: str, limits: httpx.Limits) -> httpx.AsyncBaseTransport | None:
    """The transport naming a crash of the embedded local server at ``base_url``, if one runs
    there (None: httpx's own). Servers register when they start, so before
    ``openai_chatapi.local`` is imported there is none to look up, nor anything to import."""
    if f"{__package__}.local" not in sys.modules:
        return None
    from .local._watch import watched_transport

    return watched_transport(base_url, limits)
