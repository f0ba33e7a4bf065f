"""Replaying recorded exchanges: a loopback HTTP server and the call that reproduces a request.

The recordings live in ``../shared/conformance/`` (read at run time, never copied). Each one
is served by :class:`ReplayServer`, the loopback server of ``loopback.py`` on ``127.0.0.1``, and
:func:`plan_call` works out which public ``ChatAgent`` calls make the recorded request:
the history is seeded with ``ChatMessage`` objects, the recorded tools are registered as
hand-made ``Tool`` definitions, and a recorded conversation that ends in tool results is
reached through ``chat(..., auto_execute_tools=False)`` + ``submit_tool_results``, the
model's earlier tool-call turns being served back from the recorded request itself.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openai_chatapi import (
    AudioPart,
    ChatMessage,
    ConfigurationError,
    FilePart,
    ImagePart,
    ModelConfig,
    TextPart,
    Tool,
    VideoPart,
)
from openai_chatapi._config import SAMPLING_FIELDS

from .loopback import Connection, LoopbackServer, Request, response_bytes

__all__ = [
    "Exchange",
    "ReplayPlan",
    "ReplayServer",
    "Round",
    "as_sent",
    "load_exchanges",
    "plan_call",
    "wire_text",
]

# Request fields the client can set through ModelConfig (validated there).
_MODEL_FIELDS = SAMPLING_FIELDS
# Request fields handled by the call itself.
_CALL_FIELDS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
    }
)
_OPENAI_HOST = re.compile(r"\bhost api\.openai\.com\b")


# --------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Exchange:
    """One recorded exchange: the request sent, the raw response and the expected outcome."""

    path: Path
    relpath: str
    source: str
    request: dict[str, Any]
    response: dict[str, Any]
    expect: dict[str, Any]

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = self.request["body"]
        return body

    @property
    def folder(self) -> str:
        return self.relpath.split("/", 1)[0]

    @property
    def from_openai(self) -> bool:
        """Recorded from OpenAI's own API (strict parsing must accept it too)."""
        return bool(_OPENAI_HOST.search(self.source))

    @classmethod
    def load(cls, path: Path, root: Path) -> Exchange:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            path=path,
            relpath=path.relative_to(root).as_posix(),
            source=str(data.get("source", "")),
            request=data["request"],
            response=data["response"],
            expect=data["expect"],
        )


def load_exchanges(root: Path) -> list[Path]:
    """Every ``*.json`` exchange below ``root`` (all folders), in a stable order."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*.json") if p.is_file())


# --------------------------------------------------------------------------- loopback server


@dataclass(frozen=True)
class Canned:
    """A response to serve: status, content type and the raw body (sent in pieces if asked)."""

    status: int
    content_type: str
    body: bytes
    piece: int = 0  # > 0: send the body in pieces of this many bytes (chunked encoding)


class ReplayServer(LoopbackServer):
    """The loopback server (``loopback.py``, in a background thread) answering from a queue.

    Every request is recorded; an unexpected request (empty queue) gets a 599 so the test
    fails with a clear message rather than hanging.
    """

    def __init__(self) -> None:
        super().__init__(self._answer)
        self._lock = threading.Lock()
        self._replies: deque[Canned | Callable[[Request], Canned]] = deque()

    @property
    def base_url(self) -> str:
        return self.url

    @property
    def received(self) -> list[Request]:
        return self.requests

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
            self.requests.clear()

    def queue(self, reply: Canned | Callable[[Request], Canned]) -> None:
        with self._lock:
            self._replies.append(reply)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._replies)

    def _answer(self, conn: Connection, request: Request) -> bytes | Awaitable[bool]:
        with self._lock:
            reply = self._replies.popleft() if self._replies else None
        if callable(reply):
            reply = reply(request)
        if reply is None:
            reply = Canned(599, "text/plain", b"loopback server: no reply queued")
        if reply.piece <= 0:
            return response_bytes(reply.status, reply.body, content_type=reply.content_type)
        return _in_pieces(conn, reply)


async def _in_pieces(conn: Connection, reply: Canned) -> bool:
    """The body in pieces of ``reply.piece`` bytes, one HTTP chunk each."""
    await conn.head(reply.status, content_type=reply.content_type)
    body = reply.body
    for start in range(0, len(body), reply.piece):
        await conn.chunk(body[start : start + reply.piece])
    await conn.end_chunks()
    return True


def recorded_reply(exchange: Exchange) -> Canned:
    """The recorded response as it was sent: streams in small pieces, JSON in one go."""
    response = exchange.response
    content_type = str(response.get("content_type") or "application/json")
    streamed = content_type.startswith("text/event-stream")
    return Canned(
        status=int(response["status"]),
        content_type=content_type,
        body=str(response["body"]).encode("utf-8"),
        piece=61 if streamed else 0,
    )


def synthesized_turn(model: str, message: dict[str, Any], *, stream: bool, number: int) -> Canned:
    """The model's earlier tool-call turn (taken from the recorded request) as a response."""
    calls = [
        {
            "id": call.get("id"),
            "type": "function",
            "function": {
                "name": (call.get("function") or {}).get("name"),
                "arguments": (call.get("function") or {}).get("arguments") or "",
            },
        }
        for call in message.get("tool_calls") or []
    ]
    content = wire_text(message.get("content")) or None
    # Shaped exactly as OpenAI answers, so that strict parsing accepts it too.
    header = {"id": f"replay-{number}", "created": 0, "model": model}
    if not stream:
        body = {
            **header,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": content,
                        "refusal": None,
                        "tool_calls": calls,
                    },
                    "logprobs": None,
                    "finish_reason": "tool_calls",
                }
            ],
        }
        return Canned(200, "application/json", json.dumps(body).encode())
    delta: dict[str, Any] = {"role": "assistant", "content": content}
    delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(calls)]
    chunk = {
        **header,
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": "tool_calls"}],
    }
    text = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n"
    return Canned(200, "text/event-stream", text.encode())


