"""Keeping secrets and bulky media out of logs, reprs and error messages."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

__all__ = [
    "REDACTED",
    "agent_secrets",
    "elide_base64",
    "known_secrets",
    "map_strings",
    "redact_headers",
    "redact_text",
    "redact_url",
    "register_secrets",
    "scrub_chain",
    "scrub_exception",
    "url_secrets",
    "with_encodings",
]

REDACTED = "[REDACTED]"
"""The one placeholder that stands in for every secret this package hides."""
_MIN_CUT = 6  # shorter pieces of a secret left by a cut reveal nothing worth hiding
_SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "proxy-authorization"})
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,([A-Za-z0-9+/=]*)")
_LONG_BASE64 = re.compile(r"[A-Za-z0-9+/]{512,}={0,2}")


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced by ``[REDACTED]``.

    A secret that an earlier cut split (its start ends ``text``, or its end starts it) is
    replaced too: error bodies and previews are cut at fixed lengths before they get here.
    Every form of every secret is looked for in the text as given, and overlapping finds
    become one placeholder: replacing one secret first must not break another's match (a
    short key inside a longer one, in whatever order the secrets come).
    """
    spans: list[tuple[int, int]] = []
    for raw in secrets:
        if raw:
            for secret in _forms(raw):
                _find(text, secret, spans)
    if not spans:
        return text
    spans.sort()
    pieces: list[str] = []
    done = 0
    start, end = spans[0]
    for next_start, next_end in spans[1:]:
        if next_start <= end:
            end = max(end, next_end)
            continue
        pieces += [text[done:start], REDACTED]
        done, start, end = end, next_start, next_end
    pieces += [text[done:start], REDACTED, text[end:]]
    return "".join(pieces)


def _find(text: str, secret: str, spans: list[tuple[int, int]]) -> None:
    """Add to ``spans`` where ``secret`` occurs in ``text`` (overlapping finds included) and
    where a cut left a piece of it at either end."""
    at = text.find(secret)
    while at != -1:
        spans.append((at, at + len(secret)))
        at = text.find(secret, at + 1)
    if len(secret) <= _MIN_CUT:
        return
    if secret[:_MIN_CUT] in text[-len(secret) :]:
        for size in range(len(secret) - 1, _MIN_CUT - 1, -1):
            if text.endswith(secret[:size]):
                spans.append((len(text) - size, len(text)))
                break
    if secret[-_MIN_CUT:] in text[: len(secret)]:
        for size in range(len(secret) - 1, _MIN_CUT - 1, -1):
            if text.startswith(secret[-size:]):
                spans.append((0, size))
                break


@lru_cache(maxsize=64)
def _forms(secret: str) -> tuple[str, ...]:
    """``secret`` as it may appear in error text: as is, and escaped the ways libraries
    escape it (a Python or bytes repr, ``\\n``-style escapes, JSON, URL encoding)."""
    forms = [
        secret,
        repr(secret)[1:-1],
        repr(secret.encode("utf-8", "surrogatepass"))[2:-1],
        secret.encode("unicode_escape").decode("ascii"),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        "".join(f"\\u{ord(c):04x}" for c in secret),  # every character JSON-escaped
        "".join(f"\\u{ord(c):04X}" for c in secret),
    ]
    for encoded in (quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)):
        forms.append(encoded)
        forms.append(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded))
    return tuple(dict.fromkeys(form for form in forms if form))


