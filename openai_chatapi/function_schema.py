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
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Generic, TypeVar, get_args, get_origin

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic.fields import FieldInfo

from .errors import APIResponseError, ConfigurationError, ToolExecutionError, truncate

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
JsonSchema = dict[str, Any]

_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_INPUT_PREVIEW = 40  # characters of a bad value quoted back to the model
_RAW_PREVIEW = 200  # characters of unparseable arguments kept in error details

# --------------------------------------------------------------------------- docstrings

_GOOGLE_PARAM_SECTIONS = frozenset(
    {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments", "kwargs"}
)
_GOOGLE_SECTIONS = _GOOGLE_PARAM_SECTIONS | {
    "attributes",
    "example",
    "examples",
    "methods",
    "note",
    "notes",
    "other parameters",
    "raises",
    "references",
    "return",
    "returns",
    "see also",
    "todo",
    "warning",
    "warnings",
    "yield",
    "yields",
}
_NUMPY_PARAM_SECTIONS = frozenset({"parameters", "other parameters", "keyword arguments"})
_REST_PARAM_FIELDS = frozenset({"param", "parameter", "arg", "argument", "key", "keyword"})
_REST_FIELDS = _REST_PARAM_FIELDS | {"type", "returns", "return", "rtype", "raises", "raise"}

_GOOGLE_HEADER = re.compile(r"^([A-Za-z][A-Za-z ]*):$")
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\(.*?\))?\s*:\s*(.*)$")
_NUMPY_RULE = re.compile(r"^\s*-{3,}\s*$")
_NUMPY_ENTRY = re.compile(r"^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::.*)?$")
_REST_FIELD = re.compile(r"^:(\w+)((?:\s+[^:]+)?):\s*(.*)$")


@dataclasses.dataclass(frozen=True)
class Docstring:
    """A parsed docstring: the text before any section, and per-parameter descriptions."""

    description: str
    params: dict[str, str]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """Index of the first non-blank line from ``start`` indented at most ``indent``."""
    for i in range(start, len(lines)):
        if lines[i].strip() and _indent(lines[i]) <= indent:
            return i
    return len(lines)


def _entries(lines: list[str], entry: re.Pattern[str]) -> list[tuple[str, list[str]]]:
    """Split an indented section into (head, continuation lines) pairs at its base indent."""
    body = [line for line in lines if line.strip()]
    if not body:
        return []
    base = min(_indent(line) for line in body)
    out: list[tuple[str, list[str]]] = []
    for line in body:
        text = line.strip()
        if _indent(line) == base and entry.match(text):
            out.append((text, []))
        elif out:
            out[-1][1].append(text)
    return out


def _google_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for head, rest in _entries(lines, _GOOGLE_ENTRY):
        match = _GOOGLE_ENTRY.match(head)
        assert match is not None
        params[match.group(1)] = " ".join([match.group(2), *rest]).strip()
    return params


def _numpy_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for head, rest in _entries(lines, _NUMPY_ENTRY):
        match = _NUMPY_ENTRY.match(head)
        assert match is not None
        for name in match.group(1).split(","):
            params[name.strip().lstrip("*")] = " ".join(rest).strip()
    return params


def parse_docstring(doc: str | None) -> Docstring:
    """Parse a Google, NumPy or reST style docstring.

    ``description`` is everything before the first section (``Args:``, ``Parameters`` with a
    dashed underline, ``:param x:``, ``Returns:``, ...); ``params`` maps parameter names to their
    descriptions, continuation lines joined with single spaces.
    """
    if not doc:
        return Docstring("", {})
    lines = inspect.cleandoc(doc).splitlines()
    params: dict[str, str] = {}
    description_end = len(lines)
    i = 0
    while i < len(lines):
        line = lines[i]
        text = line.strip()
        indent = _indent(line)
        following = lines[i + 1] if i + 1 < len(lines) else ""
        google = _GOOGLE_HEADER.match(text)
        rest_field = _REST_FIELD.match(text) if text.startswith(":") else None
        if text and _NUMPY_RULE.match(following) and not _NUMPY_RULE.match(line):
            end = i + 2
            while end < len(lines) and not (
                end + 1 < len(lines) and lines[end].strip() and _NUMPY_RULE.match(lines[end + 1])
            ):
                end += 1
            if text.lower() in _NUMPY_PARAM_SECTIONS:
                params.update(_numpy_params(lines[i + 2 : end]))
        elif google and google.group(1).strip().lower() in _GOOGLE_SECTIONS:
            end = _block_end(lines, i + 1, indent)
            if google.group(1).strip().lower() in _GOOGLE_PARAM_SECTIONS:
                params.update(_google_params(lines[i + 1 : end]))
        elif rest_field and rest_field.group(1).lower() in _REST_FIELDS:
            end = _block_end(lines, i + 1, indent)
            words = rest_field.group(2).split()
            if rest_field.group(1).lower() in _REST_PARAM_FIELDS and words:
                continuation = [extra.strip() for extra in lines[i + 1 : end] if extra.strip()]
                params[words[-1].lstrip("*")] = " ".join(
                    [rest_field.group(3), *continuation]
                ).strip()
        else:
            i += 1
            continue
        description_end = min(description_end, i)
        i = end
    description = "\n".join(lines[:description_end]).strip()
    return Docstring(description, params)


