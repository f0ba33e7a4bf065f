"""``SyncChatAgent``: the seed's public API from sync code, against the fake server (and the
real loopback server of ``cli_server.py`` where threads and sockets matter).

Parity tests run the same scripted exchange through ``ChatAgent`` and ``SyncChatAgent`` and
compare what comes out; the rest checks what is special to sync code: threads, a running
event loop, Ctrl-C, closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import json
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from openai_chatapi import (
    APIConnectionError,
    AuthenticationError,
    ChatAgent,
    ChatMessage,
    ConfigurationError,
    ContentDeltaEvent,
    FinishEvent,
    ModelConfig,
    ModelNotFoundError,
    RuntimeConfig,
    SyncChatAgent,
    ToolExecutionError,
    ToolResultEvent,
    UsageEvent,
    tool,
)
from openai_chatapi.sync import SyncStream, SyncStructuredStream

from ..support.cli_server import CLIFakeServer, running_server
from ..support.fakes import (
    API_KEY,
    BASE_URL,
    FakeServer,
    Reply,
    SleepRecorder,
    chunk,
    completion,
    sse,
    text_chunks,
    tool_call,
)
from ..support.waits import until_cancelled

SyncFactory = Callable[..., SyncChatAgent]
# Bounds a hang only (a broken implementation deadlocks); never part of an assertion.
SAFETY = 30.0


def _configs(kwargs: dict[str, Any]) -> tuple[ModelConfig, RuntimeConfig]:
    model = {k: kwargs.pop(k) for k in list(kwargs) if k in ModelConfig.__dataclass_fields__}
    model.setdefault("api_base_url", BASE_URL)
    model.setdefault("api_key", API_KEY)
    model.setdefault("model", "test-model")
    kwargs.setdefault("enable_logging", False)
    return ModelConfig(**model), RuntimeConfig(**kwargs)


@pytest.fixture
def make_sync(server: FakeServer, sleeps: SleepRecorder) -> Iterator[SyncFactory]:
    opened: list[SyncChatAgent] = []

    def factory(**kwargs: Any) -> SyncChatAgent:
        model, runtime = _configs(kwargs)
        agent = SyncChatAgent(model, runtime, http_transport=server.transport(), sleep=sleeps)
        opened.append(agent)
        return agent

    yield factory
    for agent in opened:
        agent.close()


@pytest.fixture
def sync_agent(make_sync: SyncFactory) -> SyncChatAgent:
    return make_sync()


def _async_twin(server: FakeServer, **kwargs: Any) -> ChatAgent:
    model, runtime = _configs(kwargs)
    return ChatAgent(model, runtime, http_transport=server.transport(), sleep=SleepRecorder())


def _roles(agent: SyncChatAgent | ChatAgent) -> list[str]:
    return [m.role for m in agent.history]


class Person(BaseModel):
    name: str
    age: int


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool
async def shout(text: str) -> str:
    """Upper-case a text."""
    await asyncio.sleep(0)
    return text.upper()


# --------------------------------------------------------------------------- the surface


def _public(cls: type) -> dict[str, Any]:
    return {name: value for name, value in vars(cls).items() if not name.startswith("_")}


def _parameters(func: Any) -> list[tuple[str, Any, Any, Any]]:
    params = list(inspect.signature(func).parameters.values())[1:]  # without self
    return [(p.name, p.kind, p.default, p.annotation) for p in params]


def test_the_sync_agent_has_every_chat_agent_member_with_the_same_parameters() -> None:
    replaced = {"aclose": "close"}
    for name, member in _public(ChatAgent).items():
        sync_name = replaced.get(name, name)
        assert hasattr(SyncChatAgent, sync_name), f"SyncChatAgent lacks {sync_name}"
        if isinstance(member, property) or name in replaced:
            continue
        if callable(member):
            sync_member = getattr(SyncChatAgent, sync_name)
            assert _parameters(sync_member) == _parameters(member), name
            assert inspect.getdoc(sync_member), f"{name} has no documentation"
    assert _parameters(SyncChatAgent.__init__) == _parameters(ChatAgent.__init__)


def test_async_methods_become_blocking_and_async_iterators_become_sync_streams() -> None:
    for name, member in _public(ChatAgent).items():
        if name == "aclose":
            continue
        sync_member = getattr(SyncChatAgent, name, None)
        if inspect.iscoroutinefunction(member):
            assert sync_member is not None and not inspect.iscoroutinefunction(sync_member)
        if inspect.isasyncgenfunction(member):
            assert sync_member is not None
            returns = str(inspect.signature(sync_member).return_annotation)
            assert returns.startswith("SyncStream["), (name, returns)


def test_it_is_exported_from_the_package() -> None:
    import openai_chatapi

    assert "SyncChatAgent" in openai_chatapi.__all__
    assert openai_chatapi.SyncChatAgent is SyncChatAgent


# --------------------------------------------------------------------------- chat and history


def test_chat_returns_the_text_and_keeps_the_history(
    sync_agent: SyncChatAgent, server: FakeServer
) -> None:
    server.add_completion("Paris.").add_completion("Rome.")
    sync_agent.set_system_prompt("Be brief.")

    assert sync_agent.chat("Capital of France?") == "Paris."
    assert sync_agent.chat("And Italy?", temperature=0.1) == "Rome."

    assert _roles(sync_agent) == ["system", "user", "assistant", "user", "assistant"]
    assert sync_agent.system_prompt == "Be brief."
    sent = server.last_body
    assert [m["content"] for m in sent["messages"]][-2:] == ["Paris.", "And Italy?"]
    assert sent["temperature"] == 0.1
    assert sync_agent.last_response is not None
    assert sync_agent.last_response.choices[0].message.content == "Rome."  # type: ignore[union-attr]


def test_history_management(sync_agent: SyncChatAgent, server: FakeServer, tmp_path: Path) -> None:
    server.add_completion("one")
    sync_agent.set_system_prompt("sys")
    sync_agent.add_message(ChatMessage(role="user", content="earlier"))
    sync_agent.chat("now", add_to_history=False)
    assert _roles(sync_agent) == ["system", "user"]

    path = tmp_path / "history.json"
    sync_agent.save_history(path)
    sync_agent.clear_history()
    assert _roles(sync_agent) == ["system"]
    sync_agent.clear_history(keep_system=False)
    assert sync_agent.history == ()
    sync_agent.load_history(path)
    assert [m.text for m in sync_agent.history] == ["sys", "earlier"]
    with pytest.raises(ConfigurationError):
        sync_agent.add_message("not a message")  # type: ignore[arg-type]


def test_structured_output(sync_agent: SyncChatAgent, server: FakeServer) -> None:
    server.add_completion(json.dumps({"name": "Ada", "age": 36}))

    person = sync_agent.chat("Who?", response_format=Person)

    assert person == Person(name="Ada", age=36)
    assert server.last_body["response_format"]["type"] == "json_schema"


def test_structured_stream_yields_partials_then_the_valid_object(
    sync_agent: SyncChatAgent, server: FakeServer
) -> None:
    server.add_stream(text_chunks(['{"name": "A', 'da", "ag', 'e": 36}']))

    items = list(sync_agent.chat_stream_structured("Who?", response_format=Person))

    assert items[-1] == Person(name="Ada", age=36)
    assert len(items) >= 2 and all(isinstance(item, Person) for item in items)
    assert items[0].name == "A" and items[0].age is None
    assert _roles(sync_agent) == ["user", "assistant"]


def test_a_structured_stream_has_the_async_streams_attributes_item_by_item(
    sync_agent: SyncChatAgent, server: FakeServer
) -> None:
    def script() -> None:
        server.add_stream(text_chunks(['{"name": "A', 'da", "age": "old"}']))
        server.add_stream(text_chunks(['{"name": "A', 'da", "ag', 'e": 36}']))

    def state(stream: Any, item: Any) -> tuple[Any, ...]:
        return (item, stream.restarted, stream.attempt, stream.done, stream.final)

    script()
    stream = sync_agent.chat_stream_structured("Who?", response_format=Person)
    assert isinstance(stream, SyncStructuredStream)
    assert (stream.attempt, stream.restarted, stream.done, stream.final) == (0, False, False, None)
    got = [state(stream, item) for item in stream]
    failed = stream.failed_attempts

    async def twin() -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
        script()
        async with _async_twin(server) as agent:
            astream = agent.chat_stream_structured("Who?", response_format=Person)
            return [state(astream, item) async for item in astream], astream.failed_attempts

    expected, expected_failed = asyncio.run(twin())
    assert got == expected
    assert failed == expected_failed and len(failed) == 1
    assert got[-1][3:] == (True, Person(name="Ada", age=36))
    assert sum(restarted for _, restarted, *_ in got) == 1


def test_leaving_a_structured_stream_early_closes_it_and_commits_nothing(
    sync_agent: SyncChatAgent, server: FakeServer
) -> None:
    server.add_stream(text_chunks(['{"name": "A', 'da", "ag', 'e": 36}']))
    for _ in sync_agent.chat_stream_structured("Who?", response_format=Person):
        break
    assert server.closed_streams == server.opened_streams == 1
    assert sync_agent.history == ()


def test_stats(sync_agent: SyncChatAgent, server: FakeServer) -> None:
    server.add_completion("a", usage=(10, 5)).add_completion("b", usage=(3, 2))
    sync_agent.chat("x")
    sync_agent.chat("y")

    stats = sync_agent.get_stats()
    assert (stats["requests"], stats["successes"], stats["total_tokens"]) == (2, 2, 20)
    sync_agent.reset_stats()
    assert sync_agent.get_stats()["requests"] == 0


def test_models(sync_agent: SyncChatAgent, server: FakeServer) -> None:
    server.add_json({"object": "list", "data": [{"id": "m1", "object": "model", "owned_by": "o"}]})
    server.add_json({"id": "m1", "object": "model", "owned_by": "o"})
    server.add_json({"error": {"message": "no such model", "code": "model_not_found"}}, 404)

    assert [m.id for m in sync_agent.list_models().data] == ["m1"]
    assert sync_agent.retrieve_model("m1").id == "m1"
    with pytest.raises(ModelNotFoundError, match="no such model"):
        sync_agent.retrieve_model("ghost")
    with pytest.raises(ConfigurationError):
        sync_agent.retrieve_model("")


# --------------------------------------------------------------------------- errors, retries


def _error_of(call: Callable[[], Any]) -> BaseException:
    with pytest.raises(BaseException) as info:
        call()
    return info.value


def test_errors_are_the_same_exceptions_with_the_same_message_and_details(
    make_sync: SyncFactory, server: FakeServer
) -> None:
    body = {"error": {"message": "bad key", "type": "invalid_request_error", "code": "no_key"}}
    server.add_json(body, 401)
    sync_error = _error_of(lambda: make_sync().chat("hi"))

    async def the_async_way() -> BaseException:
        server.add_json(body, 401)
        async with _async_twin(server) as agent:
            try:
                await agent.chat("hi")
            except BaseException as exc:
                return exc
        raise AssertionError("no error")

    async_error = asyncio.run(the_async_way())
    assert isinstance(sync_error, AuthenticationError)
    assert type(sync_error) is type(async_error)
    assert str(sync_error) == str(async_error)
    assert sync_error.details == async_error.details  # type: ignore[attr-defined]
    assert API_KEY not in str(sync_error)


def test_a_connection_failure_and_bad_input(sync_agent: SyncChatAgent, server: FakeServer) -> None:
    server.add_error(httpx.ConnectError("refused"))
    with pytest.raises(APIConnectionError, match="connection failed"):
        sync_agent.chat("hi")
    with pytest.raises(ConfigurationError, match="text must be a string"):
        sync_agent.chat(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        list(sync_agent.chat_stream(None))  # type: ignore[arg-type]
    assert sync_agent.history == ()


def test_retries(make_sync: SyncFactory, server: FakeServer, sleeps: SleepRecorder) -> None:
    server.add_json({"error": {"message": "busy"}}, 503).add_completion("finally")
    agent = make_sync(max_retries=2, retry_delay=0.5)

    assert agent.chat("hi") == "finally"
    assert len(sleeps.delays) == 1
    assert agent.get_stats()["retries"] == 1


# --------------------------------------------------------------------------- streams


def test_chat_stream_yields_pieces_shows_them_and_calls_back_in_the_callers_thread(
    make_sync: SyncFactory, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[tuple[str, int]] = []
    agent = make_sync(stream_chunk_callback=lambda p: seen.append((p, threading.get_ident())))
    server.add_stream(text_chunks(["Hel", "lo", "!"]))

    pieces = list(agent.chat_stream("hi"))

    assert pieces == ["Hel", "lo", "!"]
    assert seen == [(p, threading.get_ident()) for p in pieces]
    assert capsys.readouterr().out == "Hello!\n"
    assert [m.text for m in agent.history] == ["hi", "Hello!"]
    stats = agent.get_stats()
    assert stats["requests"] == 1 and stats["total_tokens"] == 10


def _parity_server(events_list: list[list[dict[str, Any] | str]]) -> FakeServer:
    server = FakeServer()
    for events in events_list:
        server.add_stream(events)
    return server


TOOL_THEN_TEXT: list[list[dict[str, Any] | str]] = [
    [
        chunk({"role": "assistant", "content": "Let me add. "}),
        chunk({"tool_calls": [{"index": 0, **tool_call("c1", "add", {"a": 2, "b": 3})}]}),
        chunk({}, finish_reason="tool_calls"),
    ],
    [
        chunk({"content": "It is "}),
        chunk({"content": "5", "reasoning_content": "2+3"}),
        chunk({"content": "x"}, index=1),  # a second choice: not part of the reply text
        chunk({}, finish_reason="stop"),
        chunk(usage=(7, 3), choices=False),
    ],
]


def test_streams_give_what_the_async_agent_gives() -> None:
    async def the_async_way() -> tuple[list[Any], list[str], list[str]]:
        server = _parity_server(TOOL_THEN_TEXT * 2)
        async with _async_twin(server) as agent:
            agent.register_tool(add)
            events = [e async for e in agent.chat_stream_events("add")]
            pieces = [p async for p in agent.chat_stream("add", display_stream=False)]
            return events, pieces, [m.text for m in agent.history]

    server = _parity_server(TOOL_THEN_TEXT * 2)
    model, runtime = _configs({})
    with SyncChatAgent(model, runtime, http_transport=server.transport()) as agent:
        agent.register_tool(add)
        events = list(agent.chat_stream_events("add"))
        pieces = list(agent.chat_stream("add", display_stream=False))
        history = [m.text for m in agent.history]

    async_events, async_pieces, async_history = asyncio.run(the_async_way())
    assert events == async_events
    assert pieces == async_pieces == ["Let me add. ", "It is ", "5"]
    assert history == async_history
    assert [type(e) for e in events if type(e) in (ToolResultEvent, FinishEvent, UsageEvent)] == [
        FinishEvent,
        ToolResultEvent,
        UsageEvent,
        FinishEvent,
    ]


def test_breaking_out_closes_the_response_and_keeps_the_history(
    sync_agent: SyncChatAgent, server: FakeServer
) -> None:
    server.add_stream(text_chunks(["a", "b", "c"]))
    for piece in sync_agent.chat_stream("hi", display_stream=False):
        assert piece == "a"
        break
    assert server.closed_streams == server.opened_streams == 1
    assert sync_agent.history == ()

    server.add_stream(text_chunks(["d", "e"]))
    with sync_agent.chat_stream_events("again") as stream:
        first = next(stream)
    assert isinstance(first, ContentDeltaEvent)
    assert server.closed_streams == server.opened_streams == 2
    assert sync_agent.history == ()

    server.add_completion("still fine")
    assert sync_agent.chat("next") == "still fine"
    assert _roles(sync_agent) == ["user", "assistant"]


def _in_a_thread(work: Callable[[], Any]) -> Any:
    """Run ``work`` in a new thread; a hang fails the test instead of blocking the suite."""
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(work()), daemon=True)
    thread.start()
    thread.join(SAFETY)
    assert not thread.is_alive(), "the call never returned"
    return outcome[0]


@pytest.mark.parametrize("kind", ["text", "events", "structured", "outside_history"])
def test_a_stream_left_while_referenced_is_closed_by_the_threads_next_call(
    sync_agent: SyncChatAgent, server: FakeServer, kind: str
) -> None:
    """The kept stream holds the turn and a connection: the next call closes it first."""
    server.add_stream(text_chunks(['{"name": "Bo', 'b", "age": 4', "2}"]))
    server.add_completion("next")

    def work() -> str:
        if kind == "events":
            stream: SyncStream[Any] = sync_agent.chat_stream_events("hi")
        elif kind == "structured":
            stream = sync_agent.chat_stream_structured("hi", response_format=Person)
        else:
            stream = sync_agent.chat_stream(
                "hi", display_stream=False, add_to_history=kind == "text"
            )
        for _ in stream:
            break
        reply = sync_agent.chat("again")
        assert list(stream) == []  # it was closed
        return reply

    assert _in_a_thread(work) == "next"
    assert server.closed_streams == server.opened_streams == 1
    assert [m.text for m in sync_agent.history] == ["again", "next"]


def test_a_call_from_inside_a_streams_loop_closes_that_stream(
    sync_agent: SyncChatAgent, server: FakeServer
) -> None:
    server.add_stream(text_chunks(["a", "b", "c"]))
    server.add_completion("inner")

    def work() -> list[str]:
        seen = []
        for piece in sync_agent.chat_stream("hi", display_stream=False):
            seen.append(piece)
            seen.append(sync_agent.chat("inside"))
        return seen

    assert _in_a_thread(work) == ["a", "inner"]
    assert server.closed_streams == server.opened_streams == 1
    assert [m.text for m in sync_agent.history] == ["inside", "inner"]


def test_a_stream_another_thread_left_is_not_closed(
    sync_agent: SyncChatAgent, server: FakeServer
) -> None:
    server.add_stream(text_chunks(["a", "b", "c"]))
    server.add_completion("main")
    stream = _in_a_thread(
        lambda: sync_agent.chat_stream("hi", display_stream=False, add_to_history=False)
    )
    assert _in_a_thread(lambda: next(stream)) == "a"

    assert sync_agent.chat("from main") == "main"

    assert list(stream) == ["b", "c"]  # still open: its own thread may go on with it
    assert server.closed_streams == server.opened_streams == 1


def test_a_failure_mid_stream_is_raised_in_the_callers_thread(
    sync_agent: SyncChatAgent, server: FakeServer
) -> None:
    head = sse([chunk({"role": "assistant", "content": "par"})], done=False)
    server.add(
        Reply(stream_parts=[head, httpx.ReadError("boom")], content_type="text/event-stream")
    )
    got: list[str] = []

    with pytest.raises(APIConnectionError, match="stream interrupted") as info:
        for piece in sync_agent.chat_stream("hi", display_stream=False):
            got.append(piece)

    assert got == ["par"]
    assert info.value.details["error"] == "ReadError"
    assert sync_agent.history == ()
    assert server.closed_streams == server.opened_streams == 1
    assert sync_agent.get_stats()["failures"] == 1


def test_a_stream_stopped_at_the_end_of_a_turn_does_not_commit_it(
    sync_agent: SyncChatAgent, server: FakeServer
) -> None:
    """The loop reads ahead, but never past a turn's end the caller has not asked beyond."""
    server.add_stream(text_chunks(["a"]))
    stream = sync_agent.chat_stream_events("hi")
    events = []
    for event in stream:
        events.append(event)
        if isinstance(event, FinishEvent):
            break
    stream.close()
    assert isinstance(events[-1], FinishEvent)
    assert sync_agent.history == ()


