"""``SyncChatAgent``: the ``ChatAgent`` for code that is not async (scripts, notebooks, views).

One implementation: a ``SyncChatAgent`` owns a ``ChatAgent`` and a private event loop running
in a daemon thread; every method runs the ``ChatAgent`` method of the same name on that loop
while the calling thread waits for its outcome (its value, or the very exception it raised).
So it works from any thread, several agents at once, and from code already running inside an
event loop (a Jupyter cell, an async framework calling sync code): the caller's loop is never
used. The agent's connection pool lives on its loop and is reused across calls.

Streams are pulled by the caller: the loop reads ahead within one model turn and waits at each
turn's end (``FinishEvent``) until the caller asks for more, so a stream left early never
commits its turn. ``display_stream`` and ``stream_chunk_callback`` run in the caller's thread
(a notebook shows the text in the cell that asked for it). Leaving a stream (``break``, the end
of a ``with`` block, ``close()``, an exception, Ctrl-C) cancels the call on the loop, waits for
it to close the HTTP response and leaves the history as it was; so does Ctrl-C during a call.
A stream its thread left while keeping a reference is closed by that thread's next call.
"""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import functools
import inspect
import queue
import threading
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Coroutine,
    Generator,
    Iterator,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, cast

from ._agent import ChatAgent
from ._call_args import ChatArgs, MediaArg, StructuredStreamArgs, Unpack
from ._call_checks import check_flags
from ._config import ModelConfig, RuntimeConfig
from ._display import StreamDisplay
from ._errors import APIConnectionError, ConfigurationError
from ._messages import ChatMessage
from ._streaming import ContentDeltaEvent, FinishEvent, StreamEvent

if TYPE_CHECKING:
    import httpx

    from . import _generated as gen
    from ._output_modes import StructuredStream
    from ._transport import Sleep
    from .tools import ToolRegistry

