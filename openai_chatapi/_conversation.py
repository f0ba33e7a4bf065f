"""The conversation's turn discipline: one history-changing turn at a time, pending tool calls,
and the epoch that keeps a turn out of a conversation that replaced its own.

``TurnGate`` is a first-in, first-out gate (one per agent). A call that will change the
history (``add_to_history=True``, and every ``submit_tool_results``) passes through it, so
concurrent calls on one agent run one after the other, in the order they asked, each seeing
the replies of those before it. Calls with ``add_to_history=False`` do not wait.

``clear_history()``/``replace_history()``/``load_history()`` start a new *epoch*: a turn that
began in an earlier epoch still returns its reply but is not committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from ._generated import ChatCompletion, ToolCall
    from ._messages import ChatMessage
    from .tools import ToolRegistry, ToolResult

__all__ = ["Conversation", "Ticket", "TurnGate", "answers_for", "pending_calls_error"]

logger = logging.getLogger("openai_chatapi")
Log: TypeAlias = "logging.Logger | logging.LoggerAdapter[logging.Logger]"

# Ids of the gates whose turn is running tool handlers in this context (inherited by the
# handlers' tasks): a handler that starts a history-changing call on the same agent would
# wait for the very turn that waits for it.
_IN_TOOLS: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "openai_chatapi_in_tools", default=frozenset()
)


def pending_calls_error(count: int) -> ConfigurationError:
    return ConfigurationError(
        f"{count} tool call(s) of the last turn are still pending: answer them with "
        "submit_tool_results(...) (or call clear_history() to drop them) before a new turn",
        {"field": "pending_tool_calls", "pending": count},
    )


class Conversation:
    """One agent's conversation state, shared by the facade and its turn runner.

    The facade edits it (history methods, tools); the turn runner reads it to build a
    request and writes it only in :meth:`commit`, at the end of a successful turn.
    """

    __slots__ = (
        "gate",
        "history",
        "last_response",
        "log",
        "output_modes",
        "pending",
        "stale",
        "tools",
    )

    def __init__(self, log: Log = logger) -> None:
        self.log = log  # the agent's own logger: its level, not the last agent's
        self.history: list[ChatMessage] = []
        self.pending: list[ChatMessage] | None = None  # a turn ended on unanswered tool calls
        self.last_response: ChatCompletion | None = None
        self.gate = TurnGate(log)  # one history-changing turn at a time; the epoch
        self.tools: ToolRegistry | None = None  # built on first use: tools are optional
        # Structured output: (model, requested mode) -> the way of asking that worked.
        self.output_modes: dict[tuple[str, str], str] = {}
        self.stale: set[str] = set()  # earlier turns' media files already warned about

    def system_message(self) -> ChatMessage | None:
        history = self.history
        return history[0] if history and history[0].role == "system" else None

    def set_system_message(self, message: ChatMessage) -> None:
        if self.system_message() is not None:
            self.history[0] = message
        else:
            self.history.insert(0, message)

    def replace(self, messages: list[ChatMessage]) -> None:
        """A new conversation: pending calls are dropped, turns under way will not commit."""
        self.history = messages
        self.pending = None
        self.gate.new_epoch()

    @property
    def pending_calls(self) -> list[ToolCall]:
        return list(self.pending[-1].tool_calls or []) if self.pending else []

    def check_no_pending(self) -> None:
        if self.pending:
            raise pending_calls_error(len(self.pending_calls))

    def commit(
        self,
        turn: list[ChatMessage],
        ticket: Ticket | None,
        final: ChatCompletion,
        *,
        keep: bool,
        auto_execute: bool,
    ) -> None:
        """Add a completed turn (or keep it pending on its tool calls); note its response."""
        if not self.gate.may_commit(ticket):
            # Started before clear_history()/load_history(), or taken over: not this
            # conversation's turn any more.
            self.log.debug("a turn of a replaced conversation ended; it is not committed")
        elif turn[-1].role == "assistant" and turn[-1].tool_calls and not auto_execute:
            self.pending = turn
        else:
            self.pending = None
            if keep:
                self.history.extend(turn)
        self.last_response = final


class Ticket:
    """One turn's place at the gate: the epoch it started in, whether a newer call took over."""

    __slots__ = ("epoch", "streamed", "superseded", "task")

    def __init__(self, epoch: int, task: asyncio.Task[Any] | None, streamed: bool) -> None:
        self.epoch = epoch
        self.task = task
        self.streamed = streamed
        self.superseded = False