# --------------------------------------------------------------------------- planning


def wire_text(content: Any) -> str:
    """The text of a wire message content (text parts joined; media and None give '')."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text") or "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return str(content)


@dataclass
class Round:
    """One earlier tool round: the model's tool-call message and the recorded answers."""

    assistant: dict[str, Any]
    results: list[dict[str, Any]]


@dataclass
class ReplayPlan:
    """The public ``ChatAgent`` calls that reproduce one recorded request."""

    stream: bool
    model: dict[str, Any]
    runtime: dict[str, Any]
    history: list[ChatMessage]
    text: str
    images: list[ImagePart] = field(default_factory=list)
    videos: list[VideoPart] = field(default_factory=list)
    audio: list[AudioPart] = field(default_factory=list)
    files: list[FilePart] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    call: dict[str, Any] = field(default_factory=dict)  # tool_choice, response_format, ...
    rounds: list[Round] = field(default_factory=list)
    exact_messages: bool = True
    """False when the client cannot produce the recorded messages (then they are not compared)."""
    dropped: list[str] = field(default_factory=list)
    """Recorded request features the client has no way to send (for the record)."""

    @property
    def use_events(self) -> bool:
        """Stream through ``chat_stream_events`` (else through ``chat`` / tool submission)."""
        return self.stream and not self.rounds and "response_format" not in self.call


def _message(wire: dict[str, Any]) -> ChatMessage:
    """An earlier message of the recorded request, given to the client exactly as a user
    holding that conversation would: ``ChatMessage(**message)``."""
    return ChatMessage(**wire)


def _tools(body: dict[str, Any], dropped: list[str]) -> list[Tool]:
    tools: list[Tool] = []
    for entry in body.get("tools") or []:
        function = entry.get("function") if isinstance(entry, dict) else None
        if entry.get("type") != "function" or not isinstance(function, dict):
            dropped.append(f"tool of type {entry.get('type')!r}")
            continue
        parameters = function.get("parameters")
        tools.append(
            Tool(
                name=function["name"],
                description=function.get("description") or "",
                parameters=parameters
                if isinstance(parameters, dict)
                else {"type": "object", "properties": {}},
                strict=function.get("strict"),
            )
        )
    return tools


def _model_fields(body: dict[str, Any], dropped: list[str]) -> dict[str, Any]:
    fields = {"model": body["model"]}
    for name in _MODEL_FIELDS:
        if name not in body or body[name] is None:
            continue
        try:
            # Cumulative: top_logprobs is only valid beside logprobs (which comes first).
            ModelConfig(api_base_url="http://127.0.0.1/v1", **fields, **{name: body[name]})
        except ConfigurationError as exc:
            dropped.append(f"{name}={body[name]!r} refused by ModelConfig ({exc})")
            continue
        fields[name] = body[name]
    for name in sorted(set(body) - set(_MODEL_FIELDS) - _CALL_FIELDS):
        dropped.append(f"request field {name!r} (no client option for it)")
    return fields


