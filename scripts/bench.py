"""Benchmark openai_chatapi against raw httpx + json.loads and the official openai SDK.

A loopback OpenAI-compatible server runs in its own process: the tests' loopback server
(``tests/support/loopback.py``) serving the canned answers of ``tests/support/bench_handler.py``.
Every client/workload/round runs in a fresh process, so imports never interfere; rounds
interleave the clients so a drifting machine load hits them alike. Each worker warms up
(imports, pool, first-call paths) before the timed part. Medians of the rounds are printed
with the ratios to raw httpx and to ``openai``; wall-clock is the headline, the client
process's CPU time is shown beside it because it is much less sensitive to other load.

    python scripts/bench.py                      # everything, 3 rounds
    python scripts/bench.py --quick              # smaller workloads, a minute or so
    python scripts/bench.py --only stream,chat --rounds 5
    python scripts/bench.py --clients httpx,openai_chatapi --json results.json
    python scripts/bench.py --package ../base      # the package of another checkout, this
                                                   # harness and server (before/after tables)
    python scripts/bench.py --instructions         # client instructions per item under
                                                   # valgrind (steadier than time, for before/after)

Sections are functions registered by name with ``@section`` (import, chat, concurrent,
stream, sse, load, media).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' support package, however this script was started

from tests.support.bench_handler import MODEL, REPLY, SSE_TOKEN, TOKEN  # noqa: E402

# ``--package DIR``: workers import openai_chatapi from DIR (imported nowhere before this).
PACKAGE_ENV = "OPENAI_CHATAPI_BENCH_PACKAGE"
PACKAGE_ROOT = Path(os.environ.get(PACKAGE_ENV) or ROOT).resolve()
if PACKAGE_ROOT != ROOT:
    sys.path.insert(0, str(PACKAGE_ROOT))

CLIENTS = ("httpx", "openai", "openai_chatapi", "openai_sync", "openai_chatapi_sync")
OURS = "openai_chatapi"
OURS_SYNC = "openai_chatapi_sync"
# Sync clients block their thread: they run the sequential workloads only.
SYNC_CLIENTS = ("openai_sync", OURS_SYNC)
SYNC_WORKLOADS = ("chat", "stream")
SYNC_TARGET = 1.3  # SyncChatAgent's time per request at most this × ChatAgent's
# One pool configuration for every client, so the numbers compare code, not pool sizes.
POOL = {"max_connections": 100, "max_keepalive_connections": 100}
RESULT_PREFIX = "BENCH-RESULT "


# =============================================================================================
# Worker side: one client, one workload, in a fresh process.
# =============================================================================================


class Runner(Protocol):
    async def chat(self) -> str: ...
    async def stream(self, chunks: int) -> str: ...
    async def aclose(self) -> None: ...


class HttpxRunner:
    """The floor: what the work costs with httpx and json.loads and nothing else."""

    def __init__(self, url: str) -> None:
        import httpx

        self.client = httpx.AsyncClient(
            base_url=url,
            headers={"authorization": "Bearer bench"},
            limits=httpx.Limits(**POOL),
            timeout=60,
        )
        self.body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}

    async def chat(self) -> str:
        response = await self.client.post("/chat/completions", json=self.body)
        response.raise_for_status()
        content: str = json.loads(response.content)["choices"][0]["message"]["content"]
        return content

    async def stream(self, chunks: int) -> str:
        body = {
            **self.body,
            "stream": True,
            "max_tokens": chunks,
            "stream_options": {"include_usage": True},
        }
        parts: list[str] = []
        async with self.client.stream("POST", "/chat/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                choices = json.loads(data)["choices"]
                if choices:
                    content = choices[0]["delta"].get("content")
                    if content:
                        parts.append(content)
        return "".join(parts)

    async def aclose(self) -> None:
        await self.client.aclose()


class OpenAIRunner:
    """The official SDK, with the same pool limits."""

    def __init__(self, url: str) -> None:
        import openai

        # Recent openai releases run on httpx2: build the limits with the SDK's own class.
        limits: Any = type(openai.DEFAULT_CONNECTION_LIMITS)(**POOL)
        self.client = openai.AsyncOpenAI(
            base_url=url,
            api_key="bench",
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(limits=limits),
        )
        self.messages: Any = [{"role": "user", "content": "hi"}]

    async def chat(self) -> str:
        completion = await self.client.chat.completions.create(model=MODEL, messages=self.messages)
        return completion.choices[0].message.content or ""

    async def stream(self, chunks: int) -> str:
        parts: list[str] = []
        stream = await self.client.chat.completions.create(
            model=MODEL,
            messages=self.messages,
            stream=True,
            max_tokens=chunks,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if chunk.choices:
                content = chunk.choices[0].delta.content
                if content:
                    parts.append(content)
        return "".join(parts)

    async def aclose(self) -> None:
        await self.client.close()


class ChatAPIRunner:
    """This package, through its public API only."""

    def __init__(self, url: str) -> None:
        from openai_chatapi import ChatAgent, ModelConfig, RuntimeConfig

        self.note = ""
        try:
            runtime = RuntimeConfig(
                enable_logging=False,
                max_connections=POOL["max_connections"],
                max_keepalive_connections=POOL["max_keepalive_connections"],
            )
        except Exception as exc:  # a config without pool fields: run with its defaults
            runtime = RuntimeConfig(enable_logging=False)
            self.note = f"RuntimeConfig rejected {POOL} ({type(exc).__name__}); defaults used"
        model = ModelConfig(api_base_url=url, api_key="bench", model=MODEL)
        self.agent: Any = ChatAgent(model, runtime)
        self.entered = False

    async def _enter(self) -> None:
        if not self.entered:
            await self.agent.__aenter__()
            self.entered = True

    async def chat(self) -> str:
        await self._enter()
        reply = await self.agent.chat("hi", add_to_history=False)
        return reply if isinstance(reply, str) else str(getattr(reply, "content", reply))

    async def stream(self, chunks: int) -> str:
        await self._enter()
        parts: list[str] = []
        async for piece in self.agent.chat_stream(
            "hi", add_to_history=False, display_stream=False, max_tokens=chunks
        ):
            parts.append(piece)
        return "".join(parts)

    async def aclose(self) -> None:
        if self.entered:
            await self.agent.__aexit__(None, None, None)


class OpenAISyncRunner:
    """The official SDK's sync client (``openai.OpenAI``), same pool limits; it blocks."""

    def __init__(self, url: str) -> None:
        import openai

        limits: Any = type(openai.DEFAULT_CONNECTION_LIMITS)(**POOL)
        self.client = openai.OpenAI(
            base_url=url,
            api_key="bench",
            max_retries=0,
            http_client=openai.DefaultHttpxClient(limits=limits),
        )
        self.messages: Any = [{"role": "user", "content": "hi"}]

    async def chat(self) -> str:
        completion = self.client.chat.completions.create(model=MODEL, messages=self.messages)
        return completion.choices[0].message.content or ""

    async def stream(self, chunks: int) -> str:
        parts: list[str] = []
        stream = self.client.chat.completions.create(
            model=MODEL,
            messages=self.messages,
            stream=True,
            max_tokens=chunks,
            stream_options={"include_usage": True},
        )
        for chunk in stream:
            if chunk.choices:
                content = chunk.choices[0].delta.content
                if content:
                    parts.append(content)
        return "".join(parts)

    async def aclose(self) -> None:
        self.client.close()


