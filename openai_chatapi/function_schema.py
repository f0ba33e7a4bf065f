"""Python functions and types → JSON schemas and validators.

This is the one place where schemas are derived: ``@tool``, ``ToolRegistry.register`` and
structured output (``response_format=SomeModel``) all go through it, so a type means the same
thing to the model everywhere.

* :func:`derive_function_schema` turns a function signature (plus its docstring) into a
  :class:`FunctionSchema`: the JSON schema of its parameters and a validator for the raw
  arguments a model sends.
* :func:`json_schema_for_type`, :func:`response_format_for` and :func:`parse_structured` do the
  same for a single type used as structured output.

Schemas are cleaned for models: no pydantic ``title`` noise, ``$defs`` inlined unless a model is
recursive. ``strict=True`` produces an OpenAI strict-mode schema: every object lists all its
properties in ``required`` and sets ``additionalProperties: false``; optional values become
nullable and defaults are removed; constraints strict mode does not accept are moved into the
description (validation still enforces them). The docstring parser lives in ``_docstrings``,
the schema cleanup and strict-mode rewriting in ``_json_schema``.

A ``null`` sent for a parameter or field that has a default and does not itself accept ``None``
means "use the default" (strict-mode schemas make such values nullable, and weaker models send
``null`` for optional values anyway).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Generic, TypeVar, get_args, get_origin

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic.fields import FieldInfo

from ._docstrings import Docstring, parse_docstring
from ._errors import APIResponseError, ConfigurationError, ToolExecutionError, truncate
from ._json_schema import JsonSchema, Where, clean_schema, drop_null_defaults, strict_schema

__all__ = [
    "Docstring",
    "FunctionSchema",
    "OutputSchema",
    "check_tool_name",
    "derive_function_schema",
    "function_schema_from_json",
    "json_schema_for_type",
    "output_schema",
    "parse_docstring",
    "parse_structured",
    "response_format_for",
]

T = TypeVar("T")

_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_INPUT_PREVIEW = 40  # characters of a bad value quoted back to the model
_RAW_PREVIEW = 200  # characters of unparseable arguments kept in error details

# --------------------------------------------------------------------------- validation helpers


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return truncate(text, _INPUT_PREVIEW)


def _summarize(exc: ValidationError, limit: int = 8) -> str:
    """One line per problem, naming the field; bad values are quoted only in truncated form."""
    errors = exc.errors(include_url=False)
    parts: list[str] = []
    for err in errors[:limit]:
        loc = ".".join(str(part) for part in err["loc"]) or "(root)"
        if err["type"] == "missing":
            parts.append(f"{loc}: missing required value")
        elif err["type"] == "extra_forbidden":
            parts.append(f"{loc}: unexpected argument")
        else:
            parts.append(f"{loc}: {err['msg']} (got {_preview(err.get('input'))})")
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(parts)


def _arguments_error(
    tool: str, kind: str, error: str, arguments: Any, errors: list[Any] | None = None
) -> ToolExecutionError:
    details: dict[str, Any] = {"tool": tool, "error": error, "arguments": arguments, "kind": kind}
    if errors is not None:
        details["errors"] = errors
    return ToolExecutionError(error, details)


def _load_arguments(tool: str, raw: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """Parse the model's argument text into a dict (an empty text means no arguments)."""
    if isinstance(raw, Mapping):
        return copy.deepcopy(dict(raw))
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise _arguments_error(
            tool,
            "invalid_json",
            f"the arguments for tool {tool!r} are not valid JSON ({reason}); "
            "send one JSON object with the arguments",
            truncate(text, _RAW_PREVIEW),
        ) from exc
    if not isinstance(data, dict):
        raise _arguments_error(
            tool,
            "invalid_arguments",
            f"the arguments for tool {tool!r} must be a JSON object, not {type(data).__name__}",
            truncate(text, _RAW_PREVIEW),
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
    _validate: Callable[[dict[str, Any]], dict[str, Any]] = dataclasses.field(repr=False)

    def validate_arguments(self, raw: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
        """Parse and validate arguments (JSON text or a dict) into keyword arguments.

        The result can be passed as ``func(**kwargs)``; parameters the model left out (or sent as
        ``null`` when they do not accept ``None``) are absent so the function's own defaults
        apply. Raises ``ToolExecutionError`` whose ``details`` hold ``tool``, ``error`` (a text
        meant for the model), ``arguments`` and ``kind`` (``"invalid_json"`` or
        ``"invalid_arguments"``).
        """
        return self._validate(_load_arguments(self.name, raw))


def check_tool_name(name: object, what: str = "tool") -> str:
    """Return ``name`` if OpenAI accepts it (1-64 of ``a-zA-Z0-9_-``); else ConfigurationError."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigurationError(
            f"{what} name {name!r} is invalid: use 1-64 letters, digits, '_' or '-' "
            "(pass name=... to choose one)",
            {"name": name},
        )
    return name


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
    fname = check_tool_name(name if name is not None else getattr(func, "__name__", None), "tool")
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

    def validate(data: dict[str, Any]) -> dict[str, Any]:
        drop_null_defaults(data, loose, loose_defs)
        try:
            values = model.model_validate(data)
        except ValidationError as exc:
            raise _arguments_error(
                fname,
                "invalid_arguments",
                f"invalid arguments for tool {fname!r}: {_summarize(exc)}",
                data,
                exc.errors(include_url=False, include_input=False),
            ) from exc
        return {field_to_param[f]: getattr(values, f) for f in values.model_fields_set}

    return FunctionSchema(
        name=fname,
        description=description if description is not None else doc.description,
        parameters=parameters,
        strict=strict,
        _validate=validate,
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
    check_tool_name(name, "tool")
    required = [key for key in parameters.get("required", ()) if isinstance(key, str)]

    def validate(data: dict[str, Any]) -> dict[str, Any]:
        missing = [key for key in required if key not in data]
        if missing:
            raise _arguments_error(
                name,
                "invalid_arguments",
                f"invalid arguments for tool {name!r}: missing required "
                f"argument(s) {', '.join(missing)}",
                data,
            )
        if signature is not None:
            try:
                signature.bind(**data)
            except TypeError as exc:
                raise _arguments_error(
                    name, "invalid_arguments", f"invalid arguments for tool {name!r}: {exc}", data
                ) from exc
        return data

    return FunctionSchema(name, description, dict(parameters), strict, validate)


# --------------------------------------------------------------------------- structured output

_RESULT_KEY = "result"


@dataclasses.dataclass(frozen=True, eq=False)
class OutputSchema(Generic[T]):
    """A type prepared as structured output: its response format and its parser.

    OpenAI requires an object at the root, so other types (``list[Item]``, ``int``, unions) are
    wrapped as ``{"result": ...}`` on the wire and unwrapped by :meth:`parse`.
    """

    name: str
    schema: JsonSchema
    strict: bool
    wrapped: bool
    _adapter: TypeAdapter[T] = dataclasses.field(repr=False)
    _loose: JsonSchema = dataclasses.field(repr=False)

    def response_format(self) -> dict[str, Any]:
        """The ``response_format`` request value for this type."""
        return {
            "type": "json_schema",
            "json_schema": {"name": self.name, "schema": self.schema, "strict": self.strict},
        }

    def parse(self, text: str) -> T:
        """Validate the model's JSON answer; raises ``APIResponseError`` listing the problems.

        A leading UTF-8 BOM, a leading ``<think>...</think>`` block and a Markdown fence
        around the JSON are ignored.

        The error's ``details`` hold ``type``, ``errors`` and the whole answer as ``text``.
        """
        from ._preamble import split_preamble

        try:
            data = json.loads(_strip_fences(split_preamble(text)[1]))
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
            raise APIResponseError(
                f"the model's answer is not valid JSON for {self.name}: {exc}",
                {"type": self.name, "errors": [], "text": text},
            ) from exc
        if self.wrapped and isinstance(data, dict) and set(data) == {_RESULT_KEY}:
            data = data[_RESULT_KEY]
        drop_null_defaults(data, self._loose, self._loose.get("$defs", {}))
        try:
            return self._adapter.validate_python(data)
        except ValidationError as exc:
            raise APIResponseError(
                f"the model's answer does not match {self.name}: {_summarize(exc)}",
                {
                    "type": self.name,
                    "errors": exc.errors(include_url=False, include_input=False),
                    "text": text,
                },
            ) from exc


def _strip_fences(text: str) -> str:
    """Remove a surrounding Markdown code fence, which some models add despite the format."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```") and len(stripped) >= 6:
        body = stripped[3:-3]
        return body.split("\n", 1)[1] if "\n" in body else body
    return text


def _type_name(tp: Any) -> str:
    raw = tp.__name__ if isinstance(tp, type) else ""
    name = re.sub(r"[^a-zA-Z0-9_-]+", "_", raw).strip("_")[:64]
    return name or "response"


def _type_schema(tp: Any) -> tuple[TypeAdapter[Any], JsonSchema]:
    subject = f"type {tp!r}"
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(tp)
        return adapter, clean_schema(adapter.json_schema())
    except Exception as exc:
        raise ConfigurationError(f"cannot derive a JSON schema for {subject}: {exc}") from exc


def json_schema_for_type(tp: Any, *, strict: bool = False) -> JsonSchema:
    """The cleaned JSON schema of ``tp`` (strict-mode shaped when ``strict``)."""
    schema = _type_schema(tp)[1]
    return strict_schema(schema, Where(f"type {_type_name(tp)!r}")) if strict else schema


_OUTPUT_CACHE: dict[tuple[Any, bool, str | None], OutputSchema[Any]] = {}


def output_schema(tp: type[T], *, strict: bool = True, name: str | None = None) -> OutputSchema[T]:
    """Prepare ``tp`` as structured output (cached per type, strictness and name)."""
    key = (tp, strict, name)
    try:
        cached = _OUTPUT_CACHE.get(key)
    except TypeError:  # unhashable annotations (e.g. Annotated with a Field) are not cached
        key, cached = None, None  # type: ignore[assignment]
    if cached is not None:
        return cached
    adapter, loose = _type_schema(tp)
    wrapped = loose.get("type") != "object" or not isinstance(loose.get("properties"), dict)
    schema = loose
    if wrapped:
        defs = loose.get("$defs")
        inner = {k: v for k, v in loose.items() if k != "$defs"}
        schema = {"type": "object", "properties": {_RESULT_KEY: inner}, "required": [_RESULT_KEY]}
        schema["additionalProperties"] = False
        if defs:
            schema["$defs"] = defs
    out_name = check_tool_name(name, "response format") if name is not None else _type_name(tp)
    if strict:
        schema = strict_schema(schema, Where(f"type {out_name!r}"))
    result: OutputSchema[T] = OutputSchema(out_name, schema, strict, wrapped, adapter, loose)
    if key is not None:
        _OUTPUT_CACHE[key] = result
    return result


def response_format_for(tp: Any, *, strict: bool = True, name: str | None = None) -> dict[str, Any]:
    """``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`` for ``tp``."""
    return output_schema(tp, strict=strict, name=name).response_format()


def parse_structured(tp: type[T], text: str) -> T:
    """Validate a structured-output answer as ``tp``; raises ``APIResponseError`` when invalid."""
    return output_schema(tp, strict=False).parse(text)
