"""Network-side hardening (issue 14): retries, streams, timeouts, endpoints, secrets, config.

Each test reproduces a defect through the public API against the real loopback fault server
(``tests/fault_server.py``) or the mock transport (``tests/fakes.py``). ``tests/FAULTS.md``
lists the cases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from openai_chatapi import (
    APIConnectionError,
    InternalServerError,
)

from .fault_server import (
    Connection,
    FaultServer,
    Request,
    Sleeps,
    assert_released,
    call,
    error_status,
    healthy_reply,
    make_agent,
    reset_mid_body,
    running_server,
)


@pytest.fixture
async def fault_server() -> AsyncIterator[FaultServer]:
    async with running_server() as server:
        yield server


async def close_without_answer(conn: Connection, request: Request) -> bool:
    """Read the request, then close the connection without a response."""
    return False


# --------------------------------------------------------------------------- 2: free resend


@pytest.mark.parametrize("max_retries", [0, 2])
@pytest.mark.parametrize("mode", ["chat", "stream"])
async def test_a_fresh_connection_closed_unanswered_is_sent_max_retries_plus_one_times(
    fault_server: FaultServer, max_retries: int, mode: str
) -> None:
    fault_server.default = close_without_answer
    sleeps = Sleeps()
    async with make_agent(fault_server, sleeps, max_retries=max_retries) as agent:
        with pytest.raises(APIConnectionError):
            await call(agent, fault_server, mode)  # type: ignore[arg-type]
        assert fault_server.stats.requests == max_retries + 1
        assert agent.get_stats()["retries"] == max_retries
        assert len(sleeps.delays) == max_retries


@pytest.mark.parametrize("mode", ["chat", "stream"])
async def test_a_reused_keep_alive_connection_found_dead_is_resent_once_for_free(
    fault_server: FaultServer, mode: str
) -> None:
    sleeps = Sleeps()
    async with make_agent(fault_server, sleeps, max_retries=0) as agent:
        assert await call(agent, fault_server, mode) == healthy_reply(mode)  # type: ignore[arg-type]
        assert fault_server.stats.accepted == 1
        # The pooled connection is reused; the server closes it without answering.
        fault_server.script(close_without_answer)
        assert await call(agent, fault_server, mode) == healthy_reply(mode)  # type: ignore[arg-type]
        assert fault_server.stats.requests == 3
        assert fault_server.stats.accepted == 2  # the resend went on a new connection
        assert sleeps.delays == []
        # Only once per call: the new connection failing too is a real failure.
        fault_server.script(close_without_answer, close_without_answer)
        with pytest.raises(APIConnectionError):
            await call(agent, fault_server, mode)  # type: ignore[arg-type]
        assert fault_server.stats.requests == 5
        await assert_released(agent, fault_server)


# --------------------------------------------------------------------------- 3: one budget


@pytest.mark.parametrize("max_retries", [2, 3])
async def test_stream_retries_share_one_budget(fault_server: FaultServer, max_retries: int) -> None:
    """503, 503, then a 200 that drops before the first event, repeating."""
    cycle = [error_status(503), error_status(503), reset_mid_body]
    fault_server.script(*(cycle * 6))
    sleeps = Sleeps()
    async with make_agent(fault_server, sleeps, max_retries=max_retries) as agent:
        before = agent.history
        with pytest.raises((APIConnectionError, InternalServerError)):
            await call(agent, fault_server, "stream")
        assert fault_server.stats.requests == max_retries + 1
        assert len(sleeps.delays) == max_retries
        assert agent.get_stats()["retries"] == max_retries
        assert agent.history == before
        await assert_released(agent, fault_server)