def test_a_long_stream_is_read_in_order_past_the_buffer_bound(
    sync_agent: SyncChatAgent, server: FakeServer
) -> None:
    pieces = [f"{i} " for i in range(5000)]  # more than the loop side buffers ahead
    server.add_stream(text_chunks(pieces), split=4096)

    got = list(sync_agent.chat_stream("count", display_stream=False))

    assert got == pieces
    assert sync_agent.history[-1].text == "".join(pieces)


# --------------------------------------------------------------------------- tools


def _tool_round(server: FakeServer, name: str, arguments: dict[str, Any], reply: str) -> None:
    call = tool_call("call_1", name, arguments)
    server.add_completion(None, tool_calls=[call], finish_reason="tool_calls")
    server.add_completion(reply)


def test_sync_and_async_tool_handlers_run(sync_agent: SyncChatAgent, server: FakeServer) -> None:
    sync_agent.register_tool(add)
    sync_agent.register_tool(shout)
    _tool_round(server, "add", {"a": 2, "b": 40}, "42 it is")
    _tool_round(server, "shout", {"text": "hey"}, "done")

    assert sync_agent.chat("add") == "42 it is"
    assert server.bodies[1]["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "42",
    }
    assert sync_agent.chat("shout") == "done"
    assert server.bodies[3]["messages"][-1]["content"] == "HEY"
    assert sync_agent.get_stats()["tool_calls"] == 2

    sync_agent.clear_tools()
    assert len(sync_agent.tools) == 0


