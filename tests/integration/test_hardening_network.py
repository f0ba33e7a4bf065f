"""Network-side hardening (issue 14): retries, streams, timeouts, endpoints, secrets, config.

Each test reproduces a defect through the public API against the real loopback fault server
(``support/fault_server.py``) or the mock transport (``support/fakes.py``). ``support/FAULTS.md``
lists the cases.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import traceback
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from openai_chatapi import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    ChatAgent,
    ChatAPIException,
    ConfigurationError,
    InternalServerError,
    ModelConfig,
    RuntimeConfig,
)

from ..support.fault_server import (
    DONE,
    SAFETY,
    Connection,
    FaultServer,
    Request,
    Sleeps,
    assert_released,
    call,
    closed_port_url,
    error_status,
    healthy_reply,
    make_agent,
    reset_mid_body,
    running_server,
    stall_after_done,
    stall_before_headers,
    text_events,
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


# --------------------------------------------------------------------------- 1: secrets

SECRET = "sk-test+KEY/with=odd-chars-8d7c6b5a"  # URL-encoding changes it: '+', '/', '='


def everything_about(exc: BaseException) -> str:
    """Every way a user might look at an exception."""
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc)), str(exc.args)]
    if isinstance(exc, ChatAPIException):
        parts += [exc.message, repr(exc.details), str(exc.details)]
    return "\n".join(parts)


def lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def assert_no_form_of(secret: str, text: str) -> None:
    core = secret.strip()
    for form in {
        core,
        core[:12],
        core[-12:],
        repr(core)[1:-1],
        repr(core.encode())[2:-1],
        json.dumps(core)[1:-1],
        quote(core, safe=""),
        quote_plus(core, safe=""),
        lower_hex(quote(core, safe="")),
        "".join(f"\\u{ord(c):04x}" for c in core),
    }:
        assert form not in text, f"{form!r} leaked in {text!r}"


@pytest.mark.parametrize("raw", [SECRET + "\n", "  " + SECRET + "\r\n", "\t" + SECRET])
async def test_surrounding_whitespace_is_stripped_from_the_key(
    fault_server: FaultServer, raw: str
) -> None:
    async with make_agent(fault_server, api_key=raw) as agent:
        assert agent.model_config.api_key == SECRET
        assert await call(agent, fault_server, "chat") == healthy_reply("chat")
    assert fault_server.requests[-1].headers["authorization"] == f"Bearer {SECRET}"


async def test_a_key_from_the_environment_with_a_newline_is_stripped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET + "\n")
    assert ModelConfig().api_key == SECRET


def refused(field: str, **config: Any) -> ConfigurationError:
    """The ``ConfigurationError`` that ``ModelConfig(**config)`` raises; it names ``field``."""
    with pytest.raises(ConfigurationError) as caught:
        ModelConfig(**config)
    assert caught.value.details["field"] == field
    return caught.value


@pytest.mark.parametrize(
    "bad",
    [
        "sk-abc\ndef-0123456789",  # a newline inside: header injection
        "sk-abc\x07def-0123456789",
        "sk-abc\u201cdef\u201d-0123456789",  # typographic quotes pasted from a document
        "sk-abc\u00e9def-0123456789",
        "sk-abc\x00def-0123456789",
    ],
)
def test_a_key_that_cannot_go_in_a_header_is_refused_without_showing_it(bad: str) -> None:
    error = refused("api_key", api_key=bad)
    assert "header" in error.message
    text = everything_about(error)
    for piece in ("abc", "def-0123456789"):
        assert piece not in text


@pytest.mark.parametrize("mode", ["chat", "stream"])
async def test_a_key_changed_after_construction_is_checked_when_set_and_before_connecting(
    fault_server: FaultServer, mode: str
) -> None:
    """Before, httpx refused the header and named the key as a bytes repr
    (b'Bearer sk-...\\n'); now the field is checked when it is set, and the agent checks the
    configuration again when it opens (for a value set behind that check's back)."""
    config = ModelConfig(api_base_url=fault_server.url, api_key="sk-placeholder-0000", model="m")
    config.api_key = SECRET + "\n"
    assert config.api_key == SECRET
    runtime = RuntimeConfig(enable_logging=False, timeout=2)
    async with ChatAgent(config, runtime) as agent:
        assert await call(agent, fault_server, mode) == healthy_reply(mode)  # type: ignore[arg-type]
    assert fault_server.requests[-1].headers["authorization"] == f"Bearer {SECRET}"
    bad = SECRET[:10] + "\x07" + SECRET[10:]
    with pytest.raises(ConfigurationError) as caught:
        config.api_key = bad
    assert config.api_key == SECRET  # kept as it was
    assert_no_form_of(SECRET[10:], everything_about(caught.value))
    object.__setattr__(config, "api_key", bad)
    with pytest.raises(ConfigurationError) as caught:
        async with ChatAgent(config, runtime):
            pass
    assert_no_form_of(SECRET[10:], everything_about(caught.value))


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/v1", "http://[::1"])
async def test_a_base_url_changed_after_construction_is_checked_when_set_and_before_connecting(
    url: str,
) -> None:
    config = ModelConfig(api_base_url="http://127.0.0.1:9/v1", model="m")
    with pytest.raises(ConfigurationError) as caught:
        config.api_base_url = url
    assert caught.value.details["field"] == "api_base_url"
    assert config.api_base_url == "http://127.0.0.1:9/v1"
    object.__setattr__(config, "api_base_url", url)
    with pytest.raises(ConfigurationError) as caught:
        async with ChatAgent(config, RuntimeConfig(enable_logging=False)) as agent:
            await agent.chat("hi")
    assert caught.value.details["field"] == "api_base_url"


@pytest.mark.parametrize(
    "echo",
    [
        quote(SECRET, safe=""),  # a proxy quoting the query string it received
        lower_hex(quote_plus(SECRET, safe="")),
        "".join(f"\\u{ord(c):04x}" for c in SECRET),  # JSON \\uXXXX escapes in the raw body
        repr(SECRET.encode())[2:-1],
    ],
)
async def test_an_echoed_key_in_any_escaped_form_is_scrubbed(
    fault_server: FaultServer, echo: str
) -> None:
    async def leak(conn: Connection, request: Request) -> bool:
        text = f'{{"error": {{"message": "bad key {echo}", "type": "auth"}}}}'
        await conn.respond(401, text.encode())
        return True

    fault_server.script(leak)
    async with make_agent(fault_server, api_key=SECRET, max_error_length=5000) as agent:
        with pytest.raises(ChatAPIException) as caught:
            await call(agent, fault_server, "chat")
    assert_no_form_of(SECRET, everything_about(caught.value))


async def test_url_credentials_are_never_printed() -> None:
    url = (
        closed_port_url().replace("http://", "http://alice:pa55-w0rd-xyz@") + "?api_key=q5ecret-abc"
    )
    config = ModelConfig(api_base_url=url, model="m")
    async with ChatAgent(config, RuntimeConfig(enable_logging=False)) as agent:
        shown = [repr(config), str(config), repr(agent)]
        with pytest.raises(APIConnectionError) as caught:
            await agent.chat("hi")
        shown.append(everything_about(caught.value))
    text = "\n".join(shown)
    assert "pa55-w0rd-xyz" not in text and "q5ecret-abc" not in text
    assert "127.0.0.1" in text  # the address itself is still shown


def test_cli_never_prints_a_bad_key(tmp_path: Any) -> None:
    bad = "sk-cli\u201cquoted\u201d-9f8e7d6c"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(
        OPENAI_API_KEY=bad,
        OPENAI_BASE_URL=closed_port_url(),
        OPENAI_MODEL="m",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    result = subprocess.run(
        [sys.executable, "-m", "openai_chatapi", "chat", "--debug", "hi"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode != 0
    assert "api_key" in result.stderr
    assert "quoted" not in result.stderr + result.stdout


# --------------------------------------------------------------------------- 13: endpoints


def answer(status: int, body: bytes, content_type: str, **headers: str) -> Any:
    async def run(conn: Connection, request: Request) -> bool:
        await conn.respond(status, body, content_type=content_type, headers=headers)
        return True

    return run


@pytest.mark.parametrize(
    ("content_type", "body", "shown"),
    [
        ("text/html", b"<html><body><h1>Welcome to nginx!</h1></body></html>", "Welcome to nginx!"),
        ("text/plain", b"Ollama is running", "Ollama is running"),
        ("text/plain", b"", "(empty body)"),
    ],
)
async def test_a_200_that_is_not_an_event_stream_says_so(
    fault_server: FaultServer, content_type: str, body: bytes, shown: str
) -> None:
    fault_server.script(answer(200, body, content_type))
    async with make_agent(fault_server) as agent:
        with pytest.raises(APIResponseError) as caught:
            await call(agent, fault_server, "stream")
        message = caught.value.message
        assert message.startswith(
            f"the server did not answer with an event stream (content-type {content_type})"
        ), message
        assert shown in message
        await assert_released(agent, fault_server)


@pytest.mark.parametrize("mode", ["chat", "stream"])
@pytest.mark.parametrize(
    ("location", "hint"),
    [
        ("https://127.0.0.1:1/v1/chat/completions", "use https://"),
        ("/v2/v1/chat/completions", "lacks /v1"),
        ("http://elsewhere.example/api/chat", "redirects to"),
    ],
)
async def test_a_redirect_names_its_location_and_the_likely_mistake(
    fault_server: FaultServer, mode: str, location: str, hint: str
) -> None:
    fault_server.script(answer(301, b"Moved Permanently", "text/plain", location=location))
    url = fault_server.url.removesuffix("/v1") + "/v2"
    async with make_agent(fault_server, url=url) as agent:
        with pytest.raises(APIStatusError) as caught:
            await call(agent, fault_server, mode)  # type: ignore[arg-type]
    error = caught.value
    assert error.status_code == 301
    assert "HTTP 301" in error.message and hint in error.message, error.message
    assert location.split("?")[0].rsplit("/", 1)[0].split("//")[-1] in error.message
    assert error.details["location"] == location


# --------------------------------------------------------------------------- 14: config


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://127.0.0.1:99999/v1",
        "http://127.0.0.1:-1/v1",
        "http://127.0.0.1:http/v1",
        "http://",
        "http:///v1",
        "https://:8080/v1",
        " http://127.0.0.1/v1",
        "http://127.0.0.1/v1\n",
        "http://127.0.0.1/v 1",
        "http://127.0.0.1/\x00v1",
        "http://127.0.0.1:0/v1",
        "ftp://127.0.0.1/v1",
    ],
)
def test_a_bad_base_url_is_refused_at_construction(url: str) -> None:
    assert "api_base_url" in refused("api_base_url", api_base_url=url).message


def test_a_bad_base_url_with_credentials_does_not_show_them() -> None:
    url = "http://bob:hunter2-secret@127.0.0.1:99999/v1"
    with pytest.raises(ConfigurationError) as caught:
        ModelConfig(api_base_url=url)
    assert "hunter2-secret" not in everything_about(caught.value)


# --------------------------------------------------------------------------- 10: stream end


async def test_the_caller_never_waits_for_the_end_of_the_body(
    fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[DONE], then the server holds the body open: the caller's loop still ends at once (the
    reading for connection reuse happens in the background, bounded)."""
    from openai_chatapi import _exchange

    monkeypatch.setattr(_exchange, "_DRAIN_SECONDS", SAFETY * 2)  # longer than call()'s bound
    fault_server.script(stall_after_done)
    async with make_agent(fault_server, timeout=SAFETY * 2) as agent:
        before = agent.history
        assert await call(agent, fault_server, "stream") == healthy_reply("stream")
        assert [m.text for m in agent.history[len(before) :]] == ["question", "pong"]
    # leaving the agent ended the background read and closed the connection
    await fault_server.wait_open_at_most(0)


@pytest.mark.parametrize("include_usage", [True, False])
async def test_a_whole_reply_without_done_completes_normally(
    fault_server: FaultServer, include_usage: bool
) -> None:
    """Finish reason (and usage, when asked for) arrive, then silence: no [DONE] needed."""

    async def no_done(conn: Connection, request: Request) -> bool:
        events = text_events()
        if not include_usage:
            events = events[:-1]  # no usage chunk
        await conn.sse(events, end=False)
        await conn.stall()
        return False

    fault_server.script(no_done)
    # With usage asked for, the usage chunk makes the reply whole at once; without, a server
    # may still send usage after the finish reason, so the reply ends when silence times out.
    timeout = SAFETY * 2 if include_usage else 0.3
    async with make_agent(
        fault_server, timeout=timeout, stream_include_usage=include_usage
    ) as agent:
        before = agent.history
        assert await call(agent, fault_server, "stream") == healthy_reply("stream")
        assert [m.text for m in agent.history[len(before) :]] == ["question", "pong"]
        if include_usage:
            assert agent.get_stats()["completion_tokens"] == 2
        await assert_released(agent, fault_server)


async def test_a_finish_reason_then_a_stall_is_not_thrown_away(fault_server: FaultServer) -> None:
    """Usage was asked for but never comes; the stream goes silent after the finish reason:
    the reply completes when the silence times out instead of failing."""

    async def finish_then_stall(conn: Connection, request: Request) -> bool:
        await conn.sse(text_events()[:-1], end=False)  # finish reason, no usage, no [DONE]
        await conn.stall()
        return False

    fault_server.script(finish_then_stall)
    async with make_agent(fault_server, timeout=0.3) as agent:
        assert await call(agent, fault_server, "stream") == healthy_reply("stream")
        await assert_released(agent, fault_server)


# --------------------------------------------------------------------------- 9: timeouts


def trickle(prefix: list[bytes], *, stream: bool) -> Any:
    """Headers (and ``prefix`` events), then one byte every 0.1 s that never completes an
    answer: each read is quick, so only a bound on the whole wait can end it."""

    async def run(conn: Connection, request: Request) -> bool:
        if stream:
            await conn.sse(prefix, end=False)
        else:
            await conn.head(200, length=100_000)
        for _ in range(2000):
            await asyncio.sleep(0.1)
            if stream:
                await conn.chunk(b"d")
            else:
                await conn.write(b" ")
        return False

    return run


async def test_timeout_bounds_a_non_streamed_attempt_as_a_whole(fault_server: FaultServer) -> None:
    fault_server.script(trickle([], stream=False))
    async with make_agent(fault_server, timeout=0.5) as agent:
        before = agent.history
        with pytest.raises(APITimeoutError) as caught:
            await call(agent, fault_server, "chat")
        assert "whole attempt" in caught.value.message
        assert caught.value.details["phase"] == "attempt"
        assert agent.history == before
        await assert_released(agent, fault_server)


@pytest.mark.parametrize(
    ("prefix", "phase", "words"),
    [
        ([], "waiting_for_first_event", "first event"),
        (text_events(finish=False), "between_events", "between events"),
    ],
)
async def test_timeout_bounds_the_wait_for_each_stream_event(
    fault_server: FaultServer, prefix: list[bytes], phase: str, words: str
) -> None:
    fault_server.script(trickle(prefix, stream=True))
    async with make_agent(fault_server, timeout=0.5) as agent:
        before = agent.history
        pieces: list[str] = []
        with pytest.raises(APITimeoutError) as caught:
            await call(agent, fault_server, "stream", pieces)
        assert words in caught.value.message
        assert caught.value.details["phase"] == phase
        assert bool(pieces) == bool(prefix)
        assert agent.history == before
        await assert_released(agent, fault_server)


async def test_keep_alive_comments_count_as_signs_of_life(fault_server: FaultServer) -> None:
    async def pings_then_reply(conn: Connection, request: Request) -> bool:
        await conn.head(200, content_type="text/event-stream")
        for _ in range(8):  # 8 × 0.1 s of pings, longer than the 0.5 s timeout
            await conn.chunk(b": ping\n\n")
            await asyncio.sleep(0.1)
        for item in [*text_events(), DONE]:
            await conn.chunk(item)
        await conn.end_chunks()
        return True

    fault_server.script(pings_then_reply)
    async with make_agent(fault_server, timeout=0.5) as agent:
        assert await call(agent, fault_server, "stream") == healthy_reply("stream")


# --------------------------------------------------------------------------- 8: abandoned


@pytest.mark.parametrize("kind", ["text", "events"])
async def test_a_stream_left_with_break_does_not_keep_the_connection(
    fault_server: FaultServer, kind: str
) -> None:
    """``gen = agent.chat_stream(...)``; ``break``; the reference keeps the generator alive,
    and the pool has one connection: the next call still works."""
    async with make_agent(fault_server, timeout=2.0) as agent:
        before = agent.history
        if kind == "text":
            gen: Any = agent.chat_stream("q", display_stream=False)
        else:
            gen = agent.chat_stream_events("q")
        async for _ in gen:
            break
        assert await call(agent, fault_server, "chat") == healthy_reply("chat")
        assert [m.text for m in agent.history[len(before) :]] == ["question", "pong"]
        with pytest.raises(ConfigurationError, match="a newer call on the agent started"):
            [item async for item in gen]  # the abandoned stream was closed, and says so
        await assert_released(agent, fault_server)


@pytest.mark.parametrize("kind", ["text", "events"])
async def test_async_with_closes_a_stream_on_exit(fault_server: FaultServer, kind: str) -> None:
    async with make_agent(fault_server) as agent:
        before = agent.history
        opened = agent.chat_stream("q", display_stream=False)
        if kind == "events":
            opened = agent.chat_stream_events("q")  # type: ignore[assignment]
        async with opened as stream:
            async for _ in stream:
                break
        assert agent.history == before
        await assert_released(agent, fault_server)
        # a stream used whole inside the block commits as usual
        async with agent.chat_stream("q2", display_stream=False) as stream:
            assert "".join([piece async for piece in stream]) == healthy_reply("stream")
        assert [m.text for m in agent.history[len(before) :]] == ["q2", "pong"]


# --------------------------------------------------------------------------- stats


async def test_every_request_sent_is_counted_even_when_cancelled_or_abandoned(
    fault_server: FaultServer,
) -> None:
    fault_server.default = stall_before_headers
    async with make_agent(fault_server, timeout=SAFETY, max_connections=4) as agent:
        # add_to_history=False: calls that change the history would run one at a time
        tasks = [asyncio.ensure_future(agent.chat(f"q{i}", add_to_history=False)) for i in range(4)]

        async def all_arrived() -> None:
            while fault_server.stats.requests < 4:  # noqa: ASYNC110 - no event to wait on
                await asyncio.sleep(0.005)

        await asyncio.wait_for(all_arrived(), SAFETY)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        fault_server.reset_script()
        gen = agent.chat_stream("abandoned", display_stream=False)
        async for _ in gen:
            break
        await gen.aclose()
        stats = agent.get_stats()
        assert stats["requests"] == fault_server.stats.requests == 5
        assert (stats["cancelled"], stats["successes"], stats["failures"]) == (5, 0, 0)


# ------------------------------------------------------------ httpx's own log records


async def test_httpx_and_httpcore_log_lines_never_show_url_credentials_or_query_secrets(
    fault_server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    """httpx logs every request URL at INFO and httpcore at DEBUG on their own loggers; an
    application logging at DEBUG must not see the password or a secret query value there."""
    import logging

    caplog.set_level(logging.DEBUG)
    host = fault_server.url.split("://", 1)[1]
    url = f"http://user:PASSWORD-hidden-9876@{host}?api_key=QUERY-hidden-5432"
    async with make_agent(fault_server, url=url) as agent:
        assert await call(agent, fault_server, "chat") == healthy_reply("chat")
    library = [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]
    assert any(r.name == "httpx" and "HTTP Request" in r.getMessage() for r in library)
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert "PASSWORD-hidden-9876" not in text and "QUERY-hidden-5432" not in text
