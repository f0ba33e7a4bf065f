"""References to media inside messages: ``ImagePart`` and ``VideoPart``.

These small models are what the conversation history keeps (a path, a URL, a ``data:`` URL
or raw bytes, plus the detected type); :mod:`openai_chatapi.media` creates and encodes them.
Kept apart from the media machinery so that importing the package stays cheap.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, model_validator

__all__ = ["URL_SCHEME", "ImageDetail", "ImagePart", "VideoPart"]

ImageDetail: TypeAlias = Literal["auto", "low", "high"]
URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_URL_SCHEME = URL_SCHEME


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
    mtime_ns: int | None = None
    """A local file's modification time when it was attached (to notice later changes)."""

    @model_validator(mode="after")
    def _one_origin(self) -> _MediaPartBase:
        if (self.source is None) == (self.data is None):
            raise ValueError("exactly one of source and data must be set")
        return self

    @property
    def origin(self) -> Literal["path", "url", "data_url", "bytes"]:
        """Where the medium lives: a local path, a remote URL, a data URL, or raw bytes."""
        if self.data is not None:
            return "bytes"
        assert self.source is not None
        if self.source[:5].lower() == "data:":
            return "data_url"
        if _URL_SCHEME.match(self.source):
            return "url"
        return "path"

    @property
    def label(self) -> str:
        """A short human name for messages and logs (never the base64 itself)."""
        if self.origin == "bytes":
            return f"<{self.size} bytes of {self.mime}>"
        if self.origin == "data_url":
            return f"<data URL, {self.size} bytes of {self.mime}>"
        assert self.source is not None
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