def plan_call(exchange: Exchange) -> ReplayPlan:
    """Work out the calls that make the recorded request (as closely as the client can)."""
    body = exchange.body
    dropped: list[str] = []
    stream = bool(body.get("stream"))
    options = body.get("stream_options") or {}
    runtime = {"stream_include_usage": bool(options.get("include_usage"))}
    model = _model_fields(body, dropped)
    tools = _tools(body, dropped)
    call: dict[str, Any] = {}
    if tools and body.get("tool_choice") is not None:
        call["tool_choice"] = body["tool_choice"]
    if tools and body.get("parallel_tool_calls") is not None:
        call["parallel_tool_calls"] = body["parallel_tool_calls"]
    if body.get("response_format") is not None:
        call["response_format"] = body["response_format"]
    plan = ReplayPlan(
        stream=stream, model=model, runtime=runtime, history=[], text="", tools=tools, call=call
    )
    plan.dropped = dropped
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        # A deliberately malformed request: the client cannot send it; replay the answer.
        plan.exact_messages = False
        plan.text = "hello"
        dropped.append("malformed 'messages' (not a list of messages)")
        return plan
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not users:
        # The client always ends a call with a user message: it cannot send this request.
        plan.exact_messages = False
        plan.history = [_message(m) for m in messages]
        dropped.append("no user message (the client always sends one)")
        return plan
    last = users[-1]
    plan.history = [_message(m) for m in messages[:last]]
    # The last user message is what the call sends: its text, and its media as the
    # call's media arguments (the wire parts read through ChatMessage, as a user would).
    content = _message(messages[last]).content
    if isinstance(content, list):
        for part in content:
            if isinstance(part, TextPart):
                plan.text += part.text
            elif isinstance(part, ImagePart):
                plan.images.append(part)
            elif isinstance(part, VideoPart):
                plan.videos.append(part)
            elif isinstance(part, AudioPart):
                plan.audio.append(part)
            elif isinstance(part, FilePart):
                plan.files.append(part)
    else:
        plan.text = wire_text(content)
    tail = messages[last + 1 :]
    while tail:
        head = tail[0]
        if head.get("role") != "assistant" or not head.get("tool_calls"):
            plan.exact_messages = False
            dropped.append("conversation tail the client cannot produce")
            break
        results = []
        tail = tail[1:]
        while tail and tail[0].get("role") == "tool":
            results.append(tail[0])
            tail = tail[1:]
        plan.rounds.append(Round(head, results))
    return plan


# Fields the wire format allows on one role only; on another they are kept, not sent.
_ROLE_ONLY = {"refusal": "assistant", "audio": "assistant", "tool_call_id": "tool"}

# What the client sends of a message: the wire format's request keys, never null.
_SENT_KEYS = (
    "role",
    "content",
    "name",
    "refusal",
    "audio",
    "tool_calls",
    "function_call",
    "tool_call_id",
)
_BREAK = "prompt_cache_breakpoint"
_PART_KEYS = {
    "text": ("type", "text", _BREAK),
    "refusal": ("type", "refusal"),
    "image_url": ("type", "image_url", _BREAK),
    "video_url": ("type", "video_url", _BREAK),
    "input_audio": ("type", "input_audio", _BREAK),
    "file": ("type", "file", _BREAK),
}


def _sent_part(part: dict[str, Any]) -> dict[str, Any]:
    keys = _PART_KEYS.get(str(part.get("type")), tuple(part))
    return {k: part[k] for k in keys if part.get(k) is not None}


def _sent_call(call: dict[str, Any]) -> dict[str, Any]:
    if call.get("type") not in (None, "function"):
        return {k: v for k, v in call.items() if v is not None}
    function = call.get("function") or {}
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {
            "name": function.get("name") or "",
            "arguments": function.get("arguments") or "{}",
        },
    }


def as_sent(message: dict[str, Any], *, by_chat: bool = False) -> dict[str, Any]:
    """A wire message as the client sends it back: the documented drops applied.

    Dropped: null fields, the reasoning (``reasoning``, ``reasoning_content``),
    ``annotations``, an empty ``tool_calls``, keys the wire format does not define (in the
    message and in its content parts) or does not allow on the message's role; ``audio`` is
    reduced to its ``id``; a missing or null ``content`` is sent as ``""`` (llama.cpp refuses
    it missing or null). ``by_chat``:
    the message is the one ``chat(text, ...)`` sends, whose text-only content is a string.
    """
    sent: dict[str, Any] = {}
    for key in _SENT_KEYS:
        value = message.get(key)
        if value is None or (key == "tool_calls" and not value):
            continue
        if key in _ROLE_ONLY and message.get("role") != _ROLE_ONLY[key]:
            continue  # a field the wire format does not allow on this role: kept, not sent
        if key == "content" and isinstance(value, list):
            value = [_sent_part(part) for part in value]
        elif key == "tool_calls":
            value = [_sent_call(call) for call in value]
        elif key == "audio":
            value = {"id": value["id"]}
        elif key == "function_call":
            value = {"name": value.get("name") or "", "arguments": value.get("arguments") or "{}"}
        sent[key] = value
    sent.setdefault("content", "")
    content = sent["content"]
    if by_chat and isinstance(content, list) and all(p.get("type") == "text" for p in content):
        sent["content"] = "".join(p.get("text") or "" for p in content)
    return sent


def iter_texts(messages: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """(role, text) of each wire message."""
    for message in messages:
        yield str(message.get("role")), wire_text(message.get("content"))
