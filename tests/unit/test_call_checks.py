"""Bad arguments found by the hostile try-out: each a ConfigurationError naming what was wrong."""

from __future__ import annotations

from typing import Any

import pytest

from openai_chatapi import ChatAgent, ConfigurationError, tool

from ..conftest import AgentFactory


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


@pytest.mark.parametrize("tools", [get_weather, 5, "get_weather"])
async def test_tools_given_as_one_function_or_a_non_list_are_refused(
    make_agent: AgentFactory, tools: Any
) -> None:
    agent = await make_agent()
    with pytest.raises(ConfigurationError, match=r"tools must be a list") as info:
        await agent.chat("hi", tools=tools)
    assert info.value.details["field"] == "tools"
    with pytest.raises(ConfigurationError, match=r"tools must be a list"):
        async for _ in agent.chat_stream("hi", display_stream=False, tools=tools):
            pass
    assert agent.history == ()


@pytest.mark.parametrize(
    "call",
    [
        lambda agent: agent.replace_history(None),
        lambda agent: agent.replace_history(5),
        lambda agent: agent.load_history(5),
        lambda agent: agent.save_history(None),
        lambda agent: agent.load_history(""),
        lambda agent: agent.clear_history("no"),
    ],
    ids=["replace-None", "replace-int", "load-int", "save-None", "load-empty", "clear-str"],
)
async def test_history_methods_refuse_wrong_types(agent: ChatAgent, call: Any) -> None:
    agent.set_system_prompt("be brief")
    with pytest.raises(ConfigurationError):
        call(agent)
    assert [m.role for m in agent.history] == ["system"]  # nothing changed
