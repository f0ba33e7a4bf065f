"""Hints added to HTTP errors whose usual cause is a mistake on the caller's side.

``endpoint_hint``: a 404 when ``api_base_url`` already ends with an endpoint's path
(``.../v1/chat/completions``): the SDK appends the endpoint itself, so the base URL must end at
the API root (``.../v1``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .errors import APIResponseError, APIStatusError
from .redact import redact_text

__all__ = ["endpoint_hint"]

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
