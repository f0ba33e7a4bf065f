"""Declaring tools (``@tool``, ``Tool``), keeping them (``ToolRegistry``) and running model calls.

A tool is a :class:`ToolFunction`: the handler, its wire definition (:class:`Tool`) and its
argument validator (:class:`~openai_chatapi.function_schema.FunctionSchema`). ``@tool`` derives
all three from a function's signature and docstring; ``ToolRegistry.register(Tool(...), handler)``
wraps a hand-written definition.

:meth:`ToolRegistry.execute` runs the calls of one assistant reply concurrently and returns one
:class:`ToolResult` per call, in call order, each ready to be sent back as a tool message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import json
import math
import types
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, Literal, ParamSpec, Protocol, TypeVar, overload

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._errors import ConfigurationError, ToolExecutionError, truncate
from .function_schema import (
    FunctionSchema,
    check_tool_name,
    derive_function_schema,
    function_schema_from_json,
)

__all__ = [
    "FunctionCallLike",
    "Tool",
    "ToolCallLike",
    "ToolErrorPolicy",
    "ToolFunction",
    "ToolRegistry",
    "ToolResult",
    "serialize_result",
    "tool",
]

P = ParamSpec("P")
R = TypeVar("R")

ToolErrorPolicy = Literal["feedback", "raise"]

_ERROR_TEXT_LIMIT = 1000  # characters of a handler's exception message sent to the model
_MESSAGE_ARGS_LIMIT = 80  # characters of raw arguments allowed in an exception message
_DETAILS_ARGS_LIMIT = 500  # characters of unparseable arguments kept in exception details
_LISTED_TOOLS = 20  # tool names listed back to a model that called an unknown tool


def _empty_parameters() -> dict[str, Any]:
    return {"type": "object", "properties": {}}


class Tool(BaseModel):
    """A tool definition as the model sees it (the ``function`` of a tool entry).

    Hand-made tools are registered with a handler: ``registry.register(Tool(...), handler)``.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=_empty_parameters)
    strict: bool | None = None

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        # ConfigurationError is not a ValueError, so pydantic lets it through unwrapped.
        return check_tool_name(value)

    def to_wire(self) -> dict[str, Any]:
        """``{"type": "function", "function": {...}}``; empty description and None are omitted."""
        function: dict[str, Any] = {"name": self.name}
        if self.description:
            function["description"] = self.description
        function["parameters"] = self.parameters
        if self.strict is not None:
            function["strict"] = self.strict
        return {"type": "function", "function": function}


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ConfigurationError(
            f"tool timeout must be a positive number of seconds or None, not {timeout!r}",
            {"timeout": timeout},
        )
    return timeout


class ToolFunction(Generic[P, R]):
    """A callable tool: calling it runs the wrapped function unchanged.

    ``tool`` is the wire definition, ``schema`` validates the model's arguments, ``timeout``
    (seconds, ``None`` = use the registry's default, ``math.inf`` = never) bounds one run.
    """

    __name__: str  # copied from the function, like functools.wraps does
    __qualname__: str

    def __init__(
        self,
        func: Callable[P, R],
        *,
        tool: Tool,
        schema: FunctionSchema,
        timeout: float | None = None,
    ) -> None:
        self.func = func
        self.tool = tool
        self.schema = schema
        self.timeout = _check_timeout(timeout)
        functools.update_wrapper(self, func)

    @property
    def name(self) -> str:
        """The tool name the model calls."""
        return self.tool.name

    @property
    def is_async(self) -> bool:
        """Whether the handler is a coroutine function (otherwise it runs in a worker thread)."""
        call = getattr(self.func, "__call__", None)  # noqa: B004 - async __call__ on objects
        return inspect.iscoroutinefunction(self.func) or inspect.iscoroutinefunction(call)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def __get__(self, instance: object, owner: type | None = None) -> ToolFunction[..., R]:
        # Decorated methods: ``obj.method`` is a tool bound to ``obj`` (schema already skips self).
        if instance is None:
            return self
        bound: Callable[..., R] = types.MethodType(self.func, instance)
        return ToolFunction(bound, tool=self.tool, schema=self.schema, timeout=self.timeout)

    def with_timeout(self, timeout: float | None) -> ToolFunction[P, R]:
        """A copy of this tool with another timeout."""
        return ToolFunction(self.func, tool=self.tool, schema=self.schema, timeout=timeout)

    def __repr__(self) -> str:
        return f"ToolFunction(name={self.name!r}, func={self.func!r}, timeout={self.timeout!r})"


