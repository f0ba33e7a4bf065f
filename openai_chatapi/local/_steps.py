"""Running the supervisor's lifecycle: the steps it waits on, and the two ways to wait.

``Supervisor.start`` and ``Supervisor.stop`` are generators that yield what they wait for, a
``Sleep`` or a ``Probe`` (one ``GET`` of the readiness check), and get back its outcome.
``run_async`` waits with ``asyncio.sleep`` and ``httpx.AsyncClient``; ``run_blocking`` with
``time.sleep`` and ``httpx.Client``. Both run the one loop of ``_drive``, which hands each
outcome back to the steps, and an exception raised while waiting (``KeyboardInterrupt``, a
cancellation) too: it is thrown into the generator at its ``yield``, where the lifecycle's
own cleanup runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from typing import Any, NamedTuple, TypeVar

import httpx

__all__ = ["Probe", "Sleep", "Steps", "run_async", "run_blocking"]

_T = TypeVar("_T")
# The probe's client: a short timeout, and no proxy from the environment for loopback.
_PROBE_CLIENT: dict[str, Any] = {"timeout": 2.0, "trust_env": False}


class Probe(NamedTuple):
    """Wait for ``GET url``; the outcome is the response, or None when it failed."""

    url: str
    headers: dict[str, str]


class Sleep(NamedTuple):
    """Wait ``seconds``; the outcome is None."""

    seconds: float


Step = Probe | Sleep
Steps = Generator[Step, httpx.Response | None, _T]


async def _drive(steps: Steps[_T], waits: _Waits) -> _T:
    """Perform each step of ``steps`` and hand back its outcome; their result."""
    outcome: httpx.Response | BaseException | None = None
    while True:
        try:
            if isinstance(outcome, BaseException):
                step = steps.throw(outcome)
            else:
                step = steps.send(outcome)
        except StopIteration as done:
            result: _T = done.value
            return result
        try:
            outcome = await waits.wait(step)
        except BaseException as exc:  # interrupted while waiting: the steps clean up
            outcome = exc


class _Waits:
    """How a driver waits: ``sleep`` and ``get`` (its client is opened by the first probe;
    a stop sends none)."""

    async def wait(self, step: Step) -> httpx.Response | None:
        if isinstance(step, Sleep):
            await self.sleep(step.seconds)
            return None
        try:
            return await self.get(step)
        except httpx.HTTPError:
            return None

    async def sleep(self, seconds: float) -> None:
        raise NotImplementedError

    async def get(self, probe: Probe) -> httpx.Response:
        raise NotImplementedError


class _AsyncWaits(_Waits):
    def __init__(self) -> None:
        self.client: httpx.AsyncClient | None = None

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def get(self, probe: Probe) -> httpx.Response:
        self.client = self.client or httpx.AsyncClient(**_PROBE_CLIENT)
        return await self.client.get(probe.url, headers=probe.headers)


class _BlockingWaits(_Waits):
    """Waits that block instead of suspending (never awaited on an event loop)."""

    def __init__(self) -> None:
        self.client: httpx.Client | None = None

    async def sleep(self, seconds: float) -> None:
        time.sleep(seconds)  # noqa: ASYNC251

    async def get(self, probe: Probe) -> httpx.Response:
        self.client = self.client or httpx.Client(**_PROBE_CLIENT)
        return self.client.get(probe.url, headers=probe.headers)


async def run_async(steps: Steps[_T]) -> _T:
    """Run ``steps`` on the running event loop; their result."""
    waits = _AsyncWaits()
    try:
        return await _drive(steps, waits)
    finally:
        if waits.client is not None:
            await waits.client.aclose()


def run_blocking(steps: Steps[_T]) -> _T:
    """Run ``steps`` in this thread, blocking; their result.

    Its waits block instead of suspending, so the coroutine of ``_drive`` runs to its end on
    the first ``send``: no event loop is involved (this works inside a running one too).
    """
    waits = _BlockingWaits()
    coroutine = _drive(steps, waits)
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: _T = done.value
        return result
    finally:
        if waits.client is not None:
            waits.client.close()
    coroutine.close()
    raise RuntimeError("a blocking wait suspended")  # pragma: no cover
