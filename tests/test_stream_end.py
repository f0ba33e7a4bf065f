"""How a stream ends when the server does not end it (try-out defects, round 2), over real
sockets: a finish reason followed by a body held open, with and without trailing usage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from openai_chatapi import ChatAgent, ModelConfig, RuntimeConfig

from .fault_server import (
    KEY,
    PIECES,
    SAFETY,
    USAGE,
    Connection,
    FaultServer,
    Request,
    running_server,
    text_events,
)

# Far beyond SAFETY: a call that waited for it would fail the wait_for bound below.
LONG_TIMEOUT = 20 * SAFETY


@pytest.fixture
async def fault_server() -> AsyncIterator[FaultServer]:
    async with running_server() as server:
        yield server


async def finish_then_hold(conn: Connection, request: Request) -> bool:
    """The reply up to its finish reason, no usage and no [DONE]; the body stays open."""
    await conn.sse(text_events()[:-1], end=False)  # text_events ends with USAGE
    await conn.stall()
    return False


async def finish_usage_then_hold(conn: Connection, request: Request) -> bool:
    """As a recorded HuggingFace server does: usage unasked after the finish, then no [DONE]."""
    await conn.sse(text_events(), end=False)
    assert text_events()[-1] == USAGE
    await conn.stall()
    return False


@pytest.mark.parametrize("behaviour", [finish_then_hold, finish_usage_then_hold])
@pytest.mark.parametrize("mode", ["stream", "chat"])
async def test_finished_stream_held_open_completes_without_waiting_for_timeout(
    fault_server: FaultServer, behaviour: object, mode: str
) -> None:
    agent = ChatAgent(
        ModelConfig(api_base_url=fault_server.url, api_key=KEY, model="m", stream=True),
        RuntimeConfig(enable_logging=False, timeout=LONG_TIMEOUT, stream_include_usage=False),
    )
    fault_server.script(behaviour)  # type: ignore[arg-type]
    async with agent:
        if mode == "stream":

            async def consume() -> list[str]:
                return [p async for p in agent.chat_stream("q", display_stream=False)]

            pieces = await asyncio.wait_for(consume(), SAFETY)
            assert "".join(pieces) == "".join(PIECES)
        else:
            reply = await asyncio.wait_for(agent.chat("q"), SAFETY)  # streamed: stream=True
            assert reply == "".join(PIECES)
        assert agent.history[-1].text == "".join(PIECES)
        assert agent.get_stats()["successes"] == 1
