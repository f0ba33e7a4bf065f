"""What ``chat_stream`` / ``chat_stream_events`` return: an async generator that is also an
async context manager, and that its agent can close when the caller abandoned it.

A stream holds an HTTP response (a pooled connection) until it ends. It ends when its loop
runs to the end, when the ``async with`` block around it exits, when ``aclose()`` is called,
or when the code that was reading it starts another call on the same agent (the same task,
or a task it started since: "the reader" is tracked through a context variable, which
tasks inherit): a loop left with ``break`` while a reference to the stream is kept would
otherwise hold the connection until the garbage collector finds the stream (with
``max_connections=1``, forever). Reading a stream the agent closed that way raises
``ConfigurationError`` (a stream closed by ``aclose()`` or ``async with`` just ends).

Also here: ``reply_text`` (the text pieces ``chat_stream`` yields, displayed as they come)
and ``StructuredStream`` (what ``chat_stream_structured`` returns).
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncGenerator
from contextlib import aclosing
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._errors import ConfigurationError
from ._events import ContentDeltaEvent

if TYPE_CHECKING:
    from ._config import RuntimeConfig
    from ._events import StreamEvent
    from ._output_modes import Update

__all__ = ["ChatStream", "ClosesOnExit", "OpenStreams", "StructuredStream", "reply_text"]

T = TypeVar("T")
_C = TypeVar("_C", bound="ClosesOnExit")


class ClosesOnExit:
    """``async with stream:`` closes the stream (its ``aclose()``) when the block ends."""

    __slots__ = ()

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self: _C) -> _C:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


# The streams the current context (task, and the tasks it starts) has read from.
_READ: ContextVar[tuple[weakref.ref[ChatStream[Any]], ...]] = ContextVar(
    "openai_chatapi_streams_read", default=()
)


class ChatStream(ClosesOnExit, AsyncGenerator[T, None]):
    """An async generator of one streamed call; ``async with`` closes it on exit."""

    __slots__ = ("__weakref__", "_gen", "_started", "_superseded")

    def __init__(self, gen: AsyncGenerator[T, None], streams: OpenStreams) -> None:
        self._gen = gen
        self._started = False
        self._superseded = False
        streams.add(self)

    def __aiter__(self) -> ChatStream[T]:
        return self

    async def __anext__(self) -> T:
        self._check_superseded()
        self._note_reader()
        return await self._gen.__anext__()

    async def asend(self, value: None) -> T:
        self._check_superseded()
        self._note_reader()
        return await self._gen.asend(value)

    def _check_superseded(self) -> None:
        if self._superseded:
            raise ConfigurationError(
                "this stream was closed because a newer call on the agent started "
                "(finish reading a stream, or aclose() it, before the next call)",
                {"reason": "superseded"},
            )

    async def athrow(self, *args: Any) -> T:
        return await self._gen.athrow(*args)

    async def aclose(self) -> None:
        await self._gen.aclose()

    def _note_reader(self) -> None:
        if not self._started:
            self._started = True
            read = tuple(ref for ref in _READ.get() if _alive(ref()))
            _READ.set((*read, weakref.ref(self)))

    @property
    def suspended(self) -> bool:
        """Started, not finished, and waiting at a ``yield``: its reader holds a value (or
        left the loop), it is not waiting for the network."""
        gen = self._gen
        return (
            self._started
            and getattr(gen, "ag_frame", None) is not None  # None once finished or closed
            and not getattr(gen, "ag_running", False)
        )


def _alive(stream: ChatStream[Any] | None) -> bool:
    return stream is not None and getattr(stream._gen, "ag_frame", None) is not None


class OpenStreams:
    """The streams of one agent that may still hold a connection (weakly referenced)."""

    __slots__ = ("_streams",)

    def __init__(self) -> None:
        self._streams: weakref.WeakSet[ChatStream[Any]] = weakref.WeakSet()

    def add(self, stream: ChatStream[Any]) -> None:
        self._streams.add(stream)

    async def close_abandoned(self) -> None:
        """Close the streams the current code started reading and then left (before it
        starts another call on the same agent)."""
        if not self._streams:
            return
        for ref in _READ.get():
            stream = ref()
            if stream is not None and stream in self._streams and stream.suspended:
                self._streams.discard(stream)
                stream._superseded = True
                await stream.aclose()


async def reply_text(
    events: AsyncGenerator[StreamEvent, None], runtime: RuntimeConfig, display_stream: bool
) -> AsyncGenerator[str, None]:
    """The text pieces of the first choice (the one that enters the history), displayed."""
    from ._display import StreamDisplay

    display = StreamDisplay(
        to_stdout=display_stream,
        callback=runtime.stream_chunk_callback,
        progress=runtime.stream_enable_progress,
    )
    completed = False
    try:
        async with aclosing(events):
            async for event in events:
                if type(event) is ContentDeltaEvent and not event.choice:
                    if display.active:
                        display.write(event.text)
                    yield event.text
        completed = True
    finally:
        display.close(completed)


class StructuredStream(ClosesOnExit, Generic[T]):
    """Partial objects of a structured answer as it streams, then the validated object.

    Iterate it with ``async for``. Each item is the object received so far (fields not yet
    received are ``None``; a list holds its items so far, the last one possibly partial); the
    last item is the fully validated answer, also kept as :attr:`final`. When the answer fails
    validation and is asked for again, the sequence restarts: the first item of the new attempt
    comes with :attr:`restarted` true, :attr:`attempt` counts the attempts, and
    :attr:`failed_attempts` holds each failed one's text and errors. Leaving the loop early
    (or ``async with`` exiting) ends the call and leaves the history untouched.
    """

    def __init__(self, updates: AsyncGenerator[Update, None]) -> None:
        self._updates = updates
        self.attempt = 0
        """0 for the first attempt, then 1, 2... after each failed one."""
        self.restarted = False
        """True while the item just yielded is the first of a new attempt."""
        self.done = False
        """True once the validated answer has been yielded."""
        self.final: T | None = None
        """The validated answer, once it has arrived."""
        self.failed_attempts: list[dict[str, Any]] = []
        """Each failed attempt: its ``text``, ``message``, ``errors`` and ``mode``."""
        self._pending_restart = False

    def __aiter__(self) -> StructuredStream[T]:
        return self

    async def __anext__(self) -> T:
        while True:
            try:
                update = await self._updates.__anext__()
            except StopAsyncIteration:
                raise
            if update.kind == "restart":
                self.failed_attempts.append(update.value)
                self.attempt = update.attempt
                self._pending_restart = True
                continue
            self.restarted = self._pending_restart
            self._pending_restart = False
            if update.kind == "final":
                self.done = True
                self.final = update.value
            value: T = update.value
            return value

    async def aclose(self) -> None:
        """Stop the call (nothing enters the history unless it had completed)."""
        await self._updates.aclose()
