"""The one loopback test server: HTTP/1.1 on ``127.0.0.1``, a free port, real sockets.

Every socket-level test double is a *handler* of :class:`LoopbackServer` (the fault behaviours
of ``fault_server.py``, the CLI's fake model in ``cli_server.py``, the recorded answers of
``replay_support.py``, the benchmark's canned completion and stream in ``bench_handler.py``).
The server parses requests incrementally on an ``asyncio.Protocol`` (keep-alive, chunked or
sized bodies, pipelining-safe), records them, counts connections, and hands each request to
the handler::

    handler(conn, request) -> bytes | None | Awaitable[bool]

- ``bytes``: the whole response, written at once (the fast path: no task, no await);
  ``None``: nothing more is written (the handler called ``conn.reset()``/``conn.close()``);
- an awaitable: a coroutine that writes with ``conn``'s helpers (``head``, ``respond``,
  ``sse``, ``chunk``, raw ``write``, ``reset``, ``stall``) and returns whether the connection
  may serve another request; the connection reads no further request until it is done.

Three ways to run it:

- ``async with LoopbackServer(handler) as server:`` in the test's own event loop;
- ``with LoopbackServer(handler) as server:`` in a background thread with its own loop (for
  subprocess, CLI and sync users);
- ``python -m tests.support.loopback [--port 0]`` in its own process serving the benchmark's
  handler; it prints ``PORT <n>`` once listening (``scripts/bench.py`` starts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from .loopback_wire import (
    LAST_CHUNK,
    REASONS,
    SAFETY,
    Connection,
    Handler,
    Request,
    chunk_bytes,
    head_bytes,
    response_bytes,
)

__all__ = [
    "LAST_CHUNK",
    "REASONS",
    "SAFETY",
    "Connection",
    "Handler",
    "LoopbackServer",
    "Request",
    "ServerStats",
    "chunk_bytes",
    "closed_port_url",
    "head_bytes",
    "response_bytes",
]


@dataclass
class ServerStats:
    accepted: int = 0
    open: int = 0
    peak_open: int = 0
    requests: int = 0


def closed_port_url() -> str:
    """A URL on a port nobody listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


async def _not_found(conn: Connection, request: Request) -> bool:
    body = b'{"error": {"message": "loopback server: no handler", "type": "not_found"}}'
    await conn.respond(404, body)
    return True