def test_tool_timeouts_and_the_raise_policy(make_sync: SyncFactory, server: FakeServer) -> None:
    never = threading.Event()

    @tool(timeout=0.01)
    async def stuck() -> str:
        """Never answers."""
        await asyncio.Event().wait()
        return "unreachable"

    @tool
    def broken() -> str:
        """Fails."""
        never.set()
        raise ValueError("out of order")

    agent = make_sync()
    agent.register_tool(stuck)
    _tool_round(server, "stuck", {}, "gave up")
    assert agent.chat("try") == "gave up"
    assert "did not finish within" in server.bodies[1]["messages"][-1]["content"]

    raising = make_sync(tool_errors="raise")
    raising.register_tool(broken)
    server.add_completion(
        None, tool_calls=[tool_call("call_9", "broken", {})], finish_reason="tool_calls"
    )
    with pytest.raises(ToolExecutionError) as info:
        raising.chat("break it")
    assert info.value.details["tool"] == "broken"
    assert "out of order" in info.value.details["error"]
    assert raising.history == ()


def test_manual_tool_calls_and_submitted_results(
    sync_agent: SyncChatAgent, server: FakeServer
) -> None:
    sync_agent.register_tool(add)
    server.add_completion(
        None, tool_calls=[tool_call("c7", "add", {"a": 1, "b": 1})], finish_reason="tool_calls"
    )
    server.add_completion("two")

    assert sync_agent.chat("add", auto_execute_tools=False) == ""
    assert [c.id for c in sync_agent.pending_tool_calls] == ["c7"]
    assert sync_agent.submit_tool_results({"c7": 2}) == "two"
    assert sync_agent.pending_tool_calls == []
    assert _roles(sync_agent) == ["user", "assistant", "tool", "assistant"]


