"""More defects a hostile tryout found (second batch), each reproduced through the public API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from openai_chatapi import (
    ChatAgent,
    InternalServerError,
    ModelConfig,
    NotFoundError,
    RuntimeConfig,
)

from ..conftest import AgentFactory
from ..support.fakes import FakeServer, SleepRecorder, completion, sse, text_chunks
from ..support.payload_scenarios import PDF_BYTES, WAV_BYTES

# ------------------------------------------------------------------- a query in api_base_url


def _models(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/v1/models":
        return httpx.Response(200, json={"object": "list", "data": [{"id": "m"}]})
    if request.url.path == "/v1/models/m":
        return httpx.Response(200, json={"id": "m", "object": "model"})
    if request.url.path != "/v1/chat/completions":
        return httpx.Response(404, json={"error": {"message": "not found"}})
    if b'"stream":true' in request.content:
        body = sse(text_chunks(["o", "k"]))
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
    return httpx.Response(200, json=completion("ok"))


async def test_a_query_in_the_base_url_stays_at_the_end_of_every_request_url(
    server: FakeServer,
) -> None:
    server.handler = _models
    config = ModelConfig(api_base_url="http://fake.test/v1?api-version=2024-06-01", model="m")
    runtime = RuntimeConfig(enable_logging=False)
    async with ChatAgent(config, runtime, http_transport=server.transport()) as agent:
        assert await agent.chat("x") == "ok"
        assert "".join([p async for p in agent.chat_stream("y", display_stream=False)]) == "ok"
        assert [m.id for m in await agent.list_models()] == ["m"]
        await agent.retrieve_model("m")
    urls = [str(r.url) for r in server.requests]
    assert urls == [
        "http://fake.test/v1/chat/completions?api-version=2024-06-01",
        "http://fake.test/v1/chat/completions?api-version=2024-06-01",
        "http://fake.test/v1/models?api-version=2024-06-01",
        "http://fake.test/v1/models/m?api-version=2024-06-01",
    ]


@pytest.mark.parametrize("suffix", ["/chat/completions", "/chat/completions/"])
async def test_a_404_names_a_base_url_that_ends_with_the_endpoint(
    server: FakeServer, suffix: str
) -> None:
    server.default = None
    server.handler = lambda request: httpx.Response(404, json={"error": {"message": "nope"}})
    config = ModelConfig(api_base_url="http://fake.test/v1" + suffix, model="m")
    runtime = RuntimeConfig(enable_logging=False)
    async with ChatAgent(config, runtime, http_transport=server.transport()) as agent:
        with pytest.raises(NotFoundError) as caught:
            await agent.chat("x")
        assert agent.history == ()
    message = str(caught.value)
    assert "HTTP 404: nope" in message
    assert "api_base_url ends with /chat/completions" in message
    assert "API root, e.g. /v1" in message
    assert caught.value.status_code == 404


async def test_a_404_on_a_base_url_at_the_api_root_has_no_such_hint(
    server: FakeServer,
) -> None:
    server.handler = lambda request: httpx.Response(404, json={"error": {"message": "nope"}})
    config = ModelConfig(api_base_url="http://fake.test/v1", model="m")
    async with ChatAgent(
        config, RuntimeConfig(enable_logging=False), http_transport=server.transport()
    ) as agent:
        with pytest.raises(NotFoundError) as caught:
            await agent.chat("x")
    assert "api_base_url" not in str(caught.value)


# ------------------------------------------- llama.cpp's 500 "validation errors" for content parts


def _validation_500(part_type: str) -> httpx.Response:
    """What llama-cpp-python's server answers a content part its schema lacks (recorded)."""
    message = (
        "2 validation errors:\n"
        "  {'type': 'literal_error', 'loc': ('body', 'messages', 0, "
        "'ChatCompletionRequestUserMessage', 'content', 'list[...]', 1, "
        f"'ChatCompletionRequestMessageContentPartText', 'type'), 'msg': \"Input should be "
        f"'text'\", 'input': '{part_type}'}}\n"
        "  {'type': 'missing', 'loc': ('body', 'messages', 0, "
        "'ChatCompletionRequestUserMessage', 'content', 'list[...]', 1, "
        "'ChatCompletionRequestMessageContentPartText', 'text'), 'msg': 'Field required'}\n"
    )
    error = {"message": message, "type": "internal_server_error", "param": None, "code": None}
    return httpx.Response(500, json={"error": error})


