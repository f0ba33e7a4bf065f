"""The local server's one lifecycle, run by its two drivers (``openai_chatapi.local._steps``):
the same steps give the same result blocking and on an event loop, a failed probe is "not up
yet", an interruption while waiting is thrown into the steps (whose cleanup runs), and steps
that send no probe open no HTTP client. Also the read-only ``View`` attributes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Generator
from typing import Any

import httpx
import pytest

from openai_chatapi.local import LocalModelServer, LocalServerExitedError, _steps
from openai_chatapi.local._steps import Probe, Sleep, run_async, run_blocking


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def probing(url: str, seen: list[Any], cleanup: list[str]) -> Generator[Any, Any, str]:
    try:
        seen.append((yield Probe(url, {})))
        seen.append((yield Sleep(0.01)))
        return "done"
    finally:
        cleanup.append("cleaned")


@pytest.mark.parametrize("driver", ["blocking", "async"])
def test_both_drivers_perform_the_steps_and_return_their_result(driver: str) -> None:
    seen: list[Any] = []
    cleanup: list[str] = []
    steps = probing(f"http://127.0.0.1:{closed_port()}/v1/models", seen, cleanup)
    result = run_blocking(steps) if driver == "blocking" else asyncio.run(run_async(steps))
    assert result == "done"
    assert seen == [None, None]  # a refused probe: not up yet, not an error
    assert cleanup == ["cleaned"]


def interruptible(events: list[str]) -> Generator[Any, Any, None]:
    try:
        yield Sleep(3600)
    except BaseException as exc:
        events.append(f"thrown in: {type(exc).__name__}")
        raise
    finally:
        events.append("cleaned")


def test_an_interrupt_while_blocking_is_thrown_into_the_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def ctrl_c(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_steps.time, "sleep", ctrl_c)
    events: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        run_blocking(interruptible(events))
    assert events == ["thrown in: KeyboardInterrupt", "cleaned"]


async def test_a_cancellation_while_waiting_is_thrown_into_the_steps() -> None:
    events: list[str] = []
    task = asyncio.create_task(run_async(interruptible(events)))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["thrown in: CancelledError", "cleaned"]


def test_steps_without_a_probe_open_no_client(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_client(**options: Any) -> Any:
        raise AssertionError("a client was opened")

    monkeypatch.setattr(httpx, "Client", no_client)
    monkeypatch.setattr(httpx, "AsyncClient", no_client)

    def stopping() -> Generator[Any, Any, int]:
        yield Sleep(0)
        return 7

    assert run_blocking(stopping()) == 7
    assert asyncio.run(run_async(stopping())) == 7


def test_views_read_through_and_refuse_assignment() -> None:
    error = LocalServerExitedError("gone", {"returncode": -11, "signal": "SIGSEGV"})
    assert (error.returncode, error.signal, error.exit_code, error.log_tail) == (
        -11,
        "SIGSEGV",
        None,
        "",
    )
    error.details["signal"] = "[REDACTED]"  # a view: a scrub of details shows at once
    assert error.signal == "[REDACTED]"
    with pytest.raises(AttributeError, match="read-only"):
        error.returncode = 0  # type: ignore[misc]
    server = LocalModelServer()
    assert server.port is None and server.log_path is None
    with pytest.raises(AttributeError, match="read-only"):
        server.port = 1  # type: ignore[misc]
    assert LocalModelServer.port.__doc__ == "The port of the current (or last) server process."
