"""The API key never leaves the Authorization header: not in logs, output, errors or reprs."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from openai_chatapi import (
    APIResponseError,
    AuthenticationError,
    ChatAgent,
    ChatAPIException,
    ConfigurationError,
    ModelConfig,
    RuntimeConfig,
)

from ..support.fakes import BASE_URL, FakeServer, Reply, chunk, completion

KEY = "sk-proj-LEAKCHECK-7f3a9c2e5b1d4f60"
DEBUG_RUNTIME: dict[str, Any] = {
    "enable_logging": True,
    "enable_debug": True,
    "log_level": "DEBUG",
    "log_http_requests": True,
    "log_http_responses": True,
}


def _everything_about(exc: BaseException) -> str:
    """Every way a user might look at an exception."""
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    if isinstance(exc, ChatAPIException):
        parts += [exc.message, repr(exc.details), str(exc.args)]
    return "\n".join(parts)


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    lines = []
    for record in caplog.records:
        lines.append(formatter.format(record))
        lines.append(repr(record.args))
    return "\n".join(lines)


def _debug_agent(server: FakeServer, **runtime: Any) -> ChatAgent:
    return ChatAgent(
        ModelConfig(api_base_url=BASE_URL, api_key=KEY, model="m"),
        RuntimeConfig(**{**DEBUG_RUNTIME, **runtime}),
        http_transport=server.transport(),
    )


def _echo_401(s: FakeServer) -> None:
    s.add_json(
        {
            "error": {
                "message": f"Incorrect API key provided: {KEY}.",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        },
        status=401,
        **{"www-authenticate": f"Bearer realm={KEY}"},
    )


ECHOING_FAILURES: dict[str, Callable[[FakeServer], None]] = {
    "401_json": _echo_401,
    "401_plain_text": lambda s: s.add(Reply(status=401, raw=f"bad key {KEY}".encode())),
    "500_html": lambda s: s.add(Reply(status=500, raw=f"<html>{KEY}</html>".encode())),
    "400_detail": lambda s: s.add_json({"detail": f"key {KEY} is revoked"}, status=400),
    "200_error_object": lambda s: s.add_json({"error": {"message": f"key {KEY} over quota"}}),
    "200_invalid_json": lambda s: s.add(Reply(raw=f'{{"echo": "{KEY}"'.encode())),
    "200_wrong_shape": lambda s: s.add_json({"choices": [{"message": KEY}]}),
    "stream_error_event": lambda s: s.add_stream(
        [chunk({"role": "assistant"}), {"error": {"message": f"stream died, key {KEY}"}}]
    ),
    "stream_invalid_chunk": lambda s: s.add_stream([f'data: {{"bad": "{KEY}"\n\n']),
    "stream_wrong_shape": lambda s: s.add_stream([{"choices": [{"delta": KEY}]}]),
    "connection": lambda s: s.add_error(httpx.ConnectError(f"refused for {KEY}")),
}


@pytest.mark.parametrize("kind", sorted(ECHOING_FAILURES))
async def test_key_never_appears_in_a_failing_debug_call(
    server: FakeServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    ECHOING_FAILURES[kind](server)
    stream = kind.startswith("stream")
    async with _debug_agent(server) as agent:
        with pytest.raises(ChatAPIException) as info:
            if stream:
                async for _ in agent.chat_stream("hi", display_stream=True):
                    pass
            else:
                await agent.chat("hi")
        exposed = [_everything_about(info.value), repr(agent), str(agent.model_config)]
        exposed += [repr(agent.model_config), repr(agent.runtime_config)]
    out, err = capsys.readouterr()
    exposed += [_log_text(caplog), out, err]
    assert caplog.records, "a debug-logged call must log something"
    for text in exposed:
        assert KEY not in text
    # The request did carry the key, where it belongs.
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_key_never_appears_in_a_successful_debug_call(
    server: FakeServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    server.add_json(completion(f"the key is {KEY}"), **{"x-echo": KEY})
    async with _debug_agent(server) as agent:
        await agent.chat("hi")
        await agent.chat_stream("x", display_stream=False).aclose()
    out, err = capsys.readouterr()
    text = "\n".join([_log_text(caplog), out, err])
    assert "HTTP request" in text and "HTTP response" in text
    assert KEY not in text


async def test_key_never_appears_in_config_errors_or_reprs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = ModelConfig(api_key=KEY)
    for text in (repr(config), str(config), f"{config}", repr([config])):
        assert KEY not in text
    agent = ChatAgent(config, RuntimeConfig(enable_logging=False))
    assert KEY not in repr(agent) and KEY not in str(agent)
    with pytest.raises(ConfigurationError) as info:
        ModelConfig(api_key=KEY, temperature=5)
    assert KEY not in _everything_about(info.value)
    with pytest.raises(ConfigurationError) as info:
        ModelConfig(api_key="")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    from_env = ModelConfig()
    assert from_env.api_key == KEY
    assert KEY not in repr(from_env)


async def test_key_from_environment_is_scrubbed_too(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    _echo_401(server)
    async with ChatAgent(
        ModelConfig(api_base_url=BASE_URL, model="m"),
        RuntimeConfig(**DEBUG_RUNTIME),
        http_transport=server.transport(),
    ) as agent:
        with pytest.raises(AuthenticationError) as info:
            await agent.chat("hi")
    assert "[REDACTED]" in info.value.message
    assert KEY not in _everything_about(info.value)
    assert KEY not in _log_text(caplog)


async def test_error_details_keep_useful_facts(server: FakeServer) -> None:
    _echo_401(server)
    async with _debug_agent(server, enable_logging=False) as agent:
        with pytest.raises(AuthenticationError) as info:
            await agent.chat("hi")
    details = info.value.details
    assert details["status_code"] == 401
    assert details["error_code"] == "invalid_api_key"
    assert "Incorrect API key provided: [REDACTED]" in details["body"]
    assert isinstance(info.value, APIResponseError)


MODEL_FAILURES: dict[str, Callable[[FakeServer], None]] = {
    "wrong_shape": lambda s: s.add_json({"object": "list", "id": [KEY], "data": KEY}),
    "404": lambda s: s.add_json({"error": {"message": f"no model for {KEY}"}}, status=404),
    "connection": lambda s: s.add_error(httpx.ConnectError(f"refused for {KEY}")),
}


@pytest.mark.parametrize("kind", sorted(MODEL_FAILURES))
@pytest.mark.parametrize("call", ["list_models", "retrieve_model"])
async def test_key_never_appears_in_model_listing_errors(
    server: FakeServer, caplog: pytest.LogCaptureFixture, kind: str, call: str
) -> None:
    caplog.set_level(logging.DEBUG)
    MODEL_FAILURES[kind](server)
    async with _debug_agent(server) as agent:
        with pytest.raises(ChatAPIException) as info:
            if call == "list_models":
                await agent.list_models()
            else:
                await agent.retrieve_model("gpt-x")
    assert KEY not in _everything_about(info.value)
    assert KEY not in _log_text(caplog)
