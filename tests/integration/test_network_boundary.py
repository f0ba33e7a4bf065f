"""The network boundary alone keeps secrets out of every exception the public API raises.

The agent side (``_agent``, ``_turn``, ``_model_call``) never scrubs an exception: the
transport's error-mapping context manager, and the errors built from server text, scrub every
failure: status errors, connection errors, failures in the middle of a stream, and parse
errors of a body that echoes the key.
"""

from __future__ import annotations

import base64
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from openai_chatapi import (
    APIConnectionError,
    APIResponseError,
    AuthenticationError,
    ChatAgent,
    ChatAPIException,
    ModelConfig,
    RuntimeConfig,
)
from openai_chatapi import _agent as agent_module
from openai_chatapi import _model_call as model_call_module
from openai_chatapi import _turn as turn_module
from openai_chatapi.tools import _execution as execution_module

from ..support.fakes import FakeServer, Reply, chunk, sse

KEY = "sk-proj-BOUNDARY-4e1f0a9c7d2b8e35"
PASSWORD = "hunter2-BOUNDARY-pw"
TOKEN = "tok-BOUNDARY-51a7c3"
BASE_URL = f"http://user:{PASSWORD}@fake.test/v1?api_key={TOKEN}"
SECRETS = (KEY, PASSWORD, TOKEN)
# What a proxy echoing the Authorization header shows: base64 of the key, or of user:password
# (httpx sends URL credentials as Basic auth).
ENCODED = tuple(
    base64.b64encode(text.encode()).decode().rstrip("=") for text in (KEY, f"user:{PASSWORD}")
)


def test_the_agent_side_holds_no_scrubbing_of_its_own() -> None:
    # Two boundaries scrub, each once: the network's (the transport, and the errors built from
    # server text) and the tool handlers' (tools/_execution.py); the turn runner hands the
    # agent's secrets to the second and scrubs nothing itself.
    for module in (agent_module, model_call_module, turn_module):
        for name in ("scrub_exception", "scrub_chain", "redact_text", "map_strings"):
            assert name not in vars(module), (module.__name__, name)
    assert "scrub_chain" in vars(execution_module)


def _agent(server: FakeServer, **runtime: Any) -> ChatAgent:
    return ChatAgent(
        ModelConfig(api_base_url=BASE_URL, api_key=KEY, model="m"),
        RuntimeConfig(**{"enable_logging": False, **runtime}),
        http_transport=server.transport(),
    )


def _everything_about(exc: ChatAPIException) -> str:
    typed = [exc.status_code, exc.request_id, exc.body, exc.error_type, exc.code]
    parts = [str(exc), repr(exc), exc.message, repr(exc.details), repr(exc.args), repr(typed)]
    # What an error reporter walking the chain sends on, suppressed context included.
    chain = [exc.__context__, exc.__cause__]
    parts += [f"{type(link).__name__}: {link!s} {link!r}" for link in chain if link is not None]
    return "\n".join([*parts, "".join(traceback.format_exception(exc))])


def _assert_clean(exc: ChatAPIException) -> None:
    text = _everything_about(exc)
    for secret in (*SECRETS, *ENCODED):
        assert secret not in text, f"{secret!r} leaked from {type(exc).__name__}: {text}"


async def _chat(agent: ChatAgent) -> None:
    await agent.chat("hi")


async def _stream(agent: ChatAgent) -> None:
    [_ async for _ in agent.chat_stream("hi", display_stream=False)]


async def _list_models(agent: ChatAgent) -> None:
    await agent.list_models()


async def _retrieve_model(agent: ChatAgent) -> None:
    await agent.retrieve_model("m")


Call = Callable[[ChatAgent], Awaitable[None]]
ECHO = f"your key {KEY} (password {PASSWORD}, token {TOKEN}) was rejected"


def _status_error(server: FakeServer) -> None:
    body = {"error": {"message": ECHO, "type": f"auth {KEY}", "code": f"bad_key_{KEY}"}}
    server.add_json(body, status=401, **{"x-request-id": f"req-{TOKEN}"})


def _status_error_echoing_the_header(server: FakeServer) -> None:
    echoed = f"rejected: Bearer {ENCODED[0]}= / Basic {ENCODED[1]}"
    server.add_json({"error": {"message": echoed, "type": "auth"}}, status=401)


def _body_not_an_object(server: FakeServer) -> None:  # pydantic quotes such input
    server.add_json(f"just a string with {KEY} and {PASSWORD}")


def _connection_error(server: FakeServer) -> None:
    server.add_error(httpx.ConnectError(f"cannot connect to {BASE_URL} with {KEY}"))


def _odd_failure(server: FakeServer) -> None:  # not an httpx error: an OS error
    server.add_error(OSError(f"socket failed for {BASE_URL} ({KEY})"))


def _mid_stream(server: FakeServer) -> None:
    parts: list[Any] = [sse([chunk({"content": "a"})], done=False), httpx.ReadError(f"reset {KEY}")]
    server.add(Reply(stream_parts=parts, content_type="text/event-stream"))


