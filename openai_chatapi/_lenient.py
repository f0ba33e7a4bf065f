"""Lenient repairs of a decoded response that failed validation (never used when it passes).

Real servers send a message's ``content`` as a list of parts (Mistral/Magistral: ``text`` and
``thinking`` parts), ``created`` as a float, ``id`` as a number, token counts as floats. None
of that changes the reply, so lenient parsing repairs the document instead of rejecting it:
text parts are joined into the text, ``thinking`` parts become the reasoning, unknown parts
are ignored; a number or string of the wrong kind is converted, and a cosmetic field that
cannot be converted is dropped. Strict parsing never repairs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["coerce_fields", "flatten_content"]

# Fields whose loss leaves the reply intact: dropped when they cannot be converted.
_COSMETIC = frozenset(
    {
        "id",
        "object",
        "created",
        "model",
        "system_fingerprint",
        "service_tier",
        "usage",
        "logprobs",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "prompt_tokens_details",
        "completion_tokens_details",
        "cached_tokens",
        "audio_tokens",
        "reasoning_tokens",
        "accepted_prediction_tokens",
        "rejected_prediction_tokens",
    }
)
_UNCHANGED = object()


def _part_text(value: Any) -> str:
    """The text of a ``thinking`` value: a string, or a list of text parts (Magistral)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(_part_text(item) for item in value)
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        return str(value["text"])
    return ""


def _flatten_message(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    content = message.get("content")
    if not isinstance(content, list):
        return False
    texts: list[str] = []
    thoughts: list[str] = []
    refusals: list[str] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("text", "output_text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "thinking":
            thoughts.append(_part_text(part.get("thinking", part.get("text"))))
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            refusals.append(part["refusal"])
        # any other part type (images, citations, references...) carries no reply text
    message["content"] = "".join(texts) if texts else None
    thinking = "".join(thoughts)
    if thinking:
        earlier = message.get("reasoning_content")
        message["reasoning_content"] = (earlier if isinstance(earlier, str) else "") + thinking
    if refusals and not isinstance(message.get("refusal"), str):
        message["refusal"] = "".join(refusals)
    return True


def flatten_content(document: Any) -> bool:
    """Turn list-of-parts ``content`` of every choice's message or delta into text and
    reasoning, in place; whether anything changed."""
    if not isinstance(document, dict) or not isinstance(document.get("choices"), list):
        return False
    changed = False
    for choice in document["choices"]:
        if isinstance(choice, dict):
            changed |= _flatten_message(choice.get("message"))
            changed |= _flatten_message(choice.get("delta"))
    return changed


def _locate(document: Any, loc: Iterable[int | str]) -> tuple[Any, int | str] | None:
    """The container and key an error location points at (union tags in it skipped)."""
    parent: Any = None
    key: int | str | None = None
    node = document
    for step in loc:
        in_dict = isinstance(node, dict) and isinstance(step, str) and step in node
        in_list = isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)
        if not (in_dict or in_list):
            break  # a union member's tag, not a place in the document
        parent, key, node = node, step, node[step]
    return None if key is None else (parent, key)


def _converted(value: Any, error_type: str) -> Any:
    if isinstance(value, bool):
        return _UNCHANGED
    if error_type.startswith("int_"):
        if isinstance(value, float) and math.isfinite(value):
            return round(value)
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                return _UNCHANGED
            return round(number) if math.isfinite(number) else _UNCHANGED
    elif error_type.startswith("float_") and isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return _UNCHANGED
    elif error_type == "string_type" and isinstance(value, (int, float)):
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    return _UNCHANGED


def coerce_fields(document: Any, errors: Iterable[Mapping[str, Any]]) -> bool:
    """Convert or drop, in place, the fields named by validation ``errors`` when that keeps
    the reply intact; whether anything changed (nothing did: the errors are real)."""
    changed = False
    for error in errors:
        found = _locate(document, error.get("loc", ()))
        if found is None:
            continue
        container, key = found
        value = container[key]
        new = _converted(value, str(error.get("type", "")))
        if new is not _UNCHANGED:
            container[key] = new
            changed = True
        elif isinstance(key, str) and key in _COSMETIC and value is not None:
            container[key] = None
            changed = True
    return changed