def test_a_sync_call_from_the_agents_own_loop_fails_clearly_instead_of_deadlocking(
    make_sync: SyncFactory, server: FakeServer
) -> None:
    agent = make_sync(tool_errors="raise")

    @tool
    async def recurse() -> str:
        """Calls the sync agent from the agent's loop."""
        return agent.chat("inner")

    agent.register_tool(recurse)
    server.add_completion(None, tool_calls=[tool_call("c", "recurse", {})])
    with pytest.raises(ToolExecutionError, match="own event loop"):
        agent.chat("outer")


def test_a_sync_tool_handler_may_call_the_sync_agent(
    make_sync: SyncFactory, server: FakeServer
) -> None:
    agent = make_sync()

    @tool
    def ask() -> str:
        """Asks the agent itself (from a worker thread)."""
        return agent.chat("inner", add_to_history=False)

    agent.register_tool(ask)
    server.add_completion(None, tool_calls=[tool_call("c", "ask", {})], finish_reason="tool_calls")
    server.add_completion("inner answer").add_completion("outer answer")
    assert agent.chat("outer") == "outer answer"
    assert server.bodies[2]["messages"][-1]["content"] == "inner answer"


# --------------------------------------------------------------------------- where it runs


async def test_inside_a_running_event_loop(make_sync: SyncFactory, server: FakeServer) -> None:
    agent = make_sync()
    agent.register_tool(shout)
    server.add_completion("from a coroutine")
    _tool_round(server, "shout", {"text": "a"}, "tools too")
    server.add_stream(text_chunks(["and ", "streams"]))

    assert agent.chat("hi") == "from a coroutine"
    assert agent.chat("tool") == "tools too"
    assert list(agent.chat_stream("s", display_stream=False)) == ["and ", "streams"]
    await asyncio.sleep(0)  # the caller's loop is still alive and well


