"""The streams ``SyncChatAgent`` returns: iterators over what its loop thread pulls.

``SyncStream`` wraps the caller side of a ``pull`` (``_loop_thread``); leaving it early
cancels the call on the loop. ``SyncStructuredStream`` adds the structured stream's
attributes as they were when each item was produced. ``SyncStreams`` tracks an agent's streams
so a thread's next call closes the one it left; ``reply_text`` is ``chat_stream``'s text,
displayed in the caller's thread.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import AsyncGenerator, Generator, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ._display import StreamDisplay
from ._events import ContentDeltaEvent

if TYPE_CHECKING:
    from ._config import RuntimeConfig
    from ._events import StreamEvent
    from ._output_modes import StructuredStream

__all__ = [
    "ClosedByWith",
    "StreamState",
    "SyncStream",
    "SyncStreams",
    "SyncStructuredStream",
    "reply_text",
    "with_state",
]

T = TypeVar("T")
Y = TypeVar("Y")


class ClosedByWith:
    """``with x:`` calls ``x.close()`` when the block ends."""

    __slots__ = ()

    def close(self) -> None:
        raise NotImplementedError

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SyncStream(ClosedByWith, Iterator[Y]):
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


# What a structured stream's state was when an item was yielded: attempt, restarted, done,
# final, failed_attempts (read on the loop, so the caller never sees the loop reading ahead).
StreamState = tuple[int, bool, bool, Any, tuple[dict[str, Any], ...]]


async def with_state(stream: StructuredStream[T]) -> AsyncGenerator[tuple[T, StreamState], None]:
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

    def __init__(self, items: Generator[tuple[T, StreamState], None, None]) -> None:
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
        item, state = cast("tuple[T, StreamState]", next(self._items))
        self.attempt, self.restarted, self.done, self.final, failed = state
        self.failed_attempts = list(failed)
        return item

    def __enter__(self) -> SyncStructuredStream[T]:
        return self


class SyncStreams:
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


def reply_text(
    events: SyncStream[StreamEvent], runtime: RuntimeConfig, display_stream: bool
) -> Generator[str, None, None]:
    """The reply's text pieces of an event stream, shown in this (the caller's) thread.

    The same text ``ChatAgent.chat_stream`` yields from ``chat_stream_events``; a failed,
    interrupted or abandoned stream's progress line says "stopped", not "done".
    """
    with StreamDisplay.of(runtime, display_stream) as display, events:
        for event in events:
            # The text of the first choice, the one that enters the history.
            if type(event) is ContentDeltaEvent and not event.choice:
                if display.active:
                    display.write(event.text)
                yield event.text
