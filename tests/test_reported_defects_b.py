"""More defects a hostile tryout found (second batch), each reproduced through the public API."""

from __future__ import annotations

import httpx
import pytest

from openai_chatapi import ChatAgent, ModelConfig, NotFoundError, RuntimeConfig

from .fakes import FakeServer, completion, sse, text_chunks

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
