"""A programmable fake OpenAI-compatible server for unit tests (an httpx mock transport).

Tests queue responses and read back the requests the client really sent. It is handed to
``ChatAgent(http_transport=...)``: the client code under test is the real one.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from openai_chatapi._sse import ServerSentEvent, SSEDecoder

BASE_URL = "http://fake.test/v1"
API_KEY = "sk-test-SECRET-0123456789abcdef"
DEBUG_RUNTIME: dict[str, Any] = {
    "enable_logging": True,
    "enable_debug": True,
    "log_level": "DEBUG",
    "log_http_requests": True,
    "log_http_responses": True,
}
"""``RuntimeConfig`` options that log everything (the logging and secret-hygiene tests)."""


def completion(
    text: str | None = "Hello!",
    *,
    finish_reason: str = "stop",
    tool_calls: list[dict[str, Any]] | None = None,
    usage: tuple[int, int] | None = (10, 5),
    model: str = "test-model",
    reasoning: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A chat completion body as OpenAI sends it."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": usage[0] + usage[1],
        }
    if extra:
        body.update(extra)
    return body


def tool_call(call_id: str, name: str, arguments: dict[str, Any] | str) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def chunk(
    delta: dict[str, Any] | None = None,
    *,
    finish_reason: str | None = None,
    usage: tuple[int, int] | None = None,
    choices: bool = True,
    index: int = 0,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "test-model",
        "choices": [{"index": index, "delta": delta or {}, "finish_reason": finish_reason}]
        if choices
        else [],
    }
    if usage is not None:
        body["usage"] = {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": usage[0] + usage[1],
        }
    return body


def text_chunks(
    pieces: list[str], *, usage: tuple[int, int] | None = (7, 3), finish_reason: str = "stop"
) -> list[dict[str, Any]]:
    """The chunks of a streamed text reply: role, pieces, finish, usage (empty choices)."""
    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": piece}) for piece in pieces]
    out.append(chunk({}, finish_reason=finish_reason))
    if usage is not None:
        out.append(chunk(usage=usage, choices=False))
    return out


def sse(events: list[dict[str, Any] | str], *, done: bool = True) -> bytes:
    """An SSE body: each dict as a ``data:`` event (strings are sent raw), then ``[DONE]``."""
    parts = []
    for event in events:
        parts.append(event if isinstance(event, str) else f"data: {json.dumps(event)}\n\n")
    if done:
        parts.append("data: [DONE]\n\n")
    return "".join(parts).encode()


@dataclass
class Reply:
    """One queued answer: a status with a JSON or raw body, or a callable/exception."""

    status: int = 200
    json_body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stream_parts: list[bytes] | None = None
    error: Exception | None = None
    content_type: str | None = None


class _PartStream(httpx.AsyncByteStream):
    """A response body delivered in the given network chunks; records whether it was closed."""

    def __init__(self, parts: list[bytes], server: FakeServer) -> None:
        self._parts = parts
        self._server = server

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self._parts:
            if isinstance(part, Exception):
                raise part
            yield part

    async def aclose(self) -> None:
        self._server.closed_streams += 1


class FakeServer:
    """Answers requests from a queue (or a default) and records what it received."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default: Reply | None = None
        self.requests: list[httpx.Request] = []
        self.closed_streams = 0
        self.opened_streams = 0
        self.handler: Callable[[httpx.Request], httpx.Response] | None = None

    # queueing -----------------------------------------------------------
    def add(self, reply: Reply) -> FakeServer:
        self.replies.append(reply)
        return self

    def add_json(self, body: Any, status: int = 200, **headers: str) -> FakeServer:
        return self.add(Reply(status=status, json_body=body, headers=dict(headers)))

    def add_completion(self, text: str | None = "Hello!", **kwargs: Any) -> FakeServer:
        return self.add_json(completion(text, **kwargs))

    def add_stream(
        self, events: list[dict[str, Any] | str] | bytes, *, done: bool = True, split: int = 0
    ) -> FakeServer:
        body = events if isinstance(events, bytes) else sse(events, done=done)
        parts = [body] if split <= 0 else [body[i : i + split] for i in range(0, len(body), split)]
        return self.add(Reply(stream_parts=parts, content_type="text/event-stream"))

    def add_error(self, exc: Exception) -> FakeServer:
        return self.add(Reply(error=exc))

    # reading back --------------------------------------------------------
    @property
    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]

    @property
    def last_body(self) -> Any:
        return self.bodies[-1]

    # transport -----------------------------------------------------------
    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if self.handler is not None:
            return self.handler(request)
        reply = self.replies.popleft() if self.replies else self.default
        if reply is None:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        if reply.error is not None:
            raise reply.error
        headers = dict(reply.headers)
        if reply.stream_parts is not None:
            self.opened_streams += 1
            headers.setdefault("content-type", reply.content_type or "text/event-stream")
            return httpx.Response(
                reply.status, headers=headers, stream=_PartStream(reply.stream_parts, self)
            )
        if reply.raw is not None:
            if reply.content_type:
                headers.setdefault("content-type", reply.content_type)
            return httpx.Response(reply.status, headers=headers, content=reply.raw)
        return httpx.Response(reply.status, headers=headers, json=reply.json_body)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


class SleepRecorder:
    """An injected ``sleep`` that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def ask(
    agent: Any, server: FakeServer, how: str, text: str, reply: str = "Seen.", **media: Any
) -> str:
    """One turn through ``chat``, ``chat_stream`` or ``chat_stream_events`` (``how``) answered
    by ``reply`` (streamed in two pieces); the reply text."""
    from openai_chatapi import ContentDeltaEvent

    if how == "chat":
        server.add_completion(reply)
        return str(await agent.chat(text, **media))
    server.add_stream(text_chunks([reply[:2], reply[2:]]))
    if how == "stream":
        return "".join([p async for p in agent.chat_stream(text, display_stream=False, **media)])
    pieces = []
    async for event in agent.chat_stream_events(text, **media):
        if isinstance(event, ContentDeltaEvent):
            pieces.append(event.text)
    return "".join(pieces)


def calls_reply(*calls: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    """A completion that asks for ``calls`` (``tool_call(...)`` dicts)."""
    return completion(text, tool_calls=list(calls), finish_reason="tool_calls")


def decode_sse(pieces: Iterable[bytes]) -> list[ServerSentEvent]:
    """The events one ``SSEDecoder`` yields for ``pieces`` fed in turn, the final flush included."""
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for piece in pieces:
        events += decoder.feed(piece)
    return events + decoder.flush()
