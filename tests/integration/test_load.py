"""Load: many concurrent calls through one agent and through 50, against a real loopback server.

1,000 concurrent ``chat`` calls and 200 concurrent ``chat_stream`` calls must all succeed; the
server must never see more simultaneous connections than the pools allow
(``RuntimeConfig.max_connections`` per agent); and once the agents are closed no socket
(``/proc/self/fd``) and no asyncio task is left over. Throughput figures are the ``load``
section of ``scripts/bench.py``; nothing here is timed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from openai_chatapi import ChatAgent, ModelConfig, RuntimeConfig

from ..support.fault_server import REPLY, STREAM_TEXT, FaultServer, running_server

CHATS = 1000
STREAMS = 200
BOUND = 120.0  # seconds: a generous cap on each burst (a hang fails), not a performance target

FD_DIR = Path("/proc/self/fd")
pytestmark = pytest.mark.skipif(not FD_DIR.is_dir(), reason="needs /proc/self/fd (Linux)")


@pytest.fixture
async def fault_server() -> AsyncIterator[FaultServer]:
    async with running_server() as server:
        yield server


def open_fds() -> set[str]:
    return set(os.listdir(FD_DIR))


def other_tasks() -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


def load_agent(server: FaultServer, connections: int) -> ChatAgent:
    return ChatAgent(
        ModelConfig(api_base_url=server.url, api_key="sk-load", model="load-model"),
        RuntimeConfig(
            enable_logging=False,
            timeout=BOUND,
            max_connections=connections,
            max_keepalive_connections=connections,
        ),
    )


async def burst(
    agents: list[ChatAgent], chats: int = CHATS, streams: int = STREAMS
) -> tuple[list[object], list[object]]:
    """``chats`` concurrent chats, then ``streams`` concurrent streams, over ``agents``."""

    async def stream(agent: ChatAgent) -> str:
        pieces = [
            p async for p in agent.chat_stream("hi", add_to_history=False, display_stream=False)
        ]
        return "".join(pieces)

    chat_calls = asyncio.gather(
        *(agents[i % len(agents)].chat("hi", add_to_history=False) for i in range(chats)),
        return_exceptions=True,
    )
    chat_results = await asyncio.wait_for(chat_calls, BOUND)
    stream_calls = asyncio.gather(
        *(stream(agents[i % len(agents)]) for i in range(streams)), return_exceptions=True
    )
    stream_results = await asyncio.wait_for(stream_calls, BOUND)
    return list(chat_results), list(stream_results)


@pytest.mark.parametrize(
    ("agents", "connections"), [(1, 20), (50, 4)], ids=["1-agent", "50-agents"]
)
async def test_concurrent_calls_succeed_within_pool_limits_and_leak_nothing(
    fault_server: FaultServer, agents: int, connections: int
) -> None:
    fds_before, tasks_before = open_fds(), other_tasks()
    async with AsyncExitStack() as stack:
        opened = [
            await stack.enter_async_context(load_agent(fault_server, connections))
            for _ in range(agents)
        ]
        chat_results, stream_results = await burst(opened)

        chat_failures = [r for r in chat_results if r != REPLY]
        stream_failures = [r for r in stream_results if r != STREAM_TEXT]
        assert chat_failures == [] and stream_failures == []
        stats = [agent.get_stats() for agent in opened]
        assert sum(s["successes"] for s in stats) == CHATS + STREAMS
        assert sum(s["failures"] for s in stats) == 0
        assert all(agent.history == () for agent in opened)

        limit = agents * connections
        assert fault_server.stats.requests == CHATS + STREAMS
        assert 1 < fault_server.stats.peak_open <= limit
        # keep-alive limit == connection limit: connections are reused, not opened per
        # request. A stream's connection is kept only when the end of its body is read within
        # the drain's bound, which a loaded machine can miss now and then (seen: 27 of 1,200
        # with 20 connections), so the bound is on reuse, not on never re-opening one.
        assert fault_server.stats.accepted <= 2 * limit

    await fault_server.wait_open_at_most(0)
    await fault_server.drained()
    assert open_fds() == fds_before
    assert other_tasks() == tasks_before


async def test_a_pool_of_one_serialises_concurrent_calls_on_one_connection(
    fault_server: FaultServer,
) -> None:
    async with load_agent(fault_server, 1) as agent:
        chats, streams = await burst([agent], chats=50, streams=20)
    assert chats == [REPLY] * 50
    assert streams == [STREAM_TEXT] * 20
    assert fault_server.stats.peak_open == 1
    assert fault_server.stats.accepted == 1  # streams too give their connection back