_URL_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@]*)@")
_URL_SECRET_QUERY = re.compile(
    r"([?&;](?:[^=&#;]*(?:key|token|secret|passw|sig|auth|credential)[^=&#;]*)=)([^&#;]*)",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """``url`` safe to show: credentials (``user:pass@``) and secret-looking query values
    (``?api_key=...``, ``token``, ``sig``, ...) replaced. Works on URLs that do not parse."""
    url = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", url, count=1)
    return _URL_SECRET_QUERY.sub(lambda m: m.group(1) + REDACTED, url)


def url_secrets(url: str) -> tuple[str, ...]:
    """The secrets a URL carries (its user info, secret-looking query values), as they
    appear in it and decoded, for scrubbing error text."""
    found: list[str] = []
    match = _URL_USERINFO.match(url)
    if match and match.group(2):
        userinfo = match.group(2)
        found += [userinfo, *userinfo.split(":", 1)[1:]]
    found += [m.group(2) for m in _URL_SECRET_QUERY.finditer(url) if m.group(2)]
    decoded = [unquote_plus(item) for item in found]
    return tuple(dict.fromkeys(item for item in [*found, *decoded] if len(item) >= 4))


def with_encodings(secrets: Iterable[str]) -> tuple[str, ...]:
    """``secrets`` and their base64 forms (standard and URL-safe, unpadded): a server or proxy
    that echoes an ``Authorization`` header echoes ``Basic base64(user:password)`` too."""
    found: list[str] = []
    for secret in secrets:
        found.append(secret)
        raw = secret.encode("utf-8")
        # Inside a longer encoded text ("Bearer <key>", "user:<password>") the secret starts
        # at any of three offsets into a base64 group: the characters that encode only its
        # own bytes are the same whatever surrounds it, so those are looked for.
        for offset in range(3):
            padded = b"\0" * offset + raw
            # The last, partial group depends on what follows; alone, the secret shows whole.
            ends = {len(padded) // 3 * 3, len(padded)} if offset == 0 else {len(padded) // 3 * 3}
            for end in sorted(ends, reverse=True):
                for encode in (base64.b64encode, base64.urlsafe_b64encode):
                    text = encode(padded[:end]).decode("ascii").rstrip("=")
                    core = text[4:] if offset else text
                    if len(core) >= 8:
                        found.append(core)
    return tuple(dict.fromkeys(found))


def agent_secrets(api_key: str | None, base_url: str) -> tuple[str, ...]:
    """What an agent must never show: its key, its URL's secrets, in every form they take on
    the wire; registered for the library-log filter and the errors built from server text."""
    secrets = with_encodings((*((api_key,) if api_key else ()), *url_secrets(base_url)))
    register_secrets(secrets)
    return secrets


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


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` (decoded JSON, exception args or details) with ``change`` applied to every
    string inside dicts, lists and tuples (rebuilt; other values are kept as they are)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {key: map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [map_strings(item, change) for item in value]
    if isinstance(value, tuple):
        return tuple(map_strings(item, change) for item in value)
    return value


def scrub_exception(exc: BaseException, secrets: Iterable[str]) -> None:
    """Remove every secret from an exception's args, ``message`` and ``details``, in place.

    The last line of defence: servers and libraries may echo a key in any error text. A
    context the exception suppressed (``raise ... from None``) is dropped: it may hold the
    raw body (a pydantic error quotes its input), and it was never meant to be shown.
    """
    if exc.__suppress_context__:
        exc.__context__ = None
    found = tuple(secret for secret in secrets if secret)
    if not found:
        return

    def scrub(text: str) -> str:
        return redact_text(text, found)

    exc.args = map_strings(exc.args, scrub)
    for name in ("message", "details"):
        if hasattr(exc, name):
            setattr(exc, name, map_strings(getattr(exc, name), scrub))


def scrub_chain(exc: BaseException, secrets: Iterable[str]) -> None:
    """:func:`scrub_exception` for ``exc`` and every exception it was raised from or during
    (user code's errors: a traceback prints them all)."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        item = stack.pop()
        if item is not None and id(item) not in seen:
            seen.add(id(item))
            scrub_exception(item, secrets)
            stack += [item.__cause__, item.__context__]


# httpx and httpcore log request URLs (credentials and query secrets included) on their own
# loggers; a filter on each of them scrubs what agents registered. Filters of a logger see
# only the records logged on it, so each httpcore logger gets its own.
_LIBRARY_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


class _LibraryLogFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.secrets: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self.secrets = self.secrets | {s for s in secrets if s}

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self.secrets
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's business
            return True
        clean = redact_text(message, secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_LIBRARY_FILTER = _LibraryLogFilter()
_installed = False


def register_secrets(secrets: Iterable[str]) -> None:
    """Record the secrets an agent holds (its API key, its URL's credentials).

    From then on they are scrubbed from httpx's and httpcore's own log records (a filter
    installed once) and from every error built from server text (:func:`known_secrets`).
    """
    global _installed
    wanted = tuple(s for s in secrets if s)
    if not wanted:
        return
    _LIBRARY_FILTER.add(wanted)
    if not _installed:
        _installed = True
        for name in _LIBRARY_LOGGERS:
            logging.getLogger(name).addFilter(_LIBRARY_FILTER)


def known_secrets() -> frozenset[str]:
    """Every secret registered so far (by any agent of this process)."""
    return _LIBRARY_FILTER.secrets
