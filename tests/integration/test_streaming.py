"""chat_stream / chat_stream_events through the real client against a fake SSE server."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from openai_chatapi import (
    APIConnectionError,
    APIResponseError,
    ChatAgent,
    ChatMessage,
    ContentDeltaEvent,
    FinishEvent,
    InternalServerError,
    ModelNotFoundError,
    ReasoningDeltaEvent,
    TokenLimitError,
    ToolCallDeltaEvent,
    ToolResultEvent,
    UsageEvent,
    tool,
)
from openai_chatapi._events import StreamEvent

from ..conftest import AgentFactory
from ..support.fakes import FakeServer, Reply, SleepRecorder, chunk, completion, sse, text_chunks
from ..support.waits import cancel_when_set

PIECES = ["Hel", "lo", ", wör", "ld ", "✓ 🎉"]
TEXT = "".join(PIECES)


async def collect(agent: ChatAgent, text: str = "hi", **kwargs: Any) -> list[str]:
    kwargs.setdefault("display_stream", False)
    return [piece async for piece in agent.chat_stream(text, **kwargs)]


async def collect_events(agent: ChatAgent, text: str = "hi", **kwargs: Any) -> list[StreamEvent]:
    return [event async for event in agent.chat_stream_events(text, **kwargs)]


def broken_stream(server: FakeServer, events: list[dict[str, Any] | str], error: Exception) -> None:
    """A stream that delivers ``events`` (no [DONE]) and then fails with ``error``."""
    parts: list[Any] = [sse(events, done=False)] if events else []
    server.add(Reply(stream_parts=[*parts, error], content_type="text/event-stream"))


async def assert_all_closed(server: FakeServer) -> None:
    """Every response was closed (stream ends are read for reuse by a background task: let
    it run, within a bounded number of event-loop turns)."""
    assert server.opened_streams > 0
    for _ in range(1000):
        if server.closed_streams == server.opened_streams:
            break
        await asyncio.sleep(0)
    assert server.closed_streams == server.opened_streams


class _HangingStream(httpx.AsyncByteStream):
    """Delivers ``first`` and then waits forever, like a model that stalls mid-reply."""

    def __init__(self, first: bytes, server: FakeServer) -> None:
        self._first = first
        self._server = server

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._first
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        self._server.closed_streams += 1


def hang_after(server: FakeServer, events: list[dict[str, Any]]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        server.handler = None  # only the next request hangs
        server.opened_streams += 1
        stream = _HangingStream(sse(events, done=False), server)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)

    server.handler = handler


# --------------------------------------------------------------------------- basics


async def test_chat_stream_yields_the_pieces_and_commits_the_turn(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_stream(text_chunks(PIECES))
    assert await collect(agent, "Say hi") == PIECES
    assert [(m.role, m.content) for m in agent.history] == [
        ("user", "Say hi"),
        ("assistant", TEXT),
    ]
    body = server.last_body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert server.requests[-1].headers["accept"] == "text/event-stream"
    await assert_all_closed(server)


async def test_include_usage_can_be_turned_off(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    agent = await make_agent(stream_include_usage=False)
    server.add_stream(text_chunks(["ok"], usage=None))
    assert await collect(agent) == ["ok"]
    assert "stream_options" not in server.last_body


async def test_event_stream_types(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream(
        [
            chunk({"role": "assistant", "reasoning_content": "hmm"}),
            chunk({"content": "Yes"}),
            chunk({}, finish_reason="stop"),
            chunk(usage=(4, 2), choices=False),
        ]
    )
    events = await collect_events(agent)
    assert [type(e) for e in events] == [
        ReasoningDeltaEvent,
        ContentDeltaEvent,
        UsageEvent,
        FinishEvent,
    ]
    finish = events[-1]
    assert isinstance(finish, FinishEvent)
    assert finish.finish_reason == "stop"
    assert finish.response.choices[0].message.reasoning_content == "hmm"
    # chat_stream yields the answer only, never the reasoning.
    assert agent.history[-1].content == "Yes"
    assert agent.history[-1].reasoning_content == "hmm"


# --------------------------------------------------------------------------- SSE on the wire


@pytest.mark.parametrize("split", [1, 2, 3, 7, 13, 64])
async def test_body_split_anywhere_gives_the_same_text(
    agent: ChatAgent, server: FakeServer, split: int
) -> None:
    server.add_stream(text_chunks(PIECES), split=split)
    assert "".join(await collect(agent)) == TEXT
    assert agent.history[-1].content == TEXT


@pytest.mark.parametrize("line_end", [b"\r\n", b"\r"])
async def test_crlf_and_cr_line_ends(agent: ChatAgent, server: FakeServer, line_end: bytes) -> None:
    body = sse(text_chunks(PIECES)).replace(b"\n", line_end)
    server.add_stream(body, split=5)
    assert await collect(agent) == PIECES


async def test_comments_pings_and_other_fields_are_ignored(
    agent: ChatAgent, server: FakeServer
) -> None:
    chunks = text_chunks(PIECES)
    events: list[dict[str, Any] | str] = [
        ": OPENROUTER PROCESSING\n\n",
        chunks[0],
        ": ping\n\n",
        "retry: 3000\nid: 17\n\n",
        *chunks[1:3],
        ": keep-alive\n: still here\n\n",
        "data:\n\n",
        *chunks[3:],
    ]
    server.add_stream(events, split=4)
    assert await collect(agent) == PIECES


async def test_done_without_finish_reason_is_accepted(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream([chunk({"role": "assistant", "content": "fine"})], done=True)
    assert await collect(agent) == ["fine"]
    assert agent.history[-1].content == "fine"


async def test_finish_reason_without_done_is_accepted(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream(text_chunks(["fine"]), done=False)
    assert await collect(agent) == ["fine"]


async def test_truncated_stream_is_an_error(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream(text_chunks(PIECES)[:3], done=False)  # role + two pieces, then EOF
    received: list[str] = []
    with pytest.raises(APIResponseError, match="truncated") as info:
        async for piece in agent.chat_stream("hi", display_stream=False):
            received.append(piece)
    assert received == PIECES[:2]
    assert info.value.details["truncated"] is True
    assert agent.history == ()
    await assert_all_closed(server)


# --------------------------------------------------------------------------- errors in the stream


@pytest.mark.parametrize(
    ("error_event", "expected"),
    [
        ({"error": {"message": "upstream overloaded", "type": "server_error"}}, APIResponseError),
        (
            {"error": {"message": "too long", "code": "context_length_exceeded"}},
            TokenLimitError,
        ),
        (
            'event: error\ndata: {"error": {"message": "gone", "code": "model_not_found"}}\n\n',
            ModelNotFoundError,
        ),
        ("event: error\ndata: upstream overloaded\n\n", APIResponseError),
    ],
)
async def test_error_event_mid_stream_raises_after_the_text_so_far(
    agent: ChatAgent,
    server: FakeServer,
    error_event: dict[str, Any] | str,
    expected: type[Exception],
) -> None:
    server.add_stream([*text_chunks(PIECES)[:3], error_event])
    received: list[str] = []
    with pytest.raises(expected) as info:
        async for piece in agent.chat_stream("hi", display_stream=False):
            received.append(piece)
    assert type(info.value) is expected
    assert received == PIECES[:2]
    assert agent.history == ()
    await assert_all_closed(server)
    assert agent.get_stats()["failures"] == 1


# ------------------------------------------------------------------- history and cancellation


async def test_turn_enters_history_only_when_the_stream_completes(
    agent: ChatAgent, server: FakeServer
) -> None:
    agent.set_system_prompt("be brief")
    before = agent.history
    server.add_stream(text_chunks(PIECES))
    async for _event in agent.chat_stream_events("hi"):
        assert agent.history == before
    assert agent.history[: len(before)] == before
    assert [m.role for m in agent.history[len(before) :]] == ["user", "assistant"]


async def test_add_to_history_false(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream(text_chunks(PIECES))
    assert await collect(agent, add_to_history=False) == PIECES
    assert agent.history == ()
    assert agent.last_response is not None


async def _history_with_one_turn(agent: ChatAgent, server: FakeServer) -> tuple[ChatMessage, ...]:
    server.add_stream(text_chunks(["first answer"]))
    await collect(agent, "first question")
    return agent.history


async def _finalised() -> None:
    """A few loop turns: the event loop finalises an abandoned generator."""
    for _ in range(3):
        await asyncio.sleep(0)


async def _assert_usable(agent: ChatAgent, server: FakeServer, before: tuple[Any, ...]) -> None:
    """The abandoned stream left the history as ``before`` and no response open, and the
    agent streams the next call."""
    assert agent.history == before
    await assert_all_closed(server)
    server.add_stream(text_chunks(["again"]))
    assert await collect(agent, "next") == ["again"]
    assert agent.history[: len(before)] == before
    assert [m.text for m in agent.history[len(before) :]] == ["next", "again"]
    await assert_all_closed(server)


async def test_break_leaves_history_unchanged_and_closes_the_response(
    agent: ChatAgent, server: FakeServer
) -> None:
    before = await _history_with_one_turn(agent, server)
    server.add_stream(text_chunks(PIECES), split=8)
    async for piece in agent.chat_stream("hi", display_stream=False):
        assert piece == PIECES[0]
        break
    await _finalised()
    await _assert_usable(agent, server, before)


async def test_break_out_of_the_event_stream(agent: ChatAgent, server: FakeServer) -> None:
    before = await _history_with_one_turn(agent, server)
    server.add_stream(text_chunks(PIECES))
    async for event in agent.chat_stream_events("hi"):
        assert isinstance(event, ContentDeltaEvent)
        break
    await _finalised()
    await _assert_usable(agent, server, before)


async def test_aclose_leaves_history_unchanged_and_closes_the_response(
    agent: ChatAgent, server: FakeServer
) -> None:
    before = await _history_with_one_turn(agent, server)
    server.add_stream(text_chunks(PIECES))
    stream = agent.chat_stream("hi", display_stream=False)
    assert await stream.__anext__() == PIECES[0]
    assert await stream.__anext__() == PIECES[1]
    await stream.aclose()
    await _assert_usable(agent, server, before)


async def test_cancelled_task_leaves_history_unchanged_and_closes_the_response(
    agent: ChatAgent, server: FakeServer
) -> None:
    before = await _history_with_one_turn(agent, server)
    hang_after(server, text_chunks(PIECES)[:3])
    received: list[str] = []
    two_pieces = asyncio.Event()

    async def consume() -> None:
        async for piece in agent.chat_stream("hi", display_stream=False):
            received.append(piece)
            if len(received) == 2:
                two_pieces.set()

    await cancel_when_set(consume(), two_pieces)
    assert received == PIECES[:2]
    await _assert_usable(agent, server, before)


async def test_connection_drop_mid_stream(make_agent: AgentFactory, server: FakeServer) -> None:
    agent = await make_agent(max_retries=3)
    before = await _history_with_one_turn(agent, server)
    broken_stream(server, text_chunks(PIECES)[:3], httpx.ReadError("connection reset"))
    received: list[str] = []
    with pytest.raises(APIConnectionError, match="interrupted") as info:
        async for piece in agent.chat_stream("hi", display_stream=False):
            received.append(piece)
    assert info.value.details["chunks"] == 3
    assert received == PIECES[:2]
    await _assert_usable(agent, server, before)


# --------------------------------------------------------------------------- retries


async def test_status_503_before_the_stream_is_retried(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    agent = await make_agent(max_retries=2, retry_delay=0.5)
    server.add_json({"error": {"message": "busy"}}, status=503)
    server.add_stream(text_chunks(PIECES))
    assert await collect(agent) == PIECES
    assert len(server.requests) == 2
    assert len(sleeps.delays) == 1
    stats = agent.get_stats()
    assert (stats["retries"], stats["successes"], stats["failures"]) == (1, 1, 0)


async def test_read_error_before_any_event_is_retried(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    agent = await make_agent(max_retries=2)
    broken_stream(server, [], httpx.ReadError("reset before data"))
    # A role-only chunk carries no event yet: failing after it is still "before the first".
    broken_stream(server, [chunk({"role": "assistant", "content": ""})], httpx.ReadError("x"))
    server.add_stream(text_chunks(PIECES))
    assert await collect(agent) == PIECES
    assert len(server.requests) == 3
    assert len(sleeps.delays) == 2
    assert agent.history[-1].content == TEXT
    assert agent.get_stats()["retries"] == 2
    await assert_all_closed(server)


async def test_connect_error_is_retried(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    agent = await make_agent(max_retries=1)
    server.add_error(httpx.ConnectError("refused"))
    server.add_stream(text_chunks(PIECES))
    assert await collect(agent) == PIECES
    assert len(sleeps.delays) == 1


async def test_failure_after_content_is_not_retried(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    agent = await make_agent(max_retries=3)
    broken_stream(server, text_chunks(PIECES)[:2], httpx.ReadError("reset"))
    server.add_stream(text_chunks(PIECES))  # must stay unused: a retry would repeat "Hel"
    received: list[str] = []
    with pytest.raises(APIConnectionError):
        async for piece in agent.chat_stream("hi", display_stream=False):
            received.append(piece)
    assert received == PIECES[:1]
    assert len(server.requests) == 1
    assert len(server.replies) == 1
    assert sleeps.delays == []
    assert agent.history == ()


async def test_retries_are_bounded_by_max_retries(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    agent = await make_agent(max_retries=2)
    server.default = Reply(status=503, json_body={"error": {"message": "down"}})
    with pytest.raises(InternalServerError):
        await collect(agent)
    assert len(server.requests) == 3  # one try and max_retries retries, as for chat
    assert len(sleeps.delays) == 2
    stats = agent.get_stats()
    assert (stats["retries"], stats["failures"]) == (2, 1)


async def test_read_errors_before_data_are_bounded_by_max_retries(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    agent = await make_agent(max_retries=2)
    for _ in range(4):
        broken_stream(server, [], httpx.ReadError("reset"))
    with pytest.raises(APIConnectionError):
        await collect(agent)
    assert len(server.requests) == 3
    assert agent.history == ()
    await assert_all_closed(server)


# --------------------------------------------------------------------------- stats


async def test_streamed_calls_count_tokens_like_chat(agent: ChatAgent, server: FakeServer) -> None:
    server.add_completion("Hello", usage=(7, 3))
    await agent.chat("hi")
    chat_stats = agent.get_stats()
    agent.reset_stats()
    server.add_stream(text_chunks(["Hel", "lo"], usage=(7, 3)))
    await collect(agent)
    stream_stats = agent.get_stats()
    for key in ("requests", "successes", "prompt_tokens", "completion_tokens", "total_tokens"):
        assert stream_stats[key] == chat_stats[key], key


async def test_stream_timing_per_call_and_aggregated(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream(text_chunks(["a", "b", "c"], usage=(5, 3)))  # 6 chunks
    await collect(agent)
    last = agent.get_stats()["last_stream"]
    assert last["chunks"] == 6
    assert last["completion_tokens"] == 3
    assert last["time_to_first_token"] is not None
    assert 0 <= last["time_to_first_token"] <= last["duration"]
    assert last["tokens_per_second"] == pytest.approx(3 / last["duration"])

    server.add_stream(text_chunks(["d"], usage=(5, 1)))  # 4 chunks
    await collect(agent)
    stats = agent.get_stats()
    assert stats["streams"] == 2
    assert stats["stream_chunks"] == 10
    assert stats["last_stream"]["chunks"] == 4
    assert stats["stream_duration"] == pytest.approx(
        last["duration"] + stats["last_stream"]["duration"]
    )
    assert stats["stream_tokens_per_second"] == pytest.approx(4 / stats["stream_duration"])
    assert stats["average_time_to_first_token"] is not None


async def test_failed_stream_counts_as_a_failure(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream(text_chunks(["x"])[:2], done=False)
    with pytest.raises(APIResponseError):
        await collect(agent)
    stats = agent.get_stats()
    assert (stats["requests"], stats["failures"], stats["streams"]) == (1, 1, 0)


# --------------------------------------------------------------------------- display


class _RecordingStream(io.StringIO):
    def __init__(self, tty: bool = False) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []
        self._tty = tty

    def write(self, text: str) -> int:
        self.calls.append(("write", text))
        return super().write(text)

    def flush(self) -> None:
        self.calls.append(("flush", ""))
        super().flush()

    def isatty(self) -> bool:
        return self._tty


async def test_display_stream_writes_each_piece_to_stdout_as_it_arrives(
    agent: ChatAgent, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_stream(text_chunks(PIECES))
    shown = ""
    async for piece in agent.chat_stream("hi", display_stream=True):
        shown += piece
        assert capsys.readouterr().out == piece  # already on stdout when yielded
    captured = capsys.readouterr()
    assert captured.out == "\n"
    assert captured.err == ""
    assert shown == TEXT


async def test_display_stream_flushes_every_piece(
    agent: ChatAgent, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _RecordingStream()
    monkeypatch.setattr(sys, "stdout", out)
    server.add_stream(text_chunks(PIECES))
    await collect(agent, display_stream=True)
    writes = [i for i, (kind, _) in enumerate(out.calls) if kind == "write"]
    for i in writes:
        assert out.calls[i + 1] == ("flush", "")
    assert out.getvalue() == TEXT + "\n"


async def test_display_stream_false_writes_nothing(
    agent: ChatAgent, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_stream(text_chunks(PIECES))
    assert await collect(agent, display_stream=False) == PIECES
    assert capsys.readouterr() == ("", "")


async def test_chunk_callback_gets_every_piece(
    make_agent: AgentFactory, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str] = []
    agent = await make_agent(stream_chunk_callback=seen.append)
    server.add_stream(text_chunks(PIECES))
    assert await collect(agent, display_stream=False) == PIECES
    assert seen == PIECES
    assert capsys.readouterr() == ("", "")


async def test_a_chunk_callback_that_raises_ends_the_stream_with_its_error_and_keeps_nothing(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    """The callback is the caller's code, as a loop body is: its exception comes out of the
    stream as it was raised (a closed websocket ends the model's stream, not a swallowed
    warning), and the turn is not committed."""

    class Gone(Exception):
        pass

    def callback(piece: str) -> None:
        if piece == PIECES[1]:
            raise Gone("the listener went away")

    agent = await make_agent(stream_chunk_callback=callback)
    server.add_stream(text_chunks(PIECES))
    with pytest.raises(Gone):
        await collect(agent, display_stream=False)
    assert agent.history == ()
    agent.runtime_config.stream_chunk_callback = None
    server.add_stream(text_chunks(PIECES))
    assert await collect(agent, display_stream=False) == PIECES
    assert [m.role for m in agent.history] == ["user", "assistant"]


def _rich_or_not(with_rich: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """With rich (skip when it is not installed), or as if rich were not installed."""
    if with_rich:
        pytest.importorskip("rich")
    else:
        _hide_rich(monkeypatch)


def _hide_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("rich", "rich.console", "rich.live", "rich.spinner"):
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize("with_rich", [False, True], ids=["plain", "rich"])
@pytest.mark.parametrize("display_stream", [False, True])
async def test_progress_goes_to_stderr_only(
    make_agent: AgentFactory,
    server: FakeServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    with_rich: bool,
    display_stream: bool,
) -> None:
    _rich_or_not(with_rich, monkeypatch)
    agent = await make_agent(stream_enable_progress=True)
    server.add_stream(text_chunks(PIECES, usage=(3, 5)))
    assert await collect(agent, display_stream=display_stream) == PIECES
    captured = capsys.readouterr()
    assert captured.out == (TEXT + "\n" if display_stream else "")
    assert "5 tokens" in captured.err
    assert "tokens/s" in captured.err


async def test_plain_progress_updates_live_on_stderr(
    make_agent: AgentFactory,
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _hide_rich(monkeypatch)
    agent = await make_agent(stream_enable_progress=True)
    server.add_stream(text_chunks(PIECES))
    async for _piece in agent.chat_stream("hi", display_stream=False):
        break  # the first piece is shown at once
    err = capsys.readouterr().err
    assert "1 tokens" in err


async def test_rich_progress_on_a_terminal_leaves_stdout_alone(
    make_agent: AgentFactory, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With stderr on a terminal, the live indicator must not capture the user's prints."""
    pytest.importorskip("rich")
    out, err = _RecordingStream(), _RecordingStream(tty=True)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    agent = await make_agent(stream_enable_progress=True)
    server.add_stream(text_chunks(PIECES))
    async for piece in agent.chat_stream("hi", display_stream=False):
        print(piece, end="")
    assert out.getvalue() == TEXT
    assert "tokens" in err.getvalue()
    assert sys.stdout is out


