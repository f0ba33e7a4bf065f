"""Text that can always be encoded: UTF-16 surrogates joined or replaced.

JSON may carry ``\\ud83d`` escapes, and proxies written in JavaScript cut text at UTF-16
positions, so a streamed emoji can arrive as a high surrogate at the end of one delta and
its low surrogate at the start of the next. A Python ``str`` holding a lone surrogate cannot
be encoded as UTF-8: it would break the next request, ``save_history`` and stdout.
"""

from __future__ import annotations

import re
from typing import Any

from ._errors import ConfigurationError

__all__ = [
    "check_encodable",
    "first_surrogate",
    "flush",
    "has_surrogate",
    "join_delta",
    "repaired",
    "repaired_strings",
]

_SURROGATE = re.compile("[\ud800-\udfff]")
_REPLACEMENT = "\ufffd"


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a surrogate code point (cheap for ASCII text)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")  # faster than a regex search; only surrogates fail
    except UnicodeEncodeError:
        return True
    return False


def first_surrogate(text: str) -> int | None:
    """The position of the first surrogate in ``text``, or None."""
    if text.isascii():
        return None
    found = _SURROGATE.search(text)
    return found.start() if found is not None else None


def repaired(text: str) -> str:
    """``text`` with surrogate pairs joined into their character and lone ones as U+FFFD."""
    if not has_surrogate(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def join_delta(carry: str, text: str) -> tuple[str, str]:
    """(text to deliver now, surrogate held back) for one streamed delta.

    A high surrogate ending a delta is held back (``carry``) until the next delta of the same
    field shows whether its low half follows.
    """
    if carry:
        text = carry + text
    if not has_surrogate(text):
        return text, ""
    last = text[-1]
    if "\ud800" <= last <= "\udbff":
        return repaired(text[:-1]), last
    return repaired(text), ""


def flush(carry: str) -> str:
    """What a held-back surrogate becomes when no low half followed."""
    return _REPLACEMENT if carry else ""


def repaired_strings(value: Any) -> Any:
    """A decoded JSON document with every string :func:`repaired` (keys included)."""
    if isinstance(value, str):
        return repaired(value)
    if isinstance(value, list):
        return [repaired_strings(item) for item in value]
    if isinstance(value, dict):
        return {repaired(k): repaired_strings(v) for k, v in value.items()}
    return value


def check_encodable(text: str, field: str) -> None:
    """Refuse text that cannot be sent (UTF-8 cannot encode a UTF-16 surrogate)."""
    position = first_surrogate(text)
    if position is not None:
        raise ConfigurationError(
            f"{field} cannot be encoded as UTF-8: it holds the UTF-16 surrogate "
            f"U+{ord(text[position]):04X} at position {position} (text decoded wrongly?)",
            {"field": field, "position": position},
        )
