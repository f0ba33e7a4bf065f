"""The agent's tool loop end to end: the real ChatAgent, its tools and a scripted fake server.

Concurrency is proven with events and barriers, never with timing; ``SAFETY`` only stops a
broken test from hanging and is never asserted on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import Sequence
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from openai_chatapi import (
    ChatAgent,
    ChatMessage,
    ConfigurationError,
    ContentDeltaEvent,
    FinishEvent,
    InternalServerError,
    StreamEvent,
    Tool,
    ToolCall,
    ToolCallDeltaEvent,
    ToolExecutionError,
    ToolResult,
    ToolResultEvent,
    tool,
)

from ..conftest import AgentFactory
from ..support.fakes import (
    FakeServer,
    Reply,
    calls_reply,
    chunk,
    text_chunks,
    tool_call,
)
from ..support.waits import rendezvous, thread_meeting, until_cancelled

SAFETY = 10  # seconds


# --------------------------------------------------------------------------- tools


class Weather(BaseModel):
    city: str
    celsius: float


@dataclasses.dataclass
class Point:
    lat: float
    lon: float


@tool
async def get_weather(city: str, units: Literal["celsius", "fahrenheit"] = "celsius") -> Weather:
    """The current weather in a city.

    Args:
        city: The city name.
        units: Temperature units.
    """
    return Weather(city=city, celsius=21.0)


@tool
def locate(place: str) -> Point:
    """Coordinates of a place (a sync tool: runs in a worker thread)."""
    return Point(lat=59.9, lon=10.7)


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def facts(topic: str) -> dict[str, Any]:
    """Facts as a plain mapping."""
    return {"topic": topic, "tags": ["a", "b"], "count": 2, "missing": None}


@tool
def nothing() -> None:
    """Returns nothing."""


@tool
def shout(text: str) -> str:
    """A string result is sent as it is."""
    return text.upper()


# --------------------------------------------------------------------------- helpers


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m["role"] == "tool"]


def assert_consistent(history: Sequence[ChatMessage]) -> None:
    """Every assistant tool_calls message is followed by exactly one answer per call."""
    messages = list(history)
    i = 0
    while i < len(messages):
        message = messages[i]
        assert message.role != "tool", f"tool message without its call at {i}"
        i += 1
        if message.role == "assistant" and message.tool_calls:
            ids = [call.id for call in message.tool_calls]
            answers = messages[i : i + len(ids)]
            assert [m.role for m in answers] == ["tool"] * len(ids)
            assert [m.tool_call_id for m in answers] == ids
            i += len(ids)


async def agent_with_history(make_agent: AgentFactory, server: FakeServer, **kw: Any) -> ChatAgent:
    """An agent that already holds one finished exchange, so "unchanged" means something."""
    agent: ChatAgent = await make_agent(**kw)
    agent.set_system_prompt("You are helpful.")
    server.add_completion("Hi there.")
    await agent.chat("Hello")
    return agent


# --------------------------------------------------------------------------- the loop


async def test_one_call_round_trip(agent: ChatAgent, server: FakeServer) -> None:
    agent.register_tool(get_weather)
    server.add_json(calls_reply(tool_call("call_1", "get_weather", {"city": "Oslo"})))
    server.add_completion("It is 21 °C in Oslo.")

    assert await agent.chat("Weather in Oslo?") == "It is 21 °C in Oslo."

    first, second = server.bodies
    assert first["tools"] == [get_weather.tool.to_wire()]
    assert second["messages"] == [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": "",  # never null: llama.cpp rejects it
            "tool_calls": [tool_call("call_1", "get_weather", {"city": "Oslo"})],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"city": "Oslo", "celsius": 21.0}'},
    ]
    assert second["tools"] == first["tools"]  # the model may call again

    history = agent.history
    assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[1].tool_calls == [
        ToolCall.model_validate(tool_call("call_1", "get_weather", {"city": "Oslo"}))
    ]
    assert history[2].tool_call_id == "call_1"
    assert history[3].content == "It is 21 °C in Oslo."
    assert_consistent(history)
    stats = agent.get_stats()
    assert (stats["requests"], stats["successes"], stats["tool_calls"]) == (2, 2, 1)


async def test_results_are_serialised_to_json(agent: ChatAgent, server: FakeServer) -> None:
    for fn in (get_weather, locate, add, facts, nothing, shout):
        agent.register_tool(fn)
    server.add_json(
        calls_reply(
            tool_call("c_model", "get_weather", {"city": "Oslo", "units": "celsius"}),
            tool_call("c_dataclass", "locate", {"place": "Oslo"}),
            tool_call("c_int", "add", {"a": 2, "b": 3}),
            tool_call("c_dict", "facts", {"topic": "fjords"}),
            tool_call("c_none", "nothing", {}),
            tool_call("c_str", "shout", {"text": "hi"}),
            text="Let me look.",
        )
    )
    server.add_completion("Done.")

    assert await agent.chat("Everything about Oslo") == "Done."

    body = server.bodies[1]
    assert body["messages"][1]["content"] == "Let me look."
    answers = {m["tool_call_id"]: m["content"] for m in tool_messages(body)}
    assert list(answers) == ["c_model", "c_dataclass", "c_int", "c_dict", "c_none", "c_str"]
    assert json.loads(answers["c_model"]) == {"city": "Oslo", "celsius": 21.0}
    assert json.loads(answers["c_dataclass"]) == {"lat": 59.9, "lon": 10.7}
    assert answers["c_int"] == "5"
    assert json.loads(answers["c_dict"]) == {
        "topic": "fjords",
        "tags": ["a", "b"],
        "count": 2,
        "missing": None,
    }
    assert answers["c_none"] == "null"
    assert answers["c_str"] == "HI"  # strings are not JSON-quoted
    assert_consistent(agent.history)
    assert agent.get_stats()["tool_calls"] == 6


async def test_calls_of_one_reply_run_concurrently(agent: ChatAgent, server: FakeServer) -> None:
    ping, pong = rendezvous("ping", "pong")  # each returns only while the other runs
    agent.register_tool(ping)
    agent.register_tool(pong)
    server.add_json(calls_reply(tool_call("a", "ping", {}), tool_call("b", "pong", {})))
    server.add_completion("both answered")

    assert await asyncio.wait_for(agent.chat("go"), SAFETY) == "both answered"
    assert [(m["tool_call_id"], m["content"]) for m in tool_messages(server.bodies[1])] == [
        ("a", "ping"),
        ("b", "pong"),
    ]


async def test_sync_handlers_run_concurrently_in_worker_threads(
    agent: ChatAgent, server: FakeServer
) -> None:
    where = thread_meeting(SAFETY)  # breaks unless both calls run in threads together
    loop_thread = threading.get_ident()

    agent.register_tool(where)
    server.add_json(
        calls_reply(
            tool_call("a", "where", {"label": "a"}), tool_call("b", "where", {"label": "b"})
        )
    )
    server.add_completion("ok")

    await agent.chat("where?")
    threads = {int(m["content"]) for m in tool_messages(server.bodies[1])}
    assert len(threads) == 2
    assert loop_thread not in threads


async def test_several_rounds(agent: ChatAgent, server: FakeServer) -> None:
    agent.register_tool(locate)
    agent.register_tool(get_weather)
    server.add_json(calls_reply(tool_call("r1", "locate", {"place": "Oslo"})))
    server.add_json(calls_reply(tool_call("r2", "get_weather", {"city": "Oslo"})))
    server.add_completion("Sunny at 59.9N.")

    assert await agent.chat("Weather where I am?") == "Sunny at 59.9N."
    assert len(server.requests) == 3
    assert [m["role"] for m in server.bodies[2]["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
    ]
    roles = [m.role for m in agent.history]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert_consistent(agent.history)
    assert agent.get_stats()["tool_calls"] == 2


async def test_a_model_that_loops_forever_hits_the_round_limit(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    agent = await agent_with_history(make_agent, server, max_tool_rounds=2)
    agent.register_tool(add)
    before = agent.history
    server.default = Reply(json_body=calls_reply(tool_call("again", "add", {"a": 1, "b": 1})))

    with pytest.raises(ToolExecutionError) as info:
        await agent.chat("add forever")

    assert info.value.details["tool"] == "add"
    assert info.value.details["rounds"] == 2
    assert "max_tool_rounds" in info.value.details["error"]
    assert len(server.requests) == 1 + 3  # the earlier exchange, then two rounds and the third ask
    assert agent.history == before


# --------------------------------------------------------------------------- manual execution


async def test_manual_execution_keeps_history_until_answered(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    agent = await agent_with_history(make_agent, server)
    ran: list[str] = []

    @tool
    def lookup(q: str) -> str:
        ran.append(q)
        return "never used"

    agent.register_tool(lookup)
    before = agent.history
    server.add_json(
        calls_reply(
            tool_call("m1", "lookup", {"q": "cats"}),
            tool_call("m2", "lookup", {"q": "dogs"}),
            text="Looking both up.",
        )
    )
    text = await agent.chat("cats and dogs?", auto_execute_tools=False)

    assert text == "Looking both up."
    assert ran == []
    pending = agent.pending_tool_calls
    assert all(isinstance(call, ToolCall) for call in pending)
    assert [(c.id, c.function.name if c.function else None) for c in pending] == [
        ("m1", "lookup"),
        ("m2", "lookup"),
    ]
    assert pending[1].function is not None
    assert json.loads(pending[1].function.arguments or "") == {"q": "dogs"}
    assert agent.history == before  # nothing committed while calls are unanswered

    # A failing follow-up keeps the calls pending and the history as it was.
    server.add_json({"error": {"message": "overloaded"}}, status=503)
    with pytest.raises(InternalServerError):
        await agent.submit_tool_results({"m1": {"hits": 3}, "m2": ["rex"]})
    assert agent.history == before
    assert [c.id for c in agent.pending_tool_calls] == ["m1", "m2"]

    server.add_completion("3 cats, 1 dog.")
    results = [
        ToolResult(tool_call_id="m2", name="lookup", arguments={}, content='["rex"]'),
        ToolResult(tool_call_id="m1", name="lookup", arguments={}, content='{"hits": 3}'),
    ]
    assert await agent.submit_tool_results(results) == "3 cats, 1 dog."
    sent = server.last_body["messages"]
    assert sent[-3]["tool_calls"] == [
        tool_call("m1", "lookup", {"q": "cats"}),
        tool_call("m2", "lookup", {"q": "dogs"}),
    ]
    # Answers follow the calls' order whatever order they were given in.
    assert [(m["tool_call_id"], m["content"]) for m in sent[-2:]] == [
        ("m1", '{"hits": 3}'),
        ("m2", '["rex"]'),
    ]
    assert agent.pending_tool_calls == []
    assert [m.role for m in agent.history[len(before) :]] == [
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
    ]
    assert_consistent(agent.history)
    assert ran == []


async def test_submitted_results_continue_the_automatic_loop(
    agent: ChatAgent, server: FakeServer
) -> None:
    agent.register_tool(add)
    server.add_json(calls_reply(tool_call("m1", "add", {"a": 1, "b": 2})))
    assert await agent.chat("1+2, then double", auto_execute_tools=False) == ""
    # The follow-up asks for another call: submit_tool_results runs it by default.
    server.add_json(calls_reply(tool_call("m2", "add", {"a": 3, "b": 3})))
    server.add_completion("6")
    assert await agent.submit_tool_results({"m1": 3}) == "6"
    assert tool_messages(server.last_body)[-1] == {
        "role": "tool",
        "tool_call_id": "m2",
        "content": "6",
    }
    assert_consistent(agent.history)
    assert len(agent.history) == 6


@pytest.mark.parametrize("entry", ["chat", "chat_stream", "chat_stream_events"])
async def test_a_new_turn_while_calls_are_pending_is_refused(
    agent: ChatAgent, server: FakeServer, entry: str
) -> None:
    agent.register_tool(add)
    server.add_json(calls_reply(tool_call("m1", "add", {"a": 1, "b": 2})))
    await agent.chat("add", auto_execute_tools=False)
    with pytest.raises(ConfigurationError, match="submit_tool_results") as info:
        if entry == "chat":
            await agent.chat("Also, say hi.")
        else:
            stream = getattr(agent, entry)("Also, say hi.")
            async for _ in stream:
                pass
    assert info.value.details["pending"] == 1
    # Nothing changed: no request, the calls still pending, and they can still be answered.
    assert len(server.requests) == 1
    assert [c.id for c in agent.pending_tool_calls] == ["m1"]
    assert agent.history == ()
    server.add_completion("3")
    assert await agent.submit_tool_results({"m1": 3}) == "3"
    assert [m.role for m in agent.history] == ["user", "assistant", "tool", "assistant"]


async def test_clear_history_ends_the_pending_state(agent: ChatAgent, server: FakeServer) -> None:
    agent.register_tool(add)
    server.add_json(calls_reply(tool_call("m1", "add", {"a": 1, "b": 2})))
    await agent.chat("add", auto_execute_tools=False)
    agent.clear_history()
    assert agent.pending_tool_calls == []
    server.add_completion("fine")
    assert await agent.chat("never mind") == "fine"
    assert [m["role"] for m in server.last_body["messages"]] == ["user"]
    with pytest.raises(ConfigurationError):
        await agent.submit_tool_results({"m1": 3})


async def test_results_as_plain_dicts_are_accepted(agent: ChatAgent, server: FakeServer) -> None:
    agent.register_tool(add)
    server.add_json(
        calls_reply(tool_call("m1", "add", {"a": 1, "b": 2}), tool_call("m2", "add", {"a": 2}))
    )
    await agent.chat("add twice", auto_execute_tools=False)
    server.add_completion("3 and 4")
    reply = await agent.submit_tool_results(
        [{"tool_call_id": "m2", "content": {"sum": 4}}, {"tool_call_id": "m1", "content": "3"}]
    )
    assert reply == "3 and 4"
    assert [(m["tool_call_id"], m["content"]) for m in tool_messages(server.last_body)] == [
        ("m1", "3"),
        ("m2", '{"sum": 4}'),
    ]


@pytest.mark.parametrize(
    "results",
    [
        [{"content": "3"}],
        [{"tool_call_id": "m1"}],
        [("m1", "3")],
        ["m1"],
        "m1",
        3,
    ],
)
async def test_malformed_results_are_a_configuration_error(
    agent: ChatAgent, server: FakeServer, results: Any
) -> None:
    agent.register_tool(add)
    server.add_json(calls_reply(tool_call("m1", "add", {"a": 1, "b": 2})))
    await agent.chat("add", auto_execute_tools=False)
    with pytest.raises(ConfigurationError, match="result"):
        await agent.submit_tool_results(results)
    assert [c.id for c in agent.pending_tool_calls] == ["m1"]
    assert len(server.requests) == 1


async def test_an_unserialisable_submitted_result_is_a_configuration_error(
    agent: ChatAgent, server: FakeServer
) -> None:
    agent.register_tool(add)
    server.add_json(calls_reply(tool_call("m1", "add", {"a": 1, "b": 2})))
    await agent.chat("add", auto_execute_tools=False)
    with pytest.raises(ConfigurationError) as info:
        await agent.submit_tool_results({"m1": object()})
    assert info.value.details["tool_call_id"] == "m1"
    assert [c.id for c in agent.pending_tool_calls] == ["m1"]
    assert len(server.requests) == 1
    assert agent.history == ()


# --------------------------------------------------------------------------- declaring tools


async def test_per_call_tools(agent: ChatAgent, server: FakeServer) -> None:
    agent.register_tool(get_weather)
    server.add_json(calls_reply(tool_call("p1", "add", {"a": 2, "b": 2})))
    server.add_completion("4")
    server.add_completion("plain")

    assert await agent.chat("2+2", tools=[add]) == "4"
    assert await agent.chat("no tools this time") == "plain"

    names = [[t["function"]["name"] for t in body["tools"]] for body in server.bodies[:2]]
    assert names == [["get_weather", "add"], ["get_weather", "add"]]
    assert tool_messages(server.bodies[1]) == [
        {"role": "tool", "tool_call_id": "p1", "content": "4"}
    ]
    assert [t["function"]["name"] for t in server.bodies[2]["tools"]] == ["get_weather"]
    assert agent.tools.names == ["get_weather"]  # per-call tools are not registered
    with pytest.raises(ConfigurationError):
        await agent.chat("x", tools=[Tool(name="bare")])  # a Tool needs register_tool + handler


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("add", {"type": "function", "function": {"name": "add"}}),
        (add, {"type": "function", "function": {"name": "add"}}),
        ("required", "required"),
        ("auto", "auto"),
    ],
    ids=["name", "decorated", "required", "auto"],
)
async def test_tool_choice(agent: ChatAgent, server: FakeServer, choice: Any, wire: Any) -> None:
    agent.register_tool(add)
    server.add_json(calls_reply(tool_call("t1", "add", {"a": 1, "b": 1})))
    server.add_completion("2")
    assert await agent.chat("1+1", tool_choice=choice, parallel_tool_calls=False) == "2"
    first, second = server.bodies
    assert first["tool_choice"] == wire
    assert first["parallel_tool_calls"] is False
    assert second["parallel_tool_calls"] is False
    if wire == "auto":
        assert second["tool_choice"] == "auto"
    else:  # a forced tool is not forced again, or the model could never answer
        assert "tool_choice" not in second


async def test_register_a_hand_made_tool_and_a_decorated_function(
    agent: ChatAgent, server: FakeServer
) -> None:
    seen: list[dict[str, Any]] = []

    def search_handler(query: str, limit: int = 5) -> list[str]:
        seen.append({"query": query, "limit": limit})
        return [f"{query} #{i}" for i in range(limit)]

    search = Tool(
        name="search_docs",
        description="Search the documentation.",
        parameters={
            "type": "object",
            "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
            "required": ["query"],
        },
    )
    agent.register_tool(search, search_handler)
    agent.register_tool(add)
    with pytest.raises(ConfigurationError):
        agent.register_tool(Tool(name="no_handler"))

    server.add_json(
        calls_reply(
            tool_call("h1", "search_docs", {"query": "retry", "limit": 2}),
            tool_call("h2", "add", {"a": 40, "b": 2}),
        )
    )
    server.add_completion("found")
    assert await agent.chat("search") == "found"

    assert server.bodies[0]["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "search_docs",
                "description": "Search the documentation.",
                "parameters": search.parameters,
            },
        },
        add.tool.to_wire(),
    ]
    assert seen == [{"query": "retry", "limit": 2}]
    assert [m["content"] for m in tool_messages(server.bodies[1])] == [
        '["retry #0", "retry #1"]',
        "42",
    ]


async def test_clear_tools(agent: ChatAgent, server: FakeServer) -> None:
    agent.register_tool(add)
    server.add_completion("a").add_completion("b")
    await agent.chat("with")
    agent.clear_tools()
    await agent.chat("without")
    assert "tools" in server.bodies[0]
    assert "tools" not in server.bodies[1]
    assert "tool_choice" not in server.bodies[1]
    with pytest.raises(ConfigurationError):
        await agent.chat("forced", tool_choice="required")  # nothing to choose from
    assert len(server.requests) == 2


# --------------------------------------------------------------------------- failures


@tool
def explode(reason: str) -> str:
    """Always fails."""
    raise ValueError(f"boom: {reason}")


@tool(timeout=0.001)
async def hang() -> str:
    """Never finishes within its own (tiny) timeout."""
    await asyncio.Event().wait()
    return "never"


@tool
async def hang_default() -> str:
    """Has no timeout of its own: RuntimeConfig.tool_timeout bounds it."""
    await asyncio.Event().wait()
    return "never"


@tool
def opaque() -> Any:
    """Returns something that has no JSON form."""
    return object()


@tool
async def cancelled() -> str:
    """Its work is cancelled by someone other than the caller."""
    inner = asyncio.get_running_loop().create_future()
    inner.cancel()
    return str(await inner)


FAILURES = {
    # kind: (call, text the model must be told, arguments in details)
    "invalid_json": (
        tool_call("f1", "add", '{"a": 1, "b": '),
        "not valid JSON",
        '{"a": 1, "b": ',
    ),
    "invalid_arguments": (
        tool_call("f1", "add", {"a": "one", "b": 2}),
        "invalid arguments for tool 'add': a:",
        {"a": "one", "b": 2},
    ),
    "unknown_tool": (
        tool_call("f1", "subtract", {"a": 1}),
        "unknown tool 'subtract'; available tools: hang, hang_default, add,",
        {"a": 1},
    ),
    "handler_error": (
        tool_call("f1", "explode", {"reason": "disk"}),
        "tool 'explode' failed: ValueError: boom: disk",
        {"reason": "disk"},
    ),
    "timeout": (
        tool_call("f1", "hang", {}),
        "tool 'hang' did not finish within 0.001 seconds",
        {},
    ),
    "runtime_timeout": (
        tool_call("f1", "hang_default", {}),
        "tool 'hang_default' did not finish within 0.001 seconds",
        {},
    ),
    "unserializable_result": (
        tool_call("f1", "opaque", {}),
        "tool 'opaque' returned a value that cannot be sent as JSON",
        {},
    ),
    "cancelled": (
        tool_call("f1", "cancelled", {}),
        "tool 'cancelled' was cancelled",
        {},
    ),
}


async def failing_agent(make_agent: AgentFactory, server: FakeServer, **kw: Any) -> ChatAgent:
    agent = await agent_with_history(make_agent, server, tool_timeout=0.001, **kw)
    agent.register_tool(hang)
    agent.register_tool(hang_default)
    for fn in (add, explode, opaque, cancelled):  # the tiny default is for the hanging tools only
        agent.register_tool(fn.with_timeout(SAFETY))
    return agent


@pytest.mark.parametrize("kind", list(FAILURES))
async def test_failure_is_fed_back_and_the_model_corrects_itself(
    make_agent: AgentFactory, server: FakeServer, kind: str
) -> None:
    bad_call, error_text, _ = FAILURES[kind]
    agent = await failing_agent(make_agent, server)
    before = len(agent.history)
    server.add_json(calls_reply(bad_call))
    server.add_json(calls_reply(tool_call("f2", "add", {"a": 1, "b": 2})))
    server.add_completion("1 + 2 = 3")

    assert await asyncio.wait_for(agent.chat("compute"), SAFETY) == "1 + 2 = 3"

    [feedback] = tool_messages(server.bodies[2])
    assert feedback["tool_call_id"] == "f1"
    assert error_text in json.loads(feedback["content"])["error"]
    assert tool_messages(server.bodies[3])[-1] == {
        "role": "tool",
        "tool_call_id": "f2",
        "content": "3",
    }
    turn = agent.history[before:]
    assert [m.role for m in turn] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert turn[2].content == feedback["content"]
    assert_consistent(agent.history)


@pytest.mark.parametrize("kind", list(FAILURES))
async def test_too_many_failures_end_the_call(
    make_agent: AgentFactory, server: FakeServer, kind: str
) -> None:
    bad_call, error_text, arguments = FAILURES[kind]
    agent = await failing_agent(make_agent, server, max_tool_failures=1)
    before = agent.history
    server.default = Reply(json_body=calls_reply(bad_call))

    with pytest.raises(ToolExecutionError) as info:
        await asyncio.wait_for(agent.chat("compute"), SAFETY)

    details = info.value.details
    assert error_text in details["error"]
    assert details["tool"] == bad_call["function"]["name"]
    assert details["arguments"] == arguments
    assert details["failures"] == 2
    assert len(server.requests) == 1 + 2  # the first failure was fed back once
    assert agent.history == before


@pytest.mark.parametrize("kind", list(FAILURES))
async def test_raise_policy(make_agent: AgentFactory, server: FakeServer, kind: str) -> None:
    bad_call, error_text, arguments = FAILURES[kind]
    agent = await failing_agent(make_agent, server, tool_errors="raise")
    before = agent.history
    server.add_json(calls_reply(bad_call))

    with pytest.raises(ToolExecutionError) as info:
        await asyncio.wait_for(agent.chat("compute"), SAFETY)

    details = info.value.details
    assert details["tool"] == bad_call["function"]["name"]
    assert error_text in details["error"]
    assert details["arguments"] == arguments
    assert details["tool_call_id"] == "f1"
    assert len(server.requests) == 2  # nothing is sent after the failure
    assert agent.history == before
    # The agent stays usable.
    server.add_completion("fine")
    assert await agent.chat("next") == "fine"
    assert [m["role"] for m in server.last_body["messages"]][-1:] == ["user"]
    assert_consistent(agent.history)


async def test_a_sync_handler_past_its_timeout_is_abandoned(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    release = threading.Event()

    @tool(timeout=0.001)
    def stuck() -> str:
        release.wait(SAFETY)  # a thread cannot be interrupted: it is released below
        return "late"

    agent = await make_agent()
    agent.register_tool(stuck)
    server.add_json(calls_reply(tool_call("st", "stuck", {})))
    server.add_completion("gave up")
    try:
        assert await asyncio.wait_for(agent.chat("try"), SAFETY) == "gave up"
        [answer] = tool_messages(server.bodies[1])
        assert "did not finish within" in json.loads(answer["content"])["error"]
    finally:
        release.set()
    assert [m.content for m in agent.history if m.role == "tool"] == [answer["content"]]


async def test_one_failing_call_among_several_is_fed_back_alone(
    agent: ChatAgent, server: FakeServer
) -> None:
    agent.register_tool(add)
    agent.register_tool(explode)
    server.add_json(
        calls_reply(
            tool_call("ok", "add", {"a": 1, "b": 1}),
            tool_call("bad", "explode", {"reason": "x"}),
        )
    )
    server.add_completion("partial")
    assert await agent.chat("both") == "partial"
    answers = tool_messages(server.bodies[1])
    assert answers[0] == {"role": "tool", "tool_call_id": "ok", "content": "2"}
    assert "boom: x" in json.loads(answers[1]["content"])["error"]
    assert_consistent(agent.history)


@pytest.mark.parametrize("count", [1, 3])
async def test_cancelling_the_caller_during_tool_execution(
    make_agent: AgentFactory, server: FakeServer, count: int
) -> None:
    agent = await agent_with_history(make_agent, server)
    before = agent.history
    started = [asyncio.Event() for _ in range(count)]
    cancelled_handlers: list[int] = []

    @tool
    async def slow(index: int) -> str:
        await until_cancelled(started[index].set, lambda: cancelled_handlers.append(index))
        return "never"

    agent.register_tool(slow)
    server.add_json(calls_reply(*(tool_call(f"s{i}", "slow", {"index": i}) for i in range(count))))
    task = asyncio.ensure_future(agent.chat("slow things"))
    for event in started:
        await asyncio.wait_for(event.wait(), SAFETY)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert sorted(cancelled_handlers) == list(range(count))
    assert agent.history == before
    server.add_completion("still here")
    assert await agent.chat("hello again") == "still here"
    assert "tool" not in [m["role"] for m in server.last_body["messages"]]


# --------------------------------------------------------------------------- streaming


def tool_call_chunks() -> list[dict[str, Any]]:
    """Two parallel calls whose argument fragments arrive interleaved by index."""

    def delta(index: int, **function: Any) -> dict[str, Any]:
        return {"tool_calls": [{"index": index, "function": function}]}

    start = [
        {"index": 0, "id": "s_a", "type": "function", "function": {"name": "get_weather"}},
    ]
    return [
        chunk({"role": "assistant", "content": None, "tool_calls": start}),
        chunk(
            {
                "tool_calls": [
                    {"index": 1, "id": "s_b", "type": "function", "function": {"name": "add"}}
                ]
            }
        ),
        chunk(delta(0, arguments='{"ci')),
        chunk(delta(1, arguments='{"a": 2,')),
        chunk(delta(0, arguments='ty": "Os')),
        chunk(delta(1, arguments=' "b": 3}')),
        chunk(delta(0, arguments='lo"}')),
        chunk({}, finish_reason="tool_calls"),
    ]


async def collect(agent: ChatAgent, text: str, **kwargs: Any) -> list[StreamEvent]:
    return [event async for event in agent.chat_stream_events(text, **kwargs)]


async def test_streamed_tool_calls_run_and_streaming_continues(
    agent: ChatAgent, server: FakeServer
) -> None:
    agent.register_tool(get_weather)
    agent.register_tool(add)
    server.add_stream(tool_call_chunks(), split=9)  # many small network reads
    server.add_stream(text_chunks(["It is ", "21 °C; ", "2+3=5."]))

    events = await asyncio.wait_for(collect(agent, "weather and sum"), SAFETY)

    kinds = [type(e).__name__ for e in events if not isinstance(e, FinishEvent)]
    first_result = kinds.index("ToolResultEvent")
    assert set(kinds[:first_result]) == {"ToolCallDeltaEvent"}
    assert kinds[first_result : first_result + 2] == ["ToolResultEvent", "ToolResultEvent"]
    assert set(kinds[first_result + 2 :]) <= {"ContentDeltaEvent", "UsageEvent"}

    deltas = [e for e in events if isinstance(e, ToolCallDeltaEvent)]
    for index, expected in ((0, {"city": "Oslo"}), (1, {"a": 2, "b": 3})):
        fragments = [d.arguments for d in deltas if d.index == index]
        assert len([f for f in fragments if f]) > 1  # really fragmented
        assert json.loads("".join(fragments)) == expected

    results = [e for e in events if isinstance(e, ToolResultEvent)]
    assert [(r.tool_call_id, r.name, r.ok) for r in results] == [
        ("s_a", "get_weather", True),
        ("s_b", "add", True),
    ]
    assert [r.content for r in results] == ['{"city": "Oslo", "celsius": 21.0}', "5"]
    text = "".join(e.text for e in events if isinstance(e, ContentDeltaEvent))
    assert text == "It is 21 °C; 2+3=5."
    finishes = [e.finish_reason for e in events if isinstance(e, FinishEvent)]
    assert finishes == ["tool_calls", "stop"]

    second = server.bodies[1]
    assert second["stream"] is True
    assert second["messages"][1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            tool_call("s_a", "get_weather", {"city": "Oslo"}),
            tool_call("s_b", "add", {"a": 2, "b": 3}),
        ],
    }
    assert [m["tool_call_id"] for m in tool_messages(second)] == ["s_a", "s_b"]
    history = agent.history
    assert [m.role for m in history] == ["user", "assistant", "tool", "tool", "assistant"]
    assert history[-1].content == "It is 21 °C; 2+3=5."
    assert_consistent(history)
    assert agent.get_stats()["tool_calls"] == 2


async def test_chat_stream_yields_only_the_follow_up_text(
    agent: ChatAgent, server: FakeServer
) -> None:
    agent.register_tool(get_weather)
    agent.register_tool(add)
    server.add_stream(tool_call_chunks())
    server.add_stream(text_chunks(["Sunny", "."]))
    pieces = [p async for p in agent.chat_stream("weather", display_stream=False)]
    assert pieces == ["Sunny", "."]
    assert_consistent(agent.history)
    assert len(agent.history) == 5


async def test_streamed_tool_failure_with_raise_policy_leaves_history(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    agent = await agent_with_history(make_agent, server, tool_errors="raise")
    agent.register_tool(get_weather)
    before = agent.history
    server.add_stream(tool_call_chunks())  # calls "add", which this agent does not know
    seen: list[StreamEvent] = []
    with pytest.raises(ToolExecutionError) as info:
        async for event in agent.chat_stream_events("weather and sum"):
            seen.append(event)
    assert info.value.details["tool"] == "add"
    assert any(isinstance(e, ToolCallDeltaEvent) for e in seen)
    assert agent.history == before


async def test_streamed_tool_failure_is_reported_and_fed_back(
    agent: ChatAgent, server: FakeServer
) -> None:
    agent.register_tool(get_weather)
    server.add_stream(tool_call_chunks())  # calls "add", which this agent does not know
    server.add_stream(text_chunks(["Only the weather."]))
    events = await collect(agent, "weather and sum")
    results = [e for e in events if isinstance(e, ToolResultEvent)]
    assert [(r.name, r.ok) for r in results] == [("get_weather", True), ("add", False)]
    assert results[1].error is not None and "unknown tool 'add'" in results[1].error
    assert json.loads(tool_messages(server.bodies[1])[1]["content"]) == {"error": results[1].error}
    assert_consistent(agent.history)


async def test_cancelling_a_stream_during_tool_execution(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    agent = await agent_with_history(make_agent, server)
    before = agent.history
    started = asyncio.Event()
    cancelled_handlers: list[str] = []

    @tool
    async def get_weather(city: str) -> str:  # same name as the streamed call
        await until_cancelled(started.set, lambda: cancelled_handlers.append(city))
        return "never"

    agent.register_tool(get_weather)
    agent.register_tool(add)
    server.add_stream(tool_call_chunks())
    task = asyncio.ensure_future(collect(agent, "weather and sum"))
    await asyncio.wait_for(started.wait(), SAFETY)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled_handlers == ["Oslo"]
    assert agent.history == before
    assert server.closed_streams == server.opened_streams  # the connection was released


async def test_streamed_calls_without_auto_execution_are_pending(
    agent: ChatAgent, server: FakeServer
) -> None:
    agent.register_tool(get_weather)
    agent.register_tool(add)
    server.add_stream(tool_call_chunks())
    events = await collect(agent, "weather", auto_execute_tools=False)
    assert not any(isinstance(e, ToolResultEvent) for e in events)
    assert [c.id for c in agent.pending_tool_calls] == ["s_a", "s_b"]
    assert agent.history == ()
    server.add_completion("answered")
    assert await agent.submit_tool_results({"s_a": "sunny", "s_b": 5}) == "answered"
    assert_consistent(agent.history)
    assert len(agent.history) == 5


# --------------------------------------------------------------------------- the example


async def test_example_structured_output_falls_back_to_json_mode(
    agent: ChatAgent, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from openai_chatapi.examples import example_2_tools as example

    # The local llama.cpp server answers a json_schema response_format with a 500.
    server.add_json({"error": {"message": "json_schema unsupported"}}, status=500)
    plan = {"title": "France", "stops": [{"city": "Paris", "nights": 2}]}
    server.add_completion(json.dumps(plan))
    pieces = [json.dumps(plan)[i : i + 9] for i in range(0, len(json.dumps(plan)), 9)]
    server.add_stream(text_chunks(pieces))

    await example.structured_output(agent)

    assert server.bodies[0]["response_format"]["json_schema"]["name"] == "TripPlan"
    assert server.bodies[1]["response_format"]["type"] == "json_object"
    assert server.bodies[2]["response_format"]["type"] == "json_object"  # remembered
    out = capsys.readouterr().out
    assert '"city": "Paris"' in out
    assert "final: 'France' ['Paris']" in out and "so far:" in out
    assert agent.history == ()  # add_to_history=False


async def test_stats_count_tool_rounds_calls_successes_and_failures(
    server: FakeServer, make_agent: Any
) -> None:
    @tool
    def double(x: int) -> int:
        """Double a number."""
        return 2 * x

    server.add_completion(
        None,
        finish_reason="tool_calls",
        tool_calls=[tool_call("c1", "double", {"x": 2}), tool_call("c2", "double", {"x": "y"})],
    )
    server.add_completion(
        None, finish_reason="tool_calls", tool_calls=[tool_call("c3", "double", {"x": 5})]
    )
    server.add_completion("done")
    agent = await make_agent()
    agent.register_tool(double)
    assert await agent.chat("go") == "done"
    stats = agent.get_stats()
    assert (stats["tool_rounds"], stats["tool_calls"]) == (2, 3)
    assert (stats["tool_successes"], stats["tool_failures"]) == (2, 1)
    agent.reset_stats()
    assert agent.get_stats()["tool_rounds"] == 0
