"""Partial structured output: the object a half-received JSON answer describes so far.

The JSON itself is completed by ``pydantic_core.from_json(..., allow_partial=...)`` (no hand
written repair here; a number at the very end of the text so far is left out, as it may go
on in the next piece); this module only maps the partial JSON value onto the output type:

* a Pydantic model or a dataclass becomes an instance built without validation
  (``model_construct``), holding the fields received so far and ``None`` for the others;
* a TypedDict becomes a dict of the keys received so far;
* a list becomes the list of its items so far, the last one possibly partial;
* a scalar (``int``, ``str``, ``Literal``...) is kept when it already validates, else ``None``.

The final answer is always validated in full elsewhere; partial objects are previews.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import from_json
from typing_extensions import is_typeddict

from ._preamble import preamble_end

__all__ = ["PartialParser", "partial_value"]

Path = tuple[Any, ...]

_NOTHING: Any = object()


@functools.lru_cache(maxsize=256)
def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


@functools.lru_cache(maxsize=256)
def _hints(tp: Any) -> dict[str, Any]:
    try:
        return get_type_hints(tp)
    except Exception:  # unresolvable annotations: keep the values as they came
        return {}


def _scalar(tp: Any, data: Any) -> Any:
    try:
        adapter = _adapter(tp)
    except TypeError:  # an unhashable annotation
        adapter = TypeAdapter(tp)
    try:
        return adapter.validate_python(data)
    except (ValidationError, TypeError, ValueError):
        return None


def _type_hints(tp: Any) -> dict[str, Any]:
    try:
        return _hints(tp)
    except TypeError:  # unhashable
        return {}


def _object_keys(tp: Any) -> dict[str, Any] | None:
    """Key → annotation of an object-like type (model, dataclass, TypedDict), else None."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return {(f.alias or name): f.annotation for name, f in tp.model_fields.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = _type_hints(tp)
        return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(tp)}
    if is_typeddict(tp):
        return dict(_type_hints(tp))
    return None


def _fits(tp: Any, data: Mapping[str, Any]) -> bool:
    """Whether a partial object could belong to union member ``tp``."""
    keys = _object_keys(tp)
    if keys is None or not set(data) <= set(keys):
        return False
    for key, value in data.items():
        annotation = keys[key]
        if get_origin(annotation) is Literal and value not in get_args(annotation):
            return False
    return True


Memo = dict[tuple[Any, ...], Any]


def _model(tp: type[BaseModel], data: Mapping[str, Any], memo: Memo | None, path: Path) -> Any:
    values: dict[str, Any] = {}
    for name, info in tp.model_fields.items():
        key = info.alias or name
        value = data.get(key, data.get(name, _NOTHING))
        values[name] = (
            None if value is _NOTHING else partial_value(info.annotation, value, memo, (*path, key))
        )
    return tp.model_construct(**values)


def _dataclass(tp: type[Any], data: Mapping[str, Any], memo: Memo | None, path: Path) -> Any:
    obj = object.__new__(tp)
    hints = _type_hints(tp)
    for f in dataclasses.fields(tp):
        value = data.get(f.name, _NOTHING)
        converted = (
            None
            if value is _NOTHING
            else partial_value(hints.get(f.name, Any), value, memo, (*path, f.name))
        )
        object.__setattr__(obj, f.name, converted)  # frozen dataclasses too
    return obj


def _items(tp: Any, data: list[Any], memo: Memo | None, path: Path) -> list[Any]:
    """Convert list items; the items before the last are complete, so converted only once."""
    out: list[Any] = []
    last = len(data) - 1
    for index, item in enumerate(data):
        key = (*path, index)
        if memo is not None and index < last:
            if key not in memo:
                memo[key] = partial_value(tp, item, memo, key)
            out.append(memo[key])
        else:
            out.append(partial_value(tp, item, memo, key))
    return out