def _mid_stream_error_event(server: FakeServer) -> None:
    server.add_stream([chunk({"content": "a"}), {"error": {"message": ECHO}}])


def _stream_chunk_unparseable(server: FakeServer) -> None:
    server.add_stream([chunk({"content": "a"}), f"data: {{not json {ECHO}\n\n"])


def _stream_chunk_invalid(server: FakeServer) -> None:
    server.add_stream([{"id": "c", "object": "chat.completion.chunk", "choices": ECHO}])


def _not_an_event_stream(server: FakeServer) -> None:
    server.add(Reply(raw=f"<html>{ECHO}</html>".encode(), content_type="text/html"))


def _completion_invalid(server: FakeServer) -> None:
    server.add_json({"id": "c", "object": "chat.completion", "choices": ECHO})


def _completion_no_choices(server: FakeServer) -> None:
    server.add_json({"id": KEY, "object": "chat.completion", "choices": [], "echo": ECHO})


def _error_in_200(server: FakeServer) -> None:
    server.add_json({"error": {"message": ECHO}})


def _model_list_invalid(server: FakeServer) -> None:
    server.add_json({"object": "list", "data": ECHO})


def _model_list_without_data(server: FakeServer) -> None:
    server.add_json({ECHO: 1})


def _model_invalid(server: FakeServer) -> None:
    server.add_json({"id": 5, "object": ECHO, "created": ECHO})


CASES: list[tuple[str, Callable[[FakeServer], None], Call, type[ChatAPIException]]] = [
    ("status-chat", _status_error, _chat, AuthenticationError),
    ("status-stream", _status_error, _stream, AuthenticationError),
    ("status-models", _status_error, _list_models, AuthenticationError),
    ("status-model", _status_error, _retrieve_model, AuthenticationError),
    ("status-echoing-base64-chat", _status_error_echoing_the_header, _chat, AuthenticationError),
    (
        "status-echoing-base64-stream",
        _status_error_echoing_the_header,
        _stream,
        AuthenticationError,
    ),
    ("body-not-an-object-chat", _body_not_an_object, _chat, APIResponseError),
    ("body-not-an-object-models", _body_not_an_object, _list_models, APIResponseError),
    ("connect-chat", _connection_error, _chat, APIConnectionError),
    ("connect-stream", _connection_error, _stream, APIConnectionError),
    ("connect-models", _connection_error, _list_models, APIConnectionError),
    ("os-error-chat", _odd_failure, _chat, APIConnectionError),
    ("os-error-stream", _odd_failure, _stream, APIConnectionError),
    ("mid-stream", _mid_stream, _stream, APIConnectionError),
    ("mid-stream-error-event", _mid_stream_error_event, _stream, APIResponseError),
    ("stream-chunk-unparseable", _stream_chunk_unparseable, _stream, APIResponseError),
    ("stream-chunk-invalid", _stream_chunk_invalid, _stream, APIResponseError),
    ("stream-not-sse", _not_an_event_stream, _stream, APIResponseError),
    ("completion-invalid", _completion_invalid, _chat, APIResponseError),
    ("completion-no-choices", _completion_no_choices, _chat, APIResponseError),
    ("error-in-200", _error_in_200, _chat, APIResponseError),
    ("model-list-invalid", _model_list_invalid, _list_models, APIResponseError),
    ("model-list-without-data", _model_list_without_data, _list_models, APIResponseError),
    ("model-invalid", _model_invalid, _retrieve_model, APIResponseError),
]


@pytest.mark.parametrize(
    ("reply", "call", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
async def test_no_secret_in_any_exception_without_the_agents_own_scrubbing(
    reply: Callable[[FakeServer], None], call: Call, expected: type[ChatAPIException]
) -> None:
    server = FakeServer()
    reply(server)
    async with _agent(server) as agent:
        with pytest.raises(expected) as info:
            await call(agent)
    _assert_clean(info.value)


async def test_typed_attributes_of_a_status_error_are_views_of_its_scrubbed_details() -> None:
    server = FakeServer()
    _status_error(server)
    async with _agent(server) as agent:
        with pytest.raises(AuthenticationError) as info:
            await agent.chat("hi")
    error = info.value
    assert error.status_code == 401 == error.details["status_code"]
    assert error.request_id == error.details["request_id"] == "req-[REDACTED]"
    assert error.error_type == error.details["error_type"] == "auth [REDACTED]"
    assert error.code == error.details["error_code"] == "bad_key_[REDACTED]"
    assert error.body == error.details["body"] and "[REDACTED]" in error.body


async def test_a_stream_blocks_own_failures_pass_through_unmapped() -> None:
    """Inside a stream's block, code other than the transport's runs: its failures are
    not network failures and leave as they are."""
    server = FakeServer()
    server.add_stream([chunk({"content": "a"}), chunk({"content": "b"}, finish_reason="stop")])
    async with _agent(server) as agent:
        with pytest.raises(ZeroDivisionError):
            async for _ in agent.chat_stream("hi", display_stream=False):
                raise ZeroDivisionError
