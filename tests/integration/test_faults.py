"""Fault injection over real sockets: every fault kind, in ``chat`` and ``chat_stream``.

For each kind (``tests/support/fault_server.py``'s ``FAULTS``; the table is
``tests/support/FAULTS.md``) the
call ends with the documented outcome within a bound (a hang fails), the history is exactly
as before a failed call, every connection is released to the pool (or closed), and the agent
answers the next call. Retryable kinds also succeed after N faults with ``max_retries=N``.
Tool faults (a handler that raises, hangs, returns junk, is cancelled; unknown tools; endless
tool loops) are covered in ``tests/integration/test_tool_loop.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openai_chatapi import ChatAgent, ChatMessage

from ..support.fault_server import (
    BAD_ARGUMENTS,
    FAULTS,
    FaultServer,
    Mode,
    Sleeps,
    assert_released,
    call,
    closed_port_url,
    healthy_reply,
    make_agent,
    render_table,
    running_server,
)

FAULTS_MD = Path(__file__).parents[1] / "support" / "FAULTS.md"

CASES = [
    pytest.param(kind, mode, id=f"{kind}-{mode}")
    for kind, fault in FAULTS.items()
    for mode in ("chat", "stream")
    if fault.outcome(mode) is not None  # type: ignore[arg-type]
]
RETRIED = [
    pytest.param(kind, mode, id=f"{kind}-{mode}")
    for kind, fault in FAULTS.items()
    for mode in ("chat", "stream")
    if (outcome := fault.outcome(mode)) is not None and outcome.retried  # type: ignore[arg-type]
]


@pytest.fixture
async def fault_server() -> AsyncIterator[FaultServer]:
    async with running_server() as server:
        yield server


def inject(server: FaultServer, sleeps: Sleeps, kind: str, times: int) -> None:
    """Make the next ``times`` attempts meet fault ``kind``."""
    fault = FAULTS[kind]
    if fault.behaviour is None:  # refused: stop listening, listen again during the last backoff
        server.refuse()
        if times:
            sleeps.on(times, server.listen)
        return
    server.script(*[fault.behaviour] * times)


def turn_of(agent: ChatAgent, before: tuple[ChatMessage, ...]) -> list[ChatMessage]:
    assert agent.history[: len(before)] == before
    return list(agent.history[len(before) :])


async def next_call_works(agent: ChatAgent, server: FaultServer, mode: Mode) -> None:
    server.reset_script()
    await server.listen()
    before = agent.history
    assert await call(agent, server, mode, text="next question") == healthy_reply(mode)
    assert [(m.role, m.text) for m in turn_of(agent, before)] == [
        ("user", "next question"),
        ("assistant", healthy_reply(mode)),
    ]
    await assert_released(agent, server)


@pytest.mark.parametrize(("kind", "mode"), CASES)
async def test_fault_outcome(fault_server: FaultServer, kind: str, mode: Mode) -> None:
    fault = FAULTS[kind]
    outcome = fault.outcome(mode)
    assert outcome is not None
    sleeps = Sleeps()
    async with make_agent(fault_server, sleeps, max_retries=0) as agent:
        before = agent.history
        inject(fault_server, sleeps, kind, 1)
        pieces: list[str] = []
        if outcome.error is not None:
            with pytest.raises(outcome.error) as caught:
                await call(agent, fault_server, mode, pieces)
            error = caught.value
            assert type(error) is outcome.error, repr(error)
            message = error.message.lower()
            assert any(alt.lower() in message for alt in outcome.text.split("|")), message
            assert len(error.message) <= agent.runtime_config.max_error_length + 60
            assert agent.history == before
            assert bool(pieces) == outcome.partial, pieces
            assert agent.get_stats()["failures"] == 1
        else:
            assert await call(agent, fault_server, mode, pieces) == outcome.reply
            turn = turn_of(agent, before)
            assert (turn[0].role, turn[0].text) == ("user", "question")
            assert (turn[-1].role, turn[-1].text) == ("assistant", outcome.reply)
        assert sleeps.delays == []
        await assert_released(agent, fault_server)
        await next_call_works(agent, fault_server, mode)


@pytest.mark.parametrize(("kind", "mode"), RETRIED)
async def test_fault_then_success_with_retries(
    fault_server: FaultServer, kind: str, mode: Mode
) -> None:
    fault = FAULTS[kind]
    sleeps = Sleeps()
    async with make_agent(fault_server, sleeps, max_retries=2) as agent:
        before = agent.history
        inject(fault_server, sleeps, kind, 2)
        pieces: list[str] = []
        assert await call(agent, fault_server, mode, pieces) == healthy_reply(mode)
        assert len(sleeps.delays) == 2
        if fault.retry_after is not None:
            assert sleeps.delays == [fault.retry_after] * 2
        stats = agent.get_stats()
        assert (stats["retries"], stats["successes"], stats["failures"]) == (2, 1, 0)
        assert [(m.role, m.text) for m in turn_of(agent, before)] == [
            ("user", "question"),
            ("assistant", healthy_reply(mode)),
        ]
        await assert_released(agent, fault_server)
        await next_call_works(agent, fault_server, mode)


@pytest.mark.parametrize(("kind", "mode"), RETRIED)
async def test_retries_exhausted_give_the_typed_error(
    fault_server: FaultServer, kind: str, mode: Mode
) -> None:
    outcome = FAULTS[kind].outcome(mode)
    assert outcome is not None and outcome.error is not None
    sleeps = Sleeps()
    async with make_agent(fault_server, sleeps, max_retries=1) as agent:
        before = agent.history
        inject(fault_server, sleeps, kind, 2)
        if FAULTS[kind].behaviour is None:
            sleeps.on(1, _noop)  # stay refused through both attempts
        with pytest.raises(outcome.error):
            await call(agent, fault_server, mode)
        assert len(sleeps.delays) == 1
        assert agent.history == before
        await assert_released(agent, fault_server)
        await next_call_works(agent, fault_server, mode)


async def _noop() -> None:
    return None


@pytest.mark.parametrize("mode", ["chat", "stream"])
async def test_bad_tool_arguments_are_fed_back_to_the_model(
    fault_server: FaultServer, mode: Mode
) -> None:
    async with make_agent(fault_server) as agent:
        before = agent.history
        inject(fault_server, Sleeps(), "bad-tool-arguments", 1)
        assert await call(agent, fault_server, mode) == healthy_reply(mode)
        roles = [m.role for m in turn_of(agent, before)]
        assert roles == ["user", "assistant", "tool", "assistant"]
        tool_message = turn_of(agent, before)[2]
        assert "not valid JSON" in tool_message.text
        assert turn_of(agent, before)[1].tool_calls[0].function.arguments == BAD_ARGUMENTS  # type: ignore[index]
        sent = fault_server.requests[-1].json["messages"]
        assert sent[-1]["role"] == "tool" and "not valid JSON" in sent[-1]["content"]


@pytest.mark.parametrize("mode", ["chat", "stream"])
async def test_bad_tool_arguments_with_the_raise_policy(
    fault_server: FaultServer, mode: Mode
) -> None:
    from openai_chatapi import ToolExecutionError

    async with make_agent(fault_server, tool_errors="raise") as agent:
        before = agent.history
        inject(fault_server, Sleeps(), "bad-tool-arguments", 1)
        with pytest.raises(ToolExecutionError) as caught:
            await call(agent, fault_server, mode)
        assert caught.value.details["kind"] == "invalid_json"
        assert agent.history == before
        await assert_released(agent, fault_server)
        await next_call_works(agent, fault_server, mode)


@pytest.mark.parametrize("mode", ["chat", "stream"])
async def test_a_port_nobody_listens_on(fault_server: FaultServer, mode: Mode) -> None:
    from openai_chatapi import APIConnectionError

    sleeps = Sleeps()
    async with make_agent(fault_server, sleeps, url=closed_port_url(), max_retries=2) as agent:
        before = agent.history
        with pytest.raises(APIConnectionError) as caught:
            await call(agent, fault_server, mode)
        assert type(caught.value) is APIConnectionError
        assert len(sleeps.delays) == 2
        assert agent.history == before


async def test_a_stalled_server_is_bounded_by_the_timeout(fault_server: FaultServer) -> None:
    """The bound comes from RuntimeConfig.timeout: without it the SAFETY cap would end the call
    with asyncio's TimeoutError instead."""
    from openai_chatapi import APITimeoutError

    async with make_agent(fault_server, timeout=0.2) as agent:
        inject(fault_server, Sleeps(), "stall-before-headers", 1)
        with pytest.raises(APITimeoutError):
            await call(agent, fault_server, "chat")


def test_faults_table_is_current() -> None:
    """tests/support/FAULTS.md shows exactly the outcomes these tests check."""
    text = FAULTS_MD.read_text(encoding="utf-8")
    start, end = "<!-- faults-table:start -->", "<!-- faults-table:end -->"
    table = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert table == render_table(), "regenerate: python -m tests.support.fault_server"
    assert len(FAULTS) >= 20
