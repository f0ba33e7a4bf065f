"""Python functions → JSON schemas and argument validators, and the one shape of a tool failure.

This is the one place where a function becomes a tool's schema: ``@tool`` and
``ToolRegistry.register`` both go through it. The schema rules themselves (cleanup, strict
mode, null defaults) live in ``openai_chatapi._json_schema``, which structured output uses
too, so a type means the same thing to the model everywhere.

* :func:`derive_function_schema` turns a function signature (plus its docstring) into a
  :class:`FunctionSchema`: the JSON schema of its parameters and a validator for the raw
  arguments a model sends.
* :func:`function_schema_from_json` wraps a hand-written schema with a loose validator.
* :func:`parse_arguments` reads the model's argument text (once) into a dict, and
  :func:`tool_error` builds every ``ToolExecutionError`` a tool call can end with.

Schemas are cleaned for models: no pydantic ``title`` noise, ``$defs`` inlined unless a model is
recursive. ``strict=True`` produces an OpenAI strict-mode schema: every object lists all its
properties in ``required`` and sets ``additionalProperties: false``; optional values become
nullable and defaults are removed; constraints strict mode does not accept are moved into the
description (validation still enforces them).

A ``null`` sent for a parameter or field that has a default and does not itself accept ``None``
means "use the default" (strict-mode schemas make such values nullable, and weaker models send
``null`` for optional values anyway).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
from collections.abc import Callable, Mapping
from typing import Annotated, Any, get_args, get_origin

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic.fields import FieldInfo

from .._errors import ConfigurationError, ToolExecutionError, truncate
from .._json_schema import (
    JsonSchema,
    Where,
    check_name,
    clean_schema,
    drop_null_defaults,
    strict_schema,
    summarize_errors,
)
from ._docstrings import parse_docstring

__all__ = [
    "FunctionSchema",
    "derive_function_schema",
    "function_schema_from_json",
    "parse_arguments",
    "tool_error",
]

_ARGUMENTS_LIMIT = 500  # characters of unparseable arguments kept in error details

# --------------------------------------------------------------------------- failures and arguments


def tool_error(
    kind: str,
    error: str,
    *,
    tool: str,
    arguments: dict[str, Any] | str,
    call_id: str | None = None,
    errors: list[Any] | None = None,
) -> ToolExecutionError:
    """The error a tool call ends with; ``error`` is the text meant for the model.

    ``details`` hold ``tool``, ``error``, ``arguments`` (unparseable text is cut, so a secret
    cannot spill in full), ``kind`` and, for a call being run, ``tool_call_id`` (the message
    then names the call); validation failures add pydantic's ``errors``.
    """
    shown = truncate(arguments, _ARGUMENTS_LIMIT) if isinstance(arguments, str) else arguments
    details: dict[str, Any] = {"tool": tool, "error": error, "arguments": shown, "kind": kind}
    message = error
    if call_id is not None:
        details["tool_call_id"] = call_id
        message += f" (tool call {call_id!r})" if call_id else ""
    if errors is not None:
        details["errors"] = errors
    return ToolExecutionError(message, details)


def parse_arguments(
    tool: str, raw: str | bytes | Mapping[str, Any], call_id: str | None = None
) -> dict[str, Any]:
    """Parse the model's argument text into a dict (an empty text means no arguments).

    Raises ``ToolExecutionError`` of kind ``invalid_json``, or ``invalid_arguments`` when the
    JSON is not an object. A mapping is taken as already parsed (and copied).
    """
    if isinstance(raw, Mapping):
        return copy.deepcopy(dict(raw))
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise tool_error(
            "invalid_json",
            f"the arguments for tool {tool!r} are not valid JSON ({reason}); "
            "send one JSON object with the arguments",
            tool=tool,
            arguments=text,
            call_id=call_id,
        ) from exc
    if not isinstance(data, dict):
        raise tool_error(
            "invalid_arguments",
            f"the arguments for tool {tool!r} must be a JSON object, not {type(data).__name__}",
            tool=tool,
            arguments=text,
            call_id=call_id,
        )
    return data


# --------------------------------------------------------------------------- function schemas


@dataclasses.dataclass(frozen=True, eq=False)
class FunctionSchema:
    """A function's name, description and parameter schema, with a validator for its arguments.

    ``parameters`` is the JSON schema object sent to the model (strict-mode shaped when
    ``strict`` is true). Build one with :func:`derive_function_schema` or
    :func:`function_schema_from_json`.
    """

    name: str
    description: str
    parameters: JsonSchema
    strict: bool
    _check: Callable[[dict[str, Any], str | None], dict[str, Any]] = dataclasses.field(repr=False)

    def validate_arguments(self, raw: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
        """Parse and validate arguments (JSON text or a dict) into keyword arguments.

        The result can be passed as ``func(**kwargs)``; parameters the model left out (or sent as
        ``null`` when they do not accept ``None``) are absent so the function's own defaults
        apply. Raises ``ToolExecutionError`` whose ``details`` hold ``tool``, ``error`` (a text
        meant for the model), ``arguments`` and ``kind`` (``"invalid_json"`` or
        ``"invalid_arguments"``).
        """
        return self._check(parse_arguments(self.name, raw), None)

    def check(self, data: dict[str, Any], call_id: str | None = None) -> dict[str, Any]:
        """Validate already parsed arguments (see :meth:`validate_arguments`); ``data`` is kept.

        ``call_id`` names the call being run in the error (see :func:`tool_error`).
        """
        return self._check(data, call_id)


def _signature(func: Callable[..., Any], subject: str) -> inspect.Signature:
    """The signature with string annotations evaluated (the return annotation is not needed)."""
    try:
        return inspect.signature(func, eval_str=True)
    except (NameError, SyntaxError, TypeError, AttributeError) as exc:
        failure: Exception = exc
    except ValueError as exc:
        raise ConfigurationError(f"cannot read the signature of {subject}: {exc}") from exc
    try:
        raw = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the signature of {subject}: {exc}") from exc
    globalns = getattr(inspect.unwrap(func), "__globals__", {})
    params = []
    for param in raw.parameters.values():
        if isinstance(param.annotation, str):
            try:
                param = param.replace(annotation=eval(param.annotation, globalns))
            except Exception as exc:
                raise ConfigurationError(
                    f"the annotation {param.annotation!r} of parameter {param.name!r} of "
                    f"{subject} cannot be resolved ({exc}); define the type at module level",
                    {"parameter": param.name},
                ) from exc
        params.append(param)
    if params == list(raw.parameters.values()) and not isinstance(raw.return_annotation, str):
        raise ConfigurationError(f"cannot resolve the annotations of {subject}: {failure}")
    # Only the return annotation failed: it plays no part in the schema.
    return raw.replace(parameters=params, return_annotation=inspect.Signature.empty)


def _has_description(annotation: Any) -> bool:
    if get_origin(annotation) is not Annotated:
        return False
    return any(
        isinstance(meta, FieldInfo) and meta.description is not None
        for meta in get_args(annotation)[1:]
    )


def _unexpressible(annotation: Any) -> str | None:
    """Why ``annotation`` has no JSON schema, or None when it has one."""
    try:
        TypeAdapter(annotation).json_schema()
    except Exception as exc:  # pydantic raises several unrelated classes here
        return str(exc).splitlines()[0]
    return None


def _bad_parameter(
    exc: Exception, annotations: Mapping[str, Any], subject: str
) -> ConfigurationError:
    for pname, annotation in annotations.items():
        reason = _unexpressible(annotation)
        if reason is not None:
            return ConfigurationError(
                f"parameter {pname!r} of {subject} has type {annotation!r}, which cannot be "
                f"expressed as JSON schema: {reason}",
                {"parameter": pname},
            )
    return ConfigurationError(f"cannot derive a JSON schema for {subject}: {exc}")


def derive_function_schema(
    func: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool = False,
) -> FunctionSchema:
    """Derive the JSON schema and argument validator of ``func``'s parameters.

    ``name`` defaults to ``func.__name__``; ``description`` to the docstring text before its
    sections. Per-parameter descriptions come from ``Annotated[..., Field(description=...)]``,
    else from the docstring's Google, NumPy or reST parameter section. A leading ``self`` or
    ``cls`` is skipped. Raises ``ConfigurationError`` (naming the parameter) for missing
    annotations, ``*args``/``**kwargs``, positional-only parameters, types without a JSON schema,
    and, with ``strict=True``, types OpenAI strict mode cannot express (``Any``, ``dict``).
    """
    fname = check_name(name if name is not None else getattr(func, "__name__", None), "tool")
    subject = f"function {fname!r}"
    doc = parse_docstring(inspect.getdoc(func))
    fields: dict[str, Any] = {}
    annotations: dict[str, Any] = {}
    field_to_param: dict[str, str] = {}
    for index, param in enumerate(_signature(func, subject).parameters.values()):
        if index == 0 and param.name in ("self", "cls"):
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            star = "*" if param.kind is param.VAR_POSITIONAL else "**"
            raise ConfigurationError(
                f"parameter {star}{param.name} of {subject} cannot be described to a model; "
                "declare each argument as a named, annotated parameter",
                {"parameter": param.name},
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise ConfigurationError(
                f"parameter {param.name!r} of {subject} is positional-only; tools are called "
                "with keyword arguments",
                {"parameter": param.name},
            )
        if param.annotation is inspect.Parameter.empty:
            raise ConfigurationError(
                f"parameter {param.name!r} of {subject} has no type annotation; annotate it "
                "(use typing.Any to accept any JSON value)",
                {"parameter": param.name},
            )
        if isinstance(param.default, FieldInfo):
            raise ConfigurationError(
                f"parameter {param.name!r} of {subject} uses Field(...) as its default; write "
                "Annotated[T, Field(...)] = default instead",
                {"parameter": param.name},
            )
        extra: dict[str, Any] = {}
        if param.name in doc.params and not _has_description(param.annotation):
            extra["description"] = doc.params[param.name]
        default = ... if param.default is inspect.Parameter.empty else param.default
        field_name = f"p{index}"  # aliases keep any parameter name (json, _x, model_*) legal
        fields[field_name] = (param.annotation, Field(default, alias=param.name, **extra))
        annotations[param.name] = param.annotation
        field_to_param[field_name] = param.name
    try:
        model = create_model(f"{fname}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
        loose = clean_schema(model.model_json_schema(by_alias=True))
    except ConfigurationError:
        raise
    except Exception as exc:
        raise _bad_parameter(exc, annotations, subject) from exc
    parameters: JsonSchema = {
        "type": "object",
        "properties": loose.get("properties", {}),
        "required": loose.get("required", []),
        "additionalProperties": False,
    }
    if "$defs" in loose:
        parameters["$defs"] = loose["$defs"]
    if strict:
        parameters = strict_schema(parameters, Where(subject, by_parameter=True))
    elif not parameters["required"]:
        del parameters["required"]
    loose_defs = loose.get("$defs", {})

    def check(data: dict[str, Any], call_id: str | None) -> dict[str, Any]:
        try:
            values = model.model_validate(drop_null_defaults(data, loose, loose_defs))
        except ValidationError as exc:
            raise tool_error(
                "invalid_arguments",
                f"invalid arguments for tool {fname!r}: {summarize_errors(exc)}",
                tool=fname,
                arguments=data,
                call_id=call_id,
                errors=exc.errors(include_url=False, include_input=False),
            ) from exc
        return {field_to_param[f]: getattr(values, f) for f in values.model_fields_set}

    return FunctionSchema(
        name=fname,
        description=description if description is not None else doc.description,
        parameters=parameters,
        strict=strict,
        _check=check,
    )


def function_schema_from_json(
    name: str,
    parameters: Mapping[str, Any],
    *,
    description: str = "",
    strict: bool = False,
    signature: inspect.Signature | None = None,
) -> FunctionSchema:
    """Wrap a hand-written JSON schema; its validator is deliberately loose.

    Arguments must be a JSON object containing the schema's ``required`` keys and, when
    ``signature`` is given, must bind to it; values are passed through unconverted.
    """
    check_name(name, "tool")
    required = [key for key in parameters.get("required", ()) if isinstance(key, str)]

    def check(data: dict[str, Any], call_id: str | None) -> dict[str, Any]:
        problem, cause = None, None
        missing = [key for key in required if key not in data]
        if missing:
            problem = f"missing required argument(s) {', '.join(missing)}"
        elif signature is not None:
            try:
                signature.bind(**data)
            except TypeError as exc:
                problem, cause = str(exc), exc
        if problem is not None:
            raise tool_error(
                "invalid_arguments",
                f"invalid arguments for tool {name!r}: {problem}",
                tool=name,
                arguments=data,
                call_id=call_id,
            ) from cause
        return data

    return FunctionSchema(name, description, dict(parameters), strict, check)
