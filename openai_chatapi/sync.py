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

This module is the facade: ``SyncChatAgent``, its methods made from ``ChatAgent``'s by the
wrappers below. The loop thread lives in ``_loop_thread``, the streams in ``_sync_streams``.
"""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from ._agent import ChatAgent
from ._call_checks import check_flags
from ._config import ModelConfig, RuntimeConfig
from ._events import FinishEvent, StreamEvent
from ._loop_thread import Feed, Job, LoopThread, pull
from ._messages import ChatMessage
from ._sync_streams import (
    ClosedByWith,
    SyncStream,
    SyncStreams,
    SyncStructuredStream,
    reply_text,
    with_state,
)

if TYPE_CHECKING:
    import httpx

    from . import _generated as gen
    from ._output_modes import StructuredStream
    from ._stream_handle import ChatStream
    from ._transport import Sleep
    from .tools import ToolRegistry

__all__ = ["SyncChatAgent", "SyncStream", "SyncStructuredStream"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
Y = TypeVar("Y")
S = TypeVar("S", bound="SyncStream[Any]")

# How long an agent collected without close() may take to close its pool at exit.
_FINALIZE_SECONDS = 5.0


def _shutdown(loop: LoopThread, agent: ChatAgent) -> None:
    """Close an agent that was never closed (garbage collection or interpreter exit)."""
    if loop.closed or loop.in_loop_thread:
        return
    loop.closing = True
    try:
        job = Job(agent.aclose())
        loop.start(job)
        job.done.acquire(timeout=_FINALIZE_SECONDS)
    except Exception:  # best effort at exit
        pass
    loop.stop(_FINALIZE_SECONDS)


# --------------------------------------------------------------------------- typed wrappers
# Each wrapper makes a SyncChatAgent method from the ChatAgent method it runs: same name,
# parameters and documentation (the signature test in test_sync.py keeps them equal), so
# every signature is written once, in ChatAgent.


def _like(
    wrapper: Callable[..., Any],
    method: Callable[..., Any],
    returns: str | None,
    doc: str | None = None,
) -> None:
    functools.update_wrapper(wrapper, method)
    del wrapper.__wrapped__  # type: ignore[attr-defined]
    wrapper.__qualname__ = f"SyncChatAgent.{method.__name__}"
    if doc is not None:
        wrapper.__doc__ = doc
    signature = inspect.signature(method)
    if returns is not None:
        signature = signature.replace(return_annotation=returns)
    wrapper.__signature__ = signature  # type: ignore[attr-defined]


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


def _is_turn_end(event: StreamEvent) -> bool:
    # A model turn's last event; after the last one the events stream commits the turn.
    return type(event) is FinishEvent


def _never_ahead(item: object) -> bool:
    return True


def _streaming(
    method: Callable[Concatenate[ChatAgent, P], AsyncIterator[Y]],
    pause_after: Callable[[Y], bool] = _never_ahead,
) -> Callable[Concatenate[SyncChatAgent, P], SyncStream[Y]]:
    """An async-iterator method → a method returning a ``SyncStream`` of the same items.

    ``pause_after`` names the items after which the loop side must not read ahead (the last
    item before the iterator commits anything); by default it never reads ahead.
    """
    name = method.__name__

    def call(self: SyncChatAgent, /, *args: P.args, **kwargs: P.kwargs) -> SyncStream[Y]:
        self._streams.close_left()
        self._loop.check(name)
        items = self._pull(method(self._agent, *args, **kwargs), pause_after)
        return self._track(SyncStream(items))

    _like(call, method, f"SyncStream[{_item_type(method)}]")
    return call


def _text_streaming(
    method: Callable[Concatenate[ChatAgent, P], ChatStream[str]],
) -> Callable[Concatenate[SyncChatAgent, P], SyncStream[str]]:
    """``chat_stream``: the text of ``chat_stream_events``, displayed in the caller's thread.

    The loop side streams events (so it stops reading at each turn's end, as
    ``chat_stream_events`` does); the caller's thread picks the text out and shows it.
    """
    signature = inspect.signature(method)

    def call(self: SyncChatAgent, /, *args: P.args, **kwargs: P.kwargs) -> SyncStream[str]:
        arguments = signature.bind(self._agent, *args, **kwargs).arguments
        display_stream = arguments.pop("display_stream", True)
        check_flags(display_stream=display_stream)
        self._streams.close_left()
        self._loop.check(method.__name__)
        options = arguments.pop("kwargs", {})
        source = ChatAgent.chat_stream_events(**arguments, **options)
        events = SyncStream(self._pull(source, _is_turn_end))  # closed with the text stream
        return self._track(SyncStream(reply_text(events, self.runtime_config, display_stream)))

    _like(call, method, "SyncStream[str]", doc=_CHAT_STREAM_DOC)
    return call


def _structured_streaming(
    method: Callable[Concatenate[ChatAgent, P], StructuredStream[T]],
) -> Callable[Concatenate[SyncChatAgent, P], SyncStructuredStream[T]]:
    """``chat_stream_structured``: its items with the stream's state as each was produced."""
    name = method.__name__

    def call(self: SyncChatAgent, /, *args: P.args, **kwargs: P.kwargs) -> SyncStructuredStream[T]:
        self._streams.close_left()
        self._loop.check(name)
        items = self._pull(with_state(method(self._agent, *args, **kwargs)), _never_ahead)
        return self._track(SyncStructuredStream(items))

    _like(call, method, "SyncStructuredStream[T]", doc=_STRUCTURED_STREAM_DOC)
    return call