# --------------------------------------------------------------------------- schema cleanup

_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_SINGLE = ("items", "additionalProperties", "not", "contains", "propertyNames")
_NULLABLE_TYPES = frozenset({"string", "integer", "number", "boolean"})
_DEFS_PREFIX = "#/$defs/"


def _refs_in(node: Any) -> set[str]:
    """Names of the ``$defs`` entries referenced anywhere inside ``node``."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
            found.add(ref[len(_DEFS_PREFIX) :])
        for value in node.values():
            found |= _refs_in(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs_in(value)
    return found


def _recursive_defs(defs: Mapping[str, Any]) -> set[str]:
    """Definitions that reach themselves through references (these must stay in ``$defs``)."""
    graph = {name: _refs_in(body) for name, body in defs.items()}
    recursive: set[str] = set()
    for start in graph:
        seen: set[str] = set()
        stack = list(graph[start])
        while stack:
            name = stack.pop()
            if name == start:
                recursive.add(start)
                break
            if name not in seen and name in graph:
                seen.add(name)
                stack.extend(graph[name])
    return recursive


def _simplify(node: JsonSchema) -> JsonSchema:
    """Local rewrites that make a schema shorter without changing what it accepts."""
    if "const" in node and "enum" not in node:
        node["enum"] = [node.pop("const")]
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        rest = {k: v for k, v in node.items() if k != "allOf"}
        node = {**all_of[0], **rest}
    any_of = node.get("anyOf")
    if isinstance(any_of, list) and len(any_of) == 2 and {"type": "null"} in any_of:
        other = any_of[0] if any_of[1] == {"type": "null"} else any_of[1]
        if _is_plain_primitive(other):
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            node = {**other, **rest, "type": [other["type"], "null"]}
    return node


def _is_plain_primitive(node: Any) -> bool:
    return (
        isinstance(node, dict)
        and node.get("type") in _NULLABLE_TYPES
        and "enum" not in node
        and "const" not in node
    )


class _Cleaner:
    """Drops ``title`` noise and inlines every non-recursive ``$defs`` entry."""

    def __init__(self, defs: Mapping[str, Any]) -> None:
        self.defs = defs
        self.keep = _recursive_defs(defs)
        self._inlined: dict[str, JsonSchema] = {}

    def kept_defs(self) -> JsonSchema:
        return {name: self.clean(self.defs[name]) for name in sorted(self.keep)}

    def clean(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
            name = ref[len(_DEFS_PREFIX) :]
            if name not in self.keep and name in self.defs:
                if name not in self._inlined:
                    self._inlined[name] = self.clean(self.defs[name])
                siblings = self.clean({k: v for k, v in node.items() if k != "$ref"})
                return _simplify({**copy.deepcopy(self._inlined[name]), **siblings})
        out: JsonSchema = {}
        for key, value in node.items():
            if key in ("title", "discriminator"):  # noise; discriminator maps to inlined $defs
                continue
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {name: self.clean(sub) for name, sub in value.items()}
            elif key in _SCHEMA_LISTS and isinstance(value, list):
                out[key] = [self.clean(sub) for sub in value]
            elif key in _SCHEMA_SINGLE:
                out[key] = self.clean(value)
            else:
                out[key] = value
        return _simplify(out)


def _clean_schema(raw: JsonSchema) -> JsonSchema:
    """Clean a pydantic JSON schema; recursive definitions stay under ``$defs``."""
    raw = dict(raw)
    defs = raw.pop("$defs", {})
    cleaner = _Cleaner(defs)
    root: JsonSchema = cleaner.clean(raw)
    ref = root.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX) and set(root) <= {"$ref"}:
        # A recursive model at the root: its body becomes the root, its references stay valid.
        root = cleaner.clean(defs[ref[len(_DEFS_PREFIX) :]])
    kept = cleaner.kept_defs()
    if kept:
        root["$defs"] = kept
    return root


# --------------------------------------------------------------------------- strict mode

_STRICT_KEYWORDS = frozenset(
    {
        "$defs",
        "$ref",
        "additionalProperties",
        "anyOf",
        "description",
        "enum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "format",
        "items",
        "maxItems",
        "maximum",
        "minItems",
        "minimum",
        "multipleOf",
        "pattern",
        "properties",
        "required",
        "type",
    }
)
_STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
# Constraints strict mode rejects but the model should still read; validation enforces them.
_STRICT_NOTED = frozenset(
    {
        "maxLength",
        "minLength",
        "uniqueItems",
        "maxProperties",
        "minProperties",
        "contains",
        "minContains",
        "maxContains",
        "propertyNames",
        "patternProperties",
    }
)


def _admits_null(node: Any) -> bool:
    if not isinstance(node, dict):
        return False
    kind = node.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if any(_admits_null(sub) for sub in [*node.get("anyOf", []), *node.get("oneOf", [])]):
        return True
    if "enum" in node:
        return None in node["enum"]
    return not any(key in node for key in ("type", "$ref", "anyOf", "oneOf", "allOf", "not"))


def _make_nullable(node: JsonSchema) -> JsonSchema:
    if _is_plain_primitive(node):
        return {**node, "type": [node["type"], "null"]}
    if isinstance(node.get("type"), list):
        return {**node, "type": [*node["type"], "null"]}
    if isinstance(node.get("anyOf"), list):
        return {**node, "anyOf": [*node["anyOf"], {"type": "null"}]}
    inner = {k: v for k, v in node.items() if k != "description"}
    out: JsonSchema = {"anyOf": [inner, {"type": "null"}]}
    if "description" in node:
        out["description"] = node["description"]
    return out


@dataclasses.dataclass(frozen=True)
class _Where:
    """Where a schema node sits, for error messages that name the parameter or field."""

    subject: str  # "function 'f'" or "type 'Model'"
    path: tuple[str, ...] = ()
    by_parameter: bool = False

    def child(self, part: str) -> _Where:
        return dataclasses.replace(self, path=(*self.path, part))

    def __str__(self) -> str:
        if self.path[:1] == ("$defs",) and len(self.path) > 1:
            where = f"model {self.path[1]!r} used by {self.subject}"
            inner = self.path[2:]
        elif self.by_parameter and self.path:
            where = f"parameter {self.path[0]!r} of {self.subject}"
            inner = self.path[1:]
        else:
            where = self.subject
            inner = self.path
        return f"{where} (at {'.'.join(inner)})" if inner else where


def _strict(node: Any, where: _Where) -> Any:
    """Rewrite one schema node (and everything under it) for OpenAI strict mode."""
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "oneOf" in node:  # strict mode has no oneOf; anyOf accepts a superset
        node["anyOf"] = [*node.pop("anyOf", []), *node.pop("oneOf")]
    prefix = node.pop("prefixItems", None)
    if isinstance(prefix, list) and "items" not in node:
        unique = [item for i, item in enumerate(prefix) if item not in prefix[:i]]
        node["items"] = unique[0] if len(unique) == 1 else {"anyOf": unique}
        node.setdefault("minItems", len(prefix))
        node.setdefault("maxItems", len(prefix))
    if not any(key in node for key in ("type", "anyOf", "enum", "$ref", "allOf")):
        raise ConfigurationError(
            f"{where} accepts any value, which OpenAI strict mode cannot express; "
            "give it a concrete type or use strict=False",
            {"where": str(where)},
        )
    kind = node.get("type")
    if kind == "object" or (isinstance(kind, list) and "object" in kind):
        props = node.get("properties")
        if not isinstance(props, dict):
            if node.get("additionalProperties", True) is not False:
                raise ConfigurationError(
                    f"{where} is a free-form mapping (dict), which OpenAI strict mode cannot "
                    "express; use a pydantic model, dataclass or TypedDict, or strict=False",
                    {"where": str(where)},
                )
            props = {}
        required = set(node.get("required", ()))
        strict_props: JsonSchema = {}
        for name, sub in props.items():
            value = _strict(sub, where.child(name))
            if name not in required and not _admits_null(value):
                value = _make_nullable(value)
            strict_props[name] = value
        node["properties"] = strict_props
        node["required"] = list(strict_props)
        node["additionalProperties"] = False
    if "items" in node:
        node["items"] = _strict(node["items"], where.child("[]"))
    for key in ("anyOf", "allOf"):
        if isinstance(node.get(key), list):
            node[key] = [_strict(sub, where) for sub in node[key]]
    if isinstance(node.get("$defs"), dict):
        node["$defs"] = {
            name: _strict(sub, _Where(where.subject, ("$defs", name)))
            for name, sub in node["$defs"].items()
        }
    notes: list[str] = []
    for key in list(node):
        if key in _STRICT_KEYWORDS and not (key == "format" and node[key] not in _STRICT_FORMATS):
            continue
        value = node.pop(key)
        if key in _STRICT_NOTED or key == "format":
            notes.append(f"{key}: {json.dumps(value, default=str)}")
    if notes:
        description = node.get("description")
        note = f"({', '.join(notes)})"
        node["description"] = f"{description} {note}" if description else note
    return node


# --------------------------------------------------------------------------- validation helpers


def _resolve(node: Any, defs: Mapping[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
            return {**defs.get(ref[len(_DEFS_PREFIX) :], {}), **node}
    return node


def _tags_match(value: dict[str, Any], branch: Any) -> bool:
    """Whether ``value`` fits an object branch's single-valued (tag) properties."""
    if not isinstance(branch, dict) or not isinstance(branch.get("properties"), dict):
        return False
    for key, sub in branch["properties"].items():
        tag = sub.get("enum") if isinstance(sub, dict) else None
        if isinstance(tag, list) and len(tag) == 1 and value.get(key, tag[0]) != tag[0]:
            return False
    return True


