"""References to media inside messages: ``ImagePart``, ``VideoPart``, ``AudioPart``, ``FilePart``.

These small models are what the conversation history keeps (a path, a URL, a ``data:`` URL
or raw bytes, plus the detected type); :mod:`openai_chatapi.media` creates and encodes them.
:func:`part_from_wire` reads a content part given in the official wire form (``image_url``,
``video_url``, ``input_audio``, ``file``) into the same references, keeping its URL or
inline data exactly as given. Kept apart from the media machinery so that importing the
package stays cheap.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, model_validator

__all__ = [
    "URL_SCHEME",
    "WIRE_PART_TYPES",
    "AudioFormat",
    "AudioPart",
    "FilePart",
    "ImageDetail",
    "ImagePart",
    "VideoPart",
    "part_from_wire",
]

ImageDetail: TypeAlias = Literal["auto", "low", "high"]
"""``image_url.detail``: how closely the model looks at an image."""
AudioFormat: TypeAlias = Literal["wav", "mp3"]
URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _bytes_from_json(value: Any) -> Any:
    # Saved conversations carry raw bytes as base64 text.
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError("data must be base64 text") from exc
    return value


_Base64Bytes = Annotated[
    bytes,
    BeforeValidator(_bytes_from_json),
    PlainSerializer(
        lambda b: base64.b64encode(b).decode("ascii"), return_type=str, when_used="json"
    ),
]


class _MediaPartBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str | None = None
    """A local path (absolute), an ``http(s)`` URL, or a ``data:`` URL."""
    data: _Base64Bytes | None = None
    """Raw bytes given by the user (base64 in JSON)."""
    mime: str
    """The detected media type, e.g. ``image/png``, ``video/mp4``."""
    size: int | None = None
    """Size in bytes (decoded size for ``data:`` URLs); None for remote URLs."""
    prompt_cache_breakpoint: dict[str, Any] | None = None
    """Sent as the wire part's ``prompt_cache_breakpoint`` (e.g. ``{"mode": "explicit"}``)."""
    mtime_ns: int | None = None
    """A local file's modification time when it was attached (to notice later changes)."""

    @model_validator(mode="after")
    def _one_origin(self) -> _MediaPartBase:
        if (self.source is None) == (self.data is None):
            raise ValueError("exactly one of source and data must be set")
        return self

    @property
    def origin(self) -> Literal["path", "url", "data_url", "bytes", "file_id"]:
        """Where the medium lives: a local path, a remote URL, a data URL, raw bytes (or,
        for ``FilePart`` only, an uploaded file's id)."""
        if self.data is not None:
            return "bytes"
        if self.source is None:
            return "file_id"
        if self.source[:5].lower() == "data:":
            return "data_url"
        if URL_SCHEME.match(self.source):
            return "url"
        return "path"

    @property
    def label(self) -> str:
        """A short human name for messages and logs (never the base64 itself)."""
        if self.origin == "bytes":
            return f"<{self.size} bytes of {self.mime}>"
        if self.origin == "data_url":
            return f"<data URL, {self.size} bytes of {self.mime}>"
        if self.source is None:
            return f"<uploaded file {getattr(self, 'file_id', None)}>"
        return self.source

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name == "data" and value is not None:
                yield name, f"<{len(value)} bytes>"
            elif name == "source" and self.origin == "data_url":
                yield name, self.label
            else:
                yield name, value


class ImagePart(_MediaPartBase):
    """A reference to an image in a message (path, URL, data URL or raw bytes)."""

    type: Literal["image"] = "image"
    detail: ImageDetail | None = None
    """Sent as ``image_url.detail``; None defers to ``MediaSettings.image_detail``."""


class VideoPart(_MediaPartBase):
    """A reference to a video in a message (path, URL, data URL or raw bytes)."""

    type: Literal["video"] = "video"


class AudioPart(_MediaPartBase):
    """A reference to a WAV or MP3 clip (path, ``data:`` URL or raw bytes), sent as
    ``input_audio`` with its base64 and ``format``."""

    type: Literal["audio"] = "audio"
    format: AudioFormat
    """``wav`` or ``mp3``, detected from the bytes."""


class FilePart(_MediaPartBase):
    """A reference to a document (a PDF: path, ``data:`` URL or raw bytes, or an uploaded
    file's ``file_id``), sent as a ``file`` part."""

    type: Literal["file"] = "file"
    mime: str = "application/octet-stream"
    filename: str | None = None
    """The name sent beside the data (a path's base name by default)."""
    file_id: str | None = None
    """Id of a file uploaded to the server beforehand (then no source or data)."""

    @model_validator(mode="after")
    def _one_origin(self) -> FilePart:
        given = sum(x is not None for x in (self.source, self.data, self.file_id))
        if given != 1:
            raise ValueError("exactly one of source, data and file_id must be set")
        return self


# --------------------------------------------------------------------------- wire form

#: Content-part ``type`` values of the wire format that carry media.
WIRE_PART_TYPES = frozenset({"image_url", "video_url", "input_audio", "file"})