class TurnGate:
    """FIFO gate for history-changing turns, and the conversation's epoch."""

    __slots__ = ("_holder", "_log", "_waiters", "epoch")

    def __init__(self, log: Log = logger) -> None:
        self._log = log
        self.epoch = 0
        self._holder: Ticket | None = None
        self._waiters: deque[tuple[Ticket, asyncio.Future[None]]] = deque()

    def new_epoch(self) -> None:
        """The conversation was replaced: turns under way must not commit into it."""
        self.epoch += 1

    def may_commit(self, ticket: Ticket | None) -> bool:
        """Whether a finished turn still belongs to the current conversation."""
        return ticket is None or (ticket.epoch == self.epoch and not ticket.superseded)

    @asynccontextmanager
    async def turn(self, *, exclusive: bool, streamed: bool = False) -> AsyncIterator[Ticket]:
        """Hold the gate for one turn (``exclusive``), or just note the epoch (not exclusive)."""
        task = asyncio.current_task()
        if not exclusive:
            yield Ticket(self.epoch, task, streamed)
            return
        if id(self) in _IN_TOOLS.get():
            raise ConfigurationError(
                "a tool handler started a call that changes the history of the agent whose "
                "turn is running it; that call would wait for itself. Use "
                "add_to_history=False (or another agent) inside tool handlers",
                {"field": "add_to_history"},
            )
        ticket = Ticket(self.epoch, task, streamed)
        await self._acquire(ticket)
        ticket.epoch = self.epoch  # the turn starts now, in the conversation of this moment
        try:
            yield ticket
        finally:
            self._release(ticket)

    async def _acquire(self, ticket: Ticket) -> None:
        holder = self._holder
        if holder is None and not self._waiters:
            self._holder = ticket
            return
        if holder is not None and holder.streamed and holder.task is ticket.task:
            # A stream of this agent left open in this very task (abandoned, or we are inside
            # its loop): waiting for it would wait forever. The new call takes over.
            holder.superseded = True
            self._log.warning(
                "a stream of this agent left open in the same task was superseded by a new "
                "call; its turn will not be added to the history (close streams you leave)"
            )
            self._holder = ticket
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((ticket, future))
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled() and self._holder is ticket:
                self._release(ticket)  # woken and cancelled at once: pass the turn on
            else:
                self._drop_waiter(ticket)
            raise

    def _drop_waiter(self, ticket: Ticket) -> None:
        for entry in self._waiters:
            if entry[0] is ticket:
                self._waiters.remove(entry)
                return

    def _release(self, ticket: Ticket) -> None:
        if self._holder is not ticket:
            self._drop_waiter(ticket)  # superseded (or never held): nothing to hand over
            return
        self._holder = None
        while self._waiters:
            successor, future = self._waiters.popleft()
            if not future.done():
                self._holder = successor
                future.set_result(None)
                return

    @asynccontextmanager
    async def running_tools(self) -> AsyncIterator[None]:
        """Mark tool handlers run inside this block as part of this gate's turn."""
        token = _IN_TOOLS.set(_IN_TOOLS.get() | {id(self)})
        try:
            yield
        finally:
            # Closed from another context (a loop torn down under it): nothing to undo here.
            with contextlib.suppress(ValueError):
                _IN_TOOLS.reset(token)


def answers_for(
    calls: Sequence[ToolCall],
    results: Mapping[str, Any] | Sequence[ToolResult | Mapping[str, Any]],
) -> list[ToolResult]:
    """One ``ToolResult`` per pending call, from a mapping id → value, or a list of
    ``ToolResult`` or of ``{"tool_call_id": ..., "content": ...}`` dicts."""
    from .tools import ToolResult

    by_id: dict[str, ToolResult] = {}
    if isinstance(results, Mapping):
        for call_id, value in results.items():
            by_id[str(call_id)] = _result(str(call_id), value)
    elif isinstance(results, (str, bytes)) or not isinstance(results, Sequence):
        raise ConfigurationError(
            "results must map each tool call id to its result, or be a list of ToolResult "
            'or {"tool_call_id": ..., "content": ...} dicts',
            {"field": "results", "value": type(results).__name__},
        )
    else:
        for position, item in enumerate(results):
            if isinstance(item, ToolResult):
                given, answer = item.tool_call_id, item
            elif isinstance(item, Mapping) and isinstance(item.get("tool_call_id"), str):
                given = item["tool_call_id"]
                if "content" not in item:
                    raise ConfigurationError(
                        f"result {position} (tool call {given!r}) has no 'content'",
                        {"field": f"results[{position}]", "tool_call_id": given},
                    )
                answer = _result(given, item["content"])
            else:
                raise ConfigurationError(
                    f"result {position} must be a ToolResult or a dict with 'tool_call_id' "
                    f"(a string) and 'content', not {type(item).__name__}",
                    {"field": f"results[{position}]", "value": type(item).__name__},
                )
            if given in by_id:
                raise ConfigurationError(
                    f"result {position} answers tool call {given!r} a second time",
                    {"field": f"results[{position}]", "tool_call_id": given},
                )
            by_id[given] = answer
    pending = [str(call.id) for call in calls]
    unknown = [call_id for call_id in by_id if call_id not in pending]
    if unknown:  # a typo in an id would otherwise pass unnoticed beside the right answers
        raise ConfigurationError(
            f"no pending tool call has the id(s) {', '.join(map(repr, unknown))}; "
            f"pending: {', '.join(map(repr, pending))}",
            {"field": "results", "unknown": unknown, "pending": pending},
        )
    missing = [call.id for call in calls if call.id not in by_id]
    if missing:
        raise ConfigurationError(
            f"no result given for tool call(s): {', '.join(str(m) for m in missing)}",
            {"field": "results", "missing": missing},
        )
    return [by_id[str(call.id)] for call in calls]


def _result(call_id: str, value: Any) -> ToolResult:
    from .tools import ToolResult, serialize_result

    try:
        content = serialize_result(value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"the result for tool call {call_id!r} cannot be sent as JSON: {exc}",
            {"field": "results", "tool_call_id": call_id, "type": type(value).__name__},
        ) from exc
    return ToolResult(call_id, name="", arguments={}, content=content)