def test_eight_threads_with_their_own_agents_at_once() -> None:
    barrier = threading.Barrier(8, timeout=SAFETY)

    def conversation(state: CLIFakeServer, n: int) -> list[str]:
        model = ModelConfig(api_base_url=state.base_url, api_key="sk-x", model="fake-model")
        with SyncChatAgent(model, RuntimeConfig(enable_logging=False)) as agent:
            barrier.wait()
            agent.chat(f"thread {n} first")
            pieces = list(agent.chat_stream(f"thread {n} second", display_stream=False))
            assert "".join(pieces) == f"echo: thread {n} second"
            agent.chat(f"thread {n} third")
            return [m.text for m in agent.history]

    with running_server(CLIFakeServer()) as state, ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: conversation(state, n), range(8)))

    for n, texts in enumerate(results):
        assert texts == [
            f"thread {n} first",
            f"echo: thread {n} first",
            f"thread {n} second",
            f"echo: thread {n} second",
            f"thread {n} third",
            f"echo: thread {n} third",
        ]
    assert len(state.chat_bodies) == 24


def test_one_pool_per_agent_reused_across_calls() -> None:
    with running_server(CLIFakeServer()) as state:
        model = ModelConfig(api_base_url=state.base_url, api_key="sk-x", model="fake-model")
        with SyncChatAgent(model, RuntimeConfig(enable_logging=False)) as agent:
            client = agent._agent._transport._client
            agent.chat("one")
            agent.chat("two")
            assert agent._agent._transport._client is client is not None
            assert agent.list_models().data[0].id == "fake-model"


