"""Streaming to a web front end: a FastAPI endpoint that relays a reply as Server-Sent Events.

``GET /chat?text=...`` answers ``text/event-stream`` with one ``data:`` event per piece of the
reply, as the pieces arrive, then ``event: done`` so the browser's ``EventSource`` can close
instead of reconnecting. A piece with line breaks is sent as several ``data:`` lines, which SSE
clients join back with ``"\\n"``. A failure after the response has started is reported as an
``event: error`` (the HTTP status line is already sent by then).

The app keeps one ``ChatAgent`` (one connection pool) for its lifetime; each request is an
independent one-turn conversation (``add_to_history=False``), and a client that disconnects
cancels its stream, which closes the upstream response.

Run (needs fastapi and uvicorn, e.g. ``pip install 'openai_chatapi[dev]'``)::

    python -m openai_chatapi.examples.example_5_fastapi_sse             # serve on :8000
    python -m openai_chatapi.examples.example_5_fastapi_sse --self-test # ask itself once

It uses OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL, or the embedded local model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import httpx

from openai_chatapi import ChatAgent, ChatAPIException, ModelConfig, RuntimeConfig
from openai_chatapi.examples._endpoint import endpoint

if TYPE_CHECKING:
    from fastapi import FastAPI

_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # the only line ends SSE knows
_STARTUP_SECONDS = 30.0


def sse_event(data: str, event: str | None = None) -> str:
    """One SSE event carrying ``data`` exactly (one ``data:`` line per line of it)."""
    head = f"event: {event}\n" if event else ""
    lines = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(data))
    return f"{head}{lines}\n"


def create_app(
    model_config: ModelConfig,
    runtime_config: RuntimeConfig | None = None,
    *,
    http_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The FastAPI app: ``GET /chat?text=...`` streams the model's reply as SSE."""
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    runtime = runtime_config or RuntimeConfig(enable_logging=True, log_level="WARNING")
    agents: list[ChatAgent] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with ChatAgent(model_config, runtime, http_transport=http_transport) as agent:
            agents.append(agent)
            yield
            agents.clear()

    app = FastAPI(title="openai_chatapi SSE example", lifespan=lifespan)

    @app.get("/chat")
    async def chat_endpoint(text: str) -> StreamingResponse:
        agent = agents[0]

        async def generate() -> AsyncIterator[str]:
            try:
                async for chunk in agent.chat_stream(
                    text, add_to_history=False, display_stream=False
                ):
                    yield sse_event(chunk)
            except ChatAPIException as exc:
                error = {"type": type(exc).__name__, "message": str(exc)}
                yield sse_event(json.dumps(error), event="error")
                return
            yield sse_event("", event="done")

        return StreamingResponse(
            generate(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return app


async def _sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """``(event, data)`` for each Server-Sent Event: as much SSE as this app's stream uses."""
    event, data = "message", list[str]()
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif not line and (data or event != "message"):
            yield event, "\n".join(data)
            event, data = "message", list[str]()


async def ask(base_url: str, text: str) -> tuple[list[str], bool]:
    """Stream one question from a running app; print the pieces; return them and whether the
    stream ended with ``event: done``."""
    pieces: list[str] = []
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=120.0) as client,
        client.stream("GET", "/chat", params={"text": text}) as response,
    ):
        response.raise_for_status()
        async for event, data in _sse_events(response):
            if event == "done":
                return pieces, True
            if event == "error":
                print(f"\n[error event: {data}]", file=sys.stderr)
                return pieces, False
            pieces.append(data)
            print(data, end="", flush=True)
    return pieces, False


def _free_socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    return sock


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="serve on a free loopback port, stream one question from it, print it and exit",
    )
    args = parser.parse_args(argv)
    try:
        import uvicorn
    except ImportError:
        print("this example needs fastapi and uvicorn: pip install fastapi uvicorn")
        return 2

    async with endpoint(temperature=0.2, max_tokens=80) as config:
        app = create_app(config, RuntimeConfig(enable_logging=True, log_level="WARNING"))
        if not args.self_test:
            server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port))
            await server.serve()
            return 0

        sock = _free_socket("127.0.0.1")
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", log_config=None))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            for _ in range(int(_STARTUP_SECONDS / 0.05)):
                if server.started or task.done():
                    break
                await asyncio.sleep(0.05)
            if not server.started:
                print("the server did not start", file=sys.stderr)
                return 1
            question = "Name three colours of the rainbow."
            print(f"GET http://127.0.0.1:{port}/chat?text={question}\nassistant: ", end="")
            pieces, done = await ask(f"http://127.0.0.1:{port}", question)
            print(f"\n[{len(pieces)} SSE events, {'complete' if done else 'incomplete'}]")
            return 0 if done and "".join(pieces).strip() else 1
        finally:
            server.should_exit = True
            await task
            sock.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