def _drop_null_defaults(value: Any, schema: Any, defs: Mapping[str, Any]) -> None:
    """Remove ``null`` values (in place) where the schema has a default that rejects null."""
    schema = _resolve(schema, defs)
    if not isinstance(schema, dict):
        return
    branches = [
        _resolve(branch, defs)
        for branch in [*schema.get("anyOf", ()), *schema.get("oneOf", ())]
        if branch != {"type": "null"}
    ]
    if len(branches) > 1 and isinstance(value, dict):
        branches = [b for b in branches if _tags_match(value, b)]
    if len(branches) == 1:  # several candidates: which one applies is unknown, leave the value
        _drop_null_defaults(value, branches[0], defs)
    if isinstance(value, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            for key in list(value):
                sub = _resolve(props.get(key), defs)
                if not isinstance(sub, dict):
                    continue
                if value[key] is None and "default" in sub and not _admits_null(sub):
                    del value[key]
                else:
                    _drop_null_defaults(value[key], sub, defs)
        elif isinstance(schema.get("additionalProperties"), dict):
            for item in value.values():
                _drop_null_defaults(item, schema["additionalProperties"], defs)
    elif isinstance(value, list):
        items = schema.get("items")
        prefix = schema.get("prefixItems")
        for i, item in enumerate(value):
            if isinstance(prefix, list) and i < len(prefix):
                _drop_null_defaults(item, prefix[i], defs)
            elif isinstance(items, dict):
                _drop_null_defaults(item, items, defs)


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
    except ValueError as exc:
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
        loose = _clean_schema(model.model_json_schema(by_alias=True))
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
        parameters = _strict(parameters, _Where(subject, by_parameter=True))
    elif not parameters["required"]:
        del parameters["required"]
    loose_defs = loose.get("$defs", {})

    def validate(data: dict[str, Any]) -> dict[str, Any]:
        _drop_null_defaults(data, loose, loose_defs)
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
        """Validate the model's JSON answer; raises ``APIResponseError`` listing the problems."""
        try:
            data = json.loads(_strip_fences(text))
        except ValueError as exc:
            raise APIResponseError(
                f"the model's answer is not valid JSON for {self.name}: {exc}",
                {"type": self.name, "errors": [], "text": truncate(text, _RAW_PREVIEW)},
            ) from exc
        if self.wrapped and isinstance(data, dict) and set(data) == {_RESULT_KEY}:
            data = data[_RESULT_KEY]
        _drop_null_defaults(data, self._loose, self._loose.get("$defs", {}))
        try:
            return self._adapter.validate_python(data)
        except ValidationError as exc:
            raise APIResponseError(
                f"the model's answer does not match {self.name}: {_summarize(exc)}",
                {
                    "type": self.name,
                    "errors": exc.errors(include_url=False, include_input=False),
                    "text": truncate(text, _RAW_PREVIEW),
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
        return adapter, _clean_schema(adapter.json_schema())
    except Exception as exc:
        raise ConfigurationError(f"cannot derive a JSON schema for {subject}: {exc}") from exc


def json_schema_for_type(tp: Any, *, strict: bool = False) -> JsonSchema:
    """The cleaned JSON schema of ``tp`` (strict-mode shaped when ``strict``)."""
    schema = _type_schema(tp)[1]
    return _strict(schema, _Where(f"type {_type_name(tp)!r}")) if strict else schema


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
        schema = _strict(schema, _Where(f"type {out_name!r}"))
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