_CHAT_STREAM_DOC = """\
Stream one turn, yielding the reply's text pieces as they arrive.

The text of ``chat_stream_events``; ``display_stream`` writes the pieces to stdout and
``RuntimeConfig.stream_chunk_callback`` gets each one, in the calling thread. Leaving the
loop early closes the response and leaves the history unchanged.
"""

_STRUCTURED_STREAM_DOC = """\
Stream a structured answer: partial ``response_format`` objects, then the valid one.

``for partial in agent.chat_stream_structured(text, response_format=Person):`` gets the
object as received so far each time it grows, and last the validated object (also
``stream.final``, with ``stream.done`` true). Modes and validation retries are those of
``chat``; a retry restarts the sequence (``stream.restarted``). The turn enters the history
when the validated object has been returned; leaving the loop early closes the response and
leaves the history unchanged.
"""


class SyncChatAgent(ClosedByWith):
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
        self._streams = SyncStreams()
        self._closing = threading.Lock()  # one close() at a time; the others wait for it
        self._loop = self._open()

    def _pull(
        self, source: AsyncIterator[Y], pause_after: Callable[[Y], bool]
    ) -> Generator[Y, None, None]:
        return pull(self._loop, Feed(source, pause_after))

    def _track(self, stream: S) -> S:
        self._streams.add(stream)
        return stream

    def _open(self) -> LoopThread:
        loop = LoopThread()
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

    def close(self) -> None:
        """Close the connection pool and stop the agent's loop thread (``with`` does this)."""
        with self._closing:
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

    # ------------------------------------------------------------------ history
    @property
    def history(self) -> tuple[ChatMessage, ...]:
        """A read-only view of the conversation."""
        return self._agent.history

    @property
    def system_prompt(self) -> str | None:
        return self._agent.system_prompt

    set_system_prompt = _forward(ChatAgent.set_system_prompt)
    add_message = _forward(ChatAgent.add_message)
    clear_history = _forward(ChatAgent.clear_history)
    replace_history = _forward(ChatAgent.replace_history)

    save_history = _forward(ChatAgent.save_history)  # JSON files
    load_history = _forward(ChatAgent.load_history)

    @property
    def last_response(self) -> gen.ChatCompletion | None:
        """The full typed response of the last successful model call."""
        return self._agent.last_response

    # ------------------------------------------------------------------ tools and stats
    @property
    def tools(self) -> ToolRegistry:
        """The registered tools."""
        return self._agent.tools

    @property
    def pending_tool_calls(self) -> list[gen.ToolCall]:
        """Tool calls the model asked for in a ``chat(..., auto_execute_tools=False)`` call."""
        return self._agent.pending_tool_calls

    register_tool = _forward(ChatAgent.register_tool)
    clear_tools = _forward(ChatAgent.clear_tools)
    get_stats = _forward(ChatAgent.get_stats)
    reset_stats = _forward(ChatAgent.reset_stats)

    # ------------------------------------------------------------------ calls
    list_models = _blocking(ChatAgent.list_models)
    retrieve_model = _blocking(ChatAgent.retrieve_model)
    submit_tool_results = _blocking(ChatAgent.submit_tool_results)
    chat = _blocking(ChatAgent.chat)  # its overloads too: a structured type in, its instance out
    chat_stream_events = _streaming(ChatAgent.chat_stream_events, _is_turn_end)
    chat_stream = _text_streaming(ChatAgent.chat_stream)
    chat_stream_structured = _structured_streaming(ChatAgent.chat_stream_structured)


# Their public home (and the name their reprs and documentation give).
SyncStream.__module__ = SyncStructuredStream.__module__ = __name__
