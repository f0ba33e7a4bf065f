"""One user item, located and checked: what was given and whether it can be read.

:func:`classify` tells a local path, an ``http(s)`` URL, a ``data:`` URL and raw bytes
apart; :func:`read_header`, :func:`parse_data_url` and :func:`local_or_bytes` check
existence, type, size and base64, and return the first bytes for sniffing.
:func:`current_file` re-checks a local file at send time.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
import re
import stat
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from .._errors import ConfigurationError, MediaProcessingError
from .._parts import URL_SCHEME, AudioPart, FilePart, ImagePart, VideoPart
from ._failures import MediaPart, os_error_reason
from ._settings import MediaSettings
from ._sniff import AUDIO_ALIASES, FILE_MIME_TYPES, HEADER_BYTES, SNIFFED_TYPES, sniff_mime

__all__ = [
    "Item",
    "MediaInput",
    "MediaKind",
    "MediaPart",
    "as_list",
    "check_size",
    "classify",
    "current_file",
    "local_or_bytes",
    "parse_data_url",
    "read_header",
    "url_mime",
]

MediaInput: TypeAlias = str | os.PathLike[str] | bytes
MediaKind: TypeAlias = Literal["image", "video", "audio", "file"]

_DATA_URL = re.compile(r"^data:([A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+)((?:;[^;,]*)*);base64,", re.I)
_B64_ALPHABET = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


@dataclass
class Item:
    """One user item being validated: what it is and how to name it in errors."""

    kind: MediaKind
    label: str
    path: str | None = None
    data: bytes | None = None
    url: str | None = None
    data_url: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def error(self, reason: str) -> MediaProcessingError:
        return MediaProcessingError(
            f"{self.kind} {self.label}: {reason}",
            {"path": self.path, "reason": reason, "kind": self.kind, **self.details},
        )


def as_list(items: Any) -> list[Any]:
    if items is None:
        return []
    if isinstance(
        items,
        (str, bytes, bytearray, memoryview, os.PathLike, ImagePart, VideoPart, AudioPart, FilePart),
    ):
        return [items]
    if isinstance(items, Iterable) and not isinstance(items, Mapping):
        return list(items)
    raise ConfigurationError(
        f"media must be a str, a Path, bytes, or a list of them, not {type(items).__name__}",
        {"type": type(items).__name__},
    )


def classify(item: Any, kind: MediaKind, index: int) -> Item:
    if isinstance(item, (bytes, bytearray, memoryview)):
        data = bytes(item)
        return Item(kind, f"#{index + 1} (raw bytes)", data=data, details={"index": index})
    if isinstance(item, os.PathLike):
        item = os.fspath(item)
    if not isinstance(item, str):
        raise ConfigurationError(
            f"{kind} #{index + 1}: expected a str, a Path or bytes, not {type(item).__name__}",
            {"index": index, "type": type(item).__name__},
        )
    if not item.strip():
        raise Item(kind, f"#{index + 1}", details={"index": index}).error("empty path")
    if item[:5].lower() == "data:":
        return Item(kind, f"#{index + 1} (data URL)", data_url=item, details={"index": index})
    scheme = URL_SCHEME.match(item)
    if scheme is not None:
        name = scheme.group(1).lower()
        if name in ("http", "https"):
            return Item(kind, item, url=item, details={"index": index})
        if name == "file":
            parsed = urllib.parse.urlsplit(item)
            local = urllib.request.url2pathname(parsed.path)
            return Item(kind, item, path=os.path.abspath(local), details={"index": index})
        raise Item(kind, item, details={"index": index}).error(
            f"unsupported URL scheme {name!r} (use a local path, http(s) or data: URL)"
        )
    path = os.path.abspath(os.path.expanduser(item))
    return Item(kind, item, path=path, details={"index": index})


def read_header(item: Item, settings: MediaSettings) -> tuple[bytes, int]:
    """Check a local file's existence, type and size, and read its first bytes."""
    assert item.path is not None
    try:
        st = os.stat(item.path)
    except OSError as exc:
        raise item.error(os_error_reason(exc)) from exc
    if stat.S_ISDIR(st.st_mode):
        raise item.error("is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise item.error("not a regular file")
    check_size(item, st.st_size, settings)
    try:
        with open(item.path, "rb") as handle:
            header = handle.read(HEADER_BYTES)
    except OSError as exc:
        raise item.error(os_error_reason(exc)) from exc
    if not header:
        raise item.error("file is empty")
    return header, st.st_size


def check_size(item: Item, size: int, settings: MediaSettings) -> None:
    if size == 0:
        raise item.error("file is empty" if item.path else "no data (0 bytes)")
    if size > settings.max_media_bytes:
        raise item.error(
            f"{size} bytes is over the limit of {settings.max_media_bytes} bytes (max_media_bytes)"
        )


def parse_data_url(item: Item, settings: MediaSettings) -> tuple[str, int, bytes]:
    """Check a data URL's header and the start of its payload; return (mime, size, head)."""
    assert item.data_url is not None
    text = item.data_url
    match = _DATA_URL.match(text)
    if match is None:
        raise item.error("malformed data URL (expected data:<type>/<subtype>;base64,<data>)")
    mime = match.group(1).lower()
    mime = AUDIO_ALIASES.get(mime, mime) if item.kind == "audio" else mime
    if item.kind == "file":
        if mime not in FILE_MIME_TYPES:
            raise item.error(f"data URL type {mime} is not a supported document (PDF)")
    elif not mime.startswith(item.kind + "/"):
        raise item.error(f"data URL type {mime} is not an {item.kind} type")
    payload_len = len(text) - match.end()
    padding = len(text) - len(text.rstrip("="))
    head_text = text[match.end() : match.end() + HEADER_BYTES * 4 // 3 // 4 * 4]
    if payload_len == 0:
        raise item.error("data URL has no data")
    if payload_len % 4 or not _B64_ALPHABET.match(head_text if head_text else ""):
        raise item.error("data URL payload is not valid base64")
    try:
        head = base64.b64decode(head_text, validate=True)
    except binascii.Error as exc:
        raise item.error("data URL payload is not valid base64") from exc
    size = payload_len // 4 * 3 - padding
    check_size(item, size, settings)
    return mime, size, head


def url_mime(url: str, kind: str) -> str:
    guessed, _ = mimetypes.guess_type(urllib.parse.urlsplit(url).path)
    return guessed if guessed and guessed.startswith(kind + "/") else "application/octet-stream"


def local_or_bytes(entry: Item, settings: MediaSettings) -> tuple[bytes, int]:
    """The first bytes and the size of raw bytes or a local file (checked)."""
    if entry.data is not None:
        check_size(entry, len(entry.data), settings)
        return entry.data[:HEADER_BYTES], len(entry.data)
    return read_header(entry, settings)


def current_file(part: MediaPart, settings: MediaSettings) -> int:
    """Re-check a local file at send time (it may have changed since it was attached).

    Returns its current size.
    """
    assert part.source is not None
    entry = Item(part.type, part.source, path=part.source)
    header, size = read_header(entry, settings)
    mime = sniff_mime(header)
    # Formats only Pillow recognises (mime None here) are checked when Pillow opens them.
    if mime != part.mime and (mime is not None or part.mime in SNIFFED_TYPES):
        raise entry.error(
            f"changed since it was attached (was {part.mime}, now {mime or 'unknown'})"
        )
    return size