@pytest.mark.parametrize(
    ("media", "kind"),
    [("audio_paths", "audio"), ("file_paths", "file")],
)
async def test_a_validation_500_for_media_parts_names_the_content_kind_and_is_not_retried(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder, media: str, kind: str
) -> None:
    part = {"audio": "input_audio", "file": "file"}[kind]
    server.handler = lambda request: _validation_500(part)
    agent = await make_agent(max_retries=3, retry_delay=0.01)
    data = {"audio": WAV_BYTES, "file": PDF_BYTES}[kind]
    with pytest.raises(InternalServerError) as caught:
        await agent.chat("listen", **{media: data})
    assert len(server.requests) == 1  # deterministic: resending cannot help
    assert sleeps.delays == []
    message = str(caught.value)
    assert f"server probably does not accept {kind} content parts" in message
    assert "2 validation errors" in message and "\n" not in message
    assert "Input should be 'text'" in caught.value.details["body"]
    assert caught.value.status_code == 500
    assert agent.history == ()
    assert agent.get_stats()["retries"] == 0


async def test_a_validation_500_without_media_is_not_retried_and_keeps_its_message(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    server.handler = lambda request: _validation_500("text")
    agent = await make_agent(max_retries=3, retry_delay=0.01)
    with pytest.raises(InternalServerError) as caught:
        await agent.chat("hi")
    assert len(server.requests) == 1
    assert str(caught.value).startswith("HTTP 500: 2 validation errors:")
    assert "does not accept" not in str(caught.value)


async def test_another_500_with_media_is_still_retried_unchanged(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    server.add_json({"error": {"message": "model crashed"}}, status=500)
    server.add_completion("heard")
    agent = await make_agent(max_retries=3, retry_delay=0.01)
    assert await agent.chat("listen", audio_paths=WAV_BYTES) == "heard"
    assert len(server.requests) == 2


# ------------------------------------------- the background drain of a stream end is cancellable


class _EndThenCancelDrain(httpx.AsyncByteStream):
    """A streamed reply with bytes after ``[DONE]``; the step that ends the body cancels the
    background task draining it (a cancellation landing just as the drain finishes)."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.cancelled: list[asyncio.Task[object]] = []

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body
        yield b": trailing comment the reader never needs\n\n"
        for task in asyncio.all_tasks():
            if task.get_coro().__qualname__ == "drain_and_close":  # type: ignore[union-attr]
                task.cancel()
                self.cancelled.append(task)


async def test_a_cancelled_stream_drain_stops_even_when_the_body_ends_at_that_moment(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    stream = _EndThenCancelDrain(sse(text_chunks(["o", "k"])))
    server.handler = lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, stream=stream
    )
    agent = await make_agent()
    assert "".join([p async for p in agent.chat_stream("x", display_stream=False)]) == "ok"
    for _ in range(100):  # let the drain run to the body's end (no timing involved)
        if stream.cancelled:
            break
        await asyncio.sleep(0)
    assert len(stream.cancelled) == 1
    (drain,) = stream.cancelled
    await asyncio.wait({drain})
    assert drain.cancelled(), "the cancellation was swallowed: the task went on running"
    assert [m.text for m in agent.history] == ["x", "ok"]
    server.handler = None
    server.add_completion("next")
    assert await agent.chat("again") == "next"


# --------------------------------------------------------------------- ChatStream is exported


async def test_the_type_chat_stream_returns_is_exported(
    agent: ChatAgent, server: FakeServer
) -> None:
    import openai_chatapi
    from openai_chatapi import ChatStream, StreamEvent

    assert "ChatStream" in openai_chatapi.__all__ and "ChatStream" in dir(openai_chatapi)
    server.add_stream(text_chunks(["o", "k"]))
    server.add_stream(text_chunks(["h", "i"]))
    pieces: ChatStream[str] = agent.chat_stream("x", display_stream=False)
    assert isinstance(pieces, ChatStream)
    async with pieces as stream:
        assert "".join([p async for p in stream]) == "ok"
    events: ChatStream[StreamEvent] = agent.chat_stream_events("y")
    assert isinstance(events, ChatStream)
    async with events:
        assert [e async for e in events]