# --------------------------------------------------------------------------- Ctrl-C


class _StallingStream(httpx.AsyncByteStream):
    """A streamed body that sends ``head`` and then nothing, until closed."""

    def __init__(self, head: bytes, server: FakeServer, started: threading.Event) -> None:
        self._head = head
        self._server = server
        self._started = started

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._head
        self._started.set()
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        self._server.closed_streams += 1


def _stall_next_stream(server: FakeServer) -> threading.Event:
    started = threading.Event()
    head = sse([chunk({"role": "assistant", "content": "first"})], done=False)

    def handler(request: httpx.Request) -> httpx.Response:
        server.handler = None
        server.opened_streams += 1
        stream = _StallingStream(head, server, started)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)

    server.handler = handler
    return started


@pytest.fixture
def python_sigint() -> Iterator[None]:
    """Python's own Ctrl-C handler (KeyboardInterrupt) for the test, whatever an earlier test
    or library left installed, then back to that."""
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _interrupt_main_when(event: threading.Event) -> threading.Thread:
    """Deliver a real SIGINT to the main thread (where pytest runs tests) once ``event``."""
    main = threading.main_thread().ident
    assert main == threading.get_ident(), "this test must run in the main thread"

    def fire() -> None:
        if event.wait(SAFETY):
            signal.pthread_kill(main, signal.SIGINT)

    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    return thread


