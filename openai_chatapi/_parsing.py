"""Turning response bodies into generated models: leniently by default, strictly on request."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from . import _generated as gen
from ._errors import APIResponseError, body_excerpt, error_from_payload
from ._redact import known_secrets, scrub_exception
from ._text import repaired_strings

__all__ = [
    "parse_completion",
    "parse_model",
    "parse_model_list",
    "validate_repaired",
    "validation_error",
]

if TYPE_CHECKING:
    from ._model_list import ModelList

M = TypeVar("M", bound=BaseModel)

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

_STRICT_TWINS: dict[type[BaseModel], type[BaseModel]] = {
    gen.ChatCompletion: gen.StrictChatCompletion,
    gen.ChatCompletionChunk: gen.StrictChatCompletionChunk,
    gen.Model: gen.StrictModel,
    gen.ModelList: gen.StrictModelList,
}


def _body_error(message: str, details: dict[str, Any]) -> APIResponseError:
    """An error about a server's body; secrets any agent registered are scrubbed from it
    (the body, and so a field name or message, may echo a key)."""
    error = APIResponseError(message, details)
    scrub_exception(error, known_secrets())
    return error


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


def validation_error(what: str, exc: ValidationError, raw: bytes | str) -> APIResponseError:
    """An ``APIResponseError`` naming the first offending field of ``exc``."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0] if errors else {"loc": (), "msg": str(exc)}
    field = _location(tuple(first.get("loc", ())))
    return _body_error(
        f"invalid {what}: field '{field}': {first.get('msg')}",
        {
            "field": field,
            "errors": [
                {"field": _location(tuple(e.get("loc", ()))), "message": e.get("msg")}
                for e in errors[:20]
            ],
            "body": body_excerpt(raw),
        },
    )


def _error_in_body(raw: bytes | str, scrub: tuple[str, ...]) -> APIResponseError | None:
    """Some servers answer 200 with an error object; detect it cheaply."""
    head = raw[:64] if isinstance(raw, bytes) else raw[:64].encode()
    if b'"error"' not in head and b'"detail"' not in head:
        return None
    try:
        payload: Any = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return None
    if (
        isinstance(payload, dict)
        and ("error" in payload or "detail" in payload)
        and "choices" not in payload
        and "data" not in payload
    ):
        return error_from_payload(payload, body=body_excerpt(str(payload)), scrub=scrub)
    return None


def parse_model(
    cls: type[M],
    raw: bytes | str,
    *,
    strict: bool,
    what: str,
    scrub: tuple[str, ...] = (),
) -> M:
    """Validate ``raw`` JSON as ``cls``; in strict mode first against its strict twin."""
    error = _error_in_body(raw, scrub)
    if error is not None:
        raise error
    try:
        if strict:
            _STRICT_TWINS[cls].model_validate_json(raw, strict=True)
        return cls.model_validate_json(raw)
    except ValidationError as exc:
        repaired = _utf8_repaired(raw)
        if repaired is not None:
            return parse_model(cls, repaired, strict=strict, what=what, scrub=scrub)
        model = _repaired_model(cls, raw, strict=strict)
        if model is not None:
            return model
        failure = validation_error(what, exc, raw)
    raise failure  # outside the handler: no context quoting the raw body rides along


def _repaired_model(cls: type[M], raw: bytes | str, *, strict: bool) -> M | None:
    """``raw`` validated after the repairs a failed validation allows, or None.

    Always: lone UTF-16 surrogate escapes (``\\ud83d``, which the fast JSON parser rejects)
    become U+FFFD and surrogate pairs their character. Lenient parsing also repairs
    cosmetic fields and list-of-parts content (:mod:`openai_chatapi._lenient`).
    """
    surrogates = _SURROGATE_ESCAPE.search(raw if isinstance(raw, bytes) else raw.encode())
    if strict and not surrogates:
        return None
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if surrogates:
        document = repaired_strings(document)
    return validate_repaired(cls, document, strict=strict)


def validate_repaired(cls: type[M], document: Any, *, strict: bool) -> M | None:
    """``document`` (decoded JSON, changed in place) validated as ``cls``; leniently after
    converting what lenient parsing may convert. None when it still does not validate."""
    from ._lenient import coerce_fields, flatten_content

    # Replies only: a model's id or a list's data is what the caller asked for, not cosmetic.
    repairs = not strict and cls in (gen.ChatCompletion, gen.ChatCompletionChunk)
    if repairs:
        flatten_content(document)
    for _ in range(4):  # each pass converts what the errors of the one before named
        try:
            if strict:
                _STRICT_TWINS[cls].model_validate(document, strict=True)
            return cls.model_validate(document)
        except ValidationError as exc:
            if not repairs or not coerce_fields(document, exc.errors(include_url=False)):
                return None
    return None


def _utf8_repaired(raw: bytes | str) -> str | None:
    """``raw`` with invalid UTF-8 replaced by U+FFFD (as the SSE decoder does for streamed
    replies), or None when it is valid UTF-8 already."""
    if isinstance(raw, str) or raw.isascii():
        return None
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace")
    return None


def parse_completion(
    raw: bytes, *, strict: bool, scrub: tuple[str, ...] = ()
) -> gen.ChatCompletion:
    """A chat completion from a response body; an empty ``choices`` is an error."""
    completion = parse_model(
        gen.ChatCompletion, raw, strict=strict, what="chat completion", scrub=scrub
    )
    if not completion.choices:
        raise _body_error(
            "invalid chat completion: the response has no choices",
            {"field": "choices", "body": body_excerpt(raw)},
        )
    for choice in completion.choices:
        message = choice.message
        # Groq, OpenRouter and Ollama call it ``reasoning``: offered under the one name a
        # streamed reply's message has too (the server's own field is kept).
        if message is not None and message.reasoning and not message.reasoning_content:
            message.reasoning_content = message.reasoning
    return completion


def parse_model_list(raw: bytes, *, strict: bool) -> ModelList:
    """The model list, iterable as its models."""
    from ._model_list import ModelList

    _STRICT_TWINS.setdefault(ModelList, gen.StrictModelList)
    listing = parse_model(ModelList, raw, strict=strict, what="model list")
    if "data" not in listing.model_fields_set:  # {} or another endpoint's answer
        keys = sorted(listing.model_dump(exclude_unset=True))
        got = f"an object with {', '.join(keys[:8])}" if keys else "an empty object"
        raise _body_error(
            f"invalid model list: the response has no 'data' list (it is {got})",
            {"field": "data", "body": body_excerpt(raw)},
        )
    return listing
