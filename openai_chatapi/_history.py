"""Saving and loading a conversation as JSON (roles, text, tool calls and results, media refs)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from ._errors import ConfigurationError
from ._messages import ChatMessage

__all__ = ["HISTORY_FORMAT", "dump_history", "load_history", "save_history"]

# The id every saved conversation carries: a file format, not a module path (never renamed).
HISTORY_FORMAT = "openai_chatapi.history"
_VERSION = 1
_MESSAGES = TypeAdapter(list[ChatMessage])


def dump_history(messages: Sequence[ChatMessage]) -> dict[str, Any]:
    """The conversation as a JSON-ready document."""
    return {
        "format": HISTORY_FORMAT,
        "version": _VERSION,
        "messages": [m.model_dump(mode="json", exclude_none=True) for m in messages],
    }


def _checked_path(path: object) -> str | os.PathLike[str]:
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ConfigurationError(
            "a conversation file path must be a non-empty str or os.PathLike",
            {"field": "path", "value": type(path).__name__},
        )
    return path


def save_history(messages: Sequence[ChatMessage], path: str | os.PathLike[str]) -> Path:
    """Write the conversation to ``path`` atomically (a crash never leaves half a file).

    The file's directory must exist (it is not created). Every failure raises
    ``ConfigurationError`` saying what failed, and leaves no temporary file behind.
    """
    target = Path(_checked_path(path))
    try:
        data = json.dumps(dump_history(messages), ensure_ascii=False, indent=2).encode("utf-8")
    except (UnicodeEncodeError, PydanticSerializationError):
        raise ConfigurationError(
            f"cannot save the conversation to {target}: it holds text that cannot be "
            "encoded as UTF-8 (a UTF-16 surrogate)",
            {"path": str(target), "reason": "unencodable text"},
        ) from None
    if target.is_dir():
        raise ConfigurationError(
            f"cannot save the conversation to {target}: it is a directory",
            {"path": str(target), "reason": "is a directory"},
        )
    folder = target.parent
    if not folder.is_dir():  # never created: a typo in the path must not make folders
        what = "is not a directory" if folder.exists() else "does not exist"
        raise ConfigurationError(
            f"cannot save the conversation to {target}: the directory {folder} {what}",
            {"path": str(target), "reason": f"directory {what}", "directory": str(folder)},
        )
    tmp: str | None = None
    step = f"cannot create a file in {folder}"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
        step = f"cannot write a file in {folder}"
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        step = f"cannot replace {target}"
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise ConfigurationError(
            f"cannot save the conversation to {target}: {step}: {exc.strerror or exc}",
            {"path": str(target), "reason": str(exc)},
        ) from None
    finally:
        if tmp is not None:  # any failure after the temporary file was made
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return target


def _bad(path: Path, reason: str) -> ConfigurationError:
    return ConfigurationError(
        f"cannot load a conversation from {path}: {reason}", {"path": str(path), "reason": reason}
    )


def load_history(path: str | os.PathLike[str]) -> list[ChatMessage]:
    """Read a conversation saved by ``save_history``; a corrupt or foreign file raises."""
    source = Path(_checked_path(path))
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise _bad(source, exc.strerror or str(exc)) from None
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # Recursion: too deep
        raise _bad(source, f"not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != HISTORY_FORMAT:
        raise _bad(source, f"not an {HISTORY_FORMAT} file")
    if document.get("version") != _VERSION:
        raise _bad(source, f"unsupported version {document.get('version')!r}")
    try:
        return _MESSAGES.validate_python(document.get("messages"))
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        loc = first["loc"]
        where = "messages" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
        raise _bad(source, f"invalid message at {where}: {first['msg']}") from None
