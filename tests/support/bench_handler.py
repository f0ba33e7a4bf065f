"""The benchmarks' canned OpenAI-compatible answers, a handler of ``loopback.LoopbackServer``.

* ``POST /v1/chat/completions``: a canned completion (written at once, the server's fast path),
  or when the body has ``"stream": true`` an SSE stream of N content chunks in OpenAI chunk
  format, one HTTP chunk per event (as real servers send them), then a finish chunk, a usage
  chunk when ``stream_options.include_usage`` is true, and ``data: [DONE]``. N is the
  request's ``max_tokens`` / ``max_completion_tokens`` (default 16) or the ``x-bench-chunks``
  header. Every content chunk carries ``TOKEN``.
* ``GET /v1/models``: one model.

The server keeps only the first and last ``BODY_KEEP`` bytes of a request body and counts the
rest (``x-bench-body-bytes`` response header), so a large-media benchmark measures the client.
``scripts/bench.py`` runs it in its own process: ``python -m tests.support.loopback``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable

from .loopback import LAST_CHUNK, Connection, Request, chunk_bytes

__all__ = ["BODY_KEEP", "MODEL", "REPLY", "SSE_TOKEN", "TOKEN", "bench"]

TOKEN = "tok "
MODEL = "bench-model"
REPLY = "Hello from the bench server."
DEFAULT_CHUNKS = 16
BODY_KEEP = 64 * 1024  # bytes of a request body kept at each end for inspection

_WRITE_BATCH = 128  # events joined per write (the HTTP chunking stays per event)
_CREATED = 1_700_000_000

_STREAM_RE = re.compile(rb'"stream"\s*:\s*true')
_USAGE_RE = re.compile(rb'"include_usage"\s*:\s*true')
_MAX_TOKENS_RE = re.compile(rb'"max(?:_completion)?_tokens"\s*:\s*(\d+)')


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _usage(completion_tokens: int) -> dict[str, object]:
    return {
        "prompt_tokens": 9,
        "completion_tokens": completion_tokens,
        "total_tokens": 9 + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


COMPLETION = _json(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": _CREATED,
        "model": MODEL,
        "system_fingerprint": "fp_bench",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": REPLY,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(7),
        "service_tier": "default",
    }
)
MODELS = _json(
    {
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": _CREATED, "owned_by": "bench"}],
    }
)
_NOT_FOUND = _json({"error": {"message": "no such route", "type": "invalid_request_error"}})


def _chunk(payload: dict[str, object]) -> bytes:
    base: dict[str, object] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": _CREATED,
        "model": MODEL,
        "system_fingerprint": "fp_bench",
    }
    return _json({**base, **payload})


def _choice(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def _event(payload: bytes) -> bytes:
    """One SSE event framed as one HTTP/1.1 chunk."""
    return chunk_bytes(b"data: " + payload + b"\n\n")


SSE_TOKEN = b"data: " + _chunk(_choice({"content": TOKEN})) + b"\n\n"
"""One content event exactly as streamed (without the HTTP chunk framing)."""
EV_ROLE = _event(_chunk(_choice({"role": "assistant", "content": ""})))
EV_TOKEN = _event(_chunk(_choice({"content": TOKEN})))
EV_FINISH = _event(_chunk(_choice({}, "stop")))
EV_DONE = _event(b"[DONE]")


def _head(status: str, content_type: str, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\nx-request-id: req_bench\r\n{extra}"
    ).encode()


def _sized(status: str, body: bytes, body_bytes: int) -> bytes:
    extra = f"content-length: {len(body)}\r\nx-bench-body-bytes: {body_bytes}\r\n"
    return _head(status, "application/json", extra) + b"\r\n" + body


_STREAM_HEAD = (
    _head(
        "200 OK", "text/event-stream", "cache-control: no-cache\r\ntransfer-encoding: chunked\r\n"
    )
    + b"\r\n"
)


def bench(conn: Connection, request: Request) -> bytes | Awaitable[bool]:
    """The handler: canned bytes at once, or the stream coroutine."""
    path = request.path.split("?", 1)[0]
    if request.method == "POST" and path.endswith("/chat/completions"):
        if _STREAM_RE.search(request.body):
            return _stream(conn, request)
        return _sized("200 OK", COMPLETION, request.body_size)
    if request.method == "GET" and path.endswith("/models"):
        return _sized("200 OK", MODELS, request.body_size)
    return _sized("404 Not Found", _NOT_FOUND, request.body_size)


def _chunks_wanted(request: Request) -> int:
    header = request.headers.get("x-bench-chunks")
    if header is not None:
        return int(header)
    match = _MAX_TOKENS_RE.search(request.body)
    return int(match.group(1)) if match is not None else DEFAULT_CHUNKS


async def _stream(conn: Connection, request: Request) -> bool:
    n = total = _chunks_wanted(request)
    await conn.write(_STREAM_HEAD + EV_ROLE)
    while n > 0:
        batch = min(n, _WRITE_BATCH)
        await conn.write(EV_TOKEN * batch)
        n -= batch
    usage = _USAGE_RE.search(request.body)
    tail = _event(_chunk({"choices": [], "usage": _usage(total)})) if usage else b""
    await conn.write(EV_FINISH + tail + EV_DONE + LAST_CHUNK)
    return True
