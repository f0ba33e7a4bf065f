"""Declaring tools: the wire definition (``Tool``), the callable tool (``ToolFunction``), ``@tool``.

A tool is a :class:`ToolFunction`: the handler, its wire definition (:class:`Tool`) and its
argument validator (a :class:`~openai_chatapi.tools.FunctionSchema`). ``@tool`` derives all
three from a function's signature and docstring; ``ToolRegistry.register(Tool(...), handler)``
wraps a hand-written definition.
"""

from __future__ import annotations

import functools
import inspect
import json
import types
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar, overload

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from .._errors import ConfigurationError
from .._json_schema import check_name
from ._function_schema import FunctionSchema, derive_function_schema

__all__ = ["Tool", "ToolFunction", "check_timeout", "make_tool", "tool"]

P = ParamSpec("P")
R = TypeVar("R")


def _empty_parameters() -> dict[str, Any]:
    return {"type": "object", "properties": {}}


class Tool(BaseModel):
    """A tool definition as the model sees it (the ``function`` of a tool entry).

    Hand-made tools are registered with a handler: ``registry.register(Tool(...), handler)``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=_empty_parameters)
    strict: StrictBool | None = None  # "yes" is a mistake, not True

    def __setattr__(self, name: str, value: Any) -> None:
        raise _immutable(self.name, name)

    def __delattr__(self, name: str) -> None:
        raise _immutable(self.name, name)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:  # a wrong type: ours, naming the field, not pydantic's
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "Tool"
            raise ConfigurationError(
                f"invalid Tool {where}: {first['msg']}", {"field": where, "tool": data.get("name")}
            ) from None

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        # ConfigurationError is not a ValueError, so pydantic lets it through unwrapped.
        return check_name(value)

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """The arguments of a call are a JSON object: a schema of another type (or a malformed
        one) is refused here, not by the server at the first call."""
        kind, properties = value.get("type", "object"), value.get("properties", {})
        required = value.get("required", [])
        if kind != "object":
            why = f"its 'type' must be 'object' (the arguments are a JSON object), not {kind!r}"
        elif not isinstance(properties, dict):
            why = "its 'properties' must be an object mapping each argument to its schema"
        elif not isinstance(required, list) or not all(isinstance(n, str) for n in required):
            why = "its 'required' must be a list of argument names"
        else:
            try:  # what cannot be sent is refused here, not as a strange failure at a call
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                why = f"it must be plain JSON (no NaN or infinity): {exc}"
            else:
                return value
        raise ConfigurationError(
            f"invalid Tool parameters: {why}",
            {"field": "parameters", "tool": info.data.get("name")},
        )

    def to_wire(self) -> dict[str, Any]:
        """``{"type": "function", "function": {...}}``; empty description and None are omitted."""
        function: dict[str, Any] = {"name": self.name}
        if self.description:
            function["description"] = self.description
        function["parameters"] = self.parameters
        if self.strict is not None:
            function["strict"] = self.strict
        return {"type": "function", "function": function}


def _immutable(tool: str, field: str) -> ConfigurationError:
    return ConfigurationError(
        f"Tool {tool!r} cannot be changed ({field}): a registry keys its tools by name and "
        "checks them once; create a new Tool instead",
        {"field": field, "tool": tool},
    )


def check_timeout(timeout: float | None) -> float | None:
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
        self.timeout = check_timeout(timeout)
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


def make_tool(
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
        return make_tool(func, name, description, strict, timeout)

    def decorate(inner: Callable[P, R]) -> ToolFunction[P, R]:
        return make_tool(inner, name, description, strict, timeout)

    return decorate
