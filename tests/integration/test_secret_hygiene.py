"""The API key never leaks, under every fault, with every logging and debug option on.

Every fault scenario of ``test_faults.py`` (both modes, with a retry where the fault is
retried), the cancellation stages and a small concurrent load run against the loopback fault
server with ``echo_auth`` on: the server quotes the ``Authorization`` header it received in
every error payload, HTML page, broken body and mid-stream error, as some proxies do. Then
every log record (all loggers, DEBUG), stdout and stderr, the exception's message, ``str``,
``repr``, args, details and formatted traceback, the agent's and configs' reprs, the stats
and a saved history file are searched for the key, and for any 12-character piece of it (a
key cut in half by a truncation is a leak too).

Over the mock transport (``support/fakes.py``): failures that echo the key in every shape (401
bodies and headers, HTML, error objects, broken JSON, stream errors, connection errors, model
listing), successful debug-logged calls, config errors and reprs, a key from the environment.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
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
    ToolExecutionError,
    tool,
)

from ..support.fakes import (
    BASE_URL,
    DEBUG_RUNTIME,
    FakeServer,
    Reply,
    calls_reply,
    chunk,
    completion,
    tool_call,
)
from ..support.fault_server import (
    FAULTS,
    SAFETY,
    Connection,
    FaultServer,
    Mode,
    Request,
    Sleeps,
    call,
    error_status,
    make_agent,
    raw_call,
    running_server,
    stall_before_headers,
    stall_mid_body,
)

KEY = "sk-proj-HYGIENE-4f1c9e27b8d35a06c1e9f7b2d4a8"  # 45 characters: no cut aligns with it
WINDOW = 12
DEBUG: dict[str, Any] = {**DEBUG_RUNTIME, "stream_enable_progress": True}
CASES = [
    pytest.param(kind, mode, id=f"{kind}-{mode}")
    for kind, fault in FAULTS.items()
    for mode in ("chat", "stream")
    if fault.outcome(mode) is not None  # type: ignore[arg-type]
]


@pytest.fixture
async def fault_server() -> AsyncIterator[FaultServer]:
    async with running_server() as server:
        server.echo_auth = True
        yield server


@pytest.fixture(autouse=True)
def _restore_package_logger() -> Iterator[None]:
    package = logging.getLogger("openai_chatapi")
    level, handlers = package.level, list(package.handlers)
    yield
    package.setLevel(level)
    package.handlers[:] = handlers


def leaks(text: str) -> list[str]:
    """Pieces of the key found in ``text`` (the whole key, or any WINDOW-character piece)."""
    if KEY in text:
        return [KEY]
    return sorted(
        {KEY[i : i + WINDOW] for i in range(len(KEY) - WINDOW + 1) if KEY[i : i + WINDOW] in text}
    )


def everything_about(exc: BaseException) -> list[str]:
    """Every way a user or a log may look at an exception."""
    parts = [str(exc), repr(exc), repr(exc.args), "".join(traceback.format_exception(exc))]
    if isinstance(exc, ChatAPIException):
        parts += [exc.message, repr(exc.details), str(exc.details)]
    return parts


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    return "\n".join(f"{formatter.format(r)}\n{r.args!r}" for r in caplog.records)


def debug_agent(server: FaultServer, sleeps: Sleeps | None = None, **runtime: Any) -> ChatAgent:
    return make_agent(server, sleeps, api_key=KEY, **{**DEBUG, **runtime})


def inject(server: FaultServer, kind: str, times: int) -> None:
    """The next ``times`` attempts meet fault ``kind`` (refused: every attempt)."""
    fault = FAULTS[kind]
    if fault.behaviour is None:
        server.refuse()
    else:
        server.script(*[fault.behaviour] * times)


def exposed_by(agent: ChatAgent, tmp_path: Path) -> list[str]:
    saved = tmp_path / "history.json"
    agent.save_history(saved)
    return [
        repr(agent),
        repr(agent.model_config),
        str(agent.model_config),
        repr(agent.runtime_config),
        repr(agent.get_stats()),
        repr(agent.history),
        repr(agent.last_response),
        saved.read_text(encoding="utf-8"),
    ]


@dataclass
class Watch:
    """Everything a test's calls logged (DEBUG, all loggers) and printed."""

    caplog: pytest.LogCaptureFixture
    capfd: pytest.CaptureFixture[str]

    def assert_clean(self, exposed: list[str]) -> None:
        """No piece of the key in ``exposed``, the log records, stdout or stderr."""
        out, err = self.capfd.readouterr()
        assert_clean([*exposed, log_text(self.caplog), out, err])


