"""How a stream ends (try-out defects, round 2): a finish reason followed by a body held
open, over real sockets, with and without trailing usage; a stream a newer call closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from openai_chatapi import ChatAgent, ConfigurationError, ModelConfig, RuntimeConfig

from ..support.fakes import FakeServer, text_chunks
from ..support.fault_server import (
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


# ------------------------------------------------------------- a stream a newer call closed


async def test_reading_a_stream_superseded_by_a_newer_call_raises(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_stream(text_chunks(["first ", "second"]))
    server.add_completion("newer reply")
    stream = agent.chat_stream("abandoned", display_stream=False)
    assert await stream.__anext__() == "first "
    assert await agent.chat("newer") == "newer reply"  # closes the stream this task left
    for _ in range(2):  # every further read says why, not a silent end
        with pytest.raises(ConfigurationError, match="a newer call on the agent started"):
            await stream.__anext__()
    with pytest.raises(ConfigurationError, match="newer call"):
        [piece async for piece in stream]
    assert [m.text for m in agent.history] == ["newer", "newer reply"]


async def test_a_stream_closed_by_its_reader_still_just_ends(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_stream(text_chunks(["a", "b"])).add_stream(text_chunks(["c", "d"]))
    stream = agent.chat_stream("x", display_stream=False)
    assert await stream.__anext__() == "a"
    await stream.aclose()
    assert [p async for p in stream] == []  # as a Python generator after aclose()
    async with agent.chat_stream_events("y") as events:
        async for _ in events:
            break
    assert [e async for e in events] == []
