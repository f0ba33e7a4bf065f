"""``MediaSettings``: the media fields of ``RuntimeConfig``, frozen for one agent's media.

``RuntimeConfig`` is the one source of these fields: their defaults are read from it and
their validation is its own (:func:`~openai_chatapi._config.check_media_fields`), so a bad
value gets the same ``ConfigurationError`` whichever of the two it is given to.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, fields
from typing import Any, Literal

from .._config import RuntimeConfig, VideoMode, check_media_fields
from .._parts import ImageDetail

__all__ = ["MediaSettings", "resolve_video_mode"]

_DEFAULTS = RuntimeConfig()


@dataclass(frozen=True)
class MediaSettings:
    """How media are validated and sent; the ``RuntimeConfig`` fields of the same names.

    ``image_max_side`` / ``image_max_bytes`` make images larger than that be downscaled
    (and re-encoded) with Pillow; ``max_media_bytes`` refuses any file bigger than it.
    ``video_mode``: ``native`` sends ``video_url`` parts, ``frames`` sends sampled JPEG
    frames, ``auto`` picks ``frames`` for hosts in ``images_only_hosts`` (or their
    subdomains) and ``native`` otherwise.
    """

    image_detail: ImageDetail | None = _DEFAULTS.image_detail
    image_max_side: int | None = _DEFAULTS.image_max_side
    image_max_bytes: int | None = _DEFAULTS.image_max_bytes
    max_media_bytes: int = _DEFAULTS.max_media_bytes
    video_mode: VideoMode = _DEFAULTS.video_mode
    video_frames: int = _DEFAULTS.video_frames
    video_fps: float | None = _DEFAULTS.video_fps
    video_max_frames: int = _DEFAULTS.video_max_frames
    video_frame_max_side: int | None = _DEFAULTS.video_frame_max_side
    images_only_hosts: tuple[str, ...] = _DEFAULTS.images_only_hosts

    def __post_init__(self) -> None:
        hosts = check_media_fields(self)
        object.__setattr__(self, "images_only_hosts", tuple(h.strip().lower() for h in hosts))

    @classmethod
    def from_config(cls, config: Any) -> MediaSettings:
        """Build settings from any object (e.g. ``RuntimeConfig``) with same-named attributes.

        Missing attributes keep their defaults.
        """
        values = {f.name: getattr(config, f.name) for f in fields(cls) if hasattr(config, f.name)}
        return cls(**values)


def resolve_video_mode(
    settings: MediaSettings, base_url: str | None
) -> Literal["native", "frames"]:
    """``native`` or ``frames`` for a video sent to ``base_url`` under ``settings``.

    With ``video_mode="auto"`` and no ``base_url``, the answer is ``native``.
    """
    if settings.video_mode != "auto":
        return settings.video_mode
    if not base_url:
        return "native"
    host = (urllib.parse.urlsplit(base_url).hostname or "").lower().rstrip(".")
    for listed in settings.images_only_hosts:
        if host == listed or host.endswith("." + listed):
            return "frames"
    return "native"
