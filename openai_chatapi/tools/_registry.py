"""``ToolRegistry``: the named tools a model may call, and the entry point that runs its calls."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from .._config import ToolErrorMode
from .._errors import ConfigurationError
from ._execution import ToolCallLike, ToolResult, run_calls
from ._function_schema import function_schema_from_json
from ._tool import Tool, ToolFunction, make_tool

__all__ = ["ToolRegistry"]


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
            entry = make_tool(tool_or_function, None, None, None, timeout)
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
        errors: ToolErrorMode = "feedback",
        secrets: Iterable[str] = (),
    ) -> list[ToolResult]:
        """Run ``calls`` concurrently; one :class:`ToolResult` per call, in call order.

        ``calls`` are typed tool calls (``ToolCall``; their wire dicts are accepted too).
        Async handlers run on the event loop, sync handlers in a worker thread. Each call is
        bounded by its tool's timeout, else ``timeout`` (seconds; None = unbounded). With
        ``errors="feedback"`` a failing call becomes a result with ``ok=False`` whose content
        tells the model what went wrong; with ``errors="raise"`` the first failure (in call
        order among those finished) cancels the other calls and raises ``ToolExecutionError``
        with ``details`` ``tool``, ``error``, ``arguments``, ``tool_call_id`` and ``kind``
        (plus pydantic's ``errors`` when the arguments did not validate).
        Cancelling the caller cancels every running handler and re-raises ``CancelledError``;
        a handler whose own work is cancelled (the caller is not) fails with kind ``cancelled``.
        A sync handler's thread cannot be interrupted: on timeout or cancellation it finishes
        in the background and its result is discarded. Each of ``secrets`` (an agent passes
        its API key) is replaced by ``[REDACTED]`` in the results and in what is raised.
        """
        return await run_calls(self._tools, calls, timeout=timeout, errors=errors, secrets=secrets)