def test_keyboard_interrupt_from_the_chunk_callback(
    make_sync: SyncFactory, server: FakeServer
) -> None:
    def interrupt(piece: str) -> None:
        raise KeyboardInterrupt

    agent = make_sync(stream_chunk_callback=interrupt)
    agent.set_system_prompt("sys")
    _stall_next_stream(server)

    with pytest.raises(KeyboardInterrupt):
        for _ in agent.chat_stream("hi", display_stream=False):
            pass

    assert server.closed_streams == server.opened_streams == 1
    assert _roles(agent) == ["system"]
    server.add_completion("next call works")
    assert agent.chat("again") == "next call works"


@pytest.mark.parametrize("how", ["interrupted", "left", "finished"])
def test_the_progress_line_says_stopped_unless_the_stream_finished(
    make_sync: SyncFactory, server: FakeServer, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    def interrupt(piece: str) -> None:
        raise KeyboardInterrupt

    callback = interrupt if how == "interrupted" else None
    agent = make_sync(stream_enable_progress=True, stream_chunk_callback=callback)
    server.add_stream(text_chunks(["a", "b"]))
    capsys.readouterr()

    with contextlib.suppress(KeyboardInterrupt):
        for _ in agent.chat_stream("hi", display_stream=False):
            if how == "left":
                break

    err = capsys.readouterr().err
    outcome = "done" if how == "finished" else "stopped"
    assert f"[openai_chatapi] {outcome}: " in err
    assert err.count("[openai_chatapi] ") == 1


@pytest.mark.usefixtures("python_sigint")
def test_sigint_during_a_sync_stream(sync_agent: SyncChatAgent, server: FakeServer) -> None:
    _stall_next_stream(server)
    got: list[str] = []
    got_first = threading.Event()
    firing = _interrupt_main_when(got_first)  # the caller then waits for the next piece

    with pytest.raises(KeyboardInterrupt):
        for piece in sync_agent.chat_stream("hi", display_stream=False):
            got.append(piece)
            got_first.set()
    firing.join(SAFETY)

    assert got == ["first"]
    assert server.closed_streams == server.opened_streams == 1
    assert sync_agent.history == ()
    server.add_stream(text_chunks(["ok"]))
    assert list(sync_agent.chat_stream("again", display_stream=False)) == ["ok"]


@pytest.mark.usefixtures("python_sigint")
def test_sigint_during_a_sync_call(sync_agent: SyncChatAgent, server: FakeServer) -> None:
    entered = threading.Event()
    cancelled = threading.Event()

    @tool
    async def slow() -> str:
        """Waits until cancelled."""
        await until_cancelled(entered.set, cancelled.set)
        return "unreachable"

    sync_agent.register_tool(slow)
    server.add_completion(None, tool_calls=[tool_call("c", "slow", {})], finish_reason="tool_calls")
    firing = _interrupt_main_when(entered)

    with pytest.raises(KeyboardInterrupt):
        sync_agent.chat("go")
    firing.join(SAFETY)

    assert cancelled.is_set()  # the call was cancelled (and waited for), not abandoned
    assert sync_agent.history == ()
    server.add_completion("usable")
    assert sync_agent.chat("again") == "usable"


# --------------------------------------------------------------------------- closing


def test_close_stops_the_loop_thread_and_with_reopens(
    make_sync: SyncFactory, server: FakeServer
) -> None:
    agent = make_sync()
    thread = agent._loop._thread
    agent.close()
    agent.close()  # idempotent
    assert agent.closed and not thread.is_alive()
    for call in (
        lambda: agent.chat("hi"),
        lambda: agent.chat_stream("hi"),
        lambda: agent.chat_stream_events("hi"),
        agent.list_models,
    ):
        with pytest.raises(ConfigurationError, match="closed agent: reopen it with 'with agent:'"):
            call()

    server.add_completion("back")
    with agent:
        assert agent.chat("hi") == "back"
    assert agent.closed


def test_closing_the_agent_under_an_open_stream_ends_the_stream(
    sync_agent: SyncChatAgent, server: FakeServer
) -> None:
    _stall_next_stream(server)
    stream = sync_agent.chat_stream("hi", display_stream=False)
    assert next(stream) == "first"
    sync_agent.close()
    with pytest.raises(APIConnectionError, match="closed"):
        next(stream)
    assert server.closed_streams == 1


def test_a_stream_first_read_after_close_says_the_agent_is_closed(
    make_sync: SyncFactory, server: FakeServer
) -> None:
    agent = make_sync()
    stream = agent.chat_stream("hi", display_stream=False)
    agent.close()
    with pytest.raises(ConfigurationError, match="closed before this call or stream started"):
        next(stream)
    assert server.opened_streams == 0


def test_closing_the_agent_under_a_running_call_says_so(
    sync_agent: SyncChatAgent, server: FakeServer
) -> None:
    started = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        server.handler = None
        stream = _StallingStream(b'{"id": "x", ', server, started)
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=stream)

    server.handler = handler
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(sync_agent.chat, "hi")
        assert started.wait(SAFETY)
        sync_agent.close()
        error = call.exception(SAFETY)

    assert isinstance(error, APIConnectionError)
    assert "the call was stopped: its agent was closed" in str(error)
    assert error.details["call"] == "chat"
    assert sync_agent.history == ()


