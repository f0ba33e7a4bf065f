"""Video probing and frame sampling with PyAV (the optional ``video`` extra).

:func:`sample_frames` decodes N evenly spaced frames (or about ``fps`` frames per
second, capped) as JPEG images. Results are cached per file identity (path, mtime,
size) or content digest and sampling settings, so a conversation that keeps a video in
its history does not decode it again on every turn.
"""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .._errors import MediaProcessingError
from .._parts import VideoPart
from ._cache import LRU, identity
from ._failures import extra_hint, import_extra, os_error_reason, part_error
from ._settings import MediaSettings

__all__ = [
    "Frame",
    "VideoInfo",
    "clear_frame_cache",
    "format_timestamp",
    "frame_times",
    "frames_for",
    "probe_if_possible",
    "probe_video",
    "sample_frames",
]

VideoSource = str | os.PathLike[str] | bytes

_CACHE_MAX_ENTRIES = 32
_CACHE_MAX_BYTES = 128 * 1024 * 1024
_JPEG_QUALITY = 85
# Targets closer than this are reached by decoding forward: a seek re-decodes a whole GOP.
_SEEK_GAP_S = 2.0


@dataclass(frozen=True)
class Frame:
    """One sampled frame: its time from the start of the video and its JPEG encoding."""

    timestamp_s: float
    jpeg_bytes: bytes
    width: int
    height: int

    def __repr__(self) -> str:
        return (
            f"Frame(timestamp_s={self.timestamp_s:.3f}, {self.width}x{self.height}, "
            f"{len(self.jpeg_bytes)} bytes)"
        )


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learned from the container headers and first frame."""

    duration_s: float | None
    width: int
    height: int
    codec: str
    frame_rate: float | None
    container: str


def format_timestamp(seconds: float) -> str:
    """``MM:SS.mmm`` (or ``H:MM:SS.mmm`` from one hour on), e.g. ``00:01.250``."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}.{ms:03d}"
    return f"{minutes:02d}:{secs:02d}.{ms:03d}"


def frame_times(
    duration_s: float, *, count: int = 8, fps: float | None = None, max_frames: int = 32
) -> list[float]:
    """The instants sampled from a video of ``duration_s`` seconds.

    The video is cut into N equal segments and the middle of each is taken, where N is
    ``count`` or, when ``fps`` is given, ``ceil(duration_s * fps)``; N is capped at
    ``max_frames`` and is at least 1.
    """
    if count < 1 or max_frames < 1:
        raise ValueError("count and max_frames must be at least 1")
    if fps is not None and not fps > 0:
        raise ValueError("fps must be positive")
    wanted = count if fps is None else math.ceil(max(duration_s, 0.0) * fps)
    n = max(1, min(wanted, max_frames))
    return [(i + 0.5) * duration_s / n for i in range(n)]


def _import_av() -> ModuleType:
    return import_extra("av", "video", "decoding video")


def _label(source: VideoSource) -> str:
    if isinstance(source, bytes):
        return f"<{len(source)} bytes of video>"
    return os.fspath(source)


def _error(source: VideoSource, reason: str) -> MediaProcessingError:
    label = _label(source)
    path = None if isinstance(source, bytes) else label
    return MediaProcessingError(f"{label}: {reason}", {"path": path, "reason": reason})


