"""Checked references out to the wire: the OpenAI content parts for one media part.

Runs at send time. URLs and ``data:`` URLs pass through; local files and raw bytes are
registered in a :class:`~._body.MediaSources` and appear as sentinels that the streamed
request body base64-encodes while it is sent. Images are converted first when the
settings ask for it; videos become ``video_url`` parts or timestamped frames.
"""

from __future__ import annotations

from typing import Any

from .._parts import AudioPart, FilePart, ImageDetail, ImagePart, VideoPart
from ._body import MediaSources
from ._failures import part_error
from ._image import clear_image_cache, converted
from ._input import MediaPart, current_file
from ._settings import MediaSettings, resolve_video_mode
from ._video import clear_frame_cache, format_timestamp, frames_for

__all__ = ["clear_media_caches", "to_wire_parts"]


def to_wire_parts(
    part: MediaPart,
    settings: MediaSettings,
    *,
    base_url: str,
    sources: MediaSources,
) -> list[dict[str, Any]]:
    """OpenAI content-part dicts for one media part, as sent to ``base_url``.

    Images give one ``image_url`` part (``detail`` only when set). Videos give one
    ``video_url`` part (native) or, per sampled frame, a ``"Frame i/N at MM:SS.mmm"``
    text part followed by a JPEG ``image_url`` part (frames). Local files and raw bytes
    are registered in ``sources`` and appear as sentinels that
    :func:`~._body.encode_json_body` streams; URLs and ``data:`` URLs pass
    through unchanged. Local files are re-checked here (``MediaProcessingError`` if they
    vanished, grew over the limit, or changed type). May decode video (frames mode) or
    images (conversion): call it off the event loop for large inputs.
    """
    if isinstance(part, ImagePart):
        return [_image_wire(part, settings, sources)]
    if isinstance(part, VideoPart):
        if resolve_video_mode(settings, base_url) == "frames":
            return _frames_wire(part, settings, sources)
        return [{"type": "video_url", "video_url": {"url": _video_url(part, settings, sources)}}]
    if isinstance(part, AudioPart):
        data = _inline(part, settings, sources, bare=True)
        return [{"type": "input_audio", "input_audio": {"data": data, "format": part.format}}]
    if isinstance(part, FilePart):
        file: dict[str, Any] = {}
        if part.file_id is not None:
            file["file_id"] = part.file_id
        else:
            file["file_data"] = _inline(part, settings, sources, bare=False)
        if part.filename is not None:
            file["filename"] = part.filename
        return [{"type": "file", "file": file}]
    raise TypeError(f"expected a media part, not {type(part).__name__}")


def _inline(
    part: AudioPart | FilePart, settings: MediaSettings, sources: MediaSources, *, bare: bool
) -> str:
    """The part's data as sent: its data URL (or, ``bare``, the base64 after the comma) as
    given, or a sentinel for bytes and local files (re-checked now)."""
    if part.origin == "data_url":
        assert part.source is not None
        return part.source.partition(",")[2] if bare else part.source
    if part.origin == "url":
        raise part_error(part)(
            f"{part.type} parts carry their data inline and URLs are never downloaded"
        )
    if part.data is not None:
        return sources.add_bytes(part.data, part.mime, bare=bare)
    assert part.source is not None
    current_file(part, settings)
    return sources.add_file(part.source, part.mime, bare=bare)


def _image_url_part(url: str, detail: ImageDetail | None) -> dict[str, Any]:
    image_url: dict[str, Any] = {"url": url}
    if detail is not None:
        image_url["detail"] = detail
    return {"type": "image_url", "image_url": image_url}


def _image_wire(part: ImagePart, settings: MediaSettings, sources: MediaSources) -> dict[str, Any]:
    detail = part.detail if part.detail is not None else settings.image_detail
    if part.origin in ("url", "data_url"):
        assert part.source is not None
        return _image_url_part(part.source, detail)
    size = len(part.data) if part.data is not None else current_file(part, settings)
    processed = converted(part, size, settings)
    if processed is not None:
        url = sources.add_bytes(processed[1], processed[0])
    elif part.data is not None:
        url = sources.add_bytes(part.data, part.mime)
    else:
        assert part.source is not None
        url = sources.add_file(part.source, part.mime)
    return _image_url_part(url, detail)


def _video_url(part: VideoPart, settings: MediaSettings, sources: MediaSources) -> str:
    if part.origin in ("url", "data_url"):
        assert part.source is not None
        return part.source
    if part.data is not None:
        return sources.add_bytes(part.data, part.mime)
    assert part.source is not None
    current_file(part, settings)
    return sources.add_file(part.source, part.mime)


def _frames_wire(
    part: VideoPart, settings: MediaSettings, sources: MediaSources
) -> list[dict[str, Any]]:
    if part.origin == "url":
        raise part_error(part)(
            "this endpoint takes images only, and a remote video URL cannot be sampled "
            "(URLs are never downloaded); use a local file or video_mode='native'"
        )
    if part.origin == "path":
        current_file(part, settings)
    frames = frames_for(part, settings)
    wire: list[dict[str, Any]] = []
    for number, frame in enumerate(frames, start=1):
        stamp = format_timestamp(frame.timestamp_s)
        wire.append({"type": "text", "text": f"Frame {number}/{len(frames)} at {stamp}"})
        wire.append(
            _image_url_part(
                sources.add_bytes(frame.jpeg_bytes, "image/jpeg"), settings.image_detail
            )
        )
    return wire


def clear_media_caches() -> None:
    """Forget processed images and sampled video frames (they are otherwise kept, bounded)."""
    clear_image_cache()
    clear_frame_cache()
