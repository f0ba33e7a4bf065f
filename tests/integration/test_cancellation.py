"""Cancelling the caller's task at every stage of a call, over real sockets.

Stages: connecting (a blackholed port: the TCP handshake never completes), waiting for the
response headers, reading the body (``chat``) or the stream (``chat_stream``), sleeping in a
retry back-off, and running a tool. Each time ``CancelledError`` reaches the caller (never
swallowed or turned into another error), the history is exactly as before, the connection is
released (closed, or idle in the pool), and the agent answers the next call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from openai_chatapi import ChatAgent

from ..support.fault_server import (
    SAFETY,
    FaultServer,
    Mode,
    Sleeps,
    assert_released,
    call,
    calls_tool,
    error_status,
    healthy_reply,
    make_agent,
    pool_states,
    raw_call,
    running_server,
    stall_before_headers,
    stall_mid_body,
)

MODES = ["chat", "stream"]


@pytest.fixture
async def fault_server() -> AsyncIterator[FaultServer]:
    async with running_server() as server:
        yield server


async def until(condition: Callable[[], bool]) -> None:
    """Wait (bounded by SAFETY) until ``condition()`` holds."""

    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 - pool states have no event to wait on
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), SAFETY)


async def cancel_when(
    agent: ChatAgent,
    server: FaultServer,
    mode: Mode,
    reached: Callable[[list[str]], Awaitable[None]],
) -> None:
    """Start a call, wait until it ``reached`` the stage, cancel it, and check the outcome."""
    before = agent.history
    pieces: list[str] = []
    task = asyncio.ensure_future(raw_call(agent, server, mode, pieces))
    await reached(pieces)
    assert not task.done(), task
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, SAFETY)  # returns a value or times out if swallowed
    assert task.cancelled()
    assert agent.history == before
    await server.listen()
    server.reset_script()
    await assert_released(agent, server)
    # the agent is usable: the next call succeeds and enters the history alone
    assert await call(agent, server, mode, text="after") == healthy_reply(mode)
    assert [m.text for m in agent.history[len(before) :]] == ["after", healthy_reply(mode)]
    await assert_released(agent, server)


@pytest.mark.parametrize("mode", MODES)
async def test_cancel_while_connecting(fault_server: FaultServer, mode: Mode) -> None:
    fault_server.blackhole()
    async with make_agent(fault_server, timeout=SAFETY) as agent:

        async def connecting(_: list[str]) -> None:
            await until(lambda: "CONNECTING" in pool_states(agent))

        await cancel_when(agent, fault_server, mode, connecting)
    assert fault_server.stats.accepted == 1  # only the call after the blackhole connected


@pytest.mark.parametrize("mode", MODES)
async def test_cancel_while_waiting_for_the_headers(fault_server: FaultServer, mode: Mode) -> None:
    fault_server.script(stall_before_headers)
    async with make_agent(fault_server, timeout=SAFETY) as agent:

        async def waiting(_: list[str]) -> None:
            await asyncio.wait_for(fault_server.stalled.wait(), SAFETY)

        await cancel_when(agent, fault_server, mode, waiting)


async def test_cancel_while_reading_the_body(fault_server: FaultServer) -> None:
    fault_server.script(stall_mid_body)
    async with make_agent(fault_server, timeout=SAFETY) as agent:

        async def reading(_: list[str]) -> None:
            await asyncio.wait_for(fault_server.stalled.wait(), SAFETY)

        await cancel_when(agent, fault_server, "chat", reading)


async def test_cancel_mid_stream(fault_server: FaultServer) -> None:
    fault_server.script(stall_mid_body)
    async with make_agent(fault_server, timeout=SAFETY) as agent:

        async def streaming(pieces: list[str]) -> None:
            await asyncio.wait_for(fault_server.stalled.wait(), SAFETY)
            await until(lambda: bool(pieces))  # the caller already got text

        await cancel_when(agent, fault_server, "stream", streaming)


# After [DONE] the call no longer waits for the end of the body (it is read in the background
# for connection reuse), so there is no "text delivered, call not returned" stage left to
# cancel: tests/integration/test_hardening_network.py::
# test_the_caller_never_waits_for_the_end_of_the_body.


@pytest.mark.parametrize("mode", MODES)
async def test_cancel_during_retry_backoff(fault_server: FaultServer, mode: Mode) -> None:
    sleeping = asyncio.Event()

    async def block() -> None:
        sleeping.set()
        await asyncio.Event().wait()  # a back-off that never ends by itself

    sleeps = Sleeps()
    sleeps.on(1, block)
    fault_server.script(error_status(503))
    async with make_agent(fault_server, sleeps, max_retries=3, timeout=SAFETY) as agent:

        async def backing_off(_: list[str]) -> None:
            await asyncio.wait_for(sleeping.wait(), SAFETY)

        await cancel_when(agent, fault_server, mode, backing_off)
    assert len(sleeps.delays) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_cancel_during_tool_execution(fault_server: FaultServer, mode: Mode) -> None:
    started = asyncio.Event()
    handler_cancelled = asyncio.Event()

    async def lookup(city: str) -> str:
        """A tool that never finishes."""
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            handler_cancelled.set()
            raise
        return city

    fault_server.script(calls_tool('{"city": "Oslo"}'))
    async with make_agent(fault_server, timeout=SAFETY) as agent:
        agent.register_tool(lookup)

        async def running_tool(_: list[str]) -> None:
            await asyncio.wait_for(started.wait(), SAFETY)

        await cancel_when(agent, fault_server, mode, running_tool)
    assert handler_cancelled.is_set()