@contextmanager
def _open_video(av: ModuleType, source: VideoSource) -> Iterator[tuple[Any, Any]]:
    """Open a container and its first video stream, mapping failures to MediaProcessingError."""
    target: Any = io.BytesIO(source) if isinstance(source, bytes) else os.fspath(source)
    try:
        container = av.open(target, mode="r")
    except av.error.FFmpegError as exc:
        raise _error(source, f"not a decodable video ({_ffmpeg_reason(exc)})") from exc
    except OSError as exc:
        raise _error(source, os_error_reason(exc)) from exc
    try:
        if not container.streams.video:
            raise _error(source, "no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield container, stream
    finally:
        container.close()


def _ffmpeg_reason(exc: BaseException) -> str:
    strerror = getattr(exc, "strerror", None)
    return str(strerror or exc or type(exc).__name__)


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / 1_000_000
    if stream.frames and stream.average_rate:
        return float(stream.frames / stream.average_rate)
    return None


def _start(container: Any, stream: Any) -> float:
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    if container.start_time is not None:
        return float(container.start_time) / 1_000_000
    return 0.0


def _demuxed_duration(container: Any, stream: Any, start: float) -> float | None:
    """Duration from packet timestamps, for containers whose headers do not say."""
    end: float | None = None
    for packet in container.demux(stream):
        if packet.pts is None or packet.time_base is None:
            continue
        t = float((packet.pts + (packet.duration or 0)) * packet.time_base)
        end = t if end is None else max(end, t)
    container.seek(0)
    return None if end is None else max(end - start, 0.0)


def probe_video(source: VideoSource) -> VideoInfo:
    """Check that ``source`` holds a decodable video stream and describe it.

    Raises ``MediaProcessingError`` when PyAV is missing, the data is not a video the
    installed FFmpeg can read, there is no video stream, or no frame decodes.
    """
    av = _import_av()
    with _open_video(av, source) as (container, stream):
        try:
            first = next(iter(container.decode(stream)), None)
        except (av.error.FFmpegError, ValueError, EOFError) as exc:
            raise _error(source, f"corrupt video ({_ffmpeg_reason(exc)})") from exc
        if first is None:
            raise _error(source, "no decodable video frames")
        rate = stream.average_rate
        return VideoInfo(
            duration_s=_duration(container, stream),
            width=int(first.width),
            height=int(first.height),
            codec=str(stream.codec_context.name),
            frame_rate=float(rate) if rate else None,
            container=str(container.format.name),
        )


_cache: LRU[tuple[Frame, ...]] = LRU(
    _CACHE_MAX_ENTRIES, _CACHE_MAX_BYTES, size=lambda frames: sum(len(f.jpeg_bytes) for f in frames)
)


def clear_frame_cache() -> None:
    """Forget every cached frame (they are otherwise kept for the 32 latest videos)."""
    _cache.clear()


def _identity(source: VideoSource) -> Any:
    try:
        return identity(source)
    except OSError as exc:
        raise _error(source, os_error_reason(exc)) from exc


def sample_frames(
    source: VideoSource,
    *,
    count: int = 8,
    fps: float | None = None,
    max_frames: int = 32,
    max_side: int | None = 768,
) -> list[Frame]:
    """Decode evenly spaced frames of a video file (path) or in-memory video (bytes).

    See :func:`frame_times` for which instants are taken; each frame returned is the
    first decoded frame at or after its instant (within half a frame), downscaled so its
    longer side is at most ``max_side`` and encoded as JPEG. Timestamps are seconds from
    the start of the video. Raises ``MediaProcessingError`` when PyAV (or Pillow) is
    missing or the video is corrupt, has no video stream, or yields no frame.
    """
    if max_side is not None and max_side < 1:
        raise ValueError("max_side must be at least 1")
    key = (_identity(source), count, fps, max_frames, max_side)
    cached = _cache.get(key)
    if cached is not None:
        return list(cached)
    av = _import_av()
    image_module = import_extra("PIL.Image", "video", "encoding video frames")
    with _open_video(av, source) as (container, stream):
        try:
            frames = _sample(
                av, image_module, (container, stream), source, count, fps, max_frames, max_side
            )
        except (av.error.FFmpegError, ValueError, EOFError) as exc:
            raise _error(source, f"corrupt video ({_ffmpeg_reason(exc)})") from exc
    if not frames:
        raise _error(source, "no decodable video frames")
    _cache.put(key, tuple(frames))
    return frames


def _sample(
    av: ModuleType,
    image_module: ModuleType,
    opened: tuple[Any, Any],
    source: VideoSource,
    count: int,
    fps: float | None,
    max_frames: int,
    max_side: int | None,
) -> list[Frame]:
    container, stream = opened
    start = _start(container, stream)
    duration = _duration(container, stream)
    if duration is None:
        duration = _demuxed_duration(container, stream, start)
    if duration is None:
        raise _error(source, "no decodable video frames")
    targets = frame_times(duration, count=count, fps=fps, max_frames=max_frames)
    rate = float(stream.average_rate) if stream.average_rate else 0.0
    tolerance = 0.5 / rate if rate > 0 else 0.001
    time_base = stream.time_base
    frames: list[Frame] = []
    decoder: Iterator[Any] | None = None
    last_time: float | None = None
    previous: Any = None
    for target in targets:
        absolute = start + target
        if decoder is None or last_time is None or absolute - last_time > _SEEK_GAP_S:
            if time_base is not None and target > 0:
                try:
                    container.seek(int(absolute / time_base), stream=stream, backward=True)
                except (av.error.FFmpegError, OSError):
                    container.seek(0)
            elif decoder is not None:
                container.seek(0)
            decoder = iter(container.decode(stream))
            previous = None
        picked = None
        for frame in decoder:
            frame_time = float(frame.time) if frame.time is not None else None
            if frame_time is not None:
                last_time = frame_time
            # Nearest frame; a tie (target halfway between two frames) goes to the earlier.
            if frame_time is None or frame_time + tolerance + 1e-6 >= absolute:
                picked = frame
                break
            previous = frame
        if picked is None:
            picked = previous  # the video ended before the target: use its last frame
        if picked is None:
            continue
        previous = picked
        moment = float(picked.time) - start if picked.time is not None else target
        frames.append(_encode(image_module, picked, max(moment, 0.0), max_side))
    return frames


def _encode(image_module: ModuleType, frame: Any, timestamp: float, max_side: int | None) -> Frame:
    image = frame.to_image()
    if max_side is not None and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), image_module.Resampling.LANCZOS)
    if image.mode != "RGB":
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=_JPEG_QUALITY)
    width, height = image.size
    return Frame(timestamp_s=timestamp, jpeg_bytes=out.getvalue(), width=width, height=height)


# --------------------------------------------------------------------------- video parts


def _target(part: VideoPart) -> str | bytes:
    if part.data is not None:
        return part.data
    assert part.source is not None
    if part.origin == "data_url":
        _, _, payload = part.source.partition(",")
        return base64.b64decode(payload)
    return part.source


def probe_if_possible(part: VideoPart) -> None:
    """Check the container with PyAV when it is installed; native mode does not need it."""
    try:
        _import_av()
    except MediaProcessingError:
        return
    try:
        probe_video(_target(part))
    except MediaProcessingError as exc:
        raise part_error(part)(exc.details.get("reason", exc.message)) from exc


def frames_for(part: VideoPart, settings: MediaSettings) -> list[Frame]:
    """The frames ``settings`` sample from ``part``; errors name the part."""
    try:
        return sample_frames(
            _target(part),
            count=settings.video_frames,
            fps=settings.video_fps,
            max_frames=settings.video_max_frames,
            max_side=settings.video_frame_max_side,
        )
    except MediaProcessingError as exc:
        if exc.details.get("reason") == "missing dependency":
            raise MediaProcessingError(
                f"video {part.label}: video_mode='frames' requires the 'video' extra: "
                f"{extra_hint('video')}",
                {**exc.details, "path": part.source if part.origin == "path" else None},
            ) from exc
        raise part_error(part)(exc.details.get("reason", exc.message)) from exc
