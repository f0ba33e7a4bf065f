"""User media in, checked references out: ``prepare_media`` and its per-kind steps.

Each item (a path, an ``http(s)`` URL, a ``data:`` URL or raw bytes) is classified, read
as far as needed to tell its type from its bytes, checked (size, format, decodability)
and returned as an :class:`ImagePart` / :class:`VideoPart` / :class:`AudioPart` /
:class:`FilePart` reference, before any request is made.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TypeVar

from .._errors import MediaProcessingError
from .._parts import AudioPart, FilePart, ImagePart, VideoPart
from ._failures import extra_hint
from ._image import import_pil, needs_pillow, open_image, pil_available, pillow_mime
from ._input import (
    Item,
    MediaInput,
    MediaPart,
    as_list,
    classify,
    local_or_bytes,
    parse_data_url,
    url_mime,
)
from ._settings import MediaSettings, resolve_video_mode
from ._sniff import (
    AUDIO_MIME_TYPES,
    FILE_MIME_TYPES,
    IMAGE_MIME_TYPES,
    VIDEO_MIME_TYPES,
    sniff_mime,
)
from ._video import frames_for, probe_if_possible

__all__ = ["prepare_audio", "prepare_file", "prepare_image", "prepare_media", "prepare_video"]

P = TypeVar("P", ImagePart, AudioPart, FilePart)


def _prepared(
    item: MediaInput | P,
    kind: type[P],
    index: int,
    settings: MediaSettings | None,
    check: Callable[[Item, MediaSettings], P],
) -> P:
    """A part given as it is, or the user's ``item`` classified and checked as a ``kind``."""
    if isinstance(item, kind):
        return item
    return check(
        classify(item, kind.model_fields["type"].default, index), settings or MediaSettings()
    )


def _image(entry: Item, settings: MediaSettings) -> ImagePart:
    if entry.url is not None:
        return ImagePart(
            source=entry.url, mime=url_mime(entry.url, "image"), detail=settings.image_detail
        )
    if entry.data_url is not None:
        mime, size, head = parse_data_url(entry, settings)
        sniffed = sniff_mime(head)
        if sniffed is not None and not sniffed.startswith("image/"):
            raise entry.error(f"not an image (the data is {sniffed})")
        return ImagePart(source=entry.data_url, mime=mime, size=size, detail=settings.image_detail)
    header, size = local_or_bytes(entry, settings)
    detected = sniff_mime(header)
    if detected is None and pil_available():
        detected = pillow_mime(entry)  # a format Pillow knows that we do not sniff (e.g. TGA)
    if detected is None:
        raise entry.error("not an image (unrecognised data)")
    if not detected.startswith("image/"):
        raise entry.error(f"not an image (the data is {detected})")
    if needs_pillow(detected, size, settings):
        if not pil_available():
            why = (
                f"unsupported image format {detected} (PNG, JPEG, GIF and WebP are sent as is)"
                if detected not in IMAGE_MIME_TYPES
                else "resizing images (image_max_side / image_max_bytes)"
            )
            raise entry.error(f"{why} requires the 'image' extra: {extra_hint('image')}")
        try:
            open_image(import_pil(), entry).close()
        except MediaProcessingError as exc:
            if detected in IMAGE_MIME_TYPES:
                raise
            reason = f"unsupported image format {detected} (Pillow cannot read it)"
            raise entry.error(reason) from exc
    return ImagePart(
        source=entry.path if entry.data is None else None,
        data=entry.data,
        mime=detected,
        size=size,
        detail=settings.image_detail,
    )


def prepare_image(
    item: MediaInput | ImagePart, settings: MediaSettings | None = None, *, index: int = 0
) -> ImagePart:
    """Validate one image and return its reference (see :func:`prepare_media`)."""
    return _prepared(item, ImagePart, index, settings, _image)


def prepare_video(
    item: MediaInput | VideoPart,
    settings: MediaSettings | None = None,
    *,
    base_url: str | None = None,
    index: int = 0,
) -> VideoPart:
    """Validate one video and return its reference (see :func:`prepare_media`)."""
    if isinstance(item, VideoPart):
        return item
    settings = settings or MediaSettings()
    mode = settings.video_mode if base_url is None else resolve_video_mode(settings, base_url)
    return _video(classify(item, "video", index), settings, mode)


def _video(entry: Item, settings: MediaSettings, mode: str) -> VideoPart:
    if entry.url is not None:
        if mode == "frames":
            raise entry.error(
                "video_mode='frames' cannot sample a remote URL (URLs are never downloaded); "
                "use a local file or video_mode='native'"
            )
        return VideoPart(source=entry.url, mime=url_mime(entry.url, "video"))
    if entry.data_url is not None:
        mime, size, head = parse_data_url(entry, settings)
        sniffed = sniff_mime(head)
        if sniffed is not None and sniffed not in VIDEO_MIME_TYPES:
            raise entry.error(_refusal("a video", "video container", sniffed))
        part = VideoPart(source=entry.data_url, mime=mime, size=size)
        if mode == "frames":
            frames_for(part, settings)
        return part
    header, size = local_or_bytes(entry, settings)
    detected = sniff_mime(header)
    if detected is None or detected not in VIDEO_MIME_TYPES:
        raise entry.error(_refusal("a video", "video container", detected))
    part = VideoPart(
        source=entry.path if entry.data is None else None, data=entry.data, mime=detected, size=size
    )
    if mode == "frames":
        frames_for(part, settings)  # decodes now, so errors come before any request
    else:
        probe_if_possible(part)
    return part


