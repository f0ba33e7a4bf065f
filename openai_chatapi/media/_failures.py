"""How media problems are reported: one ``MediaProcessingError`` shape for every step.

Each error names the item (a path, or a short label for bytes and ``data:`` URLs) and
carries ``details["path"]`` and ``details["reason"]``. A missing optional dependency
(Pillow for the ``image`` extra, PyAV for ``video``) names the extra to install.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from .._errors import MediaProcessingError
from .._parts import AudioPart, FilePart, ImagePart, VideoPart

__all__ = ["extra_hint", "import_extra", "os_error_reason", "part_error"]

MediaPart = ImagePart | VideoPart | AudioPart | FilePart


def extra_hint(extra: str) -> str:
    """The command that installs an optional extra."""
    return f"pip install 'openai_chatapi[{extra}]'"


def import_extra(module: str, extra: str, needed_for: str) -> ModuleType:
    """Import an optional dependency (``PIL.Image``, ``av``), or raise naming its extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MediaProcessingError(
            f"{needed_for} requires the '{extra}' extra: {extra_hint(extra)}",
            {"reason": "missing dependency", "extra": extra, "module": module.split(".")[0]},
        ) from exc


def os_error_reason(exc: OSError) -> str:
    """A short reason for an ``OSError`` met while opening or reading a media file."""
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied (unreadable)"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    return exc.strerror or str(exc) or type(exc).__name__


def part_error(part: MediaPart) -> Callable[[str], MediaProcessingError]:
    """A function making the error for ``part`` from a reason."""
    kind = part.type
    path = part.source if part.origin == "path" else None

    def fail(reason: str) -> MediaProcessingError:
        return MediaProcessingError(
            f"{kind} {part.label}: {reason}", {"path": path, "reason": reason, "kind": kind}
        )

    return fail
