"""Docstring parsing: the summary and the parameter descriptions (Google, NumPy, reST)."""

from __future__ import annotations

import dataclasses
import inspect
import re

__all__ = ["Docstring", "parse_docstring"]

_GOOGLE_PARAM_SECTIONS = frozenset(
    {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments", "kwargs"}
)
_GOOGLE_SECTIONS = _GOOGLE_PARAM_SECTIONS | {
    "attributes",
    "example",
    "examples",
    "methods",
    "note",
    "notes",
    "other parameters",
    "raises",
    "references",
    "return",
    "returns",
    "see also",
    "todo",
    "warning",
    "warnings",
    "yield",
    "yields",
}
_NUMPY_PARAM_SECTIONS = frozenset({"parameters", "other parameters", "keyword arguments"})
_REST_PARAM_FIELDS = frozenset({"param", "parameter", "arg", "argument", "key", "keyword"})
_REST_FIELDS = _REST_PARAM_FIELDS | {"type", "returns", "return", "rtype", "raises", "raise"}

_GOOGLE_HEADER = re.compile(r"^([A-Za-z][A-Za-z ]*):$")
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\(.*?\))?\s*:\s*(.*)$")
_NUMPY_RULE = re.compile(r"^\s*-{3,}\s*$")
_NUMPY_ENTRY = re.compile(r"^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::.*)?$")
_REST_FIELD = re.compile(r"^:(\w+)((?:\s+[^:]+)?):\s*(.*)$")


@dataclasses.dataclass(frozen=True)
class Docstring:
    """A parsed docstring: the text before any section, and per-parameter descriptions."""

    description: str
    params: dict[str, str]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """Index of the first non-blank line from ``start`` indented at most ``indent``."""
    for i in range(start, len(lines)):
        if lines[i].strip() and _indent(lines[i]) <= indent:
            return i
    return len(lines)


def _section_params(lines: list[str], entry: re.Pattern[str]) -> dict[str, str]:
    """Parameter descriptions of an indented Google or NumPy section.

    An entry starts at the section's base indent with a line ``entry`` matches: group 1 names
    one or more parameters (comma-separated), an optional group 2 begins the description
    (Google style); the entry's further lines continue it, joined with single spaces.
    """
    body = [line for line in lines if line.strip()]
    if not body:
        return {}
    base = min(_indent(line) for line in body)
    found: list[tuple[re.Match[str], list[str]]] = []
    for line in body:
        text = line.strip()
        match = entry.match(text) if _indent(line) == base else None
        if match is not None:
            found.append((match, []))
        elif found:
            found[-1][1].append(text)
    params: dict[str, str] = {}
    for match, rest in found:
        first = match.group(2) if entry.groups > 1 else ""
        text = " ".join([first, *rest]).strip()
        for name in match.group(1).split(","):
            params[name.strip().lstrip("*")] = text
    return params


def parse_docstring(doc: str | None) -> Docstring:
    """Parse a Google, NumPy or reST style docstring.

    ``description`` is everything before the first section (``Args:``, ``Parameters`` with a
    dashed underline, ``:param x:``, ``Returns:``, ...); ``params`` maps parameter names to their
    descriptions, continuation lines joined with single spaces.
    """
    if not doc:
        return Docstring("", {})
    lines = inspect.cleandoc(doc).splitlines()
    params: dict[str, str] = {}
    description_end = len(lines)
    i = 0
    while i < len(lines):
        line = lines[i]
        text = line.strip()
        indent = _indent(line)
        following = lines[i + 1] if i + 1 < len(lines) else ""
        google = _GOOGLE_HEADER.match(text)
        rest_field = _REST_FIELD.match(text) if text.startswith(":") else None
        if text and _NUMPY_RULE.match(following) and not _NUMPY_RULE.match(line):
            end = i + 2
            while end < len(lines) and not (
                end + 1 < len(lines) and lines[end].strip() and _NUMPY_RULE.match(lines[end + 1])
            ):
                end += 1
            if text.lower() in _NUMPY_PARAM_SECTIONS:
                params.update(_section_params(lines[i + 2 : end], _NUMPY_ENTRY))
        elif google and google.group(1).strip().lower() in _GOOGLE_SECTIONS:
            end = _block_end(lines, i + 1, indent)
            if google.group(1).strip().lower() in _GOOGLE_PARAM_SECTIONS:
                params.update(_section_params(lines[i + 1 : end], _GOOGLE_ENTRY))
        elif rest_field and rest_field.group(1).lower() in _REST_FIELDS:
            end = _block_end(lines, i + 1, indent)
            words = rest_field.group(2).split()
            if rest_field.group(1).lower() in _REST_PARAM_FIELDS and words:
                continuation = [extra.strip() for extra in lines[i + 1 : end] if extra.strip()]
                params[words[-1].lstrip("*")] = " ".join(
                    [rest_field.group(3), *continuation]
                ).strip()
        else:
            i += 1
            continue
        description_end = min(description_end, i)
        i = end
    description = "\n".join(lines[:description_end]).strip()
    return Docstring(description, params)
