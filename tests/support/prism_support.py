"""Running Prism (``@stoplight/prism-cli``) as a judge of request payloads.

The official spec (``../shared/upstream/openai-openapi.yaml``) says ``openapi: 3.1.0`` but
still uses the 3.0 keywords ``nullable: true`` and boolean ``exclusiveMinimum``. Ajv, which
Prism validates with, cannot compile ``nullable`` beside ``$ref``/``oneOf`` and Prism then
accepts every request. :func:`to_openapi_31` rewrites those keywords into 3.1 form, so the
spec Prism serves is the one OpenAI meant; the test proves it by seeing a 422 first.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "PrismServer",
    "Recorded",
    "RecordingTransport",
    "find_prism",
    "to_openapi_31",
    "write_spec",
]

REPO = Path(__file__).resolve().parents[2]
_PRISM_IN_REPO = REPO / ".ci" / "node" / "node_modules" / ".bin" / "prism"


# --------------------------------------------------------------------------- the spec


@dataclass
class Rewrites:
    nullable: int = 0
    exclusive_bounds: int = 0


def to_openapi_31(node: Any, counts: Rewrites | None = None) -> Any:
    """A copy of an OpenAPI document with 3.0 ``nullable``/boolean bounds in 3.1 form.

    ``{type: T, nullable: true}`` becomes ``{type: [T, "null"]}`` (``null`` joins an
    ``enum``); a node without a single ``type`` (``$ref``, ``oneOf``, ...) becomes
    ``{anyOf: [node, {type: "null"}]}``. ``exclusiveMinimum: true`` + ``minimum: m``
    becomes ``exclusiveMinimum: m`` (likewise for the maximum).
    """
    counts = counts if counts is not None else Rewrites()
    if isinstance(node, list):
        return [to_openapi_31(item, counts) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: to_openapi_31(value, counts) for key, value in node.items()}
    for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(flag), bool):
            counts.exclusive_bounds += 1
            if out.pop(flag) and bound in out:
                out[flag] = out.pop(bound)
    if isinstance(out.get("nullable"), bool):
        if not out.pop("nullable"):
            return out
        counts.nullable += 1
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif isinstance(kind, list):
            out["type"] = kind if "null" in kind else [*kind, "null"]
        else:
            return {"anyOf": [out, {"type": "null"}]}
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def write_spec(openapi: Mapping[str, Any], directory: Path) -> tuple[Path, Rewrites]:
    """Write the 3.1 rewrite of ``openapi`` into ``directory``; return its path and counts."""
    counts = Rewrites()
    converted = to_openapi_31(dict(openapi), counts)
    path = directory / "openai-openapi-3.1.json"
    # default=str: YAML reads one example value as a date.
    path.write_text(json.dumps(converted, default=str), encoding="utf-8")
    return path, counts


# --------------------------------------------------------------------------- the server


def find_prism() -> str | None:
    """The Prism CLI: ``$PRISM_BIN``, then ``.ci/node`` (as ``.ci/run`` installs it), then PATH."""
    candidates = [os.environ.get("PRISM_BIN"), str(_PRISM_IN_REPO), shutil.which("prism")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrismError(RuntimeError):
    """Prism did not start (its log tail is in the message)."""


class PrismServer:
    """``prism mock`` on a free loopback port, in its own process group."""

    def __init__(self, binary: str, spec: Path, log_path: Path) -> None:
        self.binary = binary
        self.spec = spec
        self.log_path = log_path
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        # The spec's paths are relative to its server URL (.../v1): Prism serves them at the root.
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def start(self, ready_timeout: float) -> None:
        command = [self.binary, "mock", "-h", "127.0.0.1", "-p", str(self.port), str(self.spec)]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + ready_timeout
        while True:
            if self._process.poll() is not None:
                raise PrismError(
                    f"prism exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            try:
                httpx.get(f"{self.url}/models", timeout=2.0)
                return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise PrismError(f"prism not ready after {ready_timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.25)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # Only the process group this server created.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


# --------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class Recorded:
    method: str
    url: str
    request_body: bytes
    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def problems(self) -> list[str]:
        """Prism's validation messages (of a 422), one line each."""
        try:
            data = self.json()
        except ValueError:
            return [self.body[:500].decode("utf-8", "replace")]
        return [str(item.get("message")) for item in data.get("validation") or []]


@dataclass
class RecordingTransport(httpx.AsyncBaseTransport):
    """An httpx transport over real sockets that adds headers and records every exchange.

    ``ChatAgent`` has no option for extra request headers; Prism's ``Prefer: code=...`` is
    added here, below the client, which is otherwise untouched.
    """

    headers: Mapping[str, str] = field(default_factory=dict)
    exchanges: list[Recorded] = field(default_factory=list)
    _inner: httpx.AsyncHTTPTransport = field(default_factory=httpx.AsyncHTTPTransport)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for name, value in self.headers.items():
            request.headers[name] = value
        # Keep bodies uncompressed so that what is recorded is what the client decodes.
        request.headers["Accept-Encoding"] = "identity"
        content = await request.aread()
        response = await self._inner.handle_async_request(request)
        body = await response.aread()
        await response.aclose()
        self.exchanges.append(
            Recorded(
                request.method,
                str(request.url),
                content,
                response.status_code,
                response.headers,
                body,
            )
        )
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )

    async def aclose(self) -> None:
        await self._inner.aclose()