_DATA_URL_HEAD = re.compile(r"^data:([A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+)((?:;[^;,]*)*);base64,", re.I)
_AUDIO_MIME = {"wav": "audio/wav", "mp3": "audio/mpeg"}


def _decoded_size(text: str, start: int) -> int:
    length = len(text) - start
    padding = len(text) - len(text.rstrip("="))
    return max(length // 4 * 3 - min(padding, 2), 0)


def _url_source(url: Any, kind: str) -> tuple[str, str, int | None]:
    """(source, mime, size) of a wire ``url``: kept exactly as given."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"{kind}.url must be a non-empty string")
    match = _DATA_URL_HEAD.match(url)
    if match is not None:
        return url, match.group(1).lower(), _decoded_size(url, match.end())
    if url[:5].lower() == "data:":
        raise ValueError(f"{kind}.url: malformed data URL (expected data:<type>;base64,<data>)")
    if URL_SCHEME.match(url) is None:
        # A wire part names a URL; a bare path would make the client read a local file.
        raise ValueError(f"{kind}.url must be a URL (scheme://...) or a data: URL, not {url!r}")
    import mimetypes
    import urllib.parse

    guessed, _ = mimetypes.guess_type(urllib.parse.urlsplit(url).path)
    prefix = kind.split("_")[0] + "/"
    return (
        url,
        guessed if guessed and guessed.startswith(prefix) else "application/octet-stream",
        None,
    )


def _inner(part: dict[str, Any], key: str) -> dict[str, Any]:
    inner = part.get(key)
    if not isinstance(inner, dict):
        raise ValueError(f"a {part.get('type')} part needs a {key!r} object")
    return inner


def part_from_wire(part: dict[str, Any]) -> ImagePart | VideoPart | AudioPart | FilePart:
    """The media reference for one wire content part (``image_url``, ``video_url``,
    ``input_audio`` or ``file``); its URL, data URL or base64 is kept exactly as given, and
    so is its ``prompt_cache_breakpoint``.

    Raises ``ValueError`` naming the problem (pydantic reports it as a validation error).
    """
    reference = _reference(part)
    breakpoint_ = part.get("prompt_cache_breakpoint")
    if breakpoint_ is not None:
        if not isinstance(breakpoint_, dict):
            raise ValueError("prompt_cache_breakpoint must be an object")
        return reference.model_copy(update={"prompt_cache_breakpoint": dict(breakpoint_)})
    return reference


def _reference(part: dict[str, Any]) -> ImagePart | VideoPart | AudioPart | FilePart:
    kind = part.get("type")
    if kind == "image_url":
        inner = _inner(part, "image_url")
        source, mime, size = _url_source(inner.get("url"), "image_url")
        return ImagePart(source=source, mime=mime, size=size, detail=inner.get("detail"))
    if kind == "video_url":
        source, mime, size = _url_source(_inner(part, "video_url").get("url"), "video_url")
        return VideoPart(source=source, mime=mime, size=size)
    if kind == "input_audio":
        inner = _inner(part, "input_audio")
        data, fmt = inner.get("data"), inner.get("format")
        if fmt not in _AUDIO_MIME:
            raise ValueError(f"input_audio.format must be 'wav' or 'mp3', not {fmt!r}")
        if not isinstance(data, str) or not data:
            raise ValueError("input_audio.data must be non-empty base64 text")
        mime = _AUDIO_MIME[fmt]
        # Kept as a data URL around the exact text given, so sending reproduces it.
        prefix = f"data:{mime};base64,"
        source = prefix + data
        return AudioPart(
            source=source, mime=mime, size=_decoded_size(source, len(prefix)), format=fmt
        )
    if kind == "file":
        inner = _inner(part, "file")
        file_data, file_id, filename = (
            inner.get("file_data"),
            inner.get("file_id"),
            inner.get("filename"),
        )
        if filename is not None and not isinstance(filename, str):
            raise ValueError("file.filename must be a string")
        if file_data is not None and file_id is not None:
            raise ValueError("a file part takes file_data or file_id, not both")
        if isinstance(file_id, str) and file_id:
            return FilePart(file_id=file_id, filename=filename)
        if not isinstance(file_data, str) or not file_data:
            raise ValueError("a file part needs file_data (a data: URL) or file_id")
        match = _DATA_URL_HEAD.match(file_data)
        if match is not None:
            size = _decoded_size(file_data, match.end())
            return FilePart(
                source=file_data, mime=match.group(1).lower(), size=size, filename=filename
            )
        # Bare base64 (no data: prefix): decoded, and sent back as a data URL.
        try:
            raw = base64.b64decode(file_data, validate=True)
        except binascii.Error:
            raise ValueError("file.file_data must be a data: URL or base64 text") from None
        mime = "application/pdf" if raw.startswith(b"%PDF-") else "application/octet-stream"
        return FilePart(data=raw, mime=mime, size=len(raw), filename=filename)
    raise ValueError(f"not a media part type: {kind!r}")
