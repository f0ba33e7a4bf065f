"""A private event loop in a daemon thread, running coroutines for callers in other threads.

``LoopThread.run`` runs one coroutine there and returns its outcome in the caller's thread;
``pull`` turns an async iterator on the loop into a generator the caller iterates, with the
loop side (``Feed``) reading ahead only up to the boundaries the caller names. This is the
machinery under ``SyncChatAgent``; it knows nothing of chat.
"""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
from typing import Any, Generic, TypeVar

from ._errors import APIConnectionError, ConfigurationError

__all__ = ["Feed", "Job", "LoopThread", "closed_error", "pull", "stopped_error"]

R = TypeVar("R")
Y = TypeVar("Y")

# A stream's loop side pauses when this many items wait for the caller (memory bound), and
# goes on when half of them were taken.
HIGH_WATER = 1024
_ITEM, _END, _ERROR = 0, 1, 2
# A caller waits in slices of this many seconds. Python runs a signal's handler (Ctrl-C's
# KeyboardInterrupt) in the main thread between waits, never during one, and an untimed wait
# is woken only by a signal delivered to its own thread after the wait began: one that lands
# just before the wait, or on another thread (the kernel picks any thread for a Ctrl-C from
# the terminal), would be held until the reply ends; a stalled stream would hold it forever.
WAIT_SLICE = 0.1


def _wait_for(lock: Any) -> None:
    """Acquire ``lock`` (a ``_thread`` lock), letting Ctrl-C in between slices."""
    while not lock.acquire(timeout=WAIT_SLICE):
        pass


def closed_error(what: str) -> ConfigurationError:
    return ConfigurationError(
        f"SyncChatAgent.{what} was called on a closed agent: reopen it with 'with agent:' "
        "(or create a new one)",
        {"call": what},
    )


def stopped_error(what: str) -> APIConnectionError:
    return APIConnectionError(
        f"the call was stopped: its agent was closed (SyncChatAgent.close() ran during {what})",
        {"call": what},
    )


def _not_started_error() -> ConfigurationError:
    return ConfigurationError(
        "the SyncChatAgent was closed before this call or stream started: reopen it "
        "with 'with agent:' (or create a new one)",
        {},
    )


class Job(Generic[R]):
    """One coroutine run on the loop for a caller in another thread.

    ``done`` is released when it has finished, also when it was cancelled before it started:
    a Ctrl-C may arrive anywhere in the caller's code, even before ``create`` was queued.
    """

    __slots__ = ("coro", "done", "stopped", "task")

    def __init__(self, coro: Coroutine[Any, Any, R]) -> None:
        self.coro = coro
        self.task: asyncio.Task[R] | None = None
        self.stopped = False
        self.done = _thread.allocate_lock()
        self.done.acquire()

    def create(self, loop: asyncio.AbstractEventLoop) -> None:  # on the loop
        if self.stopped:
            return
        self.task = task = loop.create_task(self.coro)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[R]) -> None:
        self.done.release()

    def cancel(self) -> None:  # on the loop, queued after create (if create was queued)
        if self.task is not None:
            self.task.cancel()
        elif not self.stopped:  # never created: nothing will release done otherwise
            self.abandon()

    def abandon(self) -> None:
        """Never to start: close the coroutine and release whoever waits for it."""
        self.stopped = True
        self.coro.close()
        self.done.release()