class ChatAPISyncRunner:
    """This package's ``SyncChatAgent``, through its public API only; it blocks."""

    def __init__(self, url: str) -> None:
        from openai_chatapi import ModelConfig, RuntimeConfig, SyncChatAgent

        runtime = RuntimeConfig(
            enable_logging=False,
            max_connections=POOL["max_connections"],
            max_keepalive_connections=POOL["max_keepalive_connections"],
        )
        model = ModelConfig(api_base_url=url, api_key="bench", model=MODEL)
        self.agent = SyncChatAgent(model, runtime)

    async def chat(self) -> str:
        return self.agent.chat("hi", add_to_history=False)

    async def stream(self, chunks: int) -> str:
        pieces = self.agent.chat_stream(
            "hi", add_to_history=False, display_stream=False, max_tokens=chunks
        )
        return "".join(pieces)

    async def aclose(self) -> None:
        self.agent.close()


RUNNERS: dict[str, Callable[[str], Runner]] = {
    "httpx": HttpxRunner,
    "openai": OpenAIRunner,
    OURS: ChatAPIRunner,
    "openai_sync": OpenAISyncRunner,
    OURS_SYNC: ChatAPISyncRunner,
}


def _expect(got: str, want: str) -> None:
    if got != want:
        raise AssertionError(f"wrong reply: {len(got)} chars {got[:60]!r}, want {len(want)}")


