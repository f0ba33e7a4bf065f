"""Retries: which failures are retried, how long the client waits, and what it counts.

The sleep is injected (``SleepRecorder``): delays are recorded, never waited.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx
import pytest

from openai_chatapi import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ChatAgent,
    InternalServerError,
    ModelConfig,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RuntimeConfig,
)
from openai_chatapi import _retry as retry_module
from openai_chatapi import _transport as transport_module

from ..conftest import AgentFactory
from ..support.fakes import BASE_URL, FakeServer, Reply, SleepRecorder, completion, text_chunks


def _error(status: int, message: str = "try again") -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error", "param": None, "code": None}}


RETRIED_STATUSES: list[tuple[int, type[Exception]]] = [
    (408, APIStatusError),
    (409, APIStatusError),
    (429, RateLimitError),
    (500, InternalServerError),
    (502, InternalServerError),
    (503, InternalServerError),
    (504, InternalServerError),
]


@pytest.mark.parametrize(("status", "_expected"), RETRIED_STATUSES)
async def test_retried_status_then_success(
    make_agent: AgentFactory,
    server: FakeServer,
    sleeps: SleepRecorder,
    status: int,
    _expected: type[Exception],
) -> None:
    agent = await make_agent(max_retries=3, retry_delay=0.5)
    server.add_json(_error(status), status=status).add_json(_error(status), status=status)
    server.add_completion("finally")
    assert await agent.chat("hi") == "finally"
    assert len(server.requests) == 3
    assert len(sleeps.delays) == 2
    stats = agent.get_stats()
    # "requests" counts every HTTP request sent, retries included: what the server saw.
    assert (stats["retries"], stats["requests"], stats["successes"], stats["failures"]) == (
        2,
        3,
        1,
        0,
    )
    assert [m.text for m in agent.history] == ["hi", "finally"]


@pytest.mark.parametrize(("status", "expected"), RETRIED_STATUSES)
async def test_retried_status_gives_up_with_the_typed_error(
    make_agent: AgentFactory,
    server: FakeServer,
    sleeps: SleepRecorder,
    status: int,
    expected: type[Exception],
) -> None:
    agent = await make_agent(max_retries=2)
    server.default = Reply(status=status, json_body=_error(status, "still broken"))
    with pytest.raises(expected) as info:
        await agent.chat("hi")
    assert type(info.value) is expected
    assert info.value.details["status_code"] == status
    assert "still broken" in str(info.value)
    assert len(server.requests) == 3  # the first try plus max_retries
    assert len(sleeps.delays) == 2
    stats = agent.get_stats()
    assert (stats["retries"], stats["failures"], stats["successes"]) == (2, 1, 0)
    assert agent.history == ()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
    ],
)
async def test_client_errors_are_not_retried(
    make_agent: AgentFactory,
    server: FakeServer,
    sleeps: SleepRecorder,
    status: int,
    expected: type[Exception],
) -> None:
    agent = await make_agent(max_retries=5)
    server.default = Reply(status=status, json_body=_error(status, "no"))
    with pytest.raises(expected):
        await agent.chat("hi")
    assert len(server.requests) == 1
    assert sleeps.delays == []
    assert agent.get_stats()["retries"] == 0


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectError("connection refused"), APIConnectionError),
        (httpx.ReadError("connection reset by peer"), APIConnectionError),
        (httpx.ConnectTimeout("connect timed out"), APITimeoutError),
        (httpx.ReadTimeout("read timed out"), APITimeoutError),
        (httpx.PoolTimeout("pool timed out"), APITimeoutError),
    ],
)
async def test_connection_errors_and_timeouts_are_retried(
    make_agent: AgentFactory,
    server: FakeServer,
    sleeps: SleepRecorder,
    exc: Exception,
    expected: type[Exception],
) -> None:
    agent = await make_agent(max_retries=2)
    server.add_error(exc).add_completion("recovered")
    assert await agent.chat("hi") == "recovered"
    assert len(sleeps.delays) == 1

    server.add_error(exc).add_error(exc).add_error(exc)
    with pytest.raises(expected) as info:
        await agent.chat("again")
    assert type(info.value) is expected
    assert info.value.details["error"] == type(exc).__name__
    assert len(server.requests) == 2 + 3
    assert agent.get_stats()["retries"] == 1 + 2
    assert [m.text for m in agent.history] == ["hi", "recovered"]


async def test_a_connection_dropped_before_any_response_counts_as_a_retry(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    """Only a reused keep-alive connection earns a free resend (a mock connection is never
    reused; tests/integration/test_hardening_network.py covers the real pool)."""
    dropped = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    agent = await make_agent()  # max_retries=0: sent once
    server.add_error(dropped).add_completion("never reached")
    with pytest.raises(APIConnectionError) as info:
        await agent.chat("hi")
    assert info.value.details["error"] == "RemoteProtocolError"
    assert len(server.requests) == 1
    assert agent.get_stats()["retries"] == 0

    agent = await make_agent(max_retries=1)
    server.replies.clear()
    server.add_error(dropped).add_completion("recovered")
    assert await agent.chat("hi") == "recovered"
    assert len(sleeps.delays) == 1
    assert agent.get_stats()["retries"] == 1


async def test_no_retries_by_default(
    agent: ChatAgent, server: FakeServer, sleeps: SleepRecorder
) -> None:
    server.add_json(_error(503), status=503).add_completion("never reached")
    with pytest.raises(InternalServerError):
        await agent.chat("hi")
    assert len(server.requests) == 1
    assert sleeps.delays == []


async def test_connection_drop_while_reading_the_body_is_retried(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    agent = await make_agent(max_retries=1)
    broken: list[Any] = [b'{"id": "chatcmpl-1", "choi', httpx.ReadError("reset")]
    server.add(Reply(stream_parts=broken, content_type="application/json"))
    server.add_completion("whole")
    assert await agent.chat("hi") == "whole"
    assert len(server.requests) == 2
    assert len(sleeps.delays) == 1


async def test_request_body_is_identical_on_every_attempt(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    agent = await make_agent(max_retries=3, temperature=0.1, seed=5)
    agent.set_system_prompt("sys")
    server.add_error(httpx.ConnectError("down"))
    server.add_json(_error(429), status=429).add_json(_error(500), status=500)
    server.add_completion("ok")
    await agent.chat("same every time")
    assert len(server.requests) == 4
    first = server.requests[0]
    for request in server.requests[1:]:
        assert request.content == first.content
        assert request.method == first.method and request.url == first.url
        assert request.headers.get("authorization") == first.headers.get("authorization")


# ------------------------------------------------------------------ delays


async def test_retry_after_seconds_is_honoured(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    agent = await make_agent(max_retries=2, retry_delay=0.1)
    server.add_json(_error(429), status=429, **{"Retry-After": "7"})
    server.add_json(_error(503), status=503, **{"retry-after": "0.25"})
    server.add_completion()
    await agent.chat("hi")
    assert sleeps.delays == [7.0, 0.25]


async def test_retry_after_ms_is_honoured_and_wins(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    agent = await make_agent(max_retries=1)
    server.add_json(_error(429), status=429, **{"retry-after-ms": "1500", "retry-after": "9"})
    server.add_completion()
    await agent.chat("hi")
    assert sleeps.delays == [1.5]


async def test_retry_after_http_date_is_honoured(
    make_agent: AgentFactory,
    server: FakeServer,
    sleeps: SleepRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = 1_700_000_000.0
    monkeypatch.setattr(retry_module.time, "time", lambda: now)
    agent = await make_agent(max_retries=2, max_retry_delay=120)
    future = email.utils.formatdate(now + 30, usegmt=True)
    past = email.utils.formatdate(now - 3600, usegmt=True)
    server.add_json(_error(503), status=503, **{"Retry-After": future})
    server.add_json(_error(503), status=503, **{"Retry-After": past})
    server.add_completion()
    await agent.chat("hi")
    assert sleeps.delays == [30.0, 0.0]


async def test_retry_after_is_capped_by_max_retry_delay(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    agent = await make_agent(max_retries=3, max_retry_delay=5)
    far = email.utils.formatdate(time.time() + 86400, usegmt=True)
    server.add_json(_error(429), status=429, **{"Retry-After": "3600"})
    server.add_json(_error(429), status=429, **{"retry-after-ms": "600000"})
    server.add_json(_error(503), status=503, **{"Retry-After": far})
    server.add_completion()
    await agent.chat("hi")
    assert sleeps.delays == [5, 5, 5]


async def test_unparseable_retry_after_falls_back_to_backoff(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    agent = await make_agent(max_retries=1, retry_delay=2.0)
    server.add_json(_error(429), status=429, **{"Retry-After": "soon-ish"})
    server.add_completion()
    await agent.chat("hi")
    assert 1.0 <= sleeps.delays[0] <= 2.0


async def test_exponential_backoff_with_jitter_bounds(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    agent = await make_agent(max_retries=5, retry_delay=0.5, max_retry_delay=100)
    server.default = Reply(status=503, json_body=_error(503))
    with pytest.raises(InternalServerError):
        await agent.chat("hi")
    assert len(sleeps.delays) == 5
    for attempt, delay in enumerate(sleeps.delays):
        full = 0.5 * 2**attempt
        assert full / 2 <= delay <= full, (attempt, delay)
    assert agent.get_stats()["retries"] == 5


@pytest.mark.parametrize(("draw", "factor"), [(0.0, 0.5), (0.999999, 1.0)])
async def test_jitter_spans_half_to_full_backoff(
    make_agent: AgentFactory,
    server: FakeServer,
    sleeps: SleepRecorder,
    monkeypatch: pytest.MonkeyPatch,
    draw: float,
    factor: float,
) -> None:
    monkeypatch.setattr(retry_module.random, "random", lambda: draw)
    agent = await make_agent(max_retries=3, retry_delay=1.0)
    server.default = Reply(status=500, json_body=_error(500))
    with pytest.raises(InternalServerError):
        await agent.chat("hi")
    assert sleeps.delays == pytest.approx([1 * factor, 2 * factor, 4 * factor], rel=1e-5)


async def test_backoff_is_capped_by_max_retry_delay(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    agent = await make_agent(max_retries=6, retry_delay=1.0, max_retry_delay=3.0)
    server.default = Reply(status=502, json_body=_error(502))
    with pytest.raises(InternalServerError):
        await agent.chat("hi")
    assert len(sleeps.delays) == 6
    assert all(delay <= 3.0 for delay in sleeps.delays)
    assert sleeps.delays[-1] >= 1.5  # 32 s of backoff, capped to 3 before jitter


async def test_retry_delay_zero_retries_immediately(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    agent = await make_agent(max_retries=2, retry_delay=0)
    server.add_error(httpx.ConnectError("x")).add_error(httpx.ConnectError("x"))
    server.add_completion()
    await agent.chat("hi")
    assert sleeps.delays == [0, 0]


# ------------------------------------------------------------------ other requests


async def test_streaming_request_is_retried_max_retries_times_in_total(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    agent = await make_agent(max_retries=2, stream=True)
    server.default = Reply(status=503, json_body=_error(503))
    with pytest.raises(InternalServerError):
        await agent.chat("hi")
    assert len(server.requests) == 3
    assert agent.get_stats()["retries"] == 2

    server.default = None
    server.add_json(_error(429), status=429, **{"Retry-After": "1"})
    server.add_stream(text_chunks(["o", "k"]))
    assert await agent.chat("hi") == "ok"
    assert sleeps.delays[-1] == 1.0
    stream_bodies = {request.content for request in server.requests}
    assert len(stream_bodies) == 1  # the same body each time


async def test_stream_dropped_before_any_event_is_retried(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    agent = await make_agent(max_retries=1, stream=True)
    server.add(Reply(stream_parts=[httpx.ReadError("reset")]))  # type: ignore[list-item]
    server.add_stream(text_chunks(["fine"]))
    assert await agent.chat("hi") == "fine"
    assert len(server.requests) == 2
    assert agent.get_stats()["retries"] == 1


async def test_list_models_is_retried(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder
) -> None:
    agent = await make_agent(max_retries=1)
    server.add_json(_error(502), status=502)
    server.add_json({"object": "list", "data": [{"id": "m1", "object": "model"}]})
    models = await agent.list_models()
    assert [m.id for m in models.data] == ["m1"]
    assert len(sleeps.delays) == 1


async def test_real_sleep_is_used_when_none_is_injected(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    waited: list[float] = []

    async def fake_sleep(delay: float) -> None:
        waited.append(delay)

    monkeypatch.setattr(transport_module.asyncio, "sleep", fake_sleep)
    server.add_json(_error(503), status=503, **{"Retry-After": "2"})
    server.add_json(completion("ok"))
    async with ChatAgent(
        ModelConfig(api_base_url=BASE_URL, model="m"),
        RuntimeConfig(enable_logging=False, max_retries=1),
        http_transport=server.transport(),
    ) as agent:
        assert await agent.chat("hi") == "ok"
    assert waited == [2.0]
