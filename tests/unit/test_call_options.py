"""Per-call options are checked before anything is sent (try-out defects, round 2)."""

from __future__ import annotations

from typing import Any

import pytest

from openai_chatapi import ChatAgent, ConfigurationError, ModelConfig, RuntimeConfig, SyncChatAgent

from ..conftest import AgentFactory
from ..support.fakes import API_KEY, BASE_URL, FakeServer, text_chunks


@pytest.mark.parametrize(
    ("method", "kwargs", "field"),
    [
        ("chat", {"add_to_history": "no"}, "add_to_history"),
        ("chat", {"auto_execute_tools": 1}, "auto_execute_tools"),
        ("chat", {"output_mode": "yaml"}, "output_mode"),
        ("chat", {"max_output_retries": -5}, "max_output_retries"),
        ("chat_stream", {"display_stream": "no"}, "display_stream"),
        ("chat_stream", {"add_to_history": None}, "add_to_history"),
        ("chat_stream_events", {"auto_execute_tools": "yes"}, "auto_execute_tools"),
    ],
)
async def test_bad_call_flags_raise_configuration_error_naming_them(
    agent: ChatAgent, server: FakeServer, method: str, kwargs: dict[str, Any], field: str
) -> None:
    server.add_completion("never")
    with pytest.raises(ConfigurationError) as caught:
        result = getattr(agent, method)("hi", **kwargs)
        if method == "chat":
            await result
        else:
            async for _ in result:
                pass
    assert field in str(caught.value)
    assert caught.value.details["field"] == field
    assert server.requests == [] and not agent.history


async def test_bad_submit_tool_results_flag(make_agent: AgentFactory) -> None:
    agent = await make_agent()
    with pytest.raises(ConfigurationError, match="add_to_history"):
        await agent.submit_tool_results({}, add_to_history="no")


def test_sync_chat_stream_display_stream_checked(server: FakeServer) -> None:
    server.add_stream(["never"])
    model = ModelConfig(api_base_url=BASE_URL, api_key=API_KEY, model="m")
    runtime = RuntimeConfig(enable_logging=False)
    with SyncChatAgent(model, runtime, http_transport=server.transport()) as agent:
        with pytest.raises(ConfigurationError, match="display_stream"):
            list(agent.chat_stream("hi", display_stream="no"))  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="output_mode"):
            agent.chat("hi", output_mode="yaml")  # type: ignore[arg-type]
    assert server.requests == []


# ------------------------------------------------------------------ lifecycle


def _unopened(server: FakeServer) -> ChatAgent:
    model = ModelConfig(api_base_url=BASE_URL, api_key=API_KEY, model="m")
    return ChatAgent(model, RuntimeConfig(enable_logging=False), http_transport=server.transport())


async def test_an_agent_used_without_async_with_opens_on_first_use(server: FakeServer) -> None:
    server.add_completion("first").add_stream(text_chunks(["str", "eam"]))
    agent = _unopened(server)
    try:
        assert await agent.chat("hi") == "first"
        assert [p async for p in agent.chat_stream("more", display_stream=False)] == ["str", "eam"]
    finally:
        await agent.aclose()
    assert len(server.requests) == 2


async def test_a_call_after_aclose_is_a_configuration_error(server: FakeServer) -> None:
    server.add_completion("one").add_completion("two")
    agent = _unopened(server)
    async with agent:
        assert await agent.chat("hi") == "one"
    with pytest.raises(ConfigurationError, match="this agent was closed"):
        await agent.chat("again")
    never_opened = _unopened(server)
    await never_opened.aclose()
    with pytest.raises(ConfigurationError, match="this agent was closed"):
        await never_opened.chat("again")
    assert len(server.requests) == 1
    async with agent:  # ``async with`` opens it again
        assert await agent.chat("reopened") == "two"