async def _chats(runner: Runner, n: int, in_flight: int) -> None:
    async def one_lane(count: int) -> None:
        for _ in range(count):
            _expect(await runner.chat(), REPLY)

    lanes = max(1, min(in_flight, n))
    await asyncio.gather(*(one_lane(n // lanes + (i < n % lanes)) for i in range(lanes)))


async def _stream(runner: Runner, n: int) -> None:
    _expect(await runner.stream(n), TOKEN * n)


def _workload(name: str, n: int, in_flight: int) -> Callable[[Runner], Awaitable[None]]:
    if name == "chat":
        return lambda runner: _chats(runner, n, 1)
    if name == "concurrent":
        return lambda runner: _chats(runner, n, in_flight)
    if name == "stream":
        return lambda runner: _stream(runner, n)
    raise ValueError(f"unknown workload {name!r}")


def _warmup_size(workload: str, n: int, in_flight: int) -> int:
    if workload == "stream":
        return min(n, 2000)
    if workload == "concurrent":
        return min(n, 2 * in_flight)
    return min(n, max(20, n // 10))


def _sse_decoder(client: str) -> Callable[[list[bytes]], int]:
    """A function decoding a chunked SSE body with ``client``'s decoder; returns the count."""
    if client == OURS:
        try:
            from openai_chatapi._sse import SSEDecoder
        except ImportError:  # an older checkout (--package) named it openai_chatapi.sse
            from openai_chatapi.sse import SSEDecoder  # type: ignore[import-not-found,no-redef]

        def ours(pieces: list[bytes]) -> int:
            decoder, count = SSEDecoder(), 0
            for piece in pieces:
                count += len(decoder.feed(piece))
            return count + len(decoder.flush())

        return ours
    if client == "httpx":  # what raw httpx does: text and line decoding, no events
        from httpx._decoders import LineDecoder, TextDecoder

        def lines(pieces: list[bytes]) -> int:
            text, splitter, count = TextDecoder(), LineDecoder(), 0
            for piece in pieces:
                for line in splitter.decode(text.decode(piece)):
                    count += line.startswith("data:")
            return count + sum(line.startswith("data:") for line in splitter.flush())

        return lines
    from openai._streaming import SSEDecoder as OpenAIDecoder  # private, may move

    return lambda pieces: sum(1 for _ in OpenAIDecoder().iter_bytes(iter(pieces)))


def _sse_micro(client: str, mode: str, n: int, repeat: int = 1) -> dict[str, Any]:
    """Decode n OpenAI-style events delivered one per chunk, or in 64 KiB reads (LF or CRLF)."""
    decode = _sse_decoder(client)

    def pieces(count: int) -> list[bytes]:
        if mode == "event":
            return [SSE_TOKEN] * count
        body = SSE_TOKEN * count
        if mode == "crlf":
            body = body.replace(b"\n", b"\r\n")
        return [body[i : i + 65536] for i in range(0, len(body), 65536)]

    warm, timed = pieces(min(n, 2000)), pieces(n)
    decode(warm)
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    counts = [decode(timed) for _ in range(repeat)]
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if any(count != n for count in counts):
        raise AssertionError(f"{client} decoded {counts} events, want {n}")
    return {"wall": wall, "cpu": cpu, "n": n}


async def _worker(
    client: str, workload: str, n: int, url: str, in_flight: int, repeat: int = 1
) -> dict[str, Any]:
    """Warm up, then time the workload ``repeat`` times over (``--instructions`` runs 1 and 2)."""
    import resource

    if workload.startswith("sse-"):
        return _sse_micro(client, workload[4:], n, repeat)
    if workload.startswith("load-"):
        return await _load_worker(client, workload, n, url)
    try:
        runner = RUNNERS[client](url)
    except ImportError as exc:
        return {"error": f"cannot import {client}: {exc}"}
    try:
        await _workload(workload, _warmup_size(workload, n, in_flight), in_flight)(runner)
        gc.collect()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(repeat):
            await _workload(workload, n, in_flight)(runner)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        await runner.aclose()
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    note = getattr(runner, "note", "")
    return {"wall": wall, "cpu": cpu, "n": n, "maxrss_kb": rss_kb, "note": note}


def worker_main(
    client: str, workload: str, n: int, url: str, in_flight: int, repeat: int = 1
) -> None:
    try:
        result = asyncio.run(_worker(client, workload, n, url, in_flight, repeat))
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# =============================================================================================
# Parent side: server, rounds, sections, table.
# =============================================================================================


@dataclass
class Row:
    """One line of the results table: a per-client figure (lower is better)."""

    section: str
    label: str
    unit: str
    wall: dict[str, float | None]
    cpu: dict[str, float | None] = field(default_factory=dict)
    target: tuple[str, float] | None = None  # (compare-to client, max ratio of ours)


@dataclass
class Bench:
    args: argparse.Namespace
    url: str
    clients: list[str]
    notes: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def size(self, full: int, quick: int) -> int:
        return quick if self.args.quick else full

    def unit(self, timed: str) -> str:
        """The unit of a figure: ``µs/req`` when timing, ``instr/req`` with --instructions."""
        return timed.replace("µs", "instr") if self.args.instructions else timed

    def run_worker(
        self, client: str, workload: str, n: int, prefix: list[str] | None = None, repeat: int = 1
    ) -> dict[str, Any]:
        """Run one workload for one client in a fresh process; return its result dict."""
        cmd = [*(prefix or []), sys.executable, str(Path(__file__).resolve())]
        cmd += ["--worker", client, workload, str(n), "--url", self.url]
        cmd += ["--in-flight", str(self.args.in_flight), "--repeat", str(repeat)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=self.env)
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith(RESULT_PREFIX):
                result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
                return result
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"worker exited {proc.returncode}: {tail}"}

    def instructions(self, client: str, workload: str, n: int) -> dict[str, Any]:
        """The client's instructions for ``n`` items, counted by callgrind.

        The worker runs twice, repeating its timed part once and then twice: the difference
        is exactly one timed part, without the interpreter start, imports and warm-up.
        """
        totals = []
        for repeat in (1, 2):
            with callgrind() as (prefix, total):
                result = self.run_worker(client, workload, n, prefix, repeat)
                if "error" in result:
                    return result
                totals.append(total())
        return {"instructions": totals[1] - totals[0], "n": n}

    def measure(self, workload: str, n: int) -> tuple[dict[str, float | None], ...]:
        """Median wall and CPU seconds per item over the rounds, clients interleaved.

        With ``--instructions``: instructions per item (no CPU figures).
        """
        walls: dict[str, list[float]] = {c: [] for c in self.clients}
        cpus: dict[str, list[float]] = {c: [] for c in self.clients}
        failed: set[str] = set()
        if workload not in SYNC_WORKLOADS:
            failed.update(SYNC_CLIENTS)  # not failures: figures left n/a
        for round_no in range(1, self.args.rounds + 1):
            for client in self.clients:
                if client in failed:
                    continue
                if self.args.instructions:
                    result = self.instructions(client, workload, n)
                else:
                    result = self.run_worker(client, workload, n)
                if "error" in result:
                    failed.add(client)
                    self.notes.append(f"{workload} / {client}: {result['error']}")
                    _progress(f"  {workload:<10} round {round_no} {client:<15} FAILED")
                    continue
                if result.get("note") and result["note"] not in self.notes:
                    self.notes.append(result["note"])
                if self.args.instructions:
                    walls[client].append(result["instructions"] / n)
                    _progress(
                        f"  {workload:<10} round {round_no} {client:<15} "
                        f"{result['instructions'] / n:12,.0f} instructions per item"
                    )
                    continue
                walls[client].append(result["wall"] / n)
                cpus[client].append(result["cpu"] / n)
                wall_us, cpu_us = result["wall"] / n * 1e6, result["cpu"] / n * 1e6
                _progress(
                    f"  {workload:<10} round {round_no} {client:<15} "
                    f"{wall_us:9.1f} µs wall  {cpu_us:9.1f} µs cpu"
                )
        return _medians(walls), {} if self.args.instructions else _medians(cpus)


@contextmanager
def callgrind() -> Iterator[tuple[list[str], Callable[[], int]]]:
    """The command prefix that runs a program under callgrind, and the reader of its
    instruction total once it has run."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"

        def total() -> int:
            for line in out.read_text().splitlines():
                if line.startswith(("totals:", "summary:")):
                    return int(line.split()[1])
            raise RuntimeError(f"no totals line in {out}")

        yield ["valgrind", "--tool=callgrind", "-q", f"--callgrind-out-file={out}"], total


def _medians(samples: dict[str, list[float]]) -> dict[str, float | None]:
    return {c: statistics.median(v) if v else None for c, v in samples.items()}


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


Section = Callable[[Bench], list[Row]]
SECTIONS: dict[str, Section] = {}


def section(name: str) -> Callable[[Section], Section]:
    """Register a benchmark section under ``name`` (selectable with ``--only``)."""

    def register(func: Section) -> Section:
        SECTIONS[name] = func
        return func

    return register


@section("import")
def bench_import(bench: Bench) -> list[Row]:
    """`python -c "import X"` minus `python -c "pass"`, medians over many runs."""
    modules = {"httpx": "httpx", "openai": "openai", OURS: OURS}
    wanted = {c: modules[c] for c in bench.clients if c in modules}
    # Counted instructions barely vary: --rounds runs (1 by default) rather than 5 per round.
    runs = bench.args.rounds * (1 if bench.args.instructions else bench.args.import_runs)
    samples: dict[str, list[float]] = {name: [] for name in ["", *wanted]}

    def once(module: str) -> float:
        code = f"import {module}" if module else "pass"
        if bench.args.instructions:  # deterministic: one run is the figure
            with callgrind() as (prefix, total):
                cmd = [*prefix, sys.executable, "-c", code]
                subprocess.run(cmd, check=True, cwd=PACKAGE_ROOT, env=bench.env)
                return float(total())
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE_ROOT, env=bench.env)
        return time.perf_counter() - start

    for client, module in wanted.items():  # also compiles the .pyc files
        try:
            once(module)
        except subprocess.CalledProcessError:
            bench.notes.append(f"import / {client}: `import {module}` failed")
            samples.pop(client)
    for _ in range(runs):  # interleaved, so load drift hits every module alike
        samples[""].append(once(""))
        for client in samples.keys() - {""}:
            samples[client].append(once(wanted[client]))
    base = statistics.median(samples.pop(""))
    unit = "instr" if bench.args.instructions else "ms"
    shown = f"{base:,.0f} instructions" if unit == "instr" else f"{base * 1e3:.1f} ms"
    _progress(f"  import     interpreter startup {shown} ({runs} runs)")
    wall = {c: (statistics.median(samples[c]) - base if c in samples else None) for c in wanted}
    return [Row("import", f"import {unit}", unit, wall, target=("openai", 0.5))]


def _sync_note(
    bench: Bench,
    label: str,
    unit: str,
    wall: dict[str, float | None],
    cpu: dict[str, float | None],
) -> None:
    """How much a sync client costs per request beside its async one (SyncChatAgent's target)."""
    parts = []
    for sync, base in ((OURS_SYNC, OURS), ("openai_sync", "openai")):
        w, b = wall.get(sync), wall.get(base)
        if w is None or not b:
            continue
        c, cb = cpu.get(sync), cpu.get(base)
        cpu_ratio = f", cpu {c / cb:.2f}×" if c is not None and cb else ""
        figure = f"{w:,.0f}" if bench.args.instructions else f"{w * 1e6:,.1f}"
        parts.append(f"{sync} {figure} {bench.unit(unit)} = {w / b:.2f}× {base}{cpu_ratio}")
    ours, base = wall.get(OURS_SYNC), wall.get(OURS)
    if ours is not None and base:
        verdict = "ok" if ours / base <= SYNC_TARGET else "MISS"
        parts.append(f"target ≤{SYNC_TARGET}× {OURS}: {verdict}")
    if parts:
        bench.notes.append(f"sync: {label}: " + "; ".join(parts))


@section("chat")
def bench_chat(bench: Bench) -> list[Row]:
    n = bench.args.chats or bench.size(2000, 300)
    wall, cpu = bench.measure("chat", n)
    _sync_note(bench, f"{n} sequential chats", "µs/req", wall, cpu)
    unit = bench.unit("µs/req")
    return [Row("chat", f"{n} sequential chats", unit, wall, cpu, target=("httpx", 1.2))]


@section("concurrent")
def bench_concurrent(bench: Bench) -> list[Row]:
    n = bench.args.concurrent_chats or bench.size(4000, 800)
    wall, cpu = bench.measure("concurrent", n)
    label = f"{n} chats, {bench.args.in_flight} in flight"
    return [Row("concurrent", label, bench.unit("µs/req"), wall, cpu, target=("httpx", 1.2))]


@section("stream")
def bench_stream(bench: Bench) -> list[Row]:
    n = bench.args.stream_chunks or bench.size(20_000, 4_000)
    wall, cpu = bench.measure("stream", n)
    label = f"one stream of {n} chunks"
    _sync_note(bench, label, "µs/chunk", wall, cpu)
    return [Row("stream", label, bench.unit("µs/chunk"), wall, cpu, target=("httpx", 2.5))]


@section("sse")
def bench_sse(bench: Bench) -> list[Row]:
    """The SSE decoder alone, no network (httpx column: its line decoding, no events)."""
    n = bench.size(200_000, 50_000)
    rows = []
    for mode, label in (
        ("event", "SSE decode, one event per chunk"),
        ("64k", "SSE decode, 64 KiB reads"),
        ("crlf", "SSE decode, 64 KiB reads, CRLF"),
    ):
        wall, cpu = bench.measure(f"sse-{mode}", n)
        rows.append(Row("sse", label, bench.unit("µs/event"), wall, cpu))
    bench.notes.append(
        "sse: the httpx column is httpx's text+line decoding only (what raw httpx does), "
        "the openai column openai._streaming.SSEDecoder"
    )
    return rows


# A new section: a function registered with @section("<name>") returning Row objects, using
# bench.run_worker / bench.measure (worker results carry "maxrss_kb", the client's peak RSS).

LOAD_CHUNKS = 16  # content chunks per stream in the load section
LOAD_WORKLOADS = (
    # workload (load-<kind>-<clients>), calls, label, unit, throughput name
    ("load-chat-1", 1000, "1000 concurrent chats, 1 client", "µs/req", "requests/s"),
    ("load-chat-50", 1000, "1000 concurrent chats, 50 clients", "µs/req", "requests/s"),
    (
        "load-stream-1",
        200,
        f"200 concurrent streams ({LOAD_CHUNKS} chunks), 1 client",
        "µs/stream",
        "streams/s",
    ),
    (
        "load-stream-50",
        200,
        f"200 concurrent streams ({LOAD_CHUNKS} chunks), 50 clients",
        "µs/stream",
        "streams/s",
    ),
)


async def _load(runners: list[Runner], kind: str, n: int) -> None:
    """``n`` calls started at once, spread over ``runners``; every reply is checked."""
    if kind == "chat":
        for reply in await asyncio.gather(*(runners[i % len(runners)].chat() for i in range(n))):
            _expect(reply, REPLY)
        return
    calls = (runners[i % len(runners)].stream(LOAD_CHUNKS) for i in range(n))
    for text in await asyncio.gather(*calls):
        _expect(text, TOKEN * LOAD_CHUNKS)


async def _load_worker(client: str, workload: str, n: int, url: str) -> dict[str, Any]:
    """One load workload (``load-chat-50``: chats through 50 clients) in this process."""
    import resource

    _, kind, count = workload.split("-")
    try:
        runners = [RUNNERS[client](url) for _ in range(int(count))]
    except ImportError as exc:
        return {"error": f"cannot import {client}: {exc}"}
    try:
        await _load(runners, kind, max(len(runners), n // 5))  # warm-up: pools, first calls
        gc.collect()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        await _load(runners, kind, n)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        for runner in runners:
            await runner.aclose()
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    note = getattr(runners[0], "note", "")
    return {"wall": wall, "cpu": cpu, "n": n, "maxrss_kb": rss_kb, "note": note}


@section("load")
def bench_load(bench: Bench) -> list[Row]:
    """Many calls at once (all started together), through one client and through 50.

    The figure is wall time per call (lower is better); its inverse, the throughput, is in
    the notes. Each client has the same pool limits (``POOL``).
    """
    if bench.args.instructions:
        bench.notes.append(
            "load: not counted with --instructions: it measures calls at once, a wall-clock "
            "matter, and 1000 calls under callgrind outlast the clients' 60 s timeout"
        )
        return []
    rows = []
    for workload, n, label, unit, rate in LOAD_WORKLOADS:
        wall, cpu = bench.measure(workload, n)
        rows.append(Row("load", label, unit, wall, cpu))
        figures = ", ".join(f"{client} {1 / value:,.0f}" for client, value in wall.items() if value)
        bench.notes.append(f"load: {label}: {rate}: {figures}")
    bench.notes.append(
        "load: streams: the httpx column stops at [DONE] and so closes each connection; "
        "openai and openai_chatapi read the end of the body and reuse it, which costs more "
        "client CPU here (httpcore's pool bookkeeping grows with the square of its pooled "
        "connections, 100 in this bench) but saves a TCP/TLS handshake per stream on a network"
    )
    return rows


MEDIA_UNIT = "× file size"


def _load_bench_media() -> Any:
    """``scripts/bench_media.py`` as a module, however this script was started."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_media", ROOT / "scripts" / "bench_media.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@section("media")
def bench_media(bench: Bench) -> list[Row]:
    """Peak added RSS while sending a big video: our streamed body vs the naive way.

    Naive (the httpx column) is what raw httpx code does: read the file, base64 it, build the
    payload, ``client.post(json=...)``. Ours goes prepare_media → to_wire_parts →
    encode_json_body. Memory does not drift with machine load: one measurement, not rounds.
    """
    media = _load_bench_media()
    size_mb = bench.args.media_mb or bench.size(100, 25)
    _progress(f"  media      sending a {size_mb} MiB video both ways (fresh process each)")
    try:
        figures = media.bench_media_memory(size_mb)
    except RuntimeError as exc:  # a child failed (e.g. our package not importable)
        bench.notes.append(f"media: {str(exc).strip().splitlines()[-1]}")
        return []
    ours, naive = figures["streamed"], figures["naive"]
    for who, item in (("streamed (ours)", ours), ("naive", naive)):
        added = item["added_rss_bytes"] / 2**20
        _progress(f"  media      {who:<16} {added:8.1f} MiB = {item['multiple']:.2f}× the file")
    target = figures["target_multiple"]
    verdict = "meets" if figures["meets_target"] else "MISSES"
    bench.notes.append(
        f"media: sending a {figures['file_bytes'] / 2**20:.0f} MiB video adds "
        f"{ours['multiple']:.2f}× its size in peak RSS with openai_chatapi, "
        f"{naive['multiple']:.2f}× the naive way (httpx column); target ≤ {target}×: {verdict} it"
    )
    wall = {"httpx": naive["multiple"], "openai": None, OURS: ours["multiple"]}
    label = f"peak added RSS, {size_mb} MiB video (≤{target}× target)"
    return [Row("media", label, MEDIA_UNIT, wall)]


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == MEDIA_UNIT:
        return f"{value:.2f}"
    if unit.startswith("instr"):
        return f"{value:,.0f}"
    scale = 1e3 if unit == "ms" else 1e6
    return f"{value * scale:,.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a is not None and b else "—"


def print_table(rows: list[Row], clients: list[str]) -> None:
    header = ["section", "workload", "unit", *clients, "ours/httpx", "ours/openai"]
    header += ["openai/httpx", "target"]
    lines: list[list[str]] = [header]
    for row in rows:
        for kind, values in (("", row.wall), (" (cpu)", row.cpu)):
            if not values:
                continue
            cells = [row.section + kind, row.label if not kind else "client CPU time", row.unit]
            cells += [_fmt(values.get(c), row.unit) for c in clients]
            ours, raw, sdk = values.get(OURS), values.get("httpx"), values.get("openai")
            cells += [_ratio(ours, raw), _ratio(ours, sdk), _ratio(sdk, raw)]
            target = ""
            if row.target and not kind:
                other, limit = row.target
                base = values.get(other)
                verdict = (
                    "" if ours is None or not base else (" ok" if ours / base <= limit else " MISS")
                )
                target = f"≤{limit}× {other}{verdict}"
            lines.append([*cells, target])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for i, line in enumerate(lines):
        print(
            "  ".join(
                cell.ljust(w) if j < 3 or j == len(line) - 1 else cell.rjust(w)
                for j, (cell, w) in enumerate(zip(line, widths, strict=True))
            ).rstrip()
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))


class BenchServer:
    """The loopback server in its own process (started by us, stopped by pid)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.loopback"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.close()
            raise SystemExit(f"bench server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}/v1"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"python {sys.version.split()[0]}"]
    for dist in ("httpx", "openai", "openai_chatapi"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist} (not installed; from {ROOT})" if dist == OURS else "")
    if PACKAGE_ROOT != ROOT:
        parts.append(f"openai_chatapi benchmarked from {PACKAGE_ROOT}")
    return ", ".join(p for p in parts if p)


def _load_note() -> str:
    load = os.getloadavg()[0]
    cpus = os.cpu_count() or 1
    note = f"load average {load:.2f} on {cpus} CPUs"
    if load > 0.5 * cpus:
        note += "  <-- BUSY MACHINE: wall-clock figures are noisy, prefer the CPU rows"
    return note


def _check_ours(env: dict[str, str]) -> str | None:
    code = f"from {OURS} import ChatAgent, ModelConfig, RuntimeConfig"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE_ROOT, env=env
    )
    if proc.returncode == 0:
        return None
    tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
    return f"{OURS} public API not available yet ({tail}); its columns are n/a"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [*SECTIONS]
    parser.add_argument("--rounds", type=int, help="rounds per figure (median; default 3)")
    parser.add_argument("--quick", action="store_true", help="smaller workloads")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma list of sections: {','.join(names)}"
    )
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma list of clients")
    parser.add_argument("--chats", type=int, help="sequential chats (default 2000, quick 300)")
    parser.add_argument("--concurrent-chats", type=int, help="default 4000, quick 800")
    parser.add_argument("--in-flight", type=int, default=64, help="concurrency of 'concurrent'")
    parser.add_argument("--stream-chunks", type=int, help="default 20000, quick 4000")
    parser.add_argument("--import-runs", type=int, default=5, help="import runs per round")
    parser.add_argument("--media-mb", type=int, help="video size for 'media' (100, quick 25)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--package",
        type=Path,
        help="benchmark the openai_chatapi package of this checkout (another commit's "
        "worktree) with this harness and server: before/after tables that compare code only",
    )
    parser.add_argument(
        "--worker", nargs=3, metavar=("CLIENT", "WORKLOAD", "N"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count the client's instructions per item under valgrind's callgrind instead of "
        "timing (one round, a fixed hash seed: import and SSE count the same every run, network "
        "workloads within a few per cent; slow, so use modest sizes)",
    )
    parser.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.instructions else 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        client, workload, n = args.worker
        worker_main(client, workload, int(n), args.url, args.in_flight, args.repeat)
        return 0
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    bad_clients = [c for c in clients if c not in RUNNERS]
    if unknown or bad_clients:
        raise SystemExit(
            f"unknown section/client: {unknown + bad_clients}; sections: {list(SECTIONS)}"
        )
    if args.package is not None:
        package = args.package.resolve()
        if not (package / OURS / "__init__.py").is_file():
            raise SystemExit(f"--package {args.package}: no {OURS}/__init__.py there")
        os.environ[PACKAGE_ENV] = str(package)  # for the workers and the media children
        global PACKAGE_ROOT
        PACKAGE_ROOT = package
    env = dict(os.environ)
    first = (str(PACKAGE_ROOT), str(ROOT)) if PACKAGE_ROOT != ROOT else (str(ROOT),)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (*first, env.get("PYTHONPATH")) if p)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if args.instructions:
        if shutil.which("valgrind") is None:
            raise SystemExit("--instructions needs valgrind (Debian: apt-get install valgrind)")
        env["PYTHONHASHSEED"] = "0"  # the same dict layouts, so the same counts, every run

    notes: list[str] = []
    if OURS in clients and (problem := _check_ours(env)):
        notes.append(problem)
        clients_run = [c for c in clients if c != OURS]
    else:
        clients_run = clients
    print(_versions())
    print(f"before: {_load_note()}")
    server = BenchServer()
    rows: list[Row] = []
    try:
        bench = Bench(args, server.url, clients_run, notes, env)
        for name in wanted:
            _progress(f"[{name}]")
            rows += SECTIONS[name](bench)
    finally:
        server.close()
    print(f"after:  {_load_note()}")
    measured = "client instructions (callgrind)" if args.instructions else "medians"
    quick = " (quick sizes)" if args.quick else ""
    print(f"rounds: {args.rounds}{quick}; {measured}; lower is better\n")
    print_table(rows, clients)
    for note in notes:
        print(f"note: {note}")
    if args.json:
        args.json.write_text(json.dumps([row.__dict__ for row in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
