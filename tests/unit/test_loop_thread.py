"""The sync agent's loop thread: jobs run for other threads, and none is lost at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from openai_chatapi import ConfigurationError
from openai_chatapi._loop_thread import Feed, Job, LoopThread, pull

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


# --------------------------------------------------------------------------- Ctrl-C


@contextlib.contextmanager
def _ctrl_c_handled_on_another_thread() -> Iterator[threading.Event]:
    """A Ctrl-C whose C-level handler runs on another thread (the kernel may pick any thread
    for a signal from the terminal; one landing just before a wait begins is the same race):
    Python then runs KeyboardInterrupt in the main thread, but no signal wakes its wait.
    Yields an event to set once the main thread is waiting."""
    main = threading.main_thread()
    assert threading.current_thread() is main, "this test must run in the main thread"
    waiting = threading.Event()

    def fire() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        if waiting.wait(SAFETY):
            time.sleep(0.2)  # into the wait (not a bound: the outcome is the same earlier)
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    previous_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    firing = threading.Thread(target=fire, daemon=True)
    firing.start()
    try:
        yield waiting
    finally:
        firing.join(SAFETY)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        signal.signal(signal.SIGINT, previous_handler)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_ctrl_c_handled_on_another_thread_interrupts_a_waiting_run() -> None:
    thread = LoopThread()
    outcome: list[str] = []

    async def stalled() -> None:
        started.set()
        try:
            await asyncio.sleep(SAFETY)
            outcome.append("finished")  # an untimed wait would only see the Ctrl-C now
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    try:
        with _ctrl_c_handled_on_another_thread() as started, pytest.raises(KeyboardInterrupt):
            thread.run(stalled(), "chat")
    finally:
        thread.stop()
    assert outcome == ["cancelled"]  # the call was cancelled and waited for, then raised


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_ctrl_c_handled_on_another_thread_interrupts_a_waiting_stream() -> None:
    thread = LoopThread()
    outcome: list[str] = []

    async def stalled_after_one() -> AsyncIterator[str]:
        yield "first"
        try:
            await asyncio.sleep(SAFETY)
            outcome.append("finished")
            yield "late"
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    got: list[str] = []
    try:
        with _ctrl_c_handled_on_another_thread() as waiting, pytest.raises(KeyboardInterrupt):
            for item in pull(thread, Feed(stalled_after_one(), lambda item: False)):
                got.append(item)
                waiting.set()
    finally:
        thread.stop()
    assert got == ["first"]
    assert outcome == ["cancelled"]
