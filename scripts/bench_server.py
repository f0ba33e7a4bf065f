"""A loopback OpenAI-compatible HTTP/1.1 server for the benchmarks (asyncio protocol, no framework).

Endpoints (keep-alive, pipelining-safe):

* ``POST /v1/chat/completions``: a canned completion, or when the body has ``"stream": true``
  an SSE stream of N content chunks in OpenAI chunk format, one HTTP chunk per event (as real
  servers send them), then a finish chunk, a usage chunk when ``stream_options.include_usage``
  is true, and ``data: [DONE]``. N is the request's ``max_tokens`` / ``max_completion_tokens``
  (default 16) or the ``x-bench-chunks`` header. Every content chunk carries ``TOKEN``.
* ``GET /v1/models``: one model.

Request bodies may be sized or chunked and of any size: only the first and last 64 KiB are
kept for inspection, the rest is counted (``x-bench-body-bytes`` response header), so a
large-media benchmark measures the client, not this server.

Run: ``python scripts/bench_server.py [--port 0]``; it prints ``PORT <n>`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys

TOKEN = "tok "
MODEL = "bench-model"
REPLY = "Hello from the bench server."
DEFAULT_CHUNKS = 16

_KEEP = 64 * 1024  # bytes of a request body kept at each end for inspection
_WRITE_BATCH = 128  # events joined per transport.write (the HTTP chunking stays per event)
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
    data = b"data: " + payload + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


SSE_TOKEN = b"data: " + _chunk(_choice({"content": TOKEN})) + b"\n\n"
"""One content event exactly as streamed (without the HTTP chunk framing)."""
EV_ROLE = _event(_chunk(_choice({"role": "assistant", "content": ""})))
EV_TOKEN = _event(_chunk(_choice({"content": TOKEN})))
EV_FINISH = _event(_chunk(_choice({}, "stop")))
EV_DONE = _event(b"[DONE]")
_LAST_CHUNK = b"0\r\n\r\n"


def _head(status: str, content_type: str, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\nx-request-id: req_bench\r\n{extra}"
    ).encode()


def _sized(status: str, body: bytes, body_bytes: int, close: bool) -> bytes:
    extra = f"content-length: {len(body)}\r\nx-bench-body-bytes: {body_bytes}\r\n"
    if close:
        extra += "connection: close\r\n"
    return _head(status, "application/json", extra) + b"\r\n" + body


_STREAM_HEAD = (
    _head(
        "200 OK", "text/event-stream", "cache-control: no-cache\r\ntransfer-encoding: chunked\r\n"
    )
    + b"\r\n"
)
_NOT_FOUND = _json({"error": {"message": "no such route", "type": "invalid_request_error"}})


class _Body:
    """A request body: kept whole when small, else only its two ends (and its size)."""

    __slots__ = ("head", "size", "tail")

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.size = 0

    def add(self, data: bytes | bytearray) -> None:
        self.size += len(data)
        room = _KEEP - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > 2 * _KEEP:
                del self.tail[:-_KEEP]

    def sample(self) -> bytes:
        return bytes(self.head + self.tail[-_KEEP:])


class BenchProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection: parse requests incrementally, answer them in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.state = "head"  # head | length | chunk-size | chunk-data | chunk-crlf | trailers
        self.remaining = 0
        self.method = b""
        self.path = b""
        self.headers: dict[bytes, bytes] = {}
        self.body = _Body()
        self.streaming = False  # a stream is being written: parse the next request after it
        self.paused = False
        self.drain_waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._wake()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.streaming:
            self._parse()

    # -- parsing -------------------------------------------------------------------------------
    def _parse(self) -> None:
        buf = self.buf
        while self.transport is not None and not self.streaming:
            state = self.state
            if state == "head":
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                self._start_request(bytes(buf[:end]))
                del buf[: end + 4]
            elif state == "length" or state == "chunk-data":
                take = min(self.remaining, len(buf))
                if take:
                    self.body.add(buf[:take])
                    del buf[:take]
                    self.remaining -= take
                if self.remaining:
                    return
                if state == "length":
                    self._respond()
                else:
                    self.state = "chunk-crlf"
            elif state == "chunk-crlf":
                if len(buf) < 2:
                    return
                del buf[:2]
                self.state = "chunk-size"
            else:  # chunk-size or trailers: line based
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                line = bytes(buf[:end])
                del buf[: end + 2]
                if state == "trailers":
                    if not line:
                        self._respond()
                    continue
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                self.state, self.remaining = ("chunk-data", size) if size else ("trailers", 0)

    def _start_request(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        self.method, self.path = parts[0], parts[1] if len(parts) > 1 else b"/"
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        self.headers = headers
        self.body = _Body()
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            self.state = "chunk-size"
        else:
            self.remaining = int(headers.get(b"content-length", b"0"))
            self.state = "length"

    # -- answering -----------------------------------------------------------------------------
    def _respond(self) -> None:
        self.state = "head"
        transport = self.transport
        assert transport is not None
        close = self.headers.get(b"connection", b"").lower() == b"close"
        path = self.path.split(b"?", 1)[0]
        if self.method == b"POST" and path.endswith(b"/chat/completions"):
            sample = self.body.sample()
            if _STREAM_RE.search(sample):
                self._start_stream(sample, close)
                return
            transport.write(_sized("200 OK", COMPLETION, self.body.size, close))
        elif self.method == b"GET" and path.endswith(b"/models"):
            transport.write(_sized("200 OK", MODELS, self.body.size, close))
        else:
            transport.write(_sized("404 Not Found", _NOT_FOUND, self.body.size, close))
        if close:
            transport.close()

    def _start_stream(self, sample: bytes, close: bool) -> None:
        header = self.headers.get(b"x-bench-chunks")
        match = _MAX_TOKENS_RE.search(sample)
        if header is not None:
            n = int(header)
        elif match is not None:
            n = int(match.group(1))
        else:
            n = DEFAULT_CHUNKS
        self.streaming = True
        task = asyncio.get_running_loop().create_task(
            self._stream(n, bool(_USAGE_RE.search(sample)), close)
        )
        task.add_done_callback(self._stream_done)

    async def _stream(self, n: int, usage: bool, close: bool) -> None:
        total = n
        self._write(_STREAM_HEAD + EV_ROLE)
        while n > 0 and self.transport is not None:
            batch = min(n, _WRITE_BATCH)
            self._write(EV_TOKEN * batch)
            n -= batch
            await self._drain()
        tail = _event(_chunk({"choices": [], "usage": _usage(total)})) if usage else b""
        self._write(EV_FINISH + tail + EV_DONE + _LAST_CHUNK)
        if close and self.transport is not None:
            self.transport.close()

    def _stream_done(self, task: asyncio.Task[None]) -> None:
        self.streaming = False
        if not task.cancelled() and task.exception() is not None:
            print(f"bench server: stream failed: {task.exception()!r}", file=sys.stderr)
        if self.transport is not None:
            self._parse()

    def _write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    async def _drain(self) -> None:
        if self.paused and self.transport is not None:
            self.drain_waiter = asyncio.get_running_loop().create_future()
            await self.drain_waiter

    def _wake(self) -> None:
        waiter, self.drain_waiter = self.drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


async def serve(host: str = "127.0.0.1", port: int = 0) -> None:
    """Listen until cancelled, announcing ``PORT <n>`` on stdout."""
    server = await asyncio.get_running_loop().create_server(BenchProtocol, host, port, backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