async def test_live_progress_is_held_back_while_text_streams_to_the_same_terminal(
    make_agent: AgentFactory, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live updates on stderr would overwrite the text streaming to the same terminal."""
    _hide_rich(monkeypatch)
    out, err = _RecordingStream(tty=True), _RecordingStream(tty=True)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    agent = await make_agent(stream_enable_progress=True)
    server.add_stream(text_chunks(PIECES))
    await collect(agent, display_stream=True)
    assert out.getvalue() == TEXT + "\n"
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and "done" in lines[0]  # only the summary, after the text


# --------------------------------------------------------------------------- tools while streaming


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@tool
async def get_time(tz: str) -> dict[str, str]:
    """The time in a timezone."""
    return {"tz": tz, "time": "12:00"}


def _call(index: int, **fields: Any) -> dict[str, Any]:
    delta: dict[str, Any] = {"index": index}
    if "id" in fields:
        delta.update(id=fields["id"], type="function")
    delta["function"] = {k: v for k, v in fields.items() if k in ("name", "arguments")}
    return chunk({"tool_calls": [delta]})


def tool_round(calls: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Streamed tool calls: id+name first, then the arguments in 3-character fragments,
    interleaved across the calls by index."""
    chunks = [chunk({"role": "assistant", "content": None})]
    for index, (call_id, name, _) in enumerate(calls):
        chunks.append(_call(index, id=call_id, name=name, arguments=""))
    fragments = [[args[i : i + 3] for i in range(0, len(args), 3)] for _, _, args in calls]
    for step in range(max(len(f) for f in fragments)):
        for index, parts in enumerate(fragments):
            if step < len(parts):
                chunks.append(_call(index, arguments=parts[step]))
    chunks.append(chunk({}, finish_reason="tool_calls"))
    chunks.append(chunk(usage=(20, 10), choices=False))
    return chunks


async def test_tools_run_while_streaming_and_the_answer_follows(
    agent: ChatAgent, server: FakeServer
) -> None:
    agent.register_tool(get_weather)
    server.add_stream(tool_round([("call_w", "get_weather", json.dumps({"city": "Paris"}))]))
    server.add_stream(text_chunks(["It is ", "sunny."]))
    events = await collect_events(agent, "Weather in Paris?")

    deltas = [e for e in events if isinstance(e, ToolCallDeltaEvent)]
    assert "".join(d.arguments for d in deltas) == '{"city": "Paris"}'
    results = [e for e in events if isinstance(e, ToolResultEvent)]
    assert [(r.tool_call_id, r.name, r.content, r.ok) for r in results] == [
        ("call_w", "get_weather", "sunny in Paris", True)
    ]
    text = [e.text for e in events if isinstance(e, ContentDeltaEvent)]
    assert text == ["It is ", "sunny."]
    # the tool result comes after the first turn ended and before the follow-up text
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ToolResultEvent") > kinds.index("FinishEvent")
    assert kinds.index("ToolResultEvent") < kinds.index("ContentDeltaEvent")

    history = agent.history
    assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]
    calls = history[1].tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("call_w", "get_weather", '{"city": "Paris"}')
    ]
    assert history[2].tool_call_id == "call_w"
    assert history[2].content == "sunny in Paris"
    assert history[3].content == "It is sunny."

    follow_up = server.bodies[1]["messages"]
    assert [m["role"] for m in follow_up] == ["user", "assistant", "tool"]
    assert follow_up[2] == {"role": "tool", "tool_call_id": "call_w", "content": "sunny in Paris"}


