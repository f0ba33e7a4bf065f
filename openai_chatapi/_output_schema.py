"""Types as structured output: the ``response_format`` a type asks for, and its parser.

:func:`output_schema` prepares a type (a pydantic model, dataclass, TypedDict, ``list[Item]``,
a union, ...) once: its cleaned JSON schema (strict-mode shaped by default), the
``response_format`` request value, and a parser for the model's answer. The schema rules are
those of tool parameters (``_json_schema``), so a type means the same thing in both places.
This module sits beside the ``tools`` package, not in it: structured output needs no tools.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError

from . import _json_schema as js
from ._errors import APIResponseError, ConfigurationError
from ._json_schema import JsonSchema

__all__ = [
    "OutputSchema",
    "json_schema_for_type",
    "output_schema",
    "parse_structured",
    "response_format_for",
]

T = TypeVar("T")

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
        data = js.drop_null_defaults(data, self._loose, self._loose.get("$defs", {}))
        try:
            return self._adapter.validate_python(data)
        except ValidationError as exc:
            raise APIResponseError(
                f"the model's answer does not match {self.name}: {js.summarize_errors(exc)}",
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
        return adapter, js.clean_schema(adapter.json_schema())
    except Exception as exc:
        raise ConfigurationError(f"cannot derive a JSON schema for {subject}: {exc}") from exc


def json_schema_for_type(tp: Any, *, strict: bool = False) -> JsonSchema:
    """The cleaned JSON schema of ``tp`` (strict-mode shaped when ``strict``)."""
    schema = _type_schema(tp)[1]
    return js.strict_schema(schema, js.Where(f"type {_type_name(tp)!r}")) if strict else schema


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
    out_name = js.check_name(name, "response format") if name is not None else _type_name(tp)
    if strict:
        schema = js.strict_schema(schema, js.Where(f"type {out_name!r}"))
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
