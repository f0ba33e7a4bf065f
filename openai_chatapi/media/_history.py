"""Media of earlier turns: what a later request sends when an attached file is gone or changed.

History keeps references to local files. When a later turn is sent, an earlier turn's file may
have been deleted (a temporary upload) or rewritten. That must never make the later turn fail:
such a part is replaced, in that request only, by a short text note naming the file, and a
warning is logged once per file. A file counts as changed when its size or modification time
(``st_mtime_ns``, recorded when it was attached) differs.

``RuntimeConfig(keep_media_bytes=True)`` keeps the bytes of attached local files in memory
(and in saved histories), so the model keeps seeing them whatever happens to the files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from .._conversation import Log
from .._errors import MediaProcessingError
from .._messages import ChatMessage, ContentPart, RefusalPart, TextPart
from ._input import MediaPart
from ._prepare import prepare_media
from ._settings import MediaSettings

__all__ = ["attach_media", "without_stale_media"]

logger = logging.getLogger("openai_chatapi")


def attach_media(
    images: Any,
    videos: Any,
    settings: MediaSettings,
    *,
    base_url: str,
    keep_bytes: bool,
    audio_paths: Any = None,
    file_paths: Any = None,
) -> list[MediaPart]:
    """``prepare_media``, then each local file stamped with its size and mtime (or, with
    ``keep_bytes``, turned into its bytes). Reads files: call it off the event loop."""
    parts = prepare_media(
        images,
        videos,
        settings,
        base_url=base_url,
        audio_paths=audio_paths,
        file_paths=file_paths,
    )
    stamped: list[MediaPart] = []
    for part in parts:
        if part.origin != "path" or part.source is None:
            stamped.append(part)
            continue
        try:
            if keep_bytes:
                with open(part.source, "rb") as handle:
                    data = handle.read()
                update: dict[str, Any] = {"source": None, "data": data, "size": len(data)}
            else:
                status = os.stat(part.source)
                update = {"size": status.st_size, "mtime_ns": status.st_mtime_ns}
        except OSError as exc:
            raise MediaProcessingError(
                f"cannot read {part.source}: {exc.strerror or exc}",
                {"path": part.source, "reason": exc.strerror or str(exc)},
            ) from None
        stamped.append(part.model_copy(update=update))
    return stamped


def _stale_reason(part: Any) -> str | None:
    """Why a local file part can no longer be sent as it was attached, or None."""
    if getattr(part, "origin", None) != "path" or part.source is None:
        return None
    try:
        status = os.stat(part.source)
    except OSError:
        return "is no longer available"
    if (part.size is not None and status.st_size != part.size) or (
        part.mtime_ns is not None and status.st_mtime_ns != part.mtime_ns
    ):
        return "was changed after it was attached"
    return None


def without_stale_media(
    messages: Sequence[ChatMessage], warned: set[str], log: Log = logger
) -> list[ChatMessage]:
    """``messages`` with each gone or changed local file replaced by a text note.

    ``warned`` holds the files already warned about (one warning per file and agent), whose
    own logger ``log`` says so.
    """
    out: list[ChatMessage] = []
    for message in messages:
        if not message.has_media or not isinstance(message.content, list):
            out.append(message)
            continue
        parts: list[ContentPart] = []
        changed = False
        for part in message.content:
            if isinstance(part, (TextPart, RefusalPart)):
                parts.append(part)
                continue
            reason = _stale_reason(part)
            if reason is None or part.source is None:
                parts.append(part)
                continue
            name = os.path.basename(part.source)
            parts.append(TextPart(text=f"[{part.type} {name} {reason}; not sent]"))
            changed = True
            if part.source not in warned:
                warned.add(part.source)
                log.warning(
                    "%s %s of an earlier turn %s: a text note is sent in its place "
                    "(RuntimeConfig(keep_media_bytes=True) keeps attached media)",
                    part.type,
                    part.source,
                    reason,
                )
        out.append(message.model_copy(update={"content": parts}) if changed else message)
    return out