async def test_parallel_streamed_tool_calls_each_get_a_result(
    agent: ChatAgent, server: FakeServer
) -> None:
    agent.register_tool(get_weather)
    agent.register_tool(get_time)
    server.add_stream(
        tool_round(
            [
                ("call_1", "get_weather", json.dumps({"city": "Oslo"})),
                ("call_2", "get_time", json.dumps({"tz": "Europe/Oslo"})),
            ]
        ),
        split=11,
    )
    server.add_stream(text_chunks(["Cold", " at noon."]))
    pieces = await collect(agent, "Oslo?")
    assert pieces == ["Cold", " at noon."]
    history = agent.history
    assert [m.role for m in history] == ["user", "assistant", "tool", "tool", "assistant"]
    assert [c.function.name for c in history[1].tool_calls or []] == ["get_weather", "get_time"]
    assert [m.tool_call_id for m in history[2:4]] == ["call_1", "call_2"]
    assert json.loads(str(history[3].content)) == {"tz": "Europe/Oslo", "time": "12:00"}
    assert agent.get_stats()["tool_calls"] == 2
    assert agent.get_stats()["streams"] == 2
    await assert_all_closed(server)


def _rome_round(agent: ChatAgent, server: FakeServer) -> None:
    """``get_weather`` registered, and the next stream calls it for Rome (id ``call_w``)."""
    agent.register_tool(get_weather)
    server.add_stream(tool_round([("call_w", "get_weather", json.dumps({"city": "Rome"}))]))