__all__ = ["SyncChatAgent", "SyncStream", "SyncStructuredStream"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
Y = TypeVar("Y")
S = TypeVar("S", bound="SyncStream[Any]")

# A stream's loop side pauses when this many items wait for the caller (memory bound), and
# goes on when half of them were taken.
_HIGH_WATER = 1024
_ITEM, _END, _ERROR = 0, 1, 2
# How long an agent collected without close() may take to close its pool at exit.
_FINALIZE_SECONDS = 5.0


def _closed_error(what: str) -> ConfigurationError:
    return ConfigurationError(
        f"SyncChatAgent.{what} was called on a closed agent: reopen it with 'with agent:' "
        "(or create a new one)",
        {"call": what},
    )


def _stopped_error(what: str) -> APIConnectionError:
    return APIConnectionError(
        f"the call was stopped: its agent was closed (SyncChatAgent.close() ran during {what})",
        {"call": what},
    )


class _Job(Generic[R]):
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
            self.stopped = True
            self.coro.close()
            self.done.release()


class _Loop:
    """A private event loop in a daemon thread; runs coroutines for callers in other threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.closed = False
        self.closing = False  # close() has begun: calls still running fail because of it
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

    def _check(self, what: str) -> None:
        if self.closed:
            raise _closed_error(what)
        if self.in_loop_thread:
            raise ConfigurationError(
                f"SyncChatAgent.{what} was called from the agent's own event loop (an async "
                "tool handler?); a sync call there would wait for itself forever: use a sync "
                "tool handler, or ChatAgent in async code",
                {"call": what},
            )

    def start(self, job: _Job[Any]) -> None:
        """Queue ``job`` to start as a task on the loop."""
        try:
            self.loop.call_soon_threadsafe(job.create, self.loop)
        except RuntimeError:  # the loop was closed meanwhile
            job.coro.close()
            raise ConfigurationError(
                "the SyncChatAgent was closed before this call or stream started: reopen it "
                "with 'with agent:' (or create a new one)",
                {},
            ) from None

    def cancel(self, job: _Job[Any]) -> None:
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
        job.done.acquire()

    def run(self, coro: Coroutine[Any, Any, R], what: str) -> R:
        """Run ``coro`` on the loop and return its result (or raise its exception) here."""
        job = _Job(coro)
        try:
            self._check(what)
        except BaseException:
            coro.close()
            raise
        try:
            self.start(job)
            job.done.acquire()
        except APIConnectionError:
            raise
        except BaseException:  # Ctrl-C (KeyboardInterrupt) while waiting: cancel the call
            self.cancel(job)
            raise
        task = job.task
        if self.closing and what != "close":
            # The agent was closed under the call (its pool closed, its task cancelled): say
            # so, rather than show the broken read or the cancellation that caused.
            if task is None or task.cancelled():
                raise _stopped_error(what)
            if isinstance(task.exception(), Exception):
                raise _stopped_error(what) from task.exception()
        assert task is not None
        return task.result()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the loop (after the work already queued) and wait for its thread to end."""
        if self.closed:
            return
        self.closed = True
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # already closed
            return
        if not self.in_loop_thread:
            self._thread.join(timeout)


def _shutdown(loop: _Loop, agent: ChatAgent) -> None:
    """Close an agent that was never closed (garbage collection or interpreter exit)."""
    if loop.closed or loop.in_loop_thread:
        return
    loop.closing = True
    try:
        job = _Job(agent.aclose())
        loop.start(job)
        job.done.acquire(timeout=_FINALIZE_SECONDS)
    except Exception:  # best effort at exit
        pass
    loop.stop(_FINALIZE_SECONDS)


class _Feed(Generic[Y]):
    """The loop side of a sync stream: pulls an async iterator into a queue for the caller.

    It reads ahead until an item for which ``pause_after`` is true (or until ``_HIGH_WATER``
    items wait), then waits until the caller has taken that item and asks for the next: the
    iterator is never advanced past such a boundary on its own.
    """

    def __init__(self, source: AsyncIterator[Y], pause_after: Callable[[Y], bool] | None) -> None:
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
                    if pause_after is not None and pause_after(item):
                        resume.clear()
                        self.resume_at = produced
                    elif qsize() >= _HIGH_WATER:
                        resume.clear()
                        self.resume_at = produced - _HIGH_WATER // 2
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


def _pull(loop: _Loop, feed: _Feed[Y]) -> Generator[Y, None, None]:
    """The caller side of a stream: starts the feed, yields its items, cancels it when left."""
    job = _Job(feed.run())
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
            kind, value = get()
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


class SyncStream(Iterator[Y]):
    """A stream for sync code: iterate it, and ``close()`` it (or use ``with``) to stop early.

    Leaving it early (``break``, an exception, Ctrl-C, the end of a ``with`` block, or
    dropping it) cancels the call: the HTTP response is closed and the history is unchanged.
    A stream left with ``break`` while still referenced is closed by the next call its thread
    makes on the same agent (as ``ChatAgent`` does for the task that left it).
    """

    __slots__ = ("__weakref__", "_items", "_thread")

    def __init__(self, items: Generator[Y, None, None]) -> None:
        self._items = items
        self._thread = threading.get_ident()  # the thread that asked for it

    @property
    def _left(self) -> bool:
        """Started, not finished, and not running: its thread is not inside ``next()``."""
        return inspect.getgeneratorstate(self._items) == inspect.GEN_SUSPENDED

    def __iter__(self) -> SyncStream[Y]:
        return self

    def __next__(self) -> Y:
        return next(self._items)

    def close(self) -> None:
        """Stop the stream: cancel the call, close its HTTP response (nothing enters history)."""
        self._items.close()

    def __enter__(self) -> SyncStream[Y]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# What a structured stream's state was when an item was yielded: attempt, restarted, done,
# final, failed_attempts (read on the loop, so the caller never sees the loop reading ahead).
_State = tuple[int, bool, bool, Any, tuple[dict[str, Any], ...]]


async def _with_state(stream: StructuredStream[T]) -> AsyncGenerator[tuple[T, _State], None]:
    try:
        async for item in stream:
            failed = tuple(stream.failed_attempts)
            yield item, (stream.attempt, stream.restarted, stream.done, stream.final, failed)
    finally:
        await stream.aclose()


class SyncStructuredStream(SyncStream[T]):
    """Partial objects of a structured answer as it streams, then the validated object.

    ``for partial in agent.chat_stream_structured(text, response_format=Person): ...``
    Each item is the object received so far (fields not yet received are ``None``); the last
    is the validated answer, also kept as :attr:`final` (and :attr:`done` turns true). When
    the answer fails validation and is asked for again, the sequence restarts: the first item
    of the new attempt comes with :attr:`restarted` true, :attr:`attempt` counts the attempts
    and :attr:`failed_attempts` holds each failed one's ``text``, ``message``, ``errors`` and
    ``mode``. The attributes describe the item last returned to this thread. Leaving the loop
    early (``break``, ``close()``, the end of a ``with`` block) ends the call and leaves the
    history untouched.
    """

    __slots__ = ("attempt", "done", "failed_attempts", "final", "restarted")

    def __init__(self, items: Generator[tuple[T, _State], None, None]) -> None:
        super().__init__(cast("Generator[T, None, None]", items))
        self.attempt = 0
        """0 for the first attempt, then 1, 2... after each failed one."""
        self.restarted = False
        """True while the item just returned is the first of a new attempt."""
        self.done = False
        """True once the validated answer has been returned."""
        self.final: T | None = None
        """The validated answer, once it has arrived."""
        self.failed_attempts: list[dict[str, Any]] = []
        """Each failed attempt: its ``text``, ``message``, ``errors`` and ``mode``."""

    def __iter__(self) -> SyncStructuredStream[T]:
        return self

    def __next__(self) -> T:
        item, state = cast("tuple[T, _State]", next(self._items))
        self.attempt, self.restarted, self.done, self.final, failed = state
        self.failed_attempts = list(failed)
        return item

    def __enter__(self) -> SyncStructuredStream[T]:
        return self


# --------------------------------------------------------------------------- typed wrappers
# Each wrapper makes a SyncChatAgent method from the ChatAgent method it runs: same name,
# parameters and documentation; the signature test in tests/test_sync.py keeps them equal.


class _Streams:
    """The streams of one sync agent (weakly), to close those their thread left.

    A thread cannot be iterating a stream while it starts another call, except from inside
    that loop's body, where the new call closes it, as ``ChatAgent`` does. Streams of other
    threads are left alone.
    """

    __slots__ = ("_lock", "_streams")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: weakref.WeakSet[SyncStream[Any]] = weakref.WeakSet()

    def add(self, stream: SyncStream[Any]) -> None:
        with self._lock:
            self._streams.add(stream)

    def close_left(self) -> None:
        """Close the streams this thread started and left (before it makes another call)."""
        me = threading.get_ident()
        with self._lock:
            if not self._streams:
                return
            left = [s for s in self._streams if s._thread == me and s._left]
            for stream in left:
                self._streams.discard(stream)
        for stream in left:
            stream.close()


def _like(wrapper: Callable[..., Any], method: Callable[..., Any], returns: str | None) -> None:
    functools.update_wrapper(wrapper, method)
    del wrapper.__wrapped__  # type: ignore[attr-defined]
    wrapper.__qualname__ = f"SyncChatAgent.{method.__name__}"
    signature = inspect.signature(method)
    if returns is not None:
        signature = signature.replace(return_annotation=returns)
    wrapper.__signature__ = signature  # type: ignore[attr-defined]


def _blocking(
    method: Callable[Concatenate[ChatAgent, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[SyncChatAgent, P], R]:
    """``async def f(agent, ...) -> R`` → ``def f(sync_agent, ...) -> R``, run on its loop."""
    name = method.__name__

    def call(self: SyncChatAgent, /, *args: P.args, **kwargs: P.kwargs) -> R:
        self._streams.close_left()
        return self._loop.run(method(self._agent, *args, **kwargs), name)

    _like(call, method, None)
    return call


def _streaming(
    method: Callable[Concatenate[ChatAgent, P], AsyncIterator[Y]],
    pause_after: Callable[[Y], bool] | None = None,
) -> Callable[Concatenate[SyncChatAgent, P], SyncStream[Y]]:
    """An async-iterator method → a method returning a ``SyncStream`` of the same items.

    ``pause_after`` names the items after which the loop side must not read ahead (the last
    item before the iterator commits anything); None: it never reads ahead.
    """
    name = method.__name__
    always: Callable[[Y], bool] = pause_after or (lambda _: True)

    def call(self: SyncChatAgent, /, *args: P.args, **kwargs: P.kwargs) -> SyncStream[Y]:
        self._streams.close_left()
        self._loop._check(name)
        return self._track(SyncStream(self._pull(method(self._agent, *args, **kwargs), always)))

    _like(call, method, f"SyncStream[{_item_type(method)}]")
    return call


def _item_type(method: Callable[..., Any]) -> str:
    returns = str(inspect.signature(method).return_annotation)
    inner = returns[returns.find("[") + 1 : returns.rfind("]")]
    return inner.split(",")[0].strip() or "Any"


def _forward(
    method: Callable[Concatenate[ChatAgent, P], R],
) -> Callable[Concatenate[SyncChatAgent, P], R]:
    """A plain ChatAgent method, called as it is (it does no I/O)."""

    def call(self: SyncChatAgent, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return method(self._agent, *args, **kwargs)

    _like(call, method, None)
    return call


def _never_ahead(item: object) -> bool:
    return True


def _is_turn_end(event: StreamEvent) -> bool:
    # A model turn's last event; after the last one the events stream commits the turn.
    return type(event) is FinishEvent


def _reply_text(
    events: SyncStream[StreamEvent], runtime: RuntimeConfig, display_stream: bool
) -> Generator[str, None, None]:
    """The reply's text pieces of an event stream, shown in this (the caller's) thread.

    The same text ``ChatAgent.chat_stream`` yields from ``chat_stream_events``.
    """
    display = StreamDisplay(
        to_stdout=display_stream,
        callback=runtime.stream_chunk_callback,
        progress=runtime.stream_enable_progress,
    )
    completed = False
    try:
        with events:
            for event in events:
                # The text of the first choice, the one that enters the history.
                if type(event) is ContentDeltaEvent and not event.choice:
                    if display.active:
                        display.write(event.text)
                    yield event.text
        completed = True
    finally:
        display.close(completed)  # a failed, interrupted or abandoned stream is not "done"


class SyncChatAgent:
    """``ChatAgent`` for sync code: the same methods and parameters, returning plain values.

    ``with SyncChatAgent(cfg, rt) as agent: print(agent.chat("Hello"))``, or call
    ``agent.close()`` when done. Streams are iterators: ``for piece in agent.chat_stream(...)``.
    Errors are the same ``ChatAPIException`` family, raised in the calling thread. The agent
    runs its ``ChatAgent`` on a private event loop thread, so it also works inside Jupyter and
    other running event loops; it may be shared by threads (their calls then run concurrently,
    as concurrent tasks of one ``ChatAgent`` would).
    """

    def __init__(
        self,
        model_config: ModelConfig | None = None,
        runtime_config: RuntimeConfig | None = None,
        *,
        http_transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self._agent = ChatAgent(
            model_config, runtime_config, http_transport=http_transport, sleep=sleep
        )
        self._streams = _Streams()
        self._loop = self._open()

    def _pull(
        self, source: AsyncIterator[Y], pause_after: Callable[[Y], bool]
    ) -> Generator[Y, None, None]:
        return _pull(self._loop, _Feed(source, pause_after))

    def _track(self, stream: S) -> S:
        self._streams.add(stream)
        return stream

    def _open(self) -> _Loop:
        loop = _Loop()
        self._finalizer = weakref.finalize(self, _shutdown, loop, self._agent)
        try:
            loop.run(self._agent.__aenter__(), "__enter__")
        except BaseException:
            self._finalizer()
            raise
        return loop

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> SyncChatAgent:
        if self._loop.closed:  # `with agent:` again after a close
            self._loop = self._open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool and stop the agent's loop thread (``with`` does this)."""
        loop = self._loop
        if loop.closed:
            return
        loop.closing = True
        try:
            loop.run(self._agent.aclose(), "close")
        finally:
            self._finalizer.detach()
            loop.stop()

    @property
    def closed(self) -> bool:
        return self._loop.closed

    def __repr__(self) -> str:
        return f"Sync{self._agent!r}"

    # ------------------------------------------------------------------ configuration
    @property
    def model_config(self) -> ModelConfig:
        return self._agent.model_config

    @property
    def runtime_config(self) -> RuntimeConfig:
        return self._agent.runtime_config

    # ------------------------------------------------------------------ history and tools
    @property
    def history(self) -> tuple[ChatMessage, ...]:
        """A read-only view of the conversation."""
        return self._agent.history

    @property
    def system_prompt(self) -> str | None:
        return self._agent.system_prompt

    @property
    def last_response(self) -> gen.ChatCompletion | None:
        """The full typed response of the last successful model call."""
        return self._agent.last_response

    @property
    def pending_tool_calls(self) -> list[gen.ToolCall]:
        """Tool calls the model asked for in a ``chat(..., auto_execute_tools=False)`` call."""
        return self._agent.pending_tool_calls

    @property
    def tools(self) -> ToolRegistry:
        """The registered tools."""
        return self._agent.tools

    set_system_prompt = _forward(ChatAgent.set_system_prompt)
    add_message = _forward(ChatAgent.add_message)
    clear_history = _forward(ChatAgent.clear_history)
    replace_history = _forward(ChatAgent.replace_history)
    save_history = _forward(ChatAgent.save_history)
    load_history = _forward(ChatAgent.load_history)
    register_tool = _forward(ChatAgent.register_tool)
    clear_tools = _forward(ChatAgent.clear_tools)
    get_stats = _forward(ChatAgent.get_stats)
    reset_stats = _forward(ChatAgent.reset_stats)

    # ------------------------------------------------------------------ calls
    list_models = _blocking(ChatAgent.list_models)
    retrieve_model = _blocking(ChatAgent.retrieve_model)
    submit_tool_results = _blocking(ChatAgent.submit_tool_results)
    chat_stream_events = _streaming(ChatAgent.chat_stream_events, _is_turn_end)

    chat = _blocking(ChatAgent.chat)  # its overloads too: a structured type in, its instance out

    def chat_stream(
        self,
        text: str,
        image_paths: MediaArg = None,
        video_paths: MediaArg = None,
        add_to_history: bool = True,
        display_stream: bool = True,
        *,
        auto_execute_tools: bool = True,
        **kwargs: Unpack[ChatArgs],
    ) -> SyncStream[str]:
        """Stream one turn, yielding the reply's text pieces as they arrive.

        The text of ``chat_stream_events``; ``display_stream`` writes the pieces to stdout and
        ``RuntimeConfig.stream_chunk_callback`` gets each one, in the calling thread. Leaving
        the loop early closes the response and leaves the history unchanged.
        """
        check_flags(display_stream=display_stream)
        self._streams.close_left()
        self._loop._check("chat_stream")
        source = self._agent.chat_stream_events(
            text, image_paths, video_paths, add_to_history, auto_execute_tools, **kwargs
        )
        events = SyncStream(self._pull(source, _is_turn_end))  # closed with the text stream
        text_stream = _reply_text(events, self._agent.runtime_config, display_stream)
        return self._track(SyncStream(text_stream))

    def chat_stream_structured(
        self,
        text: str,
        image_paths: MediaArg = None,
        video_paths: MediaArg = None,
        add_to_history: bool = True,
        *,
        response_format: type[T],
        **kwargs: Unpack[StructuredStreamArgs],
    ) -> SyncStructuredStream[T]:
        """Stream a structured answer: partial ``response_format`` objects, then the valid one.

        ``for partial in agent.chat_stream_structured(text, response_format=Person):`` gets
        the object as received so far each time it grows, and last the validated object
        (also ``stream.final``, with ``stream.done`` true). Modes and validation retries are
        those of ``chat``; a retry restarts the sequence (``stream.restarted``). The turn
        enters the history when the validated object has been returned; leaving the loop
        early closes the response and leaves the history unchanged.
        """
        self._streams.close_left()
        self._loop._check("chat_stream_structured")
        stream = self._agent.chat_stream_structured(
            text,
            image_paths,
            video_paths,
            add_to_history,
            response_format=response_format,
            **kwargs,
        )
        return self._track(SyncStructuredStream(self._pull(_with_state(stream), _never_ahead)))
