"""Keeping secrets and bulky media out of logs, reprs and error messages."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["REDACTED", "elide_base64", "redact_headers", "redact_text", "scrub_exception"]

REDACTED = "[REDACTED]"
_MIN_CUT = 6  # shorter pieces of a secret left by a cut reveal nothing worth hiding
_SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "proxy-authorization"})
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,([A-Za-z0-9+/=]*)")
_LONG_BASE64 = re.compile(r"[A-Za-z0-9+/]{512,}={0,2}")


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced by ``[REDACTED]``.

    A secret that an earlier cut split (its start ends ``text``, or its end starts it) is
    replaced too: error bodies and previews are cut at fixed lengths before they get here.
    """
    for secret in secrets:
        if not secret:
            continue
        if secret in text:
            text = text.replace(secret, REDACTED)
        if len(secret) > _MIN_CUT:
            text = _redact_cut(text, secret)
    return text


def _redact_cut(text: str, secret: str) -> str:
    if secret[:_MIN_CUT] in text[-len(secret) :]:
        for size in range(len(secret) - 1, _MIN_CUT - 1, -1):
            if text.endswith(secret[:size]):
                text = text[:-size] + REDACTED
                break
    if secret[-_MIN_CUT:] in text[: len(secret)]:
        for size in range(len(secret) - 1, _MIN_CUT - 1, -1):
            if text.startswith(secret[-size:]):
                text = REDACTED + text[size:]
                break
    return text


def redact_headers(headers: Mapping[str, str], secrets: Iterable[str] = ()) -> dict[str, str]:
    """A copy of ``headers`` safe to log: credentials replaced, secrets scrubbed."""
    secrets = tuple(secrets)
    safe: dict[str, str] = {}
    for key, value in headers.items():
        if key.lower() in _SECRET_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            safe[key] = f"{scheme} {REDACTED}".strip()
        else:
            safe[key] = redact_text(value, secrets)
    return safe


def _describe(match: re.Match[str]) -> str:
    payload = match.group(2)
    size = len(payload) * 3 // 4 - payload.count("=")
    return f"data:{match.group(1)};base64,<{size} bytes elided>"


def elide_base64(text: str) -> str:
    """Replace base64 payloads (data URLs and long runs) by their type and decoded size."""
    text = _DATA_URL.sub(_describe, text)
    return _LONG_BASE64.sub(lambda m: f"<base64, {len(m.group(0)) * 3 // 4} bytes elided>", text)


def _scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, dict):
        return {key: _scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, secrets) for item in value]
    if isinstance(value, tuple):
        return tuple(_scrub(item, secrets) for item in value)
    return value


def scrub_exception(exc: BaseException, secrets: Iterable[str]) -> None:
    """Remove every secret from an exception's args, ``message`` and ``details``, in place.

    The last line of defence: servers and libraries may echo a key in any error text.
    """
    found = tuple(secret for secret in secrets if secret)
    if not found:
        return
    exc.args = _scrub(exc.args, found)
    for name in ("message", "details"):
        if hasattr(exc, name):
            setattr(exc, name, _scrub(getattr(exc, name), found))