def partial_value(tp: Any, data: Any, memo: Memo | None = None, path: Path = ()) -> Any:
    """The partial object of type ``tp`` that the partial JSON value ``data`` describes.

    ``memo`` (kept across the successive partial values of one answer) holds the list items
    already complete, by position, so that each is converted once.
    """
    if tp is Any or tp is object:
        return data
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is Annotated:
        return partial_value(args[0], data, memo, path)
    if origin is Union or origin is types.UnionType:
        if data is None:
            return None
        members = [a for a in args if a is not type(None)]
        if len(members) == 1:
            return partial_value(members[0], data, memo, path)
        if isinstance(data, dict):
            for member in members:
                if _fits(member, data):
                    return partial_value(member, data, memo, path)
            return None
        if isinstance(data, list):
            for member in members:
                if get_origin(member) in (list, tuple, set, frozenset, Sequence):
                    return partial_value(member, data, memo, path)
            return None
        for member in members:
            value = _scalar(member, data)
            if value is not None:
                return value
        return None
    if origin is Literal:
        return data if data in args else None
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _model(tp, data, memo, path) if isinstance(data, dict) else None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass(tp, data, memo, path) if isinstance(data, dict) else None
    if is_typeddict(tp):
        if not isinstance(data, dict):
            return None
        hints = _type_hints(tp)
        return {k: partial_value(hints.get(k, Any), v, memo, (*path, k)) for k, v in data.items()}
    if origin in (list, set, frozenset, Sequence) or tp in (list, set, frozenset):
        if not isinstance(data, list):
            return None
        item = args[0] if args else Any
        return _items(item, data, memo, path)
    if origin is tuple:
        if not isinstance(data, list):
            return None
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_items(args[0], data, memo, path))
        return tuple(
            partial_value(t, x, memo, (*path, i))
            for i, (t, x) in enumerate(zip(args, data, strict=False))
        )
    if origin in (dict, Mapping):
        if not isinstance(data, dict):
            return None
        value_type = args[1] if len(args) == 2 else Any
        return {k: partial_value(value_type, v, memo, (*path, k)) for k, v in data.items()}
    return _scalar(tp, data)


def _partial_json(text: str) -> Any:
    try:
        return from_json(text, allow_partial="trailing-strings")
    except TypeError:  # pydantic-core before 2.24: no growing strings, whole values only
        return from_json(text, allow_partial=True)


class PartialParser:
    """Feed the answer's text as it arrives; get the partial object each time it changes."""

    def __init__(self, tp: Any, *, wrapped: bool, wrapper_key: str = "result") -> None:
        self._type = tp
        self._wrapped = wrapped
        self._key = wrapper_key
        self._text = ""
        self._last: Any = _NOTHING
        self._memo: Memo = {}
        self._start: int | None = None  # where the JSON value begins in the text
        self._scan = _StringScan()

    def feed(self, piece: str) -> tuple[bool, Any]:
        """Add a piece; return ``(True, partial)`` when the partial object changed."""
        self._text += piece
        if self._start is None:
            self._start = _body_start(self._text)
            if self._start is None:
                return False, None
            self._scan.feed(self._text[self._start :])
        else:
            self._scan.feed(piece)
        body = self._text[self._start :]
        if not self._scan.in_string:
            # A number at the very end may go on in the next piece ("1" then "23"): it
            # counts as not received until a character after it ends it.
            body = _without_trailing_number(body)
        try:
            data = _partial_json(body)
        except ValueError:  # not JSON (yet), or text after the value (a closing fence)
            return False, None
        if data == self._last:
            return False, None
        self._last = data
        if self._wrapped and isinstance(data, dict):
            if set(data) == {self._key}:
                data = data[self._key]
            elif not data:
                return False, None  # "{" so far: the wrapper has not started
        value = partial_value(self._type, data, self._memo)
        if value is None:
            return False, None
        return True, value


def _body_start(text: str) -> int | None:
    """Where the JSON value starts (after blanks, a BOM, a leading think block and a
    Markdown fence's first line), or None while only that prefix has arrived."""
    start = preamble_end(text)
    if start is None:
        return None
    if len(text) - start < 3 and "```".startswith(text[start:]):
        return None  # maybe a fence
    if text.startswith("```", start):  # a Markdown fence some models add: skip its line
        newline = text.find("\n", start)
        if newline < 0:
            return None
        rest = text[newline + 1 :]
        start = newline + 1 + len(rest) - len(rest.lstrip())
    return start if start < len(text) else None


_NUMBER_CHARS = frozenset("0123456789+-.eE")


def _without_trailing_number(body: str) -> str:
    """``body`` without the number token it ends with, if it ends with one."""
    end = len(body)
    while end and body[end - 1] in _NUMBER_CHARS:
        end -= 1
    if end < len(body) and (body[end] == "-" or body[end].isdigit()):
        return body[:end]  # not ``true``/``false`` (their ``e`` is not a number's)
    return body


class _StringScan:
    """Whether the text fed so far ends inside a JSON string (fed piece by piece)."""

    __slots__ = ("escaped", "in_string")

    def __init__(self) -> None:
        self.in_string = False
        self.escaped = False

    def feed(self, piece: str) -> None:
        if not self.in_string and '"' not in piece:
            return
        for char in piece:
            if self.escaped:
                self.escaped = False
            elif char == "\\":
                self.escaped = self.in_string
            elif char == '"':
                self.in_string = not self.in_string
