"""The sync agent's loop thread: jobs run for other threads, and none is lost at shutdown."""

from __future__ import annotations

import asyncio
import threading

import pytest

from openai_chatapi import ConfigurationError
from openai_chatapi._loop_thread import Job, LoopThread

# Bounds a hang only (a broken implementation waits forever); never part of an assertion.
SAFETY = 30.0


async def _answer() -> int:
    await asyncio.sleep(0)
    return 42


def test_run_returns_the_coroutines_value_in_the_callers_thread() -> None:
    thread = LoopThread()
    try:
        assert thread.run(_answer(), "chat") == 42
    finally:
        thread.stop()
    assert thread.closed and not thread._thread.is_alive()


def test_a_job_queued_while_the_loop_shuts_down_is_refused_not_lost() -> None:
    # A call that passed the closed check just before another thread's close() stopped the
    # loop: queued while the loop thread cancels what is still running, it would never run
    # and its caller would wait forever.
    thread = LoopThread()
    running, cleaning, finish = threading.Event(), threading.Event(), threading.Event()

    async def slow_to_cancel() -> None:
        running.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cleaning.set()
            await asyncio.to_thread(finish.wait, SAFETY)
            raise

    first = Job(slow_to_cancel())
    thread.start(first)
    assert running.wait(SAFETY)
    thread.stop(timeout=0)  # returns at once: the loop thread now cancels `first`
    assert cleaning.wait(SAFETY)

    late = Job(asyncio.sleep(3600))
    try:
        with pytest.raises(ConfigurationError, match="closed before this call or stream started"):
            thread.start(late)
    finally:
        finish.set()
    assert late.done.acquire(timeout=SAFETY)  # nobody is left waiting for it
    assert first.done.acquire(timeout=SAFETY)
    thread._thread.join(SAFETY)
    assert not thread._thread.is_alive()