@pytest.fixture
def watch(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Watch:
    caplog.set_level(logging.DEBUG)
    return Watch(caplog, capfd)


def assert_clean(texts: list[str]) -> None:
    for text in texts:
        found = leaks(text)
        at = text.find(found[0]) if found else 0
        assert not found, f"key leaked ({found}) in: {text[max(0, at - 200) : at + 80]!r}"


@pytest.mark.parametrize(("kind", "mode"), CASES)
async def test_no_leak_under_any_fault(
    fault_server: FaultServer,
    watch: Watch,
    tmp_path: Path,
    kind: str,
    mode: Mode,
) -> None:
    outcome = FAULTS[kind].outcome(mode)
    assert outcome is not None
    sleeps = Sleeps()
    exposed: list[str] = []
    async with debug_agent(fault_server, sleeps, max_retries=1) as agent:
        inject(fault_server, kind, 2 if outcome.retried else 1)
        options = {"display_stream": True} if mode == "stream" else {}
        try:
            await call(agent, fault_server, mode, **options)
        except ChatAPIException as exc:
            exposed += everything_about(exc)
            assert outcome.error is not None
        else:
            assert outcome.error is None
        exposed += exposed_by(agent, tmp_path)
    assert "Bearer [REDACTED]" in log_text(watch.caplog)  # the headers were dumped, redacted
    watch.assert_clean(exposed)
    if kind != "refused":  # the key did reach the server, where it belongs
        assert fault_server.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def stuffed(conn: Connection, request: Request) -> bool:
    """An error body that is the received header over and over: every cut splits a key."""
    leak = request.headers.get("authorization", "")
    body = (leak * (200_000 // max(1, len(leak))))[:200_000].encode()
    await conn.respond(400, body, content_type="text/plain")
    return True


async def stuffed_json(conn: Connection, request: Request) -> bool:
    """A JSON error whose message is the received header over and over."""
    leak = request.headers.get("authorization", "")
    message = (leak * 200)[:7000]
    await conn.respond(400, f'{{"error": {{"message": "{message}"}}}}'.encode())
    return True


async def stuffed_stream(conn: Connection, request: Request) -> bool:
    """A mid-stream error and an invalid chunk made of the received header, repeated."""
    leak = request.headers.get("authorization", "")
    payload = f'{{"error": {{"message": "{leak * 150}"}}}}'
    await conn.sse([f"data: {payload}\n\n".encode()])
    return True


async def stuffed_chunk(conn: Connection, request: Request) -> bool:
    leak = request.headers.get("authorization", "")
    await conn.sse([f'data: {{"oops": "{leak * 150}\n\n'.encode()])
    return True


async def stuffed_header(conn: Connection, request: Request) -> bool:
    """Text chunks whose ``created`` is the received header (not a number): strict parsing
    rejects the chunk; lenient parsing drops the field and keeps the reply."""
    leak = request.headers.get("authorization", "")
    chunk = {"id": "c", "created": leak, "model": "m", "choices": [{"delta": {"content": "x"}}]}
    await conn.sse([f"data: {json.dumps(chunk)}\n\n".encode(), b"data: [DONE]\n\n"])
    return True


@pytest.mark.parametrize("truncate", [True, False], ids=["truncated", "untruncated"])
@pytest.mark.parametrize(
    ("behaviour", "mode"),
    [
        (stuffed, "chat"),
        (stuffed_json, "chat"),
        (stuffed_stream, "stream"),
        (stuffed_chunk, "stream"),
        (stuffed_header, "stream"),
    ],
    ids=["body", "json", "stream-error", "stream-chunk", "stream-header"],
)
async def test_no_piece_of_the_key_survives_a_cut(
    fault_server: FaultServer,
    watch: Watch,
    tmp_path: Path,
    behaviour: Any,
    mode: Mode,
    truncate: bool,
) -> None:
    """Error bodies, previews and messages are cut at many lengths; a key straddling a cut
    must not leave its first or last characters behind."""
    fault_server.script(behaviour)
    strict = behaviour is stuffed_header  # lenient parsing keeps that reply (test below)
    async with debug_agent(
        fault_server, truncate_long_errors=truncate, strict_parsing=strict
    ) as agent:
        with pytest.raises(ChatAPIException) as caught:
            await call(agent, fault_server, mode)
        exposed = everything_about(caught.value) + exposed_by(agent, tmp_path)
    watch.assert_clean(exposed)


async def test_a_key_in_a_cosmetic_field_is_dropped_by_lenient_parsing(
    fault_server: FaultServer,
    watch: Watch,
    tmp_path: Path,
) -> None:
    fault_server.script(stuffed_header)
    async with debug_agent(fault_server) as agent:
        await call(agent, fault_server, "stream")
        assert agent.last_response is not None and agent.last_response.created is None
        exposed = exposed_by(agent, tmp_path)
    watch.assert_clean(exposed)


async def test_no_leak_when_cancelled_or_under_load(
    fault_server: FaultServer,
    watch: Watch,
    tmp_path: Path,
) -> None:
    sleeping = asyncio.Event()

    async def block() -> None:
        sleeping.set()
        await asyncio.Event().wait()

    exposed: list[str] = []
    for behaviour, mode in ((stall_before_headers, "chat"), (stall_mid_body, "stream")):
        fault_server.reset_script()
        fault_server.script(behaviour)
        async with debug_agent(fault_server, timeout=SAFETY) as agent:
            task = asyncio.ensure_future(raw_call(agent, fault_server, mode))  # type: ignore[arg-type]
            await asyncio.wait_for(fault_server.stalled.wait(), SAFETY)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, SAFETY)
            exposed += exposed_by(agent, tmp_path)
    sleeps = Sleeps()
    sleeps.on(1, block)
    fault_server.reset_script()
    fault_server.script(error_status(503))
    async with debug_agent(fault_server, sleeps, max_retries=2, timeout=SAFETY) as agent:
        task = asyncio.ensure_future(raw_call(agent, fault_server, "chat"))
        await asyncio.wait_for(sleeping.wait(), SAFETY)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, SAFETY)
        # then a small concurrent load, every call logged
        fault_server.reset_script()
        replies = await asyncio.wait_for(
            asyncio.gather(
                *(agent.chat("hi", add_to_history=False) for _ in range(30)),
                *(call(agent, fault_server, "stream", add_to_history=False) for _ in range(10)),
            ),
            SAFETY,
        )
        assert len(replies) == 40
        exposed += exposed_by(agent, tmp_path)
    watch.assert_clean(exposed)


async def test_tls_verification_is_on_by_default() -> None:
    assert RuntimeConfig().verify_ssl is True
    agent = ChatAgent()  # the defaults: https://api.openai.com/v1, no network here
    async with agent:
        client = agent._transport._client
        assert client is not None
        context: ssl.SSLContext = client._transport._pool._ssl_context  # type: ignore[attr-defined]
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname is True


async def test_verify_ssl_false_warns_exactly_once(
    fault_server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sleeps = Sleeps()
    fault_server.script(error_status(503))
    async with debug_agent(fault_server, sleeps, verify_ssl=False, max_retries=1) as agent:
        await agent._transport.open()  # opening again is a no-op, not a second warning
        await call(agent, fault_server, "chat")
        await call(agent, fault_server, "stream")
        await call(agent, fault_server, "chat")
    warnings = [r for r in caplog.records if "verify_ssl=False" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert fault_server.url in warnings[0].getMessage()
    assert len(sleeps.delays) == 1


# ------------------------------------------------ over the mock transport (support/fakes.py)


def _debug_agent(server: FakeServer, **runtime: Any) -> ChatAgent:
    """An agent on the mock-transport fake, logging everything."""
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
        exposed = ["\n".join(everything_about(info.value)), repr(agent), str(agent.model_config)]
        exposed += [repr(agent.model_config), repr(agent.runtime_config)]
    out, err = capsys.readouterr()
    exposed += [log_text(caplog), out, err]
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
    text = "\n".join([log_text(caplog), out, err])
    assert "HTTP request" in text and "HTTP response" in text
    assert KEY not in text


@tool
def leaky(what: str) -> str:
    """A tool that quotes the agent's key, in its error or in its answer.

    Args:
        what: ``raise`` to fail, anything else to answer.
    """
    if what == "raise":
        raise ValueError(f"kaboom {KEY}")
    if what == "interrupt":  # in a sync handler's thread: its own failure, two causes deep
        raise KeyboardInterrupt(f"stop {KEY}")
    return f"the environment says OPENAI_API_KEY={KEY}"


@pytest.mark.parametrize("errors", ["feedback", "raise"])
async def test_a_tool_quoting_the_key_does_not_leak_it(
    server: FakeServer,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    errors: str,
) -> None:
    """Before, a handler's exception reached the model (feedback) or the caller's
    ToolExecutionError (raise) with the key in clear; a tool's answer went to the history."""
    caplog.set_level(logging.DEBUG)
    calls = [tool_call("a", "leaky", {"what": "answer"}), tool_call("b", "leaky", {"what": "x"})]
    server.add_json(calls_reply(*calls))
    server.add_json(calls_reply(tool_call("c", "leaky", {"what": "raise"})))
    server.add_completion("done")
    async with _debug_agent(server, tool_errors=errors) as agent:
        agent.register_tool(leaky)
        exposed = []
        if errors == "raise":
            with pytest.raises(ToolExecutionError) as info:
                await agent.chat("hi")
            exposed += everything_about(info.value)
            assert "kaboom [REDACTED]" in info.value.message
            assert agent.history == ()  # the failed turn is not kept
        else:
            assert str(await agent.chat("hi")) == "done"
            tool_texts = [m.content for m in agent.history if m.role == "tool"]
            assert tool_texts[0] == "the environment says OPENAI_API_KEY=[REDACTED]"
            assert "kaboom [REDACTED]" in str(tool_texts[2])
            agent.save_history(tmp_path / "history.json")
            exposed.append((tmp_path / "history.json").read_text())
        exposed += [repr(agent.history), log_text(caplog), json.dumps(server.bodies)]
    assert len(server.requests) == (2 if errors == "raise" else 3)
    for text in exposed:
        assert KEY not in text


async def test_a_key_two_causes_deep_in_a_tool_error_is_scrubbed(server: FakeServer) -> None:
    server.add_json(calls_reply(tool_call("a", "leaky", {"what": "interrupt"})))
    async with _debug_agent(server, tool_errors="raise") as agent:
        agent.register_tool(leaky)
        with pytest.raises(ToolExecutionError) as info:
            await agent.chat("hi")
    assert "it raised KeyboardInterrupt: stop [REDACTED]" in info.value.message
    assert isinstance(info.value.__cause__.__cause__, KeyboardInterrupt)  # type: ignore[union-attr]
    for text in everything_about(info.value):
        assert KEY not in text


async def test_what_an_async_tool_raises_past_the_error_policy_is_scrubbed_too(
    server: FakeServer,
) -> None:
    """A GeneratorExit from an async handler is not a tool failure (it ends the caller, as it
    was raised) but it left with the key in clear."""

    @tool
    async def quits() -> str:
        """Gives up."""
        raise GeneratorExit(f"gave up holding {KEY}")

    server.add_json(calls_reply(tool_call("a", "quits", {})))
    async with _debug_agent(server) as agent:
        agent.register_tool(quits)
        with pytest.raises(GeneratorExit) as info:
            await agent.chat("hi")
        assert agent.history == ()
    assert str(info.value) == "gave up holding [REDACTED]"
    assert KEY not in "".join(traceback.format_exception(info.value))


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
    assert KEY not in "\n".join(everything_about(info.value))
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
    assert KEY not in "\n".join(everything_about(info.value))
    assert KEY not in log_text(caplog)


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
    assert KEY not in "\n".join(everything_about(info.value))
    assert KEY not in log_text(caplog)