def test_two_threads_closing_the_agent_at_once_both_return(make_sync: SyncFactory) -> None:
    agent = make_sync()
    loop = agent._loop
    closing = threading.Event()
    real_aclose, real_run = agent._agent.aclose, loop.run

    async def slow_aclose() -> None:
        closing.set()
        await asyncio.sleep(0.2)
        await real_aclose()

    def run(coro: Any, what: str) -> Any:
        if what == "close" and threading.current_thread().name == "second":
            # Go on only once the first close() has stopped the loop: the race's worst case.
            for _ in range(int(SAFETY * 100)):
                if loop.closed:
                    break
                threading.Event().wait(0.01)
        return real_run(coro, what)

    agent._agent.aclose = slow_aclose  # type: ignore[method-assign]
    loop.run = run  # type: ignore[method-assign]
    errors: list[BaseException] = []

    def close() -> None:
        try:
            agent.close()
        except BaseException as exc:
            errors.append(exc)

    first = threading.Thread(target=close, name="first")
    first.start()
    assert closing.wait(SAFETY)
    second = threading.Thread(target=close, name="second")
    second.start()
    first.join(SAFETY)
    second.join(SAFETY)

    assert errors == []
    assert agent.closed and not loop._thread.is_alive()


def test_an_agent_never_closed_is_cleaned_up_when_collected(server: FakeServer) -> None:
    model, runtime = _configs({})
    agent = SyncChatAgent(model, runtime, http_transport=server.transport())
    thread = agent._loop._thread
    transport = agent._agent._transport
    del agent
    gc.collect()
    thread.join(SAFETY)
    assert not thread.is_alive()
    assert not transport.is_open


def test_a_stream_is_a_sync_stream(sync_agent: SyncChatAgent, server: FakeServer) -> None:
    server.add_stream(text_chunks(["x"]))
    stream = sync_agent.chat_stream("hi", display_stream=False)
    assert isinstance(stream, SyncStream)
    assert iter(stream) is stream
    assert list(stream) == ["x"]
    stream.close()  # after the end: nothing to do
    assert completion("x")["choices"]