_SUPPORTED = {
    "video container": "mp4, mov, webm, mkv, ogg, avi",
    "audio format": "WAV, MP3",
}


def _refusal(what: str, family: str | None, mime: str | None) -> str:
    """Why data is not ``what``: unrecognised, of another kind, or (``family``, e.g. "video
    container") of the right kind in a format that is not supported."""
    if mime is None:
        return f"not {what} (unrecognised data)"
    if family is not None and mime.startswith(family.split()[0] + "/"):
        return f"unsupported {family} {mime} (supported: {_SUPPORTED[family]})"
    return f"not {what} (the data is {mime})"


def _refuse_url(entry: Item, what: str) -> None:
    """Audio and documents are sent inline: a URL for one is refused."""
    if entry.url is not None:
        raise entry.error(
            f"{what} parts carry their data inline and URLs are never downloaded; "
            "give a local path, raw bytes or a data: URL"
        )


def _audio(entry: Item, settings: MediaSettings) -> AudioPart:
    _refuse_url(entry, "audio")
    if entry.data_url is not None:
        _, size, head = parse_data_url(entry, settings)
        detected = sniff_mime(head)
        if detected is None or detected not in AUDIO_MIME_TYPES:
            raise entry.error(_refusal("WAV or MP3 audio", "audio format", detected))
        return AudioPart(
            source=entry.data_url, mime=detected, size=size, format=AUDIO_MIME_TYPES[detected]
        )
    header, size = local_or_bytes(entry, settings)
    found = sniff_mime(header)
    if found is None or found not in AUDIO_MIME_TYPES:
        raise entry.error(_refusal("WAV or MP3 audio", "audio format", found))
    return AudioPart(
        source=entry.path if entry.data is None else None,
        data=entry.data,
        mime=found,
        size=size,
        format=AUDIO_MIME_TYPES[found],
    )


def prepare_audio(
    item: MediaInput | AudioPart, settings: MediaSettings | None = None, *, index: int = 0
) -> AudioPart:
    """Validate one WAV or MP3 clip and return its reference (see :func:`prepare_media`)."""
    return _prepared(item, AudioPart, index, settings, _audio)


def _file(entry: Item, settings: MediaSettings) -> FilePart:
    _refuse_url(entry, "file")
    if entry.data_url is not None:
        mime, size, head = parse_data_url(entry, settings)
        sniffed = sniff_mime(head)
        if sniffed != "application/pdf":
            raise entry.error(_refusal("a PDF document", None, sniffed))
        return FilePart(source=entry.data_url, mime=mime, size=size, filename="document.pdf")
    header, size = local_or_bytes(entry, settings)
    found = sniff_mime(header)
    if found not in FILE_MIME_TYPES:
        raise entry.error(_refusal("a PDF document", None, found))
    return FilePart(
        source=entry.path if entry.data is None else None,
        data=entry.data,
        mime=found,
        size=size,
        filename=os.path.basename(entry.path) if entry.path is not None else "document.pdf",
    )


def prepare_file(
    item: MediaInput | FilePart, settings: MediaSettings | None = None, *, index: int = 0
) -> FilePart:
    """Validate one document (PDF) and return its reference (see :func:`prepare_media`).

    The ``filename`` sent is a path's base name, ``document.pdf`` for bytes and data URLs.
    """
    return _prepared(item, FilePart, index, settings, _file)


def prepare_media(
    image_paths: MediaInput | Iterable[MediaInput] | None = None,
    video_paths: MediaInput | Iterable[MediaInput] | None = None,
    settings: MediaSettings | None = None,
    *,
    base_url: str | None = None,
    audio_paths: MediaInput | Iterable[MediaInput] | None = None,
    file_paths: MediaInput | Iterable[MediaInput] | None = None,
) -> list[MediaPart]:
    """Validate images, videos, audio (WAV, MP3) and documents (PDF) and return references
    to them, in that order.

    Each argument is one item or a list; an item is a local path (str or ``Path``), an
    ``http(s)`` URL, a ``data:`` URL, or raw ``bytes``. Types are detected from the bytes,
    not the extension. URLs are never downloaded. Every problem (missing file, directory,
    unreadable, empty, not an image/video, unsupported format, over ``max_media_bytes``,
    corrupt video, missing extra) raises ``MediaProcessingError`` naming the item, with
    ``details["path"]`` and ``details["reason"]``. Giving ``base_url`` resolves
    ``video_mode="auto"`` now, so frame sampling (and its errors) happens here.
    """
    settings = settings or MediaSettings()
    parts: list[MediaPart] = []
    for i, image in enumerate(as_list(image_paths)):
        parts.append(prepare_image(image, settings, index=i))
    for i, clip in enumerate(as_list(video_paths)):
        parts.append(prepare_video(clip, settings, base_url=base_url, index=i))
    for i, sound in enumerate(as_list(audio_paths)):
        parts.append(prepare_audio(sound, settings, index=i))
    for i, document in enumerate(as_list(file_paths)):
        parts.append(prepare_file(document, settings, index=i))
    return parts