def _make_tool(
    func: Callable[P, R],
    name: str | None,
    description: str | None,
    strict: bool | None,
    timeout: float | None,
) -> ToolFunction[P, R]:
    if isinstance(func, ToolFunction):
        func = func.func
    if not callable(func):
        raise ConfigurationError(f"@tool needs a function, not {type(func).__name__}")
    schema = derive_function_schema(func, name=name, description=description, strict=bool(strict))
    definition = Tool(
        name=schema.name,
        description=schema.description,
        parameters=schema.parameters,
        strict=strict,
    )
    return ToolFunction(func, tool=definition, schema=schema, timeout=timeout)


@overload
def tool(func: Callable[P, R], /) -> ToolFunction[P, R]: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool | None = None,
    timeout: float | None = None,
) -> Callable[[Callable[P, R]], ToolFunction[P, R]]: ...


def tool(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool | None = None,
    timeout: float | None = None,
) -> ToolFunction[P, R] | Callable[[Callable[P, R]], ToolFunction[P, R]]:
    """Turn a sync or async function into a :class:`ToolFunction`; usable bare or with options.

    ``name`` defaults to the function name, ``description`` to the docstring summary.
    ``strict=True`` sends an OpenAI strict-mode schema; ``None`` (default) omits the flag.
    ``timeout`` (seconds) overrides the default passed to :meth:`ToolRegistry.execute`.
    Raises ``ConfigurationError`` at decoration time when the signature cannot be described.
    """
    if func is not None:
        return _make_tool(func, name, description, strict, timeout)

    def decorate(inner: Callable[P, R]) -> ToolFunction[P, R]:
        return _make_tool(inner, name, description, strict, timeout)

    return decorate


# --------------------------------------------------------------------------- registry


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

    def to_message(self) -> dict[str, Any]:
        """The ``{"role": "tool", ...}`` message that answers the call."""
        return {"role": "tool", "tool_call_id": self.tool_call_id, "content": self.content}


class _Failure(Exception):
    """A call failed in a way the model can be told about."""

    def __init__(self, kind: str, error: str, arguments: dict[str, Any] | str) -> None:
        super().__init__(error)
        self.kind = kind
        self.error = error
        self.arguments = arguments


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


def _call_parts(call: ToolCallLike | Mapping[str, Any]) -> tuple[str, str, str]:
    """(id, name, arguments) of a typed or dict-shaped tool call; missing parts become ''."""
    if isinstance(call, Mapping):
        function = call.get("function") or {}
        return (call.get("id") or "", function.get("name") or "", function.get("arguments") or "")
    function_part = getattr(call, "function", None)
    name = getattr(function_part, "name", None) or ""
    arguments = getattr(function_part, "arguments", None) or ""
    return call.id or "", name, arguments


def _bounded_arguments(arguments: dict[str, Any] | str) -> dict[str, Any] | str:
    """Arguments for error details: unparseable text is cut so secrets cannot spill in full."""
    return truncate(arguments, _DETAILS_ARGS_LIMIT) if isinstance(arguments, str) else arguments


def _initial_arguments(raw: str) -> dict[str, Any] | str:
    try:
        parsed = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return raw
    return parsed if isinstance(parsed, dict) else raw


