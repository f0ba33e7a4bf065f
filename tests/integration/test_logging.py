"""What the ``openai_chatapi`` logger says, and when it stays quiet."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openai_chatapi import (
    BadRequestError,
    ChatAgent,
    InternalServerError,
    ModelConfig,
    RuntimeConfig,
)
from openai_chatapi._transport import logger as package_logger

from ..support.fakes import (
    API_KEY,
    BASE_URL,
    DEBUG_RUNTIME,
    FakeServer,
    SleepRecorder,
    completion,
    text_chunks,
)
from ..support.media_factory import image_bytes

DEBUG = DEBUG_RUNTIME


@pytest.fixture(autouse=True)
def _restore_logger() -> Iterator[None]:
    # Agents may add a stderr handler to the package logger; keep tests independent.
    level, handlers = package_logger.level, list(package_logger.handlers)
    yield
    package_logger.setLevel(level)
    package_logger.handlers[:] = handlers


def _agent(server: FakeServer, **runtime: Any) -> ChatAgent:
    return ChatAgent(
        ModelConfig(api_base_url=BASE_URL, api_key=API_KEY, model="m"),
        RuntimeConfig(**runtime),
        http_transport=server.transport(),
        sleep=SleepRecorder(),
    )


def _ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("openai_chatapi")]


def _text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in _ours(caplog))


async def test_debug_call_logs_method_url_headers_and_bodies(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.add_json(completion("Bonjour!"), **{"x-request-id": "req_42"})
    async with _agent(server, **DEBUG) as agent:
        await agent.chat("Say hello in French")
    requests = [r.getMessage() for r in _ours(caplog) if "HTTP request" in r.getMessage()]
    responses = [r.getMessage() for r in _ours(caplog) if "HTTP response" in r.getMessage()]
    assert len(requests) == 1 and len(responses) == 1
    request = requests[0]
    assert "POST http://fake.test/v1/chat/completions" in request
    assert "'authorization': 'Bearer [REDACTED]'" in request
    assert "'user-agent': 'openai_chatapi/" in request
    assert '"content":"Say hello in French"' in request
    response = responses[0]
    assert "200" in response and "x-request-id': 'req_42'" in response
    assert "Bonjour!" in response
    assert API_KEY not in _text(caplog)


async def test_only_requests_or_only_responses(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.add_completion("a").add_completion("b")
    async with _agent(server, log_http_requests=True) as agent:
        await agent.chat("one")
    text = _text(caplog)
    assert "HTTP request" in text and "HTTP response" not in text
    caplog.clear()
    async with _agent(server, log_http_responses=True) as agent:
        await agent.chat("two")
    text = _text(caplog)
    assert "HTTP response" in text and "HTTP request" not in text


async def test_http_logging_is_off_by_default(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.add_completion("a")
    async with _agent(server) as agent:
        await agent.chat("secret prompt")
    assert "secret prompt" not in _text(caplog)


async def test_long_bodies_are_truncated(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.add_completion("reply words " * 5000)
    async with _agent(server, **DEBUG) as agent:
        await agent.chat("question words " * 5000)
    request = next(r.getMessage() for r in _ours(caplog) if "HTTP request" in r.getMessage())
    response = next(r.getMessage() for r in _ours(caplog) if "HTTP response" in r.getMessage())
    assert "question words " * 100 in request and "question words " * 1000 not in request
    assert "more characters" in request
    assert "reply words " * 100 in response and "reply words " * 1000 not in response
    assert "more characters" in response


async def test_base64_media_is_elided(
    server: FakeServer, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    png = image_bytes("png", size=(64, 64))
    encoded = base64.b64encode(png).decode()
    picture = tmp_path / "pic.png"
    picture.write_bytes(png)
    returned = base64.b64encode(b"\x00\x01" * 3000).decode()
    server.add_completion("seen").add_completion("seen too")
    server.add_completion(f"here: data:image/png;base64,{returned}")
    async with _agent(server, **DEBUG) as agent:
        await agent.chat("inline", image_paths=f"data:image/png;base64,{encoded}")
        await agent.chat("from a file", image_paths=str(picture))
        await agent.chat("send one back")
    # The images really went out...
    assert encoded in server.requests[0].content.decode()
    assert server.requests[1].content.count(b"base64,") == 2
    # ...but never into the logs.
    text = _text(caplog)
    assert encoded not in text and encoded[:200] not in text
    assert returned[:200] not in text
    assert "elided" in text
    assert '"text":"inline"' in text


async def test_streaming_response_is_logged_without_reading_it(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.add_stream(text_chunks(["a", "b"]))
    async with _agent(server, **DEBUG) as agent:
        pieces = [p async for p in agent.chat_stream("hi", display_stream=False)]
    assert pieces == ["a", "b"]
    text = _text(caplog)
    assert "HTTP response 200" in text and "<stream>" in text
    assert "'accept': 'text/event-stream'" in text


async def test_error_responses_and_retries_are_logged(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.add_json({"error": {"message": "overloaded"}}, status=503, **{"Retry-After": "2"})
    server.add_error(httpx.ConnectError("refused"))
    server.add_completion("ok")
    async with _agent(server, **DEBUG, max_retries=2) as agent:
        await agent.chat("hi")
    warnings = [r.getMessage() for r in _ours(caplog) if r.levelno == logging.WARNING]
    assert any("HTTP 503" in w and "2.00s" in w for w in warnings)
    assert any("ConnectError" in w for w in warnings)
    assert "overloaded" in _text(caplog)
    assert "attempt=3" in _text(caplog)


async def test_retries_are_logged_without_http_logging(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.add_json({"error": {"message": "x"}}, status=500).add_completion("ok")
    async with _agent(server, max_retries=1) as agent:
        await agent.chat("hi")
    assert [r.levelname for r in _ours(caplog)] == ["WARNING"]


async def test_verify_ssl_false_logs_a_warning(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with _agent(server, verify_ssl=False):
        pass
    warnings = [r for r in _ours(caplog) if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "verify_ssl=False" in warnings[0].getMessage()
    assert BASE_URL in warnings[0].getMessage()


async def test_enable_logging_false_logs_nothing(
    server: FakeServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    server.add_json({"error": {"message": "x"}}, status=503)
    server.add_error(httpx.ReadTimeout("slow"))
    server.add_completion("ok")
    server.add_stream(text_chunks(["s"]))
    quiet = {**DEBUG, "enable_logging": False}
    async with _agent(server, **quiet, verify_ssl=False, max_retries=2) as agent:
        await agent.chat("hi")
        [_ async for _ in agent.chat_stream("hi", display_stream=False)]
    assert _ours(caplog) == []
    out, err = capsys.readouterr()
    assert (out, err) == ("", "")


async def test_each_agent_logs_at_its_own_level(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A second agent never changes the first one's logging (the package logger's level
    is left alone: the last agent created used to decide it for every agent)."""
    caplog.set_level(logging.DEBUG)
    verbose = _agent(server, **DEBUG)
    _agent(server, log_level="ERROR", max_retries=1)  # created last: decides nothing
    quiet = _agent(server, log_level="ERROR", max_retries=1)
    assert package_logger.level == logging.NOTSET
    server.add_json({"error": {"message": "x"}}, status=503).add_completion("ok")
    async with quiet:
        await quiet.chat("quiet call")
    assert _ours(caplog) == []  # its retry warning is below its ERROR level
    server.add_completion("ok")
    async with verbose:
        await verbose.chat("verbose call")
    records = _ours(caplog)
    assert records and all(r.name == "openai_chatapi" for r in records)
    assert any("HTTP request" in r.getMessage() for r in records)
    assert {r.agent for r in records} == {verbose._transport.log.extra["agent"]}  # type: ignore[attr-defined,index]