async def test_stopping_during_the_follow_up_leaves_history_unchanged(
    agent: ChatAgent, server: FakeServer
) -> None:
    _rome_round(agent, server)
    server.add_stream(text_chunks(PIECES))
    stream = agent.chat_stream("Rome?", display_stream=False)
    assert await stream.__anext__() == PIECES[0]
    await stream.aclose()
    assert agent.history == ()
    await assert_all_closed(server)


async def test_streamed_tool_calls_without_auto_execution_are_pending(
    agent: ChatAgent, server: FakeServer
) -> None:
    _rome_round(agent, server)
    events = await collect_events(agent, "Rome?", auto_execute_tools=False)
    assert not [e for e in events if isinstance(e, ToolResultEvent)]
    assert [c.id for c in agent.pending_tool_calls] == ["call_w"]
    assert len(server.requests) == 1


async def test_several_choices_stream_the_first_one_as_text(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_stream(
        [
            chunk({"role": "assistant", "content": "A1"}, index=0),
            chunk({"role": "assistant", "content": "B1"}, index=1),
            chunk({"content": " A2"}, index=0),
            chunk({"content": " B2"}, index=1),
            chunk({}, finish_reason="stop", index=0),
            chunk({}, finish_reason="stop", index=1),
        ]
    )
    assert await collect(agent, n=2) == ["A1", " A2"]
    assert agent.history[-1].content == "A1 A2"
    assert agent.last_response is not None
    assert [c.message.content for c in agent.last_response.choices] == ["A1 A2", "B1 B2"]


async def test_invalid_json_chunk_mid_stream(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream([*text_chunks(PIECES)[:2], "data: {not json\n\n"])
    received: list[str] = []
    with pytest.raises(APIResponseError, match="not valid JSON"):
        async for piece in agent.chat_stream("hi", display_stream=False):
            received.append(piece)
    assert received == PIECES[:1]
    assert agent.history == ()


async def test_json_answer_to_a_stream_request_is_used_or_raised(
    server: FakeServer, make_agent: Any
) -> None:
    """Some servers ignore ``stream: true``; others report errors as plain JSON with 200."""
    server.add(
        Reply(raw=json.dumps(completion("whole reply")).encode(), content_type="application/json")
    )
    server.add(
        Reply(
            raw=json.dumps(
                {"error": {"message": "context too long", "code": "context_length_exceeded"}}
            ).encode(),
            content_type="application/json",
        )
    )
    agent = await make_agent()
    pieces = [p async for p in agent.chat_stream("hi", display_stream=False)]
    assert pieces == ["whole reply"]
    assert agent.last_response is not None
    assert agent.last_response.usage is not None
    assert agent.last_response.usage.total_tokens == 15
    with pytest.raises(TokenLimitError):
        async for _ in agent.chat_stream("again", display_stream=False):
            pass
    assert [m.text for m in agent.history] == ["hi", "whole reply"]


@pytest.mark.parametrize("with_rich", [False, True], ids=["plain", "rich"])
async def test_progress_does_not_say_done_after_a_failed_stream(
    make_agent: AgentFactory,
    server: FakeServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    with_rich: bool,
) -> None:
    _rich_or_not(with_rich, monkeypatch)
    agent = await make_agent(stream_enable_progress=True)
    # Two pieces, then the body ends without a finish reason or [DONE]: truncated.
    server.add_stream(text_chunks(PIECES[:2], usage=None)[:-1], done=False)
    with pytest.raises(APIResponseError, match="truncated"):
        await collect(agent, display_stream=False)
    err = capsys.readouterr().err
    assert "done" not in err
    assert "stopped: 2 tokens" in err
    # A stream that completes still says done.
    server.add_stream(text_chunks(PIECES))
    await collect(agent, display_stream=False)
    assert "done: " in capsys.readouterr().err
