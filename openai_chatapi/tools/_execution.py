"""Running the tool calls of one assistant reply: concurrency, time limits and the error policy.

:func:`run_calls` takes the typed calls (the generated ``ToolCall``, or anything shaped like
it), parses each call's arguments once, validates them against the tool's schema, runs the
handler and serialises what it returns. Every way a call can fail is one
``ToolExecutionError`` (built by ``tool_error``): with ``errors="raise"`` it reaches the
caller as it was raised; with ``errors="feedback"`` it becomes a :class:`ToolResult` whose
content tells the model what went wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, get_args

import pydantic_core
from pydantic import BaseModel

from .._config import ToolErrorMode
from .._errors import ConfigurationError, ToolExecutionError, truncate
from .._generated import ToolCall
from .._redact import map_strings, redact_text, scrub_chain
from ._function_schema import parse_arguments, tool_error
from ._tool import ToolFunction, check_timeout

__all__ = [
    "FunctionCallLike",
    "ToolCallLike",
    "ToolResult",
    "run_calls",
    "serialize_result",
]

_ERROR_TEXT_LIMIT = 1000  # characters of a handler's exception message sent to the model
_NAME_LIMIT = 80  # characters of an unknown tool's name quoted back to the model
_LISTED_TOOLS = 20  # tool names listed back to a model that called an unknown tool
_POLICIES = get_args(ToolErrorMode)


class FunctionCallLike(Protocol):
    """The ``function`` part of a tool call: its name and raw JSON arguments."""

    @property
    def name(self) -> str | None: ...

    @property
    def arguments(self) -> str | None: ...


class ToolCallLike(Protocol):
    """What :meth:`ToolRegistry.execute` needs of a tool call (the generated ``ToolCall``)."""

    @property
    def id(self) -> str | None: ...

    @property
    def function(self) -> FunctionCallLike | None: ...


@dataclasses.dataclass(frozen=True)
class ToolResult:
    """The outcome of one tool call.

    ``content`` is the text sent back to the model: the handler's return value as JSON (a ``str``
    is sent as-is) or, on failure, ``{"error": "..."}``. ``arguments`` is the parsed JSON object,
    or the raw text when it was not a JSON object. ``error`` is None on success; ``error_kind`` is
    one of ``invalid_json``, ``invalid_arguments``, ``unknown_tool``, ``handler_error``,
    ``timeout``, ``cancelled`` (the handler's own work was cancelled, not the caller),
    ``unserializable_result``. ``output`` is the handler's return value.
    """

    tool_call_id: str
    name: str
    arguments: dict[str, Any] | str
    content: str
    error: str | None = None
    error_kind: str | None = None
    output: Any = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when the handler ran and its result was serialised."""
        return self.error is None


def serialize_result(value: Any) -> str:
    """Encode a handler's return value for the model: ``str`` as-is, anything else as JSON.

    Pydantic models, dataclasses, enums, dates, sets and the like are converted the way pydantic
    dumps them in JSON mode. Raises ``TypeError`` or ``ValueError`` when that is impossible.
    """
    if isinstance(value, str):
        return value
    try:
        if isinstance(value, BaseModel):
            plain = value.model_dump(mode="json")
        else:  # nested models dump by field name too, like model_dump
            plain = pydantic_core.to_jsonable_python(value, by_alias=False)
    except pydantic_core.PydanticSerializationError as exc:
        raise TypeError(str(exc)) from exc
    return json.dumps(plain, ensure_ascii=False, allow_nan=False)


async def run_calls(
    tools: Mapping[str, ToolFunction[..., Any]],
    calls: Sequence[ToolCallLike | Mapping[str, Any]],
    *,
    timeout: float | None,
    errors: ToolErrorMode,
    secrets: Iterable[str] = (),
) -> list[ToolResult]:
    """Run ``calls`` concurrently; one :class:`ToolResult` per call, in call order.

    See :meth:`ToolRegistry.execute` for the promises. A dict-shaped call (the wire form) is
    read as a ``ToolCall`` first. This is the boundary of the handlers' code, as the transport
    is the network's: each of ``secrets`` is replaced by the one placeholder in what they
    return or raise (results, errors, the whole cause chain of what leaves).
    """
    if errors not in _POLICIES:
        raise ConfigurationError(f"errors must be 'feedback' or 'raise', not {errors!r}")
    check_timeout(timeout)
    typed = [ToolCall.model_validate(c) if isinstance(c, Mapping) else c for c in calls]
    hidden = tuple(secret for secret in secrets if secret)
    try:
        results = await _run_calls(tools, typed, timeout, errors == "raise")
    except BaseException as exc:
        scrub_chain(exc, hidden)
        raise
    return [_scrubbed(result, hidden) for result in results] if hidden else results


def _scrubbed(result: ToolResult, secrets: tuple[str, ...]) -> ToolResult:
    def scrub(text: str) -> str:
        return redact_text(text, secrets)

    content, error = scrub(result.content), result.error and scrub(result.error)
    arguments = map_strings(result.arguments, scrub)
    if content == result.content and error == result.error and arguments == result.arguments:
        return result
    return dataclasses.replace(result, content=content, error=error, arguments=arguments)


async def _run_calls(
    tools: Mapping[str, ToolFunction[..., Any]],
    typed: Sequence[ToolCallLike],
    timeout: float | None,
    raising: bool,
) -> list[ToolResult]:
    if len(typed) <= 1:  # common case: no task per call
        return [await _run_call(tools, call, timeout, raising) for call in typed]
    tasks = [asyncio.ensure_future(_run_call(tools, call, timeout, raising)) for call in typed]
    try:
        await asyncio.wait(
            tasks, return_when=asyncio.FIRST_EXCEPTION if raising else asyncio.ALL_COMPLETED
        )
    except BaseException:
        await _cancel_all(tasks)
        raise
    failed = [task for task in tasks if task.done() and not task.cancelled() and task.exception()]
    if failed:
        await _cancel_all(tasks)
        raise failed[0].exception()  # type: ignore[misc]
    return [task.result() for task in tasks]


async def _run_call(
    tools: Mapping[str, ToolFunction[..., Any]],
    call: ToolCallLike,
    default_timeout: float | None,
    raising: bool,
) -> ToolResult:
    function = call.function
    call_id = call.id or ""
    name = (function.name if function is not None else None) or ""
    raw = (function.arguments if function is not None else None) or ""
    arguments: dict[str, Any] | str = raw  # the raw text until it parses as an object
    try:
        entry = tools.get(name)
        if entry is None:  # the failure to report, whatever the arguments look like
            with contextlib.suppress(ToolExecutionError):
                arguments = parse_arguments(name, raw, call_id)
            text = _unknown_tool_text(name, list(tools))
            raise tool_error("unknown_tool", text, tool=name, arguments=arguments, call_id=call_id)
        arguments = data = parse_arguments(name, raw, call_id)
        kwargs = entry.schema.check(data, call_id)
        limit = entry.timeout if entry.timeout is not None else default_timeout
        output = await _run_handler(entry, kwargs, limit, call_id, arguments)
        try:
            content = serialize_result(output)
        except (TypeError, ValueError) as exc:
            raise tool_error(
                "unserializable_result",
                f"tool {name!r} returned a value that cannot be sent as JSON "
                f"({type(output).__name__}: {truncate(str(exc), 200)})",
                tool=name,
                arguments=arguments,
                call_id=call_id,
            ) from exc
    except ToolExecutionError as exc:
        if raising:
            raise
        error: str = exc.details["error"]
        return ToolResult(
            tool_call_id=call_id,
            name=name,
            arguments=arguments,
            content=json.dumps({"error": error}, ensure_ascii=False),
            error=error,
            error_kind=exc.details["kind"],
        )
    return ToolResult(call_id, name, arguments, content, output=output)


def _unknown_tool_text(name: str, known: list[str]) -> str:
    listed = ", ".join(known[:_LISTED_TOOLS]) + (", ..." if len(known) > _LISTED_TOOLS else "")
    available = f"available tools: {listed}" if known else "no tools are available"
    shown = truncate(name, _NAME_LIMIT) if name else ""
    return f"unknown tool {shown!r}; {available}"


async def _run_handler(
    entry: ToolFunction[..., Any],
    kwargs: dict[str, Any],
    limit: float | None,
    call_id: str,
    arguments: dict[str, Any] | str,
) -> Any:
    """Run one handler under its time limit; its failures become ``ToolExecutionError``."""

    def failure(kind: str, text: str) -> ToolExecutionError:
        return tool_error(kind, text, tool=entry.name, arguments=arguments, call_id=call_id)

    try:
        if entry.is_async:
            work: Awaitable[Any] = entry.func(**kwargs)
        else:
            work = asyncio.to_thread(_in_thread, entry.func, kwargs)
    except Exception as exc:
        raise failure("handler_error", _describe(entry, exc)) from exc
    result = await _within(work, limit, entry, failure)
    if inspect.isawaitable(result):  # a sync callable that returned a coroutine
        result = await _within(result, limit, entry, failure)
    return result


async def _within(
    work: Awaitable[Any],
    limit: float | None,
    entry: ToolFunction[..., Any],
    failure: Callable[[str, str], ToolExecutionError],
) -> Any:
    """Await ``work`` for at most ``limit`` seconds (None or ``math.inf``: no limit).

    ``work`` runs as its own task so that a cancellation inside the handler (kind
    ``cancelled``) is told apart from the cancellation of the caller (``CancelledError``,
    re-raised after the handler is cancelled). On timeout the handler is cancelled; a sync
    handler's thread cannot be interrupted, so it finishes in the background, ignored.
    """
    bound = None if limit is None or math.isinf(limit) else limit
    # Not awaitable (an "async" callable that returned something else): a TypeError in the
    # task, a handler_error as any other.
    task = asyncio.ensure_future(_no_exit(work))
    try:
        done, _ = await asyncio.wait({task}, timeout=bound)
    except BaseException:
        await _cancel_all([task])
        raise
    if task not in done:
        await _cancel_all([task])
        raise failure("timeout", f"tool {entry.name!r} did not finish within {limit:g} seconds")
    if task.cancelled():
        raise failure("cancelled", f"tool {entry.name!r} was cancelled before it finished")
    raised = task.exception()
    if isinstance(raised, Exception):
        raise failure("handler_error", _describe(entry, raised)) from raised
    return task.result()  # re-raises a BaseException (KeyboardInterrupt) as it came


class _HandlerExit(Exception):
    """What a handler raised that is not an ``Exception`` but still its own failure, made a
    failure of that call: ``SystemExit`` (``sys.exit()``, argparse on bad arguments), which in
    a task would stop the event loop and the program; in a sync handler's thread also
    ``KeyboardInterrupt`` and ``GeneratorExit`` (no signal arrives there, so the handler raised
    them itself)."""

    def __init__(self, exc: BaseException) -> None:
        if isinstance(exc, SystemExit):
            super().__init__(f"it called sys.exit (SystemExit({exc.code!r}))")
        else:
            super().__init__(f"it raised {type(exc).__name__}: {exc}")


async def _no_exit(work: Awaitable[Any]) -> Any:
    try:
        return await work
    except SystemExit as exc:
        raise _HandlerExit(exc) from exc


def _in_thread(func: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    try:
        return func(**kwargs)
    except (SystemExit, KeyboardInterrupt, GeneratorExit) as exc:
        raise _HandlerExit(exc) from exc


def _describe(entry: ToolFunction[..., Any], exc: Exception) -> str:
    shown = str(exc) if isinstance(exc, _HandlerExit) else f"{type(exc).__name__}: {exc}"
    text = truncate(shown, _ERROR_TEXT_LIMIT)
    return f"tool {entry.name!r} failed: {text}"


async def _cancel_all(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel unfinished tasks and wait until all are done (their outcomes are retrieved)."""
    for task in tasks:
        task.cancel()
    pending = [task for task in tasks if not task.done()]
    if pending:
        await asyncio.wait(pending)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # mark as retrieved: the caller reports its own outcome
