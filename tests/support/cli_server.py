"""A small fake OpenAI-compatible HTTP server on 127.0.0.1, for driving the CLI as a subprocess.

It is a handler of the loopback server (``loopback.py``, run in a background thread), so the
CLI runs exactly as a user runs it, over real sockets. It records every request and answers:

- ``GET /v1/models``: the configured model ids;
- ``POST /v1/chat/completions`` (streamed or not): an unknown model gets OpenAI's 404
  ``model_not_found``; a request offering tools and not yet answering a tool call gets a call
  to the first tool with ``tool_arguments``; otherwise the reply is ``reply_text`` (default:
  ``"echo: <last user text>"``, or ``"tool said: <content>"`` after a tool result).

A streamed reply to a user message containing ``stall_on`` sends its first piece and then
waits for ``release`` (the test interrupts the client meanwhile); ``stream_started`` is set
when such a stream begins. ``unknown_model_message`` replaces the 404's message (servers that
do not name the model); ``models_body`` replaces the model list's body.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from .loopback import (
    LAST_CHUNK,
    Connection,
    Handler,
    LoopbackServer,
    Request,
    chunk_bytes,
    response_bytes,
)

__all__ = ["CLIFakeServer", "Recorded", "running_server"]

STALL_LIMIT = 60.0  # seconds a stalled stream waits before giving up by itself


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class CLIFakeServer:
    """What the fake server answers, and what it has received."""

    models: tuple[str, ...] = ("fake-model", "other-model")
    reply_text: str | None = None
    tool_arguments: dict[str, Any] = field(default_factory=dict)
    stall_on: str | None = None
    unknown_model_message: str | None = None
    models_body: Any = None
    requests: list[Recorded] = field(default_factory=list)
    stream_started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    base_url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def chat_bodies(self) -> list[dict[str, Any]]:
        """Bodies of the chat completion requests, in order."""
        with self._lock:
            return [r.body for r in self.requests if r.path.endswith("/chat/completions")]

    def record(self, item: Recorded) -> None:
        with self._lock:
            self.requests.append(item)

    def reply_for(self, body: dict[str, Any]) -> dict[str, Any]:
        """The assistant message for a chat request: a tool call or text."""
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        tools = body.get("tools") or []
        if tools and last.get("role") != "tool":
            name = tools[0]["function"]["name"]
            return {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call_{len(self.chat_bodies)}",
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(self.tool_arguments)},
                    }
                ],
            }
        if last.get("role") == "tool":
            text = f"tool said: {last.get('content')}"
        elif self.reply_text is not None:
            text = self.reply_text
        else:
            text = f"echo: {_last_text(body)}"
        return {"role": "assistant", "content": text}


def _last_text(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content")
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return content if isinstance(content, str) else ""


def _usage(body: dict[str, Any], text: str) -> dict[str, int]:
    prompt = sum(len(json.dumps(m)) // 4 + 1 for m in body.get("messages") or [])
    completion = max(1, len(text.split()))
    total = prompt + completion
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}


def _json(status: int, payload: Any) -> bytes:
    return response_bytes(status, json.dumps(payload).encode())


def _event(payload: Any) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return chunk_bytes(f"data: {data}\n\n".encode())


def _handler(state: CLIFakeServer) -> Handler:
    """The fake model as a handler of the loopback server."""

    def handle(conn: Connection, request: Request) -> bytes | Awaitable[bool]:
        state.record(Recorded(request.method, request.path, request.headers, request.json))
        if request.method == "GET":
            if request.path.rstrip("/").endswith("/models"):
                data = [{"id": m, "object": "model", "owned_by": "fake"} for m in state.models]
                listing = {"object": "list", "data": data}
                return _json(200, listing if state.models_body is None else state.models_body)
            return _json(404, {"detail": "Not Found"})
        body = request.json
        if not isinstance(body, dict):
            state.requests[-1].body = request.body.decode("utf-8", "replace")
            return _json(400, {"error": {"message": "bad JSON", "type": "invalid_request"}})
        if not request.path.endswith("/chat/completions"):
            return _json(404, {"detail": "Not Found"})
        model = body.get("model")
        if model not in state.models:
            error = {
                "message": state.unknown_model_message or f"The model `{model}` does not exist.",
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_found",
            }
            return _json(404, {"error": error})
        message = state.reply_for(body)
        if body.get("stream"):
            return _stream(conn, state, body, message)
        text = message.get("content") or ""
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        completion = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": _usage(body, text),
        }
        return _json(200, completion)

    return handle


async def _stream(
    conn: Connection, state: CLIFakeServer, body: dict[str, Any], message: dict[str, Any]
) -> bool:
    await conn.head(200, content_type="text/event-stream")
    base = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body["model"],
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {**base, "choices": [choice]}

    await conn.write(_event(chunk({"role": "assistant", "content": ""})))
    text = message.get("content") or ""
    if message.get("tool_calls"):
        for index, call in enumerate(message["tool_calls"]):
            await conn.write(_event(chunk({"tool_calls": [{"index": index, **call}]})))
        finish = "tool_calls"
    else:
        stall = state.stall_on is not None and state.stall_on in _last_text(body)
        words = text.split(" ")
        for i, word in enumerate(words):
            await conn.write(_event(chunk({"content": word if i == 0 else " " + word})))
            if i == 0 and stall:
                state.stream_started.set()
                await _released(state)
        finish = "stop"
    await conn.write(_event(chunk({}, finish)))
    if (body.get("stream_options") or {}).get("include_usage"):
        await conn.write(_event({**base, "choices": [], "usage": _usage(body, text)}))
    await conn.write(_event("[DONE]") + LAST_CHUNK)
    return True


async def _released(state: CLIFakeServer) -> None:
    """Wait (at most STALL_LIMIT) for the test to release a stalled stream."""
    await asyncio.to_thread(state.release.wait, STALL_LIMIT)


class running_server:
    """``with running_server(state) as state:`` serves ``state`` on a free loopback port
    (the loopback server in a background thread)."""

    def __init__(self, state: CLIFakeServer) -> None:
        self.state = state
        self._server = LoopbackServer(_handler(state), record=False)

    def __enter__(self) -> CLIFakeServer:
        self._server.__enter__()
        self.state.base_url = self._server.url
        return self.state

    def __exit__(self, *exc: object) -> None:
        self.state.release.set()  # let stalled streams finish
        self._server.__exit__(*exc)