class LoopThread:
    """A private event loop in a daemon thread; runs coroutines for callers in other threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.closed = False
        self.closing = False  # close() has begun: calls still running fail because of it
        # Held while a job is queued and while the stop is: no job is queued behind the
        # stop, where the loop would never run it (and its caller would wait forever).
        # Reentrant: a finalizer (``SyncChatAgent``'s at collection) may run inside it.
        self._queueing = threading.RLock()
        self._thread = threading.Thread(
            target=self._main, name="openai_chatapi-sync-loop", daemon=True
        )
        self._thread.start()

    def _main(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            while not self.closed:
                try:
                    loop.run_forever()
                except BaseException:
                    # KeyboardInterrupt/SystemExit raised inside a task (an async tool handler):
                    # the task has recorded it, and its caller re-raises it. The loop goes on.
                    continue
        finally:
            try:
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    @property
    def in_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread.ident

    def check(self, what: str) -> None:
        """Refuse a call on a closed loop, or one made from the loop's own thread."""
        if self.closed:
            raise closed_error(what)
        if self.in_loop_thread:
            raise ConfigurationError(
                f"SyncChatAgent.{what} was called from the agent's own event loop (an async "
                "tool handler?); a sync call there would wait for itself forever: use a sync "
                "tool handler, or ChatAgent in async code",
                {"call": what},
            )

    def start(self, job: Job[Any]) -> None:
        """Queue ``job`` to start as a task on the loop."""
        with self._queueing:
            if not self.closed:
                with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile
                    self.loop.call_soon_threadsafe(job.create, self.loop)
                    return
        job.abandon()
        raise _not_started_error()

    def cancel(self, job: Job[Any]) -> None:
        """Cancel a started job and wait until it has finished cleaning up.

        Another Ctrl-C while waiting abandons the wait (the task still ends on the loop).
        """
        if self.in_loop_thread:  # cannot wait for ourselves
            job.cancel()
            return
        try:
            self.loop.call_soon_threadsafe(job.cancel)
        except RuntimeError:  # the loop is closed: the task is gone with it
            return
        _wait_for(job.done)

    def run(self, coro: Coroutine[Any, Any, R], what: str) -> R:
        """Run ``coro`` on the loop and return its result (or raise its exception) here."""
        job = Job(coro)
        try:
            self.check(what)
        except BaseException:
            coro.close()
            raise
        try:
            self.start(job)
            _wait_for(job.done)
        except ConfigurationError:  # not started: nothing to cancel
            raise
        except BaseException:  # Ctrl-C (KeyboardInterrupt) while waiting: cancel the call
            self.cancel(job)
            raise
        task = job.task
        if self.closing and what != "close":
            # The agent was closed under the call (its pool closed, its task cancelled): say
            # so, rather than show the broken read or the cancellation that caused.
            if task is None or task.cancelled():
                raise stopped_error(what)
            if isinstance(task.exception(), Exception):
                raise stopped_error(what) from task.exception()
        assert task is not None
        return task.result()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the loop (after the work already queued) and wait for its thread to end."""
        with self._queueing:
            if self.closed:
                return
            self.closed = True
            try:
                self.loop.call_soon_threadsafe(self.loop.stop)
            except RuntimeError:  # already closed
                return
        if not self.in_loop_thread:
            self._thread.join(timeout)


class Feed(Generic[Y]):
    """The loop side of a sync stream: pulls an async iterator into a queue for the caller.

    It reads ahead until an item for which ``pause_after`` is true (or until ``HIGH_WATER``
    items wait), then waits until the caller has taken that item and asks for the next: the
    iterator is never advanced past such a boundary on its own.
    """

    def __init__(self, source: AsyncIterator[Y], pause_after: Callable[[Y], bool]) -> None:
        self.source = source
        self.pause_after = pause_after
        self.items: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        # Set (before the item is queued) when the loop side waits; the caller wakes it once it
        # has taken this many items and wants more.
        self.resume_at: int | None = None
        self.resume: asyncio.Event | None = None
        # Set by the caller before it cancels the task: a cancellation swallowed on the way
        # (asyncio.wait_for on Python < 3.12 can) must not leave the task waiting for it.
        self.stopped = False

    async def run(self) -> None:
        self.resume = resume = asyncio.Event()
        source, pause_after = self.source, self.pause_after
        put, qsize = self.items.put, self.items.qsize
        produced = 0
        try:
            try:
                async for item in source:
                    produced += 1
                    if pause_after(item):
                        resume.clear()
                        self.resume_at = produced
                    elif qsize() >= HIGH_WATER:
                        resume.clear()
                        self.resume_at = produced - HIGH_WATER // 2
                    put((_ITEM, item))
                    if self.stopped:
                        raise asyncio.CancelledError
                    if self.resume_at is not None:
                        await resume.wait()
            finally:
                aclose = getattr(source, "aclose", None)
                if aclose is not None:
                    await aclose()
        except asyncio.CancelledError:
            # Read only when the agent was closed under a caller still iterating.
            put((_ERROR, APIConnectionError("the stream was stopped: its agent was closed", {})))
            raise
        except BaseException as exc:  # delivered to the caller, who raises it in its thread
            put((_ERROR, exc))
        else:
            put((_END, None))


def pull(loop: LoopThread, feed: Feed[Y]) -> Generator[Y, None, None]:
    """The caller side of a stream: starts the feed, yields its items, cancels it when left."""
    job = Job(feed.run())
    get = feed.items.get
    taken = 0
    finished = False
    try:
        loop.start(job)
        while True:
            mark = feed.resume_at
            if mark is not None and taken >= mark:
                feed.resume_at = None
                resume = feed.resume
                assert resume is not None
                with contextlib.suppress(RuntimeError):  # a closed loop has queued an error
                    loop.loop.call_soon_threadsafe(resume.set)
            try:
                kind, value = get(timeout=WAIT_SLICE)
            except queue.Empty:  # let a Ctrl-C in (see WAIT_SLICE), then wait on
                continue
            if kind == _ITEM:
                taken += 1
                yield value
            else:
                finished = True
                if kind == _END:
                    return
                raise value
    finally:
        if not finished:  # left early: cancel the call and wait until it has cleaned up
            feed.stopped = True
            loop.cancel(job)
