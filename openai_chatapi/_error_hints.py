"""Hints added to HTTP errors whose usual cause is a mistake on the caller's side.

``endpoint_hint``: a 404 when ``api_base_url`` already ends with an endpoint's path
(``.../v1/chat/completions``): the SDK appends the endpoint itself, so the base URL must end at
the API root (``.../v1``).

``is_request_validation_error`` / ``content_hint``: llama-cpp-python's server validates a
request with pydantic and answers one its schema rejects with **HTTP 500** (not 400), the body
``{"error": {"message": "N validation error(s):\n  {'type': ..., 'loc': ('body', ...), ...}"}}``.
That answer is deterministic, so it is not retried like other 500s. When the request carried
audio, file or image parts and the rejected fields are message content, the likely cause is
that the server does not accept that kind of content, and the message says so (the server's
full answer stays in ``details["body"]``). Only this exact shape is recognised.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ._errors import APIResponseError, APIStatusError
from ._redact import redact_text

__all__ = ["content_hint", "endpoint_hint", "is_request_validation_error"]

# "HTTP 500: 15 validation errors:\n  {'type': 'literal_error', 'loc': ('body', 'messages', ..."
_VALIDATION = re.compile(r"^HTTP (?:400|422|500): (\d+) validation errors?:")
_BODY_LOC = "'loc': ('body',"
# Content part types in the compact JSON of a request (a quote inside a string is escaped, so
# these bytes appear only as real keys).
_PART_MARKERS = (
    (b'"type":"input_audio"', "audio"),
    (b'"type":"file"', "file"),
    (b'"type":"image_url"', "image"),
)

# Endpoint paths a base URL is sometimes copied with (longest first).
_ENDPOINTS = ("/chat/completions", "/completions", "/responses", "/models")


def _retyped(error: APIResponseError, message: str, scrub: tuple[str, ...]) -> APIResponseError:
    """``error`` with ``message`` (same class and details; cause and context kept)."""
    new = type(error)(redact_text(message, scrub), error.details)
    new.__cause__, new.__context__ = error.__cause__, error.__context__
    return new


def endpoint_hint(
    error: APIResponseError, base_url: str, scrub: tuple[str, ...] = ()
) -> APIResponseError:
    """A 404 names a base URL that ends with an endpoint path; other errors pass unchanged."""
    if not isinstance(error, APIStatusError) or error.status_code != 404:
        return error
    path = urlsplit(base_url).path.rstrip("/")
    suffix = next((e for e in _ENDPOINTS if path.endswith(e)), None)
    if suffix is None:
        return error
    root = path[: -len(suffix)] or "/"
    hint = (
        f" (api_base_url ends with {suffix}: it should end at the API root, e.g. {root}; "
        f"the endpoint path is added to it)"
    )
    return _retyped(error, error.message + hint, scrub)


def is_request_validation_error(error: BaseException) -> bool:
    """Whether ``error`` is a server's pydantic request-validation answer (never retried)."""
    if not isinstance(error, APIStatusError) or _VALIDATION.match(error.message) is None:
        return False
    body = error.details.get("body")
    return _BODY_LOC in error.message or (isinstance(body, str) and _BODY_LOC in body)


def _part_kinds(body: object) -> list[str]:
    if isinstance(body, bytes):
        return [kind for marker, kind in _PART_MARKERS if marker in body]
    body = getattr(body, "stream", body)  # request.MediaBody wraps a body.RequestBody
    contains = getattr(body, "contains", None)
    if not callable(contains):
        return []
    return [kind for marker, kind in _PART_MARKERS if contains(marker)]


def content_hint(
    error: APIResponseError, body: object, scrub: tuple[str, ...] = ()
) -> APIResponseError:
    """A validation error about the content of a request with media parts says what the
    server probably does not accept; any other error passes unchanged."""
    if not is_request_validation_error(error):
        return error
    text = str(error.details.get("body") or error.message)
    if "'content'" not in text:
        return error
    kinds = _part_kinds(body)
    if not kinds:
        return error
    match = _VALIDATION.match(error.message)
    assert match is not None and isinstance(error, APIStatusError)
    count = int(match.group(1))
    what = " / ".join(kinds)
    message = (
        f"HTTP {error.status_code}: the server probably does not accept {what} content parts "
        f"(it rejected the message content: {count} validation error{'s' * (count != 1)}; "
        f"details['body'] has its full answer)"
    )
    return _retyped(error, message, scrub)