class LoopbackServer:
    """The loopback server. Each request goes to the next handler of ``script(...)``'s queue,
    else to ``default``. ``record=False`` keeps no requests; ``body_limit`` keeps only that
    many bytes at each end of a request body (the benchmark sends large media)."""

    def __init__(
        self,
        default: Handler = _not_found,
        *,
        record: bool = True,
        body_limit: int | None = None,
        port: int = 0,
    ) -> None:
        self.default = default
        self.record = record
        self.body_limit = body_limit
        self.port = port
        self._scripted: list[Handler] = []
        self.requests: list[Request] = []
        self.failures: list[BaseException] = []  # exceptions raised by handlers
        self.stats = ServerStats()
        self.progress = asyncio.Event()  # set by test consumers when streamed text arrives
        self.stalled = asyncio.Event()  # set when a handler starts stalling
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()
        self._tasks: set[asyncio.Future[bool]] = set()
        self._changed: asyncio.Event | None = None  # set whenever a connection closes
        self._blackhole: socket.socket | None = None
        self._fillers: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        """The OpenAI-style base URL (``http://127.0.0.1:<port>/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *handlers: Handler) -> LoopbackServer:
        """Answer the next requests with ``handlers`` in order, then the default again."""
        self._scripted.extend(handlers)
        return self

    def handler_for(self, conn: Connection, request: Request) -> Handler:
        return self._scripted.pop(0) if self._scripted else self.default

    def reset_script(self, default: Handler | None = None) -> None:
        self._scripted.clear()
        if default is not None:
            self.default = default
        self.progress = asyncio.Event()
        self.stalled = asyncio.Event()

    # -- listening (in the running loop) -------------------------------------------------------
    async def start(self) -> None:
        self._changed = asyncio.Event()
        await self.listen()

    async def listen(self) -> None:
        """(Re)open the listening socket on the same port."""
        self._close_blackhole()
        if self._server is None:
            loop = asyncio.get_running_loop()
            self._server = await loop.create_server(
                lambda: Connection(self), "127.0.0.1", self.port, reuse_address=True, backlog=1024
            )
            self.port = self._server.sockets[0].getsockname()[1]

    def refuse(self) -> None:
        """Stop listening: connection attempts are refused until ``listen()``."""
        server, self._server = self._server, None
        if server is not None:
            server.close()

    def blackhole(self) -> None:
        """Connection attempts hang: a socket that listens, never accepts, with a full backlog."""
        self.refuse()
        hole = socket.socket()
        hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hole.bind(("127.0.0.1", self.port))
        hole.listen(0)
        self._blackhole = hole
        for _ in range(3):  # fill the accept queue: later SYNs are dropped, connect() hangs
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", self.port))
            self._fillers.append(filler)

    def _close_blackhole(self) -> None:
        for sock in [*self._fillers, self._blackhole]:
            if sock is not None:
                sock.close()
        self._fillers.clear()
        self._blackhole = None

    async def stop(self) -> None:
        """Stop listening and end every connection (running handlers see it closed)."""
        self.refuse()
        self._close_blackhole()
        self.progress.set()
        for conn in list(self._connections):
            conn.abort()
        if self._tasks:
            _, stuck = await asyncio.wait(set(self._tasks), timeout=SAFETY)
            for task in stuck:  # pragma: no cover - only when a handler ignores the abort
                task.cancel()
        await asyncio.sleep(0)  # let the aborted connections report connection_lost

    async def __aenter__(self) -> LoopbackServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- connection accounting -----------------------------------------------------------------
    def _opened(self, conn: Connection) -> None:
        self._connections.add(conn)
        stats = self.stats
        stats.accepted += 1
        stats.open += 1
        stats.peak_open = max(stats.peak_open, stats.open)

    def _closed(self, conn: Connection) -> None:
        if conn in self._connections:
            self._connections.discard(conn)
            self.stats.open -= 1
            if self._changed is not None:
                self._changed.set()

    async def drained(self) -> None:
        """Wait (bounded by SAFETY) until every handler has finished."""
        while self._tasks:
            await asyncio.wait_for(asyncio.wait(set(self._tasks)), SAFETY)

    async def wait_open_at_most(self, count: int) -> None:
        """Wait (bounded by SAFETY) until at most ``count`` connections are open."""
        changed = self._changed
        assert changed is not None, "the server is not started"

        async def settled() -> None:
            while self.stats.open > count:
                changed.clear()
                await changed.wait()

        await asyncio.wait_for(settled(), SAFETY)

    # -- in a background thread ----------------------------------------------------------------
    def __enter__(self) -> LoopbackServer:
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="loopback-server", daemon=True)
        self._thread.start()
        started.wait(SAFETY)
        self.call(self._start_threaded())
        return self

    async def _start_threaded(self) -> None:
        self.progress = asyncio.Event()
        self.stalled = asyncio.Event()
        await self.start()

    def __exit__(self, *exc: object) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self.call(self.stop())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(SAFETY)
            loop.close()
            self._loop = self._thread = None

    def call(self, coro: Awaitable[Any]) -> Any:
        """Run ``coro`` in the server's background loop and return its result."""
        assert self._loop is not None, "the server is not running in a thread"

        async def wrapper() -> Any:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(SAFETY)


# -- as a process (the benchmarks) ------------------------------------------------------------
async def serve(
    handler: Handler, host: str = "127.0.0.1", port: int = 0, body_limit: int | None = None
) -> None:
    """Serve ``handler`` without recording until cancelled, announcing ``PORT <n>``."""
    server = LoopbackServer(handler, record=False, body_limit=body_limit, port=port)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: Connection(server), host, port, backlog=1024)
    print(f"PORT {listener.sockets[0].getsockname()[1]}", flush=True)
    async with listener:
        await listener.serve_forever()


def main() -> None:
    import argparse

    from .bench_handler import BODY_KEEP, bench

    parser = argparse.ArgumentParser(description="the benchmarks' loopback server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(bench, args.host, args.port, BODY_KEEP))


if __name__ == "__main__":
    main()
