"""A stand-in for ``python -m llama_cpp.server`` that dies the ways a real one can.

Run by ``LocalModelServer`` subclasses in ``test_local_exit.py`` (module ``local_standin``,
found through ``PYTHONPATH``), with the same arguments as the real server plus
``--standin MODE`` (default ``$LOCAL_STANDIN_MODE``, for runs through the CLI):

- ``segv-on-chat``: answers readiness (``GET /v1/models``), then kills itself with SIGSEGV
  on the first ``POST /v1/chat/completions``, before answering it;
- ``segv-mid-stream``: answers a streamed chat with its headers and one event, then SIGSEGV;
- ``exit-before-ready``: writes a reason to its log and exits with code 7 before listening;
- ``ok``: answers every chat with "standin reply" (streamed or not).

Every chat request is counted in the file named by ``--chat-count`` (one line each), so a
test can tell whether the client knocked again on the dead port.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
for name in ("--host", "--model", "--model_alias", "--api_key", "--standin", "--chat-count"):
    parser.add_argument(name)
parser.add_argument("--port", type=int)
args, _ = parser.parse_known_args()
args.standin = args.standin or os.environ.get("LOCAL_STANDIN_MODE", "ok")
print(f"standin server starting on {args.port} in mode {args.standin}", flush=True)

if args.standin == "exit-before-ready":
    print("error: standin refuses to load the model", file=sys.stderr, flush=True)
    sys.exit(7)


def _die() -> None:
    print("standin: crashing now", file=sys.stderr, flush=True)
    # A real segfault in this thread (reading address 0), as in native code: nothing after
    # this line runs. (os.kill would let this thread go on answering for a moment.)
    ctypes.string_at(0)
    os.kill(os.getpid(), signal.SIGKILL)  # pragma: no cover  (not reached)


def _completion() -> dict[str, object]:
    return {
        "id": "standin-1",
        "object": "chat.completion",
        "created": 0,
        "model": args.model_alias,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "standin reply"},
                "finish_reason": "stop",
            }
        ],
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == "Bearer " + args.api_key:
            return True
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def _json(self, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self._authorised():
            self._json({"object": "list", "data": [{"id": args.model_alias}]})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        if not self._authorised():
            return
        if args.chat_count:
            with open(args.chat_count, "a", encoding="utf-8") as handle:
                handle.write("chat\n")
        if args.standin == "segv-on-chat":
            _die()
        if not request.get("stream"):
            self._json(_completion())
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = {
            "id": "standin-1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": args.model_alias,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "standin"}}],
        }
        self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
        if args.standin == "segv-mid-stream":
            _die()
        done = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self._chunk(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *values: object) -> None:
        print("request:", format % values, file=sys.stderr, flush=True)


ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()
