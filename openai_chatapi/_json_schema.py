"""JSON-schema rewriting: cleaning pydantic schemas for models, and OpenAI strict mode.

* :func:`clean_schema` drops ``title`` noise and inlines every non-recursive ``$defs`` entry.
* :func:`strict_schema` rewrites a schema for OpenAI strict mode (all properties required,
  ``additionalProperties: false``, nullable instead of optional, unsupported constraints moved
  into the description).
* :func:`drop_null_defaults` removes ``null`` values a model sent where the schema has a default
  that rejects ``null`` (so the default applies).
* :func:`check_name` and :func:`summarize_errors`: the name rule for functions and response
  formats, and the one-line account of a validation failure that is sent back to a model.

Tool schemas (``tools._function_schema``) and structured output (``_output_schema``) both go
through these, so a type means the same thing to the model everywhere.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError, truncate

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "JsonSchema",
    "Where",
    "check_name",
    "clean_schema",
    "drop_null_defaults",
    "strict_schema",
    "summarize_errors",
]

JsonSchema = dict[str, Any]

_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_INPUT_PREVIEW = 40  # characters of a bad value quoted back to the model


def check_name(name: object, what: str = "tool") -> str:
    """Return ``name`` if OpenAI accepts it (1-64 of ``a-zA-Z0-9_-``); else ConfigurationError."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigurationError(
            f"{what} name {name!r} is invalid: use 1-64 letters, digits, '_' or '-' "
            "(pass name=... to choose one)",
            {"name": name},
        )
    return name


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return truncate(text, _INPUT_PREVIEW)


def summarize_errors(exc: ValidationError, limit: int = 8) -> str:
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


def clean_schema(raw: JsonSchema) -> JsonSchema:
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
class Where:
    """Where a schema node sits, for error messages that name the parameter or field."""

    subject: str  # "function 'f'" or "type 'Model'"
    path: tuple[str, ...] = ()
    by_parameter: bool = False

    def child(self, part: str) -> Where:
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


def strict_schema(node: Any, where: Where) -> Any:
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
            value = strict_schema(sub, where.child(name))
            if name not in required and not _admits_null(value):
                value = _make_nullable(value)
            strict_props[name] = value
        node["properties"] = strict_props
        node["required"] = list(strict_props)
        node["additionalProperties"] = False
    if "items" in node:
        node["items"] = strict_schema(node["items"], where.child("[]"))
    for key in ("anyOf", "allOf"):
        if isinstance(node.get(key), list):
            node[key] = [strict_schema(sub, where) for sub in node[key]]
    if isinstance(node.get("$defs"), dict):
        node["$defs"] = {
            name: strict_schema(sub, Where(where.subject, ("$defs", name)))
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


# --------------------------------------------------------------------------- null defaults


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


def drop_null_defaults(value: Any, schema: Any, defs: Mapping[str, Any]) -> Any:
    """``value`` without the ``null`` values where the schema has a default that rejects null.

    ``value`` itself is left as it is: containers are copied only where something is dropped,
    so a caller can keep the model's arguments as sent.
    """
    schema = _resolve(schema, defs)
    if not isinstance(schema, dict):
        return value
    branches = [
        _resolve(branch, defs)
        for branch in [*schema.get("anyOf", ()), *schema.get("oneOf", ())]
        if branch != {"type": "null"}
    ]
    if len(branches) > 1 and isinstance(value, dict):
        branches = [b for b in branches if _tags_match(value, b)]
    if len(branches) == 1:  # several candidates: which one applies is unknown, leave the value
        value = drop_null_defaults(value, branches[0], defs)
    if isinstance(value, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            return _drop_in_object(value, props, defs)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return _replaced(
                value, {k: drop_null_defaults(v, extra, defs) for k, v in value.items()}
            )
    elif isinstance(value, list):
        items = schema.get("items")
        prefix = schema.get("prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        items = items if isinstance(items, dict) else None
        new = [
            drop_null_defaults(item, prefix[i] if i < len(prefix) else items, defs)
            for i, item in enumerate(value)
        ]
        return new if any(a is not b for a, b in zip(new, value, strict=True)) else value
    return value


def _drop_in_object(
    value: dict[str, Any], props: Mapping[str, Any], defs: Mapping[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        sub = _resolve(props.get(key), defs)
        if not isinstance(sub, dict):
            out[key] = item
        elif not (item is None and "default" in sub and not _admits_null(sub)):
            out[key] = drop_null_defaults(item, sub, defs)
    return _replaced(value, out)


def _replaced(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` when ``new`` holds the very same entries (nothing was dropped), else ``new``."""
    if len(new) == len(old) and all(new[key] is item for key, item in old.items()):
        return old
    return new
