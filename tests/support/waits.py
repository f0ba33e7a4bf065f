"""Waiting helpers shared by the cancellation tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

__all__ = ["cancel_when_set", "rendezvous", "thread_meeting", "until_cancelled"]


async def until_cancelled(started: Callable[[], object], cancelled: Callable[[], object]) -> None:
    """Call ``started()``, wait until cancelled, call ``cancelled()`` and let the cancellation
    go on (the body of a tool or hook that never finishes by itself)."""
    started()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        cancelled()
        raise


def rendezvous(first: str, second: str) -> tuple[Any, Any]:
    """Two tools (``@tool``) named ``first`` and ``second``: each returns its name only once
    the other has started, so they finish only when they run at the same time."""
    from openai_chatapi import tool

    started = {first: asyncio.Event(), second: asyncio.Event()}

    def make(name: str, other: str) -> Any:
        async def run() -> str:
            started[name].set()
            await started[other].wait()
            return name

        return tool(name=name, description=f"returns {name!r} once {other!r} runs")(run)

    return make(first, second), make(second, first)


def thread_meeting(timeout: float, parties: int = 2) -> Any:
    """A sync tool ``where(label)`` returning the id of the thread it ran in, once ``parties``
    calls wait at a barrier together (it breaks unless they run concurrently in threads)."""
    from openai_chatapi import tool

    barrier = threading.Barrier(parties, timeout=timeout)

    @tool
    def where(label: str) -> int:
        barrier.wait()
        return threading.get_ident()

    return where


async def cancel_when_set(work: Awaitable[Any], event: asyncio.Event) -> None:
    """Run ``work`` as a task, cancel it once ``event`` is set, and check that it ended by
    that cancellation."""
    task = asyncio.ensure_future(work)
    await event.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
