"""A small fake OpenAI-compatible HTTP server on 127.0.0.1, for driving the CLI as a subprocess.

It is a real socket server (stdlib ``ThreadingHTTPServer`` in a thread) so the CLI runs exactly
as a user runs it. It records every request and answers:

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

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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


def _handler(state: CLIFakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection; a stream ends at close

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _json(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self, body: Any) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.record(Recorded(self.command, self.path, headers, body))

        def do_GET(self) -> None:
            self._record(None)
            if self.path.rstrip("/").endswith("/models"):
                data = [{"id": m, "object": "model", "owned_by": "fake"} for m in state.models]
                listing = {"object": "list", "data": data}
                self._json(200, listing if state.models_body is None else state.models_body)
            else:
                self._json(404, {"detail": "Not Found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                self._record(raw.decode("utf-8", "replace"))
                self._json(400, {"error": {"message": "bad JSON", "type": "invalid_request"}})
                return
            self._record(body)
            if not self.path.endswith("/chat/completions"):
                self._json(404, {"detail": "Not Found"})
                return
            model = body.get("model")
            if model not in state.models:
                self._json(
                    404,
                    {
                        "error": {
                            "message": state.unknown_model_message
                            or f"The model `{model}` does not exist.",
                            "type": "invalid_request_error",
                            "param": "model",
                            "code": "model_not_found",
                        }
                    },
                )
                return
            message = state.reply_for(body)
            if body.get("stream"):
                self._stream(body, message)
            else:
                self._complete(body, message)

        def _complete(self, body: dict[str, Any], message: dict[str, Any]) -> None:
            text = message.get("content") or ""
            finish = "tool_calls" if message.get("tool_calls") else "stop"
            self._json(
                200,
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": _usage(body, text),
                },
            )

        def _event(self, payload: Any) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()

        def _stream(self, body: dict[str, Any], message: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            base = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body["model"],
            }

            def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
                choice = {"index": 0, "delta": delta, "finish_reason": finish}
                return {**base, "choices": [choice]}

            try:
                self._event(chunk({"role": "assistant", "content": ""}))
                text = message.get("content") or ""
                if message.get("tool_calls"):
                    for index, call in enumerate(message["tool_calls"]):
                        self._event(chunk({"tool_calls": [{"index": index, **call}]}))
                    finish = "tool_calls"
                else:
                    stall = state.stall_on is not None and state.stall_on in _last_text(body)
                    words = text.split(" ")
                    for i, word in enumerate(words):
                        self._event(chunk({"content": word if i == 0 else " " + word}))
                        if i == 0 and stall:
                            state.stream_started.set()
                            state.release.wait(STALL_LIMIT)
                    finish = "stop"
                self._event(chunk({}, finish))
                if (body.get("stream_options") or {}).get("include_usage"):
                    self._event({**base, "choices": [], "usage": _usage(body, text)})
                self._event("[DONE]")
            except OSError:
                pass  # the client went away (cancelled)

    return Handler


class running_server:
    """``with running_server(state) as state:`` serves ``state`` on a free loopback port."""

    def __init__(self, state: CLIFakeServer) -> None:
        self.state = state
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> CLIFakeServer:
        port = self._httpd.server_address[1]
        self.state.base_url = f"http://127.0.0.1:{port}/v1"
        self._thread.start()
        return self.state

    def __exit__(self, *exc: object) -> None:
        self.state.release.set()  # let stalled streams finish
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)
