"""What some servers put before a structured answer's JSON: a UTF-8 BOM, a think block.

Reasoning models served without a reasoning parser (llama.cpp without ``--reasoning-format``,
plain Ollama templates, some vLLM setups) answer ``<think>...</think>`` and then the JSON;
some servers start the text with a byte order mark. Both are split off before parsing.
"""

from __future__ import annotations

__all__ = ["preamble_end", "split_preamble"]

_BOM = "\ufeff"
_OPENERS = ("<think>", "<thinking>")
_CLOSERS = {"<think>": "</think>", "<thinking>": "</thinking>"}


def _blank_end(text: str, start: int) -> int:
    """Index of the first character at or after ``start`` that is neither blank nor a BOM."""
    while start < len(text) and (text[start].isspace() or text[start] == _BOM):
        start += 1
    return start


def preamble_end(text: str) -> int | None:
    """Where the answer proper starts in ``text`` (after BOMs, blanks and a leading think
    block); None while the text so far may still be part of that preamble."""
    start = _blank_end(text, 0)
    rest = text[start:]
    for opener in _OPENERS:
        if rest.startswith(opener):
            close = text.find(_CLOSERS[opener], start + len(opener))
            if close < 0:
                return None
            return _blank_end(text, close + len(_CLOSERS[opener]))
        if len(rest) < len(opener) and opener.startswith(rest) and rest:
            return None  # "<thi" so far: maybe a think block
    return start


def split_preamble(text: str) -> tuple[str | None, str]:
    """``(think text or None, the answer)``: a leading BOM and think block split off.

    A think block that never closes is left in the answer (it is not an answer then).
    """
    start = _blank_end(text, 0)
    rest = text[start:]
    for opener in _OPENERS:
        if rest.startswith(opener):
            closer = _CLOSERS[opener]
            close = rest.find(closer, len(opener))
            if close < 0:
                break
            think = rest[len(opener) : close].strip()
            return think, rest[close + len(closer) :].lstrip()
    return None, rest
