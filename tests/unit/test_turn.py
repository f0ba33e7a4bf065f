"""The turn runner on its own: preparation resolved once, the model <-> tool loop, the commit
(model exchanges replaced by a scripted stand-in: no HTTP)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest

from openai_chatapi import ConfigurationError, ModelConfig, RuntimeConfig, ToolExecutionError
from openai_chatapi import _generated as gen
from openai_chatapi._conversation import Conversation
from openai_chatapi._events import FinishEvent, StreamEvent, ToolResultEvent
from openai_chatapi._messages import ChatMessage
from openai_chatapi._stats import Stats
from openai_chatapi._stream_handle import OpenStreams
from openai_chatapi._turn import TurnRunner, wire_tool_choice
from openai_chatapi.tools import Tool, tool

from ..support.fakes import completion, tool_call


class ScriptedCalls:
    """Stands in for ``ModelCalls``: answers each model turn with the next scripted body."""

    def __init__(self, *bodies: dict[str, Any]) -> None:
        self.bodies = list(bodies)
        self.sent: list[Any] = []
        self.secrets: tuple[str, ...] = ()

    async def complete(self, body: Any) -> gen.ChatCompletion:
        self.sent.append(body)
        return gen.ChatCompletion.model_validate(self.bodies.pop(0))

    async def stream(self, body: Any, choices: int = 1) -> AsyncGenerator[list[StreamEvent], None]:
        final = await self.complete(body)
        yield [FinishEvent(final.choices[0].finish_reason, final)]


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def _runner(*bodies: dict[str, Any], **runtime: Any) -> tuple[TurnRunner, ScriptedCalls]:
    calls = ScriptedCalls(*bodies)
    config = RuntimeConfig(enable_logging=False, **runtime)
    runner = TurnRunner(
        config,
        calls,
        Stats(capture_token_usage=True, capture_latency=True),
        Conversation(),
        OpenStreams(),
    )  # type: ignore[arg-type]
    return runner, calls


def _asks_add(a: int, b: int) -> dict[str, Any]:
    """A model turn that calls ``add(a, b)``."""
    calls = [tool_call("c1", "add", {"a": a, "b": b})]
    return completion(None, finish_reason="tool_calls", tool_calls=calls)


def _user(text: str = "hi") -> ChatMessage:
    return ChatMessage(role="user", content=text)


CONFIG = ModelConfig(model="m", api_key="k")


# ------------------------------------------------------------------ preparation


def test_prepare_resolves_overrides_tools_and_tool_choice_once() -> None:
    runner, _ = _runner()
    call = runner.prepare(
        CONFIG, {"tools": [add], "tool_choice": add}, {"temperature": 0.25}, keep=False
    )
    assert call.config.temperature == 0.25 and CONFIG.temperature != 0.25
    assert call.registry is not None and call.registry.names == ["add"]
    assert runner.state.tools is None  # per-call tools never enter the agent's registry
    assert call.options.tools is not None and call.options.tools[0]["function"]["name"] == "add"
    assert call.options.tool_choice == {"type": "function", "function": {"name": "add"}}
    assert call.keep is False and call.plan is None and call.ticket is None


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        (None, None),
        ("auto", "auto"),
        ("required", "required"),
        ("add", {"type": "function", "function": {"name": "add"}}),
        (
            {"type": "function", "function": {"name": "x"}},
            {"type": "function", "function": {"name": "x"}},
        ),
    ],
)
def test_tool_choice_in_wire_form(choice: Any, wire: Any) -> None:
    assert wire_tool_choice(choice) == wire


def test_prepare_refuses_bad_arguments_before_anything_is_sent() -> None:
    runner, calls = _runner()
    with pytest.raises(ConfigurationError, match="tool_choice"):
        runner.prepare(CONFIG, {"tool_choice": 3}, {})  # type: ignore[typeddict-item]
    with pytest.raises(ConfigurationError, match="response_format"):
        runner.prepare(CONFIG, {}, {}, "yaml")
    with pytest.raises(ConfigurationError, match="unknown call option"):
        runner.prepare(CONFIG, {}, {"bogus": 1})  # type: ignore[typeddict-unknown-key]
    hand_made = Tool(name="t", description="", parameters={"type": "object"})
    with pytest.raises(ConfigurationError, match="per-call tools must be functions"):
        runner.prepare(CONFIG, {"tools": [hand_made]}, {})
    assert calls.sent == []


def test_a_structured_call_carries_its_plan_mode_and_retries() -> None:
    runner, _ = _runner(output_mode="json", max_output_retries=2)
    call = runner.prepare(CONFIG, {}, {}, dict[str, int])
    assert call.plan is not None
    assert (call.plan.mode, call.plan.retries) == ("json", 2)
    assert call.options.response_format is None  # the mode sets it per attempt
    call = runner.prepare(CONFIG, {"output_mode": "tool", "max_output_retries": 0}, {}, list[int])
    assert call.plan is not None and (call.plan.mode, call.plan.retries) == ("tool", 0)
    assert runner.prepare(CONFIG, {}, {}, "json_object").options.response_format == {
        "type": "json_object"
    }


# ------------------------------------------------------------------ the loop and the commit


async def test_a_turn_runs_the_tools_then_commits_the_whole_exchange() -> None:
    runner, calls = _runner(
        _asks_add(1, 2),
        completion("3"),
    )
    runner.state.tools = None
    call = runner.prepare(CONFIG, {"tools": [add], "tool_choice": "required"}, {})
    assert await runner.reply(call, _user()) == "3"
    roles = [m.role for m in runner.state.history]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert runner.state.history[2].content == "3"
    assert len(calls.sent) == 2
    assert call.options.tool_choice is None  # a forced choice is dropped after its round
    stats = runner.stats
    assert (stats.tool_calls, stats.tool_rounds, stats.tool_successes, stats.tool_failures) == (
        1,
        1,
        1,
        0,
    )
    assert runner.state.last_response is not None


async def test_the_loop_yields_tool_results_and_leaves_the_history_alone() -> None:
    runner, _ = _runner(
        _asks_add(2, 2),
        completion("4"),
    )
    call = runner.prepare(CONFIG, {"tools": [add]}, {}, stream=True)
    turn = [_user()]
    events = [event async for batch in runner.run(turn, call) for event in batch]
    results = [e for e in events if isinstance(e, ToolResultEvent)]
    assert [(r.name, r.content, r.ok) for r in results] == [("add", "4", True)]
    assert len(turn) == 4 and runner.state.history == []


async def test_without_auto_execute_the_turn_stays_pending() -> None:
    runner, _ = _runner(
        _asks_add(1, 1),
        completion("2"),
    )
    call = runner.prepare(CONFIG, {"tools": [add]}, {}, auto_execute=False)
    assert await runner.reply(call, _user()) == ""
    assert runner.state.history == []
    assert [c.id for c in runner.state.pending_calls] == ["c1"]
    with pytest.raises(ConfigurationError, match="pending"):
        await runner.reply(runner.prepare(CONFIG, {}, {}), _user())
    answer = runner.prepare(CONFIG, {}, {})
    assert await runner.answer(answer, {"c1": 2}) == "2"
    assert [m.role for m in runner.state.history] == ["user", "assistant", "tool", "assistant"]
    assert runner.state.pending is None


async def test_a_turn_of_a_replaced_conversation_is_not_committed() -> None:
    runner, _ = _runner(completion("late"))
    call = runner.prepare(CONFIG, {}, {})
    turn = [_user()]
    async with runner.state.gate.turn(exclusive=True) as call.ticket:
        async for _ in runner.run(turn, call):
            pass
        runner.state.replace([])  # clear_history() while the turn ran
        final = gen.ChatCompletion.model_validate(completion("late"))
        assert runner.finish(turn, call, final) == "late"
    assert runner.state.history == [] and runner.state.last_response is final


async def test_too_many_tool_rounds_fail_and_count_the_round() -> None:
    looping = _asks_add(1, 1)
    runner, _ = _runner(looping, looping, max_tool_rounds=1)
    call = runner.prepare(CONFIG, {"tools": [add]}, {})
    with pytest.raises(ToolExecutionError, match="more than 1 rounds"):
        await runner.reply(call, _user())
    assert runner.state.history == []
    assert (runner.stats.tool_calls, runner.stats.tool_rounds) == (2, 1)


def test_stats_record_methods() -> None:
    stats = Stats(capture_token_usage=True, capture_latency=True)
    stats.record_tool_calls(3)
    stats.record_tool_round(succeeded=2, failed=1)
    stats.record_tool_round(failed=1)
    stats.record_output_retry()
    figures = stats.as_dict()
    assert (figures["tool_calls"], figures["tool_rounds"]) == (3, 2)
    assert (figures["tool_successes"], figures["tool_failures"]) == (2, 2)
    assert figures["output_retries"] == 1
