"""Tokens per second of the embedded local model with and without llama.cpp's extra buffer
types (``OPENAI_CHATAPI_LOCAL_REPACK=on`` / ``off``), through the real ``LocalModelServer``.

Each round starts no server: one server per setting serves all its rounds; rounds alternate
between the settings so background load hits both alike. Reported per setting: the median
of the generation rates (completion tokens / wall time of a non-streamed chat, prompt
included), and whether llama.cpp put any tensor in an extra buffer type (``CPU_REPACK`` or
``AMX`` in the server log's ``model buffer size`` lines).

Run: ``python scripts/bench_local.py [--rounds 5] [--max-tokens 128]`` (needs the ``local``
extra). On a CPU that reports AMX, ``on`` may crash: that run is reported, not raised.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from openai_chatapi import ChatAgent, ChatAPIException, RuntimeConfig
from openai_chatapi.local import LocalModelServer
from openai_chatapi.local._launch import REPACK_ENV, cpu_reports_amx

PROMPT = "Write a long story about a dragon who learns to bake bread."
_BUFFER_LINE = re.compile(r"load_tensors:\s+(\S+) model buffer size\s*=\s*([\d.]+) MiB")


async def _rate(agent: ChatAgent, max_tokens: int) -> float:
    started = time.perf_counter()
    await agent.chat(PROMPT, add_to_history=False, max_tokens=max_tokens)
    elapsed = time.perf_counter() - started
    response = agent.last_response
    tokens = response.usage.completion_tokens if response and response.usage else 0
    return tokens / elapsed


async def run(rounds: int, max_tokens: int, threads: int | None) -> int:
    settings = ("off", "on")
    logs = {name: Path(tempfile.mkdtemp()) / f"llama-{name}.log" for name in settings}
    extra = ["--n_threads", str(threads)] if threads else []
    rates: dict[str, list[float]] = {name: [] for name in settings}
    failures: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        agents: dict[str, ChatAgent] = {}
        for name in settings:
            server = LocalModelServer(
                env={REPACK_ENV: name},
                log_path=logs[name],
                startup_timeout=300,
                extra_args=extra,
                config_overrides={"temperature": 0.0, "seed": 1},
            )
            config = await stack.enter_async_context(server)
            runtime = RuntimeConfig(enable_logging=False, timeout=300)
            agents[name] = await stack.enter_async_context(ChatAgent(config, runtime))
            await agents[name].chat("Hi", add_to_history=False, max_tokens=4)  # warm-up
        for _ in range(rounds):
            for name in settings:
                if name in failures:
                    continue
                try:
                    rates[name].append(await _rate(agents[name], max_tokens))
                except ChatAPIException as exc:
                    failures[name] = str(exc)
    print(f"CPU reports AMX: {'yes' if cpu_reports_amx() else 'no'}")
    for name in settings:
        buffers = _BUFFER_LINE.findall(logs[name].read_text(errors="replace"))
        extra_types = sorted({kind for kind, _ in buffers if kind not in ("CPU", "CPU_Mapped")})
        shown = ", ".join(f"{kind} {size} MiB" for kind, size in buffers)
        if name in failures:
            print(f"{REPACK_ENV}={name}: FAILED: {failures[name]}")
            continue
        values = rates[name]
        print(
            f"{REPACK_ENV}={name}: median {statistics.median(values):.1f} tokens/s "
            f"(runs: {', '.join(f'{v:.1f}' for v in values)}); model buffers: {shown}; "
            f"extra buffer types used: {', '.join(extra_types) or 'none'}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp --n_threads")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.rounds, args.max_tokens, args.threads))


if __name__ == "__main__":
    sys.exit(main())
