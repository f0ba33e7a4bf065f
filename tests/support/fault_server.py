"""A real loopback HTTP/1.1 server that misbehaves on demand, for the fault-injection tests.

``FaultServer`` is the loopback server of ``loopback.py`` on ``127.0.0.1`` (a free port): the
client under test talks to it over real sockets through its real httpx pool. Each request takes the
next *behaviour* from ``server.script(...)``'s queue, or the healthy default (a completion, or
an SSE stream when the request asks for one). Behaviours are small coroutines that write
whatever bytes a fault needs: error statuses, HTML pages, truncated or malformed streams, a
TCP reset in the middle of a body, a stall. ``refuse()`` stops listening (the port stays
reserved, so connections are refused) and ``blackhole()`` makes connection attempts hang.

The server counts connections (accepted, open now, peak), so tests can check that the client
released every connection and stayed within its pool limits. ``echo_auth`` makes error
payloads quote the ``Authorization`` header back, as some proxies do (secret-hygiene tests).

``FAULTS`` lists the fault kinds with the outcome each must have in ``chat`` and
``chat_stream``; ``tests/integration/test_faults.py`` checks them and ``FAULTS.md`` shows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from openai_chatapi import (
    APIConnectionError,
    APIResponseError,
    APITimeoutError,
    ChatAgent,
    ChatAPIException,
    InternalServerError,
    RateLimitError,
)

from .loopback import SAFETY, Connection, Handler, LoopbackServer, Request
from .loopback import closed_port_url as closed_port_url

REPLY = "pong"
PIECES = ["po", "ng"]
STREAM_TEXT = "".join(PIECES)
BIG_ERROR_BYTES = 10 * 1024 * 1024

Mode = Literal["chat", "stream"]


# --------------------------------------------------------------------------- wire helpers


def completion_body(
    content: str | None = REPLY,
    *,
    choices: bool = True,
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    finish = "tool_calls" if tool_calls else "stop"
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fault-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}] if choices else [],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def chunk_body(
    delta: dict[str, Any] | None = None, *, finish: str | None = None, choices: bool = True
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "fault-model",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}] if choices else [],
    }


def event(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


DONE = b"data: [DONE]\n\n"
USAGE = event(
    {
        **chunk_body(choices=False),
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
)


def text_events(pieces: list[str] = PIECES, *, finish: bool = True) -> list[bytes]:
    """A streamed text reply: the role chunk, one chunk per piece, then finish and usage."""
    out = [event(chunk_body({"role": "assistant", "content": ""}))]
    out += [event(chunk_body({"content": piece})) for piece in pieces]
    if finish:
        out += [event(chunk_body(finish="stop")), USAGE]
    return out


def tool_call_wire(arguments: str, call_id: str = "call_1") -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": "lookup", "arguments": arguments},
    }


Behaviour = Callable[[Connection, Request], Awaitable[bool]]
"""Answers one request; returns whether the connection may serve another (keep-alive)."""


# --------------------------------------------------------------------------- behaviours


async def healthy(conn: Connection, request: Request) -> bool:
    """A correct answer: a completion, or a text stream when the request streams."""
    if request.wants_stream:
        await conn.sse([*text_events(), DONE])
    else:
        await conn.respond(200, json.dumps(completion_body()).encode())
    return True


def error_status(status: int, message: str = "try again", **headers: str) -> Behaviour:
    """An OpenAI-shaped error object with ``status``."""

    async def run(conn: Connection, request: Request) -> bool:
        payload = {"error": {"message": message + conn.leak, "type": "server_error", "code": None}}
        await conn.respond(status, json.dumps(payload).encode(), headers=dict(headers))
        return True

    return run


async def html_proxy_page(conn: Connection, request: Request) -> bool:
    """What nginx in front of a dead upstream sends."""
    page = (
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        f"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx{conn.leak}</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()
    await conn.respond(502, page, content_type="text/html")
    return True


async def big_error(conn: Connection, request: Request) -> bool:
    """A 500 whose body is 10 MB (a proxy dumping a page, a server dumping a trace)."""
    line = f"Traceback (most recent call last): frame {conn.leak}\n".encode()
    body = (line * (BIG_ERROR_BYTES // len(line) + 1))[:BIG_ERROR_BYTES]
    with contextlib.suppress(ConnectionError):
        await conn.respond(500, body, content_type="text/plain")
    return False


async def reset_mid_body(conn: Connection, request: Request) -> bool:
    """Headers promise a full body; half of it arrives, then a TCP reset."""
    if request.wants_stream:
        await conn.head(200, content_type="text/event-stream")
        await conn.write(b"5\r\ndat")  # half an HTTP chunk, no event yet
    else:
        body = json.dumps(completion_body()).encode()
        await conn.head(200, length=len(body))
        await conn.write(body[: len(body) // 2])
    await conn.reset()
    return False


async def reset_mid_stream(conn: Connection, request: Request) -> bool:
    """Some events arrive (the client shows text), then a TCP reset."""
    await conn.sse(text_events(PIECES[:1], finish=False), end=False)
    await conn.client_progress()
    await conn.reset()
    return False


async def stall_before_headers(conn: Connection, request: Request) -> bool:
    await conn.stall()
    return False


async def stall_mid_body(conn: Connection, request: Request) -> bool:
    """Part of the answer, then silence until the client times out."""
    if request.wants_stream:
        await conn.sse(text_events(PIECES[:1], finish=False), end=False)
    else:
        body = json.dumps(completion_body()).encode()
        await conn.head(200, length=len(body))
        await conn.write(body[:20])
    await conn.stall()
    return False


async def stall_after_done(conn: Connection, request: Request) -> bool:
    """A complete stream up to ``[DONE]``, but the HTTP body never ends."""
    await conn.sse([*text_events(), DONE], end=False)
    await conn.stall()
    return False


async def invalid_json(conn: Connection, request: Request) -> bool:
    """200 with a body that is not JSON (the client may ask for a stream: it gets this)."""
    body = f'{{"id": "chatcmpl-x", "choices": [{{"message": oops{conn.leak}'.encode()
    await conn.respond(200, body)
    return True


async def truncated(conn: Connection, request: Request) -> bool:
    """The body ends early but cleanly: no [DONE], no finish reason (chat: half the JSON)."""
    if request.wants_stream:
        await conn.sse(text_events(finish=False))
    else:
        body = json.dumps(completion_body()).encode()
        await conn.respond(200, body[: len(body) // 2])
    return True


async def malformed_sse(conn: Connection, request: Request) -> bool:
    """A ``data:`` line whose JSON is cut off in the middle of a stream."""
    bad = f'data: {{"id": "chatcmpl-fault", "choices": [{{"delta": {{"content": "x{conn.leak}'
    await conn.sse([*text_events(PIECES[:1], finish=False), bad.encode() + b"\n\n", DONE])
    return True


async def error_mid_stream(conn: Connection, request: Request) -> bool:
    """An error object where a chunk should be (chat: a 200 whose body is an error object)."""
    payload = {"error": {"message": f"model overloaded{conn.leak}", "type": "server_error"}}
    if request.wants_stream:
        await conn.sse([*text_events(PIECES[:1], finish=False), event(payload)])
    else:
        await conn.respond(200, json.dumps(payload).encode())
    return True


async def empty_choices(conn: Connection, request: Request) -> bool:
    if request.wants_stream:
        await conn.sse([event(chunk_body(choices=False)), USAGE, DONE])
    else:
        await conn.respond(200, json.dumps(completion_body(choices=False)).encode())
    return True


async def null_content(conn: Connection, request: Request) -> bool:
    if request.wants_stream:
        events = [
            event(chunk_body({"role": "assistant", "content": None})),
            event(chunk_body({"content": None}, finish="stop")),
            DONE,
        ]
        await conn.sse(events)
    else:
        await conn.respond(200, json.dumps(completion_body(None)).encode())
    return True


BAD_ARGUMENTS = '{"city": "Oslo", '


def calls_tool(arguments: str) -> Behaviour:
    """The model calls the registered tool ``lookup`` with ``arguments`` (any text)."""

    async def run(conn: Connection, request: Request) -> bool:
        call = tool_call_wire(arguments)
        if request.wants_stream:
            delta = {"tool_calls": [{"index": 0, **call}]}
            events = [
                event(chunk_body({"role": "assistant", "content": None})),
                event(chunk_body(delta)),
                event(chunk_body(finish="tool_calls")),
                DONE,
            ]
            await conn.sse(events)
        else:
            body = completion_body(None, tool_calls=[call])
            await conn.respond(200, json.dumps(body).encode())
        return True

    return run


bad_tool_arguments = calls_tool(BAD_ARGUMENTS)


INVALID_UTF8 = b"caf\xc3 \xff\xfe ok"  # a cut two-byte character and two bytes never valid


async def invalid_utf8(conn: Connection, request: Request) -> bool:
    if request.wants_stream:
        head = json.dumps(chunk_body({"content": "@@"})).encode()
        bad = b"data: " + head.replace(b"@@", INVALID_UTF8) + b"\n\n"
        await conn.sse([bad, event(chunk_body(finish="stop")), DONE])
    else:
        body = json.dumps(completion_body("@@")).encode().replace(b"@@", INVALID_UTF8)
        await conn.respond(200, body)
    return True


UTF8_REPLACED = INVALID_UTF8.decode("utf-8", "replace")


# --------------------------------------------------------------------------- the server


class FaultServer(LoopbackServer):
    """The loopback server answering with fault behaviours (the healthy one by default);
    ``echo_auth`` makes error payloads quote the ``Authorization`` header back."""

    def __init__(self) -> None:
        super().__init__(healthy)
        self.echo_auth = False

    def handler_for(self, conn: Connection, request: Request) -> Handler:
        conn.leak = f" {request.headers.get('authorization', '')}" if self.echo_auth else ""
        return super().handler_for(conn, request)

    def reset_script(self, default: Handler | None = None) -> None:
        super().reset_script(default or healthy)


# --------------------------------------------------------------------------- pool inspection


def pool_of(agent: ChatAgent) -> Any:
    """The httpcore connection pool behind the agent (private attributes, tests only)."""
    client = agent._transport._client
    assert client is not None, "the agent is not open"
    return client._transport._pool  # type: ignore[attr-defined]


def pool_states(agent: ChatAgent) -> list[str]:
    return [connection.info() for connection in pool_of(agent).connections]


async def assert_released(agent: ChatAgent, server: FaultServer) -> None:
    """No request holds a connection, and every socket the server still has open is one the
    client keeps idle in its pool (the rest were closed, not leaked). Stream ends still being
    read in the background (for connection reuse) are waited for first."""
    await asyncio.wait_for(agent._transport.settled(), SAFETY)
    pool = pool_of(agent)
    assert not pool._requests, f"requests still hold or wait for connections: {pool._requests}"
    connections = pool.connections
    busy = [c.info() for c in connections if not (c.is_idle() or c.is_closed())]
    assert not busy, f"connections still in use: {busy}"
    kept = sum(1 for c in connections if c.is_idle() and not c.is_closed())
    await server.wait_open_at_most(kept)


# --------------------------------------------------------------------------- the fault table


@dataclass(frozen=True)
class Outcome:
    """What one call under a fault must end with.

    ``error`` is the exception raised with ``max_retries=0`` (None: the call succeeds and
    returns ``reply``). ``partial`` means a stream yields text before it fails. ``retried``
    means the transport/agent retries it, so N faults followed by a healthy answer succeed
    with ``max_retries=N``.
    """

    error: type[ChatAPIException] | None
    reply: str | None = None
    partial: bool = False
    retried: bool = False
    text: str = ""  # fragments of the error message, "|" between alternatives
    note: str = ""


@dataclass(frozen=True)
class Fault:
    kind: str
    what: str
    behaviour: Behaviour | None  # None: set up by the test itself (refused connections)
    chat: Outcome | None
    stream: Outcome | None
    retry_after: float | None = None  # the delay the server asks for, when it asks
    extra: dict[str, Any] = field(default_factory=dict)

    def outcome(self, mode: Mode) -> Outcome | None:
        return self.chat if mode == "chat" else self.stream


def _rate_limited(header: str, value: str, delay: float) -> Fault:
    """HTTP 429 whose ``header: value`` asks for a wait of ``delay`` seconds."""
    note = f"waits the {delay:g} s asked"
    outcome = Outcome(RateLimitError, retried=True, text="HTTP 429", note=note)
    behaviour = error_status(429, "slow down", **{header: value})
    what = f"HTTP 429 with `{header}: {value}`"
    return Fault(f"429-{header.lower()}", what, behaviour, outcome, outcome, retry_after=delay)


def _server_error(status: int) -> Fault:
    """An HTTP 5xx ``status`` with an OpenAI-shaped error object."""
    outcome = Outcome(InternalServerError, retried=True, text=f"HTTP {status}")
    what = f"HTTP {status} with an error object"
    return Fault(str(status), what, error_status(status), outcome, outcome)


# Outcomes by name; the table below pairs each fault with its ``chat`` and ``chat_stream`` one.
_CONN = Outcome(APIConnectionError, retried=True, text="connection failed")
_CONN_NO_EVENT_YET = Outcome(
    APIConnectionError,
    retried=True,
    text="stream interrupted|connection failed",
    note="no event yet, so the agent retries the stream",
)
_CUT_AFTER_TEXT = Outcome(
    APIConnectionError, partial=True, text="stream interrupted", note="text was already delivered"
)
_TIMEOUT = Outcome(APITimeoutError, retried=True, text="timed out")
_TIMEOUT_AFTER_TEXT = Outcome(
    APITimeoutError, partial=True, text="stream timed out", note="text was already delivered"
)
_DONE_THEN_STALL = Outcome(None, reply=STREAM_TEXT, note="the connection is closed, not reused")
_HTML_PAGE = Outcome(InternalServerError, retried=True, text="non-JSON error page")
_NOT_JSON = Outcome(APIResponseError, text="invalid chat completion")
_NOT_JSON_STREAM = Outcome(
    APIResponseError,
    text="invalid chat completion",
    note="a JSON answer to a stream request is parsed as a completion",
)
_HALF_JSON = Outcome(APIResponseError, text="invalid chat completion", note="half a JSON body")
_STREAM_TRUNCATED = Outcome(APIResponseError, partial=True, text="stream truncated")
_BAD_EVENT = Outcome(APIResponseError, partial=True, text="not valid JSON")
_OVERLOADED = Outcome(APIResponseError, text="model overloaded")
_OVERLOADED_AFTER_TEXT = Outcome(APIResponseError, partial=True, text="model overloaded")
_NO_CHOICES = Outcome(APIResponseError, text="no choices")
_EMPTY_REPLY = Outcome(None, reply="")
_FED_BACK = "the error is fed back; the model answers"
_ANSWERS_AFTER_BAD_ARGS = Outcome(None, reply=REPLY, note=_FED_BACK)
_STREAMS_AFTER_BAD_ARGS = Outcome(None, reply=STREAM_TEXT, note=_FED_BACK)
_BIG_BODY_READ_IN_PART = Outcome(
    InternalServerError, retried=True, text="HTTP 500", note="only 64 KiB are read"
)
_UTF8_REPLACED = Outcome(None, reply=UTF8_REPLACED, note="invalid bytes become U+FFFD")

FAULTS: dict[str, Fault] = {
    f.kind: f
    for f in [
        Fault(
            "refused",
            "connection refused (nothing listens)",
            None,
            _CONN,
            _CONN,
        ),
        Fault(
            "reset-mid-body",
            "TCP reset after the headers and part of the body",
            reset_mid_body,
            _CONN,
            _CONN_NO_EVENT_YET,
        ),
        Fault(
            "reset-mid-stream",
            "TCP reset after some events were delivered",
            reset_mid_stream,
            None,
            _CUT_AFTER_TEXT,
        ),
        Fault(
            "stall-before-headers",
            "request read, no answer (read timeout)",
            stall_before_headers,
            _TIMEOUT,
            _TIMEOUT,
        ),
        Fault(
            "stall-mid-body",
            "headers and part of the body/stream, then silence (read timeout)",
            stall_mid_body,
            _TIMEOUT,
            _TIMEOUT_AFTER_TEXT,
        ),
        Fault(
            "stall-after-done",
            "a complete stream, `[DONE]`, then the HTTP body never ends",
            stall_after_done,
            None,
            _DONE_THEN_STALL,
        ),
        _rate_limited("Retry-After", "2", 2.0),
        _rate_limited("retry-after-ms", "250", 0.25),
        *(_server_error(status) for status in (500, 502, 503, 504)),
        Fault(
            "html-proxy-page",
            "HTTP 502 with nginx's HTML error page",
            html_proxy_page,
            _HTML_PAGE,
            _HTML_PAGE,
        ),
        Fault(
            "invalid-json-200",
            "HTTP 200 whose body is not JSON",
            invalid_json,
            _NOT_JSON,
            _NOT_JSON_STREAM,
        ),
        Fault(
            "truncated",
            "body ends cleanly but early (stream: no [DONE], no finish reason)",
            truncated,
            _HALF_JSON,
            _STREAM_TRUNCATED,
        ),
        Fault(
            "malformed-sse",
            "a `data:` line with cut-off JSON mid-stream",
            malformed_sse,
            None,
            _BAD_EVENT,
        ),
        Fault(
            "error-mid-stream",
            "an error object instead of a chunk (chat: a 200 whose body is an error)",
            error_mid_stream,
            _OVERLOADED,
            _OVERLOADED_AFTER_TEXT,
        ),
        Fault(
            "empty-choices",
            "a completion (or a whole stream) with `choices: []`",
            empty_choices,
            _NO_CHOICES,
            _NO_CHOICES,
        ),
        Fault(
            "null-content",
            "`content: null` and no tool calls",
            null_content,
            _EMPTY_REPLY,
            _EMPTY_REPLY,
        ),
        Fault(
            "bad-tool-arguments",
            "a call to a registered tool whose arguments are not JSON",
            bad_tool_arguments,
            _ANSWERS_AFTER_BAD_ARGS,
            _STREAMS_AFTER_BAD_ARGS,
        ),
        Fault(
            "10mb-error-body",
            "HTTP 500 with a 10 MB text body",
            big_error,
            _BIG_BODY_READ_IN_PART,
            _BIG_BODY_READ_IN_PART,
        ),
        Fault(
            "invalid-utf8",
            "invalid UTF-8 bytes inside the reply text",
            invalid_utf8,
            _UTF8_REPLACED,
            _UTF8_REPLACED,
        ),
    ]
}


def _cell(outcome: Outcome | None, fault: Fault) -> str:
    if outcome is None:
        return "n/a (see the row above)" if fault.kind == "reset-mid-stream" else "n/a"
    if outcome.error is None:
        text = f"success, reply `{outcome.reply!r}`"
    else:
        text = f"`{outcome.error.__name__}`"
        if outcome.partial:
            text += " after the text so far was yielded"
        text += "; retried ✓" if outcome.retried else "; not retried"
    if outcome.note:
        text += f"; {outcome.note}"
    return text


def render_table() -> str:
    """The markdown table of ``tests/support/FAULTS.md`` (kept in sync by a test)."""
    lines = [
        "| # | fault kind | what the server does | `chat` | `chat_stream` |",
        "|---|---|---|---|---|",
    ]
    for number, fault in enumerate(FAULTS.values(), 1):
        lines.append(
            f"| {number} | `{fault.kind}` | {fault.what} | {_cell(fault.chat, fault)} "
            f"| {_cell(fault.stream, fault)} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- test harness

KEY = "sk-fault-KEY-5d9e2c71a8b34f06"


class Sleeps:
    """The agent's injected sleep: records each delay, waits for none, and runs hooks
    (``on(n, hook)`` runs ``hook`` during the n-th sleep, e.g. to start listening again)."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._hooks: dict[int, Callable[[], Awaitable[None]]] = {}

    def on(self, n: int, hook: Callable[[], Awaitable[None]]) -> None:
        self._hooks[n] = hook

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        hook = self._hooks.pop(len(self.delays), None)
        if hook is not None:
            await hook()
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def running_server() -> Any:
    """A started ``FaultServer``, stopped on exit (use it in a fixture)."""
    server = FaultServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def make_agent(
    server: FaultServer,
    sleeps: Sleeps | None = None,
    *,
    url: str | None = None,
    api_key: str = KEY,
    **runtime: Any,
) -> ChatAgent:
    """An agent for the fault server: tiny timeouts, a one-connection pool, a prior history
    and the tool ``lookup`` registered. Open it with ``async with``."""
    from openai_chatapi import ChatMessage, ModelConfig, RuntimeConfig

    options: dict[str, Any] = {
        "enable_logging": False,
        "timeout": 0.5,
        "retry_delay": 0.01,
        "max_connections": 1,
        "max_keepalive_connections": 1,
        **runtime,
    }
    agent = ChatAgent(
        ModelConfig(api_base_url=url or server.url, api_key=api_key, model="fault-model"),
        RuntimeConfig(**options),
        sleep=sleeps or Sleeps(),
    )
    agent.set_system_prompt("Answer briefly.")
    agent.add_message(ChatMessage(role="user", content="earlier question"))
    agent.add_message(ChatMessage(role="assistant", content="earlier answer"))

    def lookup(city: str) -> str:
        """Look a city up."""
        return f"{city}: sunny"

    agent.register_tool(lookup)
    return agent


async def call(agent: ChatAgent, server: FaultServer, mode: Mode, *args: Any, **kwargs: Any) -> str:
    """``raw_call`` (the same arguments), bounded by SAFETY."""
    return await asyncio.wait_for(raw_call(agent, server, mode, *args, **kwargs), SAFETY)


async def raw_call(
    agent: ChatAgent,
    server: FaultServer,
    mode: Mode,
    pieces: list[str] | None = None,
    text: str = "question",
    **kwargs: Any,
) -> str:
    """One ``chat`` or ``chat_stream`` call; streamed pieces are appended to ``pieces`` as they
    arrive (and reported to the server, which some faults wait for)."""
    if mode == "chat":
        reply: str = await agent.chat(text, **kwargs)
        return reply
    got = pieces if pieces is not None else []
    kwargs.setdefault("display_stream", False)
    async for piece in agent.chat_stream(text, **kwargs):
        got.append(piece)
        server.progress.set()
    return "".join(got)


def healthy_reply(mode: Mode) -> str:
    return REPLY if mode == "chat" else STREAM_TEXT


if __name__ == "__main__":  # python -m tests.support.fault_server: the table of FAULTS.md
    print(render_table())