class ToolRegistry:
    """Named tools the model may call, and the machinery to run its calls.

    Registering a name that already exists replaces the earlier tool (the newest is last in
    :meth:`definitions`).
    """

    def __init__(self, tools: Iterable[ToolFunction[..., Any] | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, ToolFunction[..., Any]] = {}
        for item in tools:
            self.register(item)

    # -- contents

    def register(
        self,
        tool_or_function: Tool | ToolFunction[..., Any] | Callable[..., Any],
        handler: Callable[..., Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> ToolFunction[..., Any]:
        """Add a tool and return it as a :class:`ToolFunction`.

        Accepts a hand-made ``Tool`` with its ``handler`` (arguments are then only checked
        loosely: a JSON object with the schema's required keys that binds to the handler), a
        ``@tool`` function, or a plain function (decorated with default options). ``timeout``
        overrides the tool's own timeout.
        """
        entry: ToolFunction[..., Any]
        if isinstance(tool_or_function, Tool):
            if handler is None or not callable(handler):
                raise ConfigurationError(
                    f"tool {tool_or_function.name!r} needs a handler: register(tool, handler)",
                    {"tool": tool_or_function.name},
                )
            if isinstance(handler, ToolFunction):
                handler = handler.func
            try:
                signature: inspect.Signature | None = inspect.signature(handler)
            except (TypeError, ValueError):
                signature = None
            schema = function_schema_from_json(
                tool_or_function.name,
                tool_or_function.parameters,
                description=tool_or_function.description,
                strict=bool(tool_or_function.strict),
                signature=signature,
            )
            entry = ToolFunction(handler, tool=tool_or_function, schema=schema, timeout=timeout)
        elif handler is not None:
            raise ConfigurationError("a handler can only be given with a Tool definition")
        elif isinstance(tool_or_function, ToolFunction):
            entry = tool_or_function
            if timeout is not None:
                entry = entry.with_timeout(timeout)
        elif callable(tool_or_function):
            entry = _make_tool(tool_or_function, None, None, None, timeout)
        else:
            raise ConfigurationError(
                f"cannot register {type(tool_or_function).__name__} as a tool; pass a function, "
                "a @tool function, or a Tool with a handler"
            )
        self._tools.pop(entry.name, None)
        self._tools[entry.name] = entry
        return entry

    def unregister(self, name: str) -> bool:
        """Remove the tool called ``name``; returns whether it was registered."""
        return self._tools.pop(name, None) is not None

    def clear(self) -> None:
        """Remove every tool."""
        self._tools.clear()

    def get(self, name: str) -> ToolFunction[..., Any] | None:
        """The tool called ``name``, or None."""
        return self._tools.get(name)

    def copy(self) -> ToolRegistry:
        """A new registry with the same tools (for adding per-call tools)."""
        other = ToolRegistry()
        other._tools = dict(self._tools)
        return other

    def definitions(self) -> list[dict[str, Any]]:
        """The ``tools`` request value: one wire definition per tool, in registration order."""
        return [entry.tool.to_wire() for entry in self._tools.values()]

    @property
    def names(self) -> list[str]:
        """Registered tool names, in registration order."""
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Iterator[ToolFunction[..., Any]]:
        return iter(list(self._tools.values()))

    def __repr__(self) -> str:
        return f"ToolRegistry({self.names!r})"

    # -- execution

    async def execute(
        self,
        calls: Sequence[ToolCallLike | Mapping[str, Any]],
        *,
        timeout: float | None = None,
        errors: ToolErrorPolicy = "feedback",
    ) -> list[ToolResult]:
        """Run ``calls`` concurrently; one :class:`ToolResult` per call, in call order.

        Async handlers run on the event loop, sync handlers in a worker thread. Each call is
        bounded by its tool's timeout, else ``timeout`` (seconds; None = unbounded). With
        ``errors="feedback"`` a failing call becomes a result with ``ok=False`` whose content
        tells the model what went wrong; with ``errors="raise"`` the first failure (in call
        order among those finished) cancels the other calls and raises ``ToolExecutionError``
        with ``details`` ``tool``, ``error``, ``arguments``, ``tool_call_id`` and ``kind``.
        Cancelling the caller cancels every running handler and re-raises ``CancelledError``;
        a handler whose own work is cancelled (the caller is not) fails with kind ``cancelled``.
        A sync handler's thread cannot be interrupted: on timeout or cancellation it finishes
        in the background and its result is discarded.
        """
        if errors not in ("feedback", "raise"):
            raise ConfigurationError(f"errors must be 'feedback' or 'raise', not {errors!r}")
        _check_timeout(timeout)
        raising = errors == "raise"
        if len(calls) <= 1:  # common case: no task per call
            return [await self._run_call(call, timeout, raising) for call in calls]
        tasks = [asyncio.ensure_future(self._run_call(call, timeout, raising)) for call in calls]
        try:
            await asyncio.wait(
                tasks,
                return_when=asyncio.FIRST_EXCEPTION if raising else asyncio.ALL_COMPLETED,
            )
        except BaseException:
            await _cancel_all(tasks)
            raise
        failed = [
            task for task in tasks if task.done() and not task.cancelled() and task.exception()
        ]
        if failed:
            await _cancel_all(tasks)
            raise failed[0].exception()  # type: ignore[misc]
        return [task.result() for task in tasks]

    async def _run_call(
        self, call: ToolCallLike | Mapping[str, Any], default_timeout: float | None, raising: bool
    ) -> ToolResult:
        call_id, name, raw = _call_parts(call)
        arguments: dict[str, Any] | str = _initial_arguments(raw)
        try:
            entry = self._tools.get(name)
            if entry is None:
                raise _Failure("unknown_tool", self._unknown_tool_text(name), arguments)
            try:
                kwargs = entry.schema.validate_arguments(raw)
            except ToolExecutionError as exc:
                kind = exc.details.get("kind", "invalid_arguments")
                raise _Failure(kind, exc.details.get("error", exc.message), arguments) from exc
            limit = entry.timeout if entry.timeout is not None else default_timeout
            output = await _run_handler(entry, kwargs, limit, arguments)
            try:
                content = serialize_result(output)
            except (TypeError, ValueError) as exc:
                raise _Failure(
                    "unserializable_result",
                    f"tool {name!r} returned a value that cannot be sent as JSON "
                    f"({type(output).__name__}: {truncate(str(exc), 200)})",
                    arguments,
                ) from exc
        except _Failure as failure:
            if raising:
                suffix = f" (tool call {call_id!r})" if call_id else ""
                raise ToolExecutionError(
                    failure.error + suffix,
                    {
                        "tool": name,
                        "error": failure.error,
                        "arguments": _bounded_arguments(failure.arguments),
                        "tool_call_id": call_id,
                        "kind": failure.kind,
                    },
                ) from failure.__cause__
            return ToolResult(
                tool_call_id=call_id,
                name=name,
                arguments=failure.arguments,
                content=json.dumps({"error": failure.error}, ensure_ascii=False),
                error=failure.error,
                error_kind=failure.kind,
            )
        return ToolResult(call_id, name, arguments, content, output=output)

    def _unknown_tool_text(self, name: str) -> str:
        known = list(self._tools)
        listed = ", ".join(known[:_LISTED_TOOLS]) + (", ..." if len(known) > _LISTED_TOOLS else "")
        available = f"available tools: {listed}" if known else "no tools are available"
        shown = truncate(name, _MESSAGE_ARGS_LIMIT) if name else ""
        return f"unknown tool {shown!r}; {available}"


async def _run_handler(
    entry: ToolFunction[..., Any],
    kwargs: dict[str, Any],
    limit: float | None,
    arguments: dict[str, Any] | str,
) -> Any:
    """Run one handler under its time limit, turning its failures into ``_Failure``."""
    bound = None if limit is None or math.isinf(limit) else limit
    try:
        if entry.is_async:
            work: Awaitable[Any] = entry.func(**kwargs)
        else:
            work = asyncio.to_thread(entry.func, **kwargs)
        result = await _within(work, bound)
        if inspect.isawaitable(result):  # a sync callable that returned a coroutine
            result = await _within(result, bound)
    except _Timeout as exc:
        raise _Failure(
            "timeout", f"tool {entry.name!r} did not finish within {limit:g} seconds", arguments
        ) from exc
    except _Cancelled as exc:
        raise _Failure(
            "cancelled", f"tool {entry.name!r} was cancelled before it finished", arguments
        ) from exc
    except asyncio.CancelledError:  # the caller is being cancelled: never swallowed
        raise
    except Exception as exc:
        text = truncate(f"{type(exc).__name__}: {exc}", _ERROR_TEXT_LIMIT)
        raise _Failure("handler_error", f"tool {entry.name!r} failed: {text}", arguments) from exc
    return result


class _Timeout(Exception):
    """A handler exceeded its time limit."""


class _Cancelled(Exception):
    """A handler's own work was cancelled while its caller was not."""


async def _within(work: Awaitable[Any], limit: float | None) -> Any:
    """Await ``work`` for at most ``limit`` seconds (``_Timeout`` after), cancelling it then.

    ``work`` runs as its own task so that a cancellation inside the handler (``_Cancelled``)
    is told apart from the cancellation of the caller (``CancelledError``, re-raised).
    """
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=limit)
    except BaseException:
        await _cancel_all([task])
        raise
    if task not in done:
        await _cancel_all([task])
        raise _Timeout
    if task.cancelled():
        raise _Cancelled
    return task.result()


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