async def test_an_agent_at_warning_level_keeps_its_warnings_only(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    warning = _agent(server, log_level="WARNING", max_retries=1, log_http_requests=True)
    _agent(server, **DEBUG)  # a debug agent created later does not make the first one talk
    server.add_json({"error": {"message": "x"}}, status=500).add_completion("ok")
    async with warning:
        await warning.chat("hi")
    assert [r.levelname for r in _ours(caplog)] == ["WARNING"]  # the retry, not the request


async def test_user_handlers_on_the_package_logger_receive_every_agents_records(
    server: FakeServer,
) -> None:
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Collect()
    package_logger.addHandler(handler)
    try:
        first, second = _agent(server, **DEBUG), _agent(server, **DEBUG)
        for agent in (first, second):
            server.add_completion("ok")
            async with agent:
                await agent.chat("hi")
    finally:
        package_logger.removeHandler(handler)
    agents = {getattr(r, "agent", None) for r in seen if "HTTP request" in r.getMessage()}
    assert len(agents) == 2 and None not in agents
    assert all(r.funcName == "request" for r in seen if "HTTP request" in r.getMessage())


async def test_logs_reach_stderr_when_logging_is_not_configured(
    server: FakeServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    server.add_completion("ok")
    async with _agent(server, **DEBUG) as agent:
        await agent.chat("hello there")
    err = capsys.readouterr().err
    assert "HTTP request POST http://fake.test/v1/chat/completions" in err
    assert "hello there" in err
    assert "Bearer [REDACTED]" in err
    assert API_KEY not in err
    # A second agent does not add a second handler (no duplicated lines).
    async with _agent(server, **DEBUG):
        pass
    streams = [h for h in package_logger.handlers if type(h) is logging.StreamHandler]
    assert len(streams) == 1


async def test_retry_decisions_are_logged_at_debug(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.add_json({"error": {"message": "x"}}, status=503)
    server.add_json({"error": {"message": "x"}}, status=503)
    async with _agent(server, log_level="DEBUG", max_retries=1) as agent:
        with pytest.raises(InternalServerError):
            await agent.chat("hi")
    server.add_json({"error": {"message": "no"}}, status=400)
    async with _agent(server, log_level="DEBUG", max_retries=1) as agent:
        with pytest.raises(BadRequestError):
            await agent.chat("hi")
    debug = [r.getMessage() for r in _ours(caplog) if r.levelno == logging.DEBUG]
    assert "not retrying after HTTP 503: all 1 retries used" in debug
    assert "HTTP 400 is not retryable" in debug
