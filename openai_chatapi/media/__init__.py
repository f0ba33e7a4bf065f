"""Images, videos, audio and documents as chat content: detection, eager validation, and
wire encoding.

Three steps, each with one job:

* :func:`prepare_media` turns what the user gave (paths, URLs, ``data:`` URLs, raw
  bytes) into :class:`ImagePart` / :class:`VideoPart` / :class:`AudioPart` /
  :class:`FilePart` *references*, checking every item before any request is made.
  History keeps these parts, never base64.
* :func:`to_wire_parts` turns one part into OpenAI content-part dicts at send time.
  Local files become sentinels that the request body streams as base64 while it is sent.
* :class:`MediaSettings` holds the knobs (the ``RuntimeConfig`` fields of the same names).

Pillow (the ``image`` extra) is needed only to convert or downscale images; PyAV (the
``video`` extra) only to check videos deeply and to sample frames.

Inside, data flows one way, each module importing only those before it:
``_settings`` (the knobs), ``_sniff`` (bytes to a media type), ``_failures`` (how problems
are reported), ``_cache``, ``_input`` (one user item located and checked), ``_image``
(Pillow), ``_video`` (PyAV), ``_prepare`` (items to parts), ``_body`` (the streamed
request body), ``_encode`` (parts to the wire) and ``_history`` (parts of earlier turns).
"""

from __future__ import annotations

from .._config import VideoMode
from .._parts import ImageDetail, ImagePart, VideoPart
from ._encode import clear_media_caches, to_wire_parts
from ._input import MediaInput, MediaPart
from ._prepare import prepare_audio, prepare_file, prepare_image, prepare_media, prepare_video
from ._settings import MediaSettings, resolve_video_mode
from ._sniff import (
    AUDIO_MIME_TYPES,
    FILE_MIME_TYPES,
    IMAGE_MIME_TYPES,
    VIDEO_MIME_TYPES,
    sniff_mime,
)

__all__ = [
    "AUDIO_MIME_TYPES",
    "FILE_MIME_TYPES",
    "IMAGE_MIME_TYPES",
    "VIDEO_MIME_TYPES",
    "ImageDetail",
    "ImagePart",
    "MediaInput",
    "MediaPart",
    "MediaSettings",
    "VideoMode",
    "VideoPart",
    "clear_media_caches",
    "prepare_audio",
    "prepare_file",
    "prepare_image",
    "prepare_media",
    "prepare_video",
    "resolve_video_mode",
    "sniff_mime",
    "to_wire_parts",
]
