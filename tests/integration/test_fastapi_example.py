"""Example 5 under a real uvicorn server, relaying a loopback fake model, read by an SSE client."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from openai_chatapi import ModelConfig, RuntimeConfig
from openai_chatapi._sse import ServerSentEvent, SSEDecoder

from ..support.fakes import text_chunks

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from openai_chatapi.examples.example_5_fastapi_sse import create_app, sse_event  # noqa: E402

STARTUP_TIMEOUT = 30.0
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@contextmanager
def serve(app: Any, *, lifespan: str) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan=lifespan, log_level="warning", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:  # a bounded wait for the server to come up
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT)
        sock.close()


def reply_pieces(question: str) -> list[str]:
    """What the fake model answers: the question echoed in word-sized pieces."""
    words = question.split(" ")
    return ["You said:", *(f" {w}" for w in words), "\nBye!"]


class FakeModel:
    """A tiny OpenAI-compatible streaming server (raw ASGI) that records its requests."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        # When set, the reply pauses after its first pieces until the test opens the gate.
        self.gate: threading.Event | None = None
        self.gate_opened: list[bool] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        request = json.loads(body)
        self.requests.append({"path": scope["path"], "body": request})
        if self.fail_with is not None:
            error = json.dumps({"error": {"message": "model overloaded"}}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": self.fail_with,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": error})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        question = request["messages"][-1]["content"]
        for number, chunk in enumerate(text_chunks(reply_pieces(question))):
            if number == 3 and self.gate is not None:
                opened = await asyncio.to_thread(self.gate.wait, STARTUP_TIMEOUT)
                self.gate_opened.append(opened)
            event = f"data: {json.dumps(chunk)}\n\n".encode()
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


@pytest.fixture(scope="module")
def fake_model() -> Iterator[tuple[FakeModel, str]]:
    model = FakeModel()
    with serve(model, lifespan="off") as url:
        yield model, url


@pytest.fixture(scope="module")
def app_url(fake_model: tuple[FakeModel, str]) -> Iterator[str]:
    _, model_url = fake_model
    config = ModelConfig(api_base_url=f"{model_url}/v1", api_key="sk-test", model="fake-model")
    app = create_app(config, RuntimeConfig(enable_logging=False, max_retries=0))
    with serve(app, lifespan="on") as url:
        yield url


@pytest.fixture
def model(fake_model: tuple[FakeModel, str]) -> Iterator[FakeModel]:
    fake, _ = fake_model
    fake.requests.clear()
    yield fake
    fake.fail_with = None
    fake.gate = None
    fake.gate_opened.clear()


async def read_events(url: str, text: str) -> tuple[httpx.Response, list[ServerSentEvent]]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    async with (
        httpx.AsyncClient(base_url=url, timeout=30.0) as client,
        client.stream("GET", "/chat", params={"text": text}) as response,
    ):
        async for raw in response.aiter_bytes():
            events += decoder.feed(raw)
    return response, events + decoder.flush()


async def test_reply_arrives_in_pieces_and_completes(app_url: str, model: FakeModel) -> None:
    question = "streaming over SSE works"
    response, events = await read_events(app_url, question)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    messages = [e.data for e in events if e.event == "message"]
    assert messages == reply_pieces(question)  # one SSE event per piece, in order
    assert len(messages) > 3
    assert "".join(messages) == "You said: streaming over SSE works\nBye!"
    assert events[-1].event == "done"
    sent = model.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["stream"] is True
    assert sent["body"]["messages"] == [{"role": "user", "content": question}]


async def test_first_pieces_reach_the_client_before_the_model_finishes(
    app_url: str, model: FakeModel
) -> None:
    model.gate = gate = threading.Event()
    decoder = SSEDecoder()
    received: list[str] = []
    async with (
        httpx.AsyncClient(base_url=app_url, timeout=30.0) as client,
        client.stream("GET", "/chat", params={"text": "are you streaming"}) as response,
    ):
        async for raw in response.aiter_bytes():
            for event in decoder.feed(raw):
                received.append(event.data)
                gate.set()  # the model sends the rest only once a piece got here
    # The model paused after "You said:" and " are": both were relayed while it waited.
    assert model.gate_opened == [True]
    assert "".join(received[:-1]) == "You said: are you streaming\nBye!"


async def test_requests_are_independent_conversations(app_url: str, model: FakeModel) -> None:
    await read_events(app_url, "first")
    _, events = await read_events(app_url, "second")
    assert "".join(e.data for e in events if e.event == "message").startswith("You said: second")
    assert model.requests[-1]["body"]["messages"] == [{"role": "user", "content": "second"}]


async def test_upstream_failure_becomes_an_error_event(app_url: str, model: FakeModel) -> None:
    model.fail_with = 400
    response, events = await read_events(app_url, "hello")
    assert response.status_code == 200  # the stream had started
    assert [e.event for e in events] == ["error"]
    error = json.loads(events[0].data)
    assert error["type"] == "BadRequestError"
    assert "model overloaded" in error["message"]


@pytest.mark.parametrize(
    "text", ["plain", "two\nlines", "crlf\r\nline", "trailing\n", "", " leading space"]
)
def test_sse_event_round_trips_any_text(text: str) -> None:
    decoder = SSEDecoder()
    events = decoder.feed(sse_event(text).encode()) + decoder.flush()
    expected = text.replace("\r\n", "\n")
    assert [e.data for e in events] == [expected]
