"""Images, videos, audio and documents as chat content: detection, eager validation, and
wire encoding.

Three steps, each with one job:

* :func:`prepare_media` turns what the user gave (paths, URLs, ``data:`` URLs, raw
  bytes) into :class:`ImagePart` / :class:`VideoPart` / :class:`AudioPart` /
  :class:`FilePart` *references*, checking every
  item before any request is made. History keeps these parts, never base64.
* :func:`to_wire_parts` turns one part into OpenAI content-part dicts at send time.
  Local files become sentinels registered in a :class:`~openai_chatapi.body.MediaSources`
  so that :func:`~openai_chatapi.body.encode_json_body` can stream their base64.
* :class:`MediaSettings` holds the knobs (the ``RuntimeConfig`` fields of the same names).

Pillow (the ``image`` extra) is needed only to convert or downscale images; PyAV (the
``video`` extra) only to check videos deeply and to sample frames.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import mimetypes
import os
import re
import stat
import threading
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import ModuleType
from typing import Any, Literal, TypeAlias

from . import video as _video
from ._errors import ConfigurationError, MediaProcessingError
from ._parts import URL_SCHEME as _URL_SCHEME
from ._parts import AudioPart, FilePart, ImageDetail, ImagePart, VideoPart
from .body import MediaSources, os_error_reason

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

VideoMode: TypeAlias = Literal["auto", "native", "frames"]
MediaInput: TypeAlias = str | os.PathLike[str] | bytes

#: Image types sent as they are; anything else Pillow can read is converted.
IMAGE_MIME_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
#: Video containers accepted (detected from the bytes).
VIDEO_MIME_TYPES = frozenset(
    {
        "video/mp4",
        "video/quicktime",
        "video/webm",
        "video/x-matroska",
        "video/ogg",
        "video/x-msvideo",
    }
)

#: Audio accepted, detected from the bytes, with the ``input_audio.format`` each is sent as.
AUDIO_MIME_TYPES: Mapping[str, Literal["wav", "mp3"]] = {"audio/wav": "wav", "audio/mpeg": "mp3"}
#: Documents accepted for ``file`` parts (detected from the bytes).
FILE_MIME_TYPES = frozenset({"application/pdf"})
_AUDIO_ALIASES = {"audio/x-wav": "audio/wav", "audio/wave": "audio/wav", "audio/mp3": "audio/mpeg"}

# Types sniff_mime recognises by itself (others come from Pillow).
_SNIFFED_TYPES = (
    IMAGE_MIME_TYPES
    | VIDEO_MIME_TYPES
    | FILE_MIME_TYPES
    | set(AUDIO_MIME_TYPES)
    | {"image/bmp", "image/tiff"}
)

_IMAGE_EXTRA = "pip install 'openai_chatapi[image]'"
_VIDEO_EXTRA = "pip install 'openai_chatapi[video]'"
_HEADER_BYTES = 4096
_MiB = 1024 * 1024
_DATA_URL = re.compile(r"^data:([A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+)((?:;[^;,]*)*);base64,", re.I)
_B64_ALPHABET = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class MediaSettings:
    """How media are validated and sent; field names match ``RuntimeConfig``.

    ``image_max_side`` / ``image_max_bytes`` make images larger than that be downscaled
    (and re-encoded) with Pillow; ``max_media_bytes`` refuses any file bigger than it.
    ``video_mode``: ``native`` sends ``video_url`` parts, ``frames`` sends sampled JPEG
    frames, ``auto`` picks ``frames`` for hosts in ``images_only_hosts`` (or their
    subdomains) and ``native`` otherwise.
    """

    image_detail: ImageDetail | None = None
    image_max_side: int | None = None
    image_max_bytes: int | None = None
    max_media_bytes: int = 512 * _MiB
    video_mode: VideoMode = "auto"
    video_frames: int = 8
    video_fps: float | None = None
    video_max_frames: int = 32
    video_frame_max_side: int | None = 768
    images_only_hosts: tuple[str, ...] = ("api.openai.com",)

    def __post_init__(self) -> None:
        if self.image_detail not in (None, "auto", "low", "high"):
            raise ConfigurationError(
                f"image_detail must be 'auto', 'low', 'high' or None, not {self.image_detail!r}",
                {"field": "image_detail"},
            )
        if self.video_mode not in ("auto", "native", "frames"):
            raise ConfigurationError(
                f"video_mode must be 'auto', 'native' or 'frames', not {self.video_mode!r}",
                {"field": "video_mode"},
            )
        for name in ("image_max_side", "image_max_bytes", "video_frame_max_side"):
            _check_positive(name, getattr(self, name), optional=True)
        for name in ("max_media_bytes", "video_frames", "video_max_frames"):
            _check_positive(name, getattr(self, name), optional=False)
        if self.video_fps is not None and not (
            isinstance(self.video_fps, (int, float)) and self.video_fps > 0
        ):
            raise ConfigurationError(
                f"video_fps must be a positive number or None, not {self.video_fps!r}",
                {"field": "video_fps"},
            )
        hosts = self.images_only_hosts
        if isinstance(hosts, str) or not all(isinstance(h, str) for h in hosts):
            raise ConfigurationError(
                "images_only_hosts must be a sequence of host names", {"field": "images_only_hosts"}
            )
        object.__setattr__(self, "images_only_hosts", tuple(h.strip().lower() for h in hosts))

    @classmethod
    def from_config(cls, config: Any) -> MediaSettings:
        """Build settings from any object (e.g. ``RuntimeConfig``) with same-named attributes.

        Missing attributes keep their defaults.
        """
        values = {f.name: getattr(config, f.name) for f in fields(cls) if hasattr(config, f.name)}
        return cls(**values)


def _check_positive(name: str, value: Any, *, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        allowed = "a positive integer or None" if optional else "a positive integer"
        raise ConfigurationError(f"{name} must be {allowed}, not {value!r}", {"field": name})


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


# --------------------------------------------------------------------------- parts


MediaPart: TypeAlias = ImagePart | VideoPart | AudioPart | FilePart
MediaKind: TypeAlias = Literal["image", "video", "audio", "file"]


# --------------------------------------------------------------------------- detection


def _ftyp_mime(header: bytes) -> str | None:
    if len(header) < 12 or header[4:8] != b"ftyp":
        return None
    major = header[8:12]
    if major == b"qt  ":
        return "video/quicktime"
    if major in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"):
        return "image/heic"
    if major in (b"mif1", b"msf1"):
        return "image/heif"
    if major in (b"avif", b"avis"):
        return "image/avif"
    if major in (b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "):
        return "audio/mp4"
    return "video/mp4"  # isom, iso2-6, mp41, mp42, avc1, M4V , dash, 3gp*, ...


def _ebml_doctype(header: bytes) -> str | None:
    position = header.find(b"\x42\x82", 4, 64)
    if position < 0 or position + 3 > len(header):
        return None
    first = header[position + 2]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        return None
    size = first & (0xFF >> length)
    for byte in header[position + 3 : position + 2 + length]:
        size = (size << 8) | byte
    start = position + 2 + length
    return header[start : start + size].rstrip(b"\x00").decode("ascii", "replace")


def _ogg_mime(header: bytes) -> str:
    if any(marker in header for marker in (b"\x80theora", b"OVP80", b"\x80daala")):
        return "video/ogg"
    if any(marker in header for marker in (b"\x01vorbis", b"OpusHead", b"\x7fFLAC", b"Speex   ")):
        return "audio/ogg"
    return "video/ogg"  # unknown first stream: let the decoder decide


def sniff_mime(header: bytes) -> str | None:
    """The media type of data starting with ``header`` (first ~4 KiB), or None if unknown.

    Recognises the images and video containers this package sends, plus common formats
    it converts (BMP, TIFF, ...) or refuses (audio, FLV, MPEG-TS, ...).
    """
    if header.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if header.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if header[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if header[:4] == b"RIFF" and len(header) >= 12:
        kind = header[8:12]
        return {b"WEBP": "image/webp", b"AVI ": "video/x-msvideo", b"WAVE": "audio/wav"}.get(kind)
    ftyp = _ftyp_mime(header)
    if ftyp is not None:
        return ftyp
    if header.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if _ebml_doctype(header) == "webm" else "video/x-matroska"
    if header.startswith(b"OggS"):
        return _ogg_mime(header)
    if header[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if header[:2] == b"BM" and len(header) >= 18 and header[14] in (12, 40, 52, 56, 64, 108, 124):
        return "image/bmp"
    if header[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00") and len(header) >= 6:
        return "image/x-icon" if 0 < int.from_bytes(header[4:6], "little") < 256 else None
    if header.startswith(b"8BPS"):
        return "image/vnd.adobe.photoshop"
    if header.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n"):
        return "image/jp2"
    if header.startswith(b"qoif"):
        return "image/qoi"
    if header.startswith(b"FLV\x01"):
        return "video/x-flv"
    if header.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "video/x-ms-asf"
    if header.startswith(b"\x00\x00\x01\xba"):
        return "video/mpeg"
    if len(header) > 376 and header[0] == header[188] == header[376] == 0x47:
        return "video/mp2t"
    if header.startswith(b"fLaC"):
        return "audio/flac"
    if header.startswith(b"ID3") or _mp3_frame(header):
        return "audio/mpeg"
    if header.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def _mp3_frame(header: bytes) -> bool:
    """An MPEG audio layer III frame header (11-bit sync, layer bits 01, valid bitrate)."""
    return (
        len(header) >= 4
        and header[0] == 0xFF
        and header[1] & 0xE0 == 0xE0
        and (header[1] >> 1) & 0x03 == 0x01
        and (header[1] >> 3) & 0x03 != 0x01
        and header[2] >> 4 not in (0x0, 0xF)
        and (header[2] >> 2) & 0x03 != 0x03
    )


# --------------------------------------------------------------------------- input


@dataclass
class _Item:
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


def _as_list(items: Any) -> list[Any]:
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


def _classify(item: Any, kind: MediaKind, index: int) -> _Item:
    if isinstance(item, (bytes, bytearray, memoryview)):
        data = bytes(item)
        return _Item(kind, f"#{index + 1} (raw bytes)", data=data, details={"index": index})
    if isinstance(item, os.PathLike):
        item = os.fspath(item)
    if not isinstance(item, str):
        raise ConfigurationError(
            f"{kind} #{index + 1}: expected a str, a Path or bytes, not {type(item).__name__}",
            {"index": index, "type": type(item).__name__},
        )
    if not item.strip():
        raise _Item(kind, f"#{index + 1}", details={"index": index}).error("empty path")
    if item[:5].lower() == "data:":
        return _Item(kind, f"#{index + 1} (data URL)", data_url=item, details={"index": index})
    scheme = _URL_SCHEME.match(item)
    if scheme is not None:
        name = scheme.group(1).lower()
        if name in ("http", "https"):
            return _Item(kind, item, url=item, details={"index": index})
        if name == "file":
            parsed = urllib.parse.urlsplit(item)
            local = urllib.request.url2pathname(parsed.path)
            return _Item(kind, item, path=os.path.abspath(local), details={"index": index})
        raise _Item(kind, item, details={"index": index}).error(
            f"unsupported URL scheme {name!r} (use a local path, http(s) or data: URL)"
        )
    path = os.path.abspath(os.path.expanduser(item))
    return _Item(kind, item, path=path, details={"index": index})


def _read_header(item: _Item, settings: MediaSettings) -> tuple[bytes, int]:
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
    _check_size(item, st.st_size, settings)
    try:
        with open(item.path, "rb") as handle:
            header = handle.read(_HEADER_BYTES)
    except OSError as exc:
        raise item.error(os_error_reason(exc)) from exc
    if not header:
        raise item.error("file is empty")
    return header, st.st_size


def _check_size(item: _Item, size: int, settings: MediaSettings) -> None:
    if size == 0:
        raise item.error("file is empty" if item.path else "no data (0 bytes)")
    if size > settings.max_media_bytes:
        raise item.error(
            f"{size} bytes is over the limit of {settings.max_media_bytes} bytes (max_media_bytes)"
        )


def _parse_data_url(item: _Item, settings: MediaSettings) -> tuple[str, int, bytes]:
    """Check a data URL's header and the start of its payload; return (mime, size, head)."""
    assert item.data_url is not None
    text = item.data_url
    match = _DATA_URL.match(text)
    if match is None:
        raise item.error("malformed data URL (expected data:<type>/<subtype>;base64,<data>)")
    mime = match.group(1).lower()
    mime = _AUDIO_ALIASES.get(mime, mime) if item.kind == "audio" else mime
    if item.kind == "file":
        if mime not in FILE_MIME_TYPES:
            raise item.error(f"data URL type {mime} is not a supported document (PDF)")
    elif not mime.startswith(item.kind + "/"):
        raise item.error(f"data URL type {mime} is not an {item.kind} type")
    payload_len = len(text) - match.end()
    padding = len(text) - len(text.rstrip("="))
    head_text = text[match.end() : match.end() + _HEADER_BYTES * 4 // 3 // 4 * 4]
    if payload_len == 0:
        raise item.error("data URL has no data")
    if payload_len % 4 or not _B64_ALPHABET.match(head_text if head_text else ""):
        raise item.error("data URL payload is not valid base64")
    try:
        head = base64.b64decode(head_text, validate=True)
    except binascii.Error as exc:
        raise item.error("data URL payload is not valid base64") from exc
    size = payload_len // 4 * 3 - padding
    _check_size(item, size, settings)
    return mime, size, head


def _url_mime(url: str, kind: str) -> str:
    guessed, _ = mimetypes.guess_type(urllib.parse.urlsplit(url).path)
    return guessed if guessed and guessed.startswith(kind + "/") else "application/octet-stream"


# --------------------------------------------------------------------------- images


def _import_pil() -> ModuleType:
    try:
        from PIL import Image
    except ImportError as exc:
        raise MediaProcessingError(
            f"converting or resizing images requires the 'image' extra: {_IMAGE_EXTRA}",
            {"reason": "missing dependency", "extra": "image", "module": "PIL"},
        ) from exc
    return Image


def _pil_available() -> bool:
    try:
        _import_pil()
    except MediaProcessingError:
        return False
    return True


def _open_image(image_module: ModuleType, item: _Item | ImagePart) -> Any:
    """Open an image with Pillow (headers only), mapping its errors to MediaProcessingError."""
    if isinstance(item, ImagePart):
        target: Any = io.BytesIO(item.data) if item.data is not None else item.source
        fail = _part_error(item)
    else:
        target = io.BytesIO(item.data) if item.data is not None else item.path
        fail = item.error
    try:
        image = image_module.open(target)
        image.size  # noqa: B018 - forces the header to be parsed
        return image
    except image_module.DecompressionBombError as exc:
        raise fail(f"too many pixels to decode safely ({exc})") from exc
    except OSError as exc:
        raise fail(f"not a readable image ({exc})") from exc
    except (ValueError, SyntaxError) as exc:
        raise fail(f"corrupt image ({exc})") from exc


def _part_error(part: MediaPart) -> Any:
    kind = part.type
    path = part.source if part.origin == "path" else None

    def fail(reason: str) -> MediaProcessingError:
        return MediaProcessingError(
            f"{kind} {part.label}: {reason}", {"path": path, "reason": reason, "kind": kind}
        )

    return fail


def _needs_pillow(mime: str, size: int, settings: MediaSettings) -> bool:
    return (
        mime not in IMAGE_MIME_TYPES
        or settings.image_max_side is not None
        or (settings.image_max_bytes is not None and size > settings.image_max_bytes)
    )


def prepare_image(
    item: MediaInput | ImagePart, settings: MediaSettings | None = None, *, index: int = 0
) -> ImagePart:
    """Validate one image and return its reference (see :func:`prepare_media`)."""
    settings = settings or MediaSettings()
    if isinstance(item, ImagePart):
        return item
    entry = _classify(item, "image", index)
    if entry.url is not None:
        return ImagePart(
            source=entry.url, mime=_url_mime(entry.url, "image"), detail=settings.image_detail
        )
    if entry.data_url is not None:
        mime, size, head = _parse_data_url(entry, settings)
        sniffed = sniff_mime(head)
        if sniffed is not None and not sniffed.startswith("image/"):
            raise entry.error(f"not an image (the data is {sniffed})")
        return ImagePart(source=entry.data_url, mime=mime, size=size, detail=settings.image_detail)
    if entry.data is not None:
        header, size = entry.data[:_HEADER_BYTES], len(entry.data)
        _check_size(entry, size, settings)
    else:
        header, size = _read_header(entry, settings)
    detected = sniff_mime(header)
    if detected is None and _pil_available():
        detected = _pillow_mime(entry)  # a format Pillow knows that we do not sniff (e.g. TGA)
    if detected is None:
        raise entry.error("not an image (unrecognised data)")
    if not detected.startswith("image/"):
        raise entry.error(f"not an image (the data is {detected})")
    if _needs_pillow(detected, size, settings):
        if not _pil_available():
            why = (
                f"unsupported image format {detected} (PNG, JPEG, GIF and WebP are sent as is)"
                if detected not in IMAGE_MIME_TYPES
                else "resizing images (image_max_side / image_max_bytes)"
            )
            raise entry.error(f"{why} requires the 'image' extra: {_IMAGE_EXTRA}")
        try:
            _open_image(_import_pil(), entry).close()
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


def _pillow_mime(entry: _Item) -> str | None:
    image_module = _import_pil()
    try:
        image = _open_image(image_module, entry)
    except MediaProcessingError:
        return None
    with image:
        fmt = (image.format or "").lower()
        mime = image_module.MIME.get(image.format or "") or (f"image/{fmt}" if fmt else None)
        return str(mime) if mime else None


class _LRU:
    """A small thread-safe LRU for processed images, bounded by entries and bytes."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._items: OrderedDict[Hashable, tuple[str, bytes]] = OrderedDict()
        self._max_entries, self._max_bytes, self._bytes = max_entries, max_bytes, 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> tuple[str, bytes] | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: tuple[str, bytes]) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._bytes += len(value[1])
            while self._items and (
                len(self._items) > self._max_entries or self._bytes > self._max_bytes
            ):
                _, old = self._items.popitem(last=False)
                self._bytes -= len(old[1])

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


_image_cache = _LRU(64, 64 * _MiB)


def _has_alpha(image: Any) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )


def _encode_image(image: Any, fmt: str, quality: int) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(out, format="JPEG", quality=quality)
    else:
        if image.mode not in ("RGB", "RGBA", "L", "LA", "P", "I", "I;16", "1"):
            image = image.convert("RGBA" if _has_alpha(image) else "RGB")
        image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _process_image(part: ImagePart, size: int, settings: MediaSettings) -> tuple[str, bytes] | None:
    """Convert/downscale an image as ``settings`` ask; None when it can be sent as is."""
    image_module = _import_pil()
    from PIL import ImageOps

    fail = _part_error(part)
    with _open_image(image_module, part) as opened:
        max_side = settings.image_max_side
        too_big = settings.image_max_bytes is not None and size > settings.image_max_bytes
        fits = max_side is None or max(opened.size) <= max_side
        if part.mime in IMAGE_MIME_TYPES and not too_big and fits:
            return None
        try:
            opened.seek(0)  # first frame of an animation
            image = ImageOps.exif_transpose(opened)
            image.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise fail(f"corrupt image ({exc})") from exc
        if max_side is not None and max(image.size) > max_side:
            image.thumbnail((max_side, max_side), image_module.Resampling.LANCZOS)
        alpha = _has_alpha(image)
        fmt = "JPEG" if part.mime == "image/jpeg" and not alpha else "PNG"
        encoded = _encode_image(image, fmt, 90)
        limit = settings.image_max_bytes
        if limit is None or len(encoded) <= limit:
            return f"image/{fmt.lower()}", encoded
        # Over image_max_bytes: lower JPEG quality (when no alpha), then shrink.
        fmt = "PNG" if alpha else "JPEG"
        for quality in (85, 70, 55, 40):
            encoded = _encode_image(image, fmt, quality)
            if len(encoded) <= limit or fmt == "PNG":
                break
        while len(encoded) > limit:
            width, height = image.size
            if max(width, height) <= 16:
                raise fail(f"cannot be reduced below image_max_bytes={limit}")
            image = image.resize(
                (max(1, width * 3 // 4), max(1, height * 3 // 4)), image_module.Resampling.LANCZOS
            )
            encoded = _encode_image(image, fmt, 70)
        return f"image/{fmt.lower()}", encoded


def _image_key(part: ImagePart, settings: MediaSettings) -> Hashable:
    if part.data is not None:
        identity: Hashable = ("bytes", hashlib.blake2b(part.data, digest_size=20).digest())
    else:
        assert part.source is not None
        st = os.stat(part.source)
        identity = ("path", part.source, st.st_mtime_ns, st.st_size)
    return (identity, settings.image_max_side, settings.image_max_bytes)


# --------------------------------------------------------------------------- videos


def prepare_video(
    item: MediaInput | VideoPart,
    settings: MediaSettings | None = None,
    *,
    base_url: str | None = None,
    index: int = 0,
) -> VideoPart:
    """Validate one video and return its reference (see :func:`prepare_media`)."""
    settings = settings or MediaSettings()
    if isinstance(item, VideoPart):
        return item
    entry = _classify(item, "video", index)
    mode = settings.video_mode if base_url is None else resolve_video_mode(settings, base_url)
    if entry.url is not None:
        if mode == "frames":
            raise entry.error(
                "video_mode='frames' cannot sample a remote URL (URLs are never downloaded); "
                "use a local file or video_mode='native'"
            )
        return VideoPart(source=entry.url, mime=_url_mime(entry.url, "video"))
    if entry.data_url is not None:
        mime, size, head = _parse_data_url(entry, settings)
        sniffed = sniff_mime(head)
        if sniffed is not None and sniffed not in VIDEO_MIME_TYPES:
            raise entry.error(_video_refusal(sniffed))
        part = VideoPart(source=entry.data_url, mime=mime, size=size)
        if mode == "frames":
            _frames_for(part, settings)
        return part
    if entry.data is not None:
        header, size = entry.data[:_HEADER_BYTES], len(entry.data)
        _check_size(entry, size, settings)
    else:
        header, size = _read_header(entry, settings)
    detected = sniff_mime(header)
    if detected is None or detected not in VIDEO_MIME_TYPES:
        raise entry.error(_video_refusal(detected))
    part = VideoPart(
        source=entry.path if entry.data is None else None, data=entry.data, mime=detected, size=size
    )
    if mode == "frames":
        _frames_for(part, settings)  # decodes now, so errors come before any request
    else:
        _probe_if_possible(part)
    return part


def _video_refusal(mime: str | None) -> str:
    if mime is None:
        return "not a video (unrecognised data)"
    if mime.startswith("video/"):
        return f"unsupported video container {mime} (supported: mp4, mov, webm, mkv, ogg, avi)"
    return f"not a video (the data is {mime})"


def _video_target(part: VideoPart) -> str | bytes:
    if part.data is not None:
        return part.data
    assert part.source is not None
    if part.origin == "data_url":
        _, _, payload = part.source.partition(",")
        return base64.b64decode(payload)
    return part.source


def _probe_if_possible(part: VideoPart) -> None:
    """Check the container with PyAV when it is installed; native mode does not need it."""
    try:
        _video._import_av()
    except MediaProcessingError:
        return
    try:
        _video.probe_video(_video_target(part))
    except MediaProcessingError as exc:
        raise _part_error(part)(exc.details.get("reason", exc.message)) from exc


def _frames_for(part: VideoPart, settings: MediaSettings) -> list[_video.Frame]:
    try:
        return _video.sample_frames(
            _video_target(part),
            count=settings.video_frames,
            fps=settings.video_fps,
            max_frames=settings.video_max_frames,
            max_side=settings.video_frame_max_side,
        )
    except MediaProcessingError as exc:
        if exc.details.get("reason") == "missing dependency":
            raise MediaProcessingError(
                f"video {part.label}: video_mode='frames' requires the 'video' extra: "
                f"{_VIDEO_EXTRA}",
                {**exc.details, "path": part.source if part.origin == "path" else None},
            ) from exc
        raise _part_error(part)(exc.details.get("reason", exc.message)) from exc


# --------------------------------------------------------------------------- audio and documents


def _inline_only(entry: _Item, what: str) -> MediaProcessingError:
    return entry.error(
        f"{what} parts carry their data inline and URLs are never downloaded; "
        "give a local path, raw bytes or a data: URL"
    )


def _local_or_bytes(entry: _Item, settings: MediaSettings) -> tuple[bytes, int]:
    if entry.data is not None:
        _check_size(entry, len(entry.data), settings)
        return entry.data[:_HEADER_BYTES], len(entry.data)
    return _read_header(entry, settings)


def prepare_audio(
    item: MediaInput | AudioPart, settings: MediaSettings | None = None, *, index: int = 0
) -> AudioPart:
    """Validate one WAV or MP3 clip and return its reference (see :func:`prepare_media`)."""
    settings = settings or MediaSettings()
    if isinstance(item, AudioPart):
        return item
    entry = _classify(item, "audio", index)
    if entry.url is not None:
        raise _inline_only(entry, "audio")
    if entry.data_url is not None:
        _, size, head = _parse_data_url(entry, settings)
        detected = sniff_mime(head)
        if detected is None or detected not in AUDIO_MIME_TYPES:
            raise entry.error(_audio_refusal(detected))
        return AudioPart(
            source=entry.data_url, mime=detected, size=size, format=AUDIO_MIME_TYPES[detected]
        )
    header, size = _local_or_bytes(entry, settings)
    found = sniff_mime(header)
    if found is None or found not in AUDIO_MIME_TYPES:
        raise entry.error(_audio_refusal(found))
    return AudioPart(
        source=entry.path if entry.data is None else None,
        data=entry.data,
        mime=found,
        size=size,
        format=AUDIO_MIME_TYPES[found],
    )


def _audio_refusal(mime: str | None) -> str:
    if mime is None:
        return "not WAV or MP3 audio (unrecognised data)"
    if mime.startswith("audio/"):
        return f"unsupported audio format {mime} (supported: WAV, MP3)"
    return f"not WAV or MP3 audio (the data is {mime})"


def prepare_file(
    item: MediaInput | FilePart, settings: MediaSettings | None = None, *, index: int = 0
) -> FilePart:
    """Validate one document (PDF) and return its reference (see :func:`prepare_media`).

    The ``filename`` sent is a path's base name, ``document.pdf`` for bytes and data URLs.
    """
    settings = settings or MediaSettings()
    if isinstance(item, FilePart):
        return item
    entry = _classify(item, "file", index)
    if entry.url is not None:
        raise _inline_only(entry, "file")
    if entry.data_url is not None:
        mime, size, head = _parse_data_url(entry, settings)
        sniffed = sniff_mime(head)
        if sniffed != "application/pdf":
            raise entry.error(_file_refusal(sniffed))
        return FilePart(source=entry.data_url, mime=mime, size=size, filename="document.pdf")
    header, size = _local_or_bytes(entry, settings)
    found = sniff_mime(header)
    if found not in FILE_MIME_TYPES:
        raise entry.error(_file_refusal(found))
    return FilePart(
        source=entry.path if entry.data is None else None,
        data=entry.data,
        mime=found,
        size=size,
        filename=os.path.basename(entry.path) if entry.path is not None else "document.pdf",
    )


def _file_refusal(mime: str | None) -> str:
    if mime is None:
        return "not a PDF document (unrecognised data)"
    return f"not a PDF document (the data is {mime})"


# --------------------------------------------------------------------------- public entry points


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
    for i, image in enumerate(_as_list(image_paths)):
        parts.append(prepare_image(image, settings, index=i))
    for i, clip in enumerate(_as_list(video_paths)):
        parts.append(prepare_video(clip, settings, base_url=base_url, index=i))
    for i, sound in enumerate(_as_list(audio_paths)):
        parts.append(prepare_audio(sound, settings, index=i))
    for i, document in enumerate(_as_list(file_paths)):
        parts.append(prepare_file(document, settings, index=i))
    return parts


def _current_file(part: MediaPart, settings: MediaSettings) -> int:
    """Re-check a local file at send time (it may have changed since it was attached).

    Returns its current size.
    """
    assert part.source is not None
    entry = _Item(part.type, part.source, path=part.source)
    header, size = _read_header(entry, settings)
    mime = sniff_mime(header)
    # Formats only Pillow recognises (mime None here) are checked when Pillow opens them.
    if mime != part.mime and (mime is not None or part.mime in _SNIFFED_TYPES):
        raise entry.error(
            f"changed since it was attached (was {part.mime}, now {mime or 'unknown'})"
        )
    return size


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
    :func:`~openai_chatapi.body.encode_json_body` streams; URLs and ``data:`` URLs pass
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
        raise _part_error(part)(
            f"{part.type} parts carry their data inline and URLs are never downloaded"
        )
    if part.data is not None:
        return sources.add_bytes(part.data, part.mime, bare=bare)
    assert part.source is not None
    _current_file(part, settings)
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
    size = len(part.data) if part.data is not None else _current_file(part, settings)
    processed: tuple[str, bytes] | None = None
    if _needs_pillow(part.mime, size, settings):
        key = _image_key(part, settings)
        processed = _image_cache.get(key)
        if processed is None:
            processed = _process_image(part, size, settings)
            if processed is not None:
                _image_cache.put(key, processed)
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
    _current_file(part, settings)
    return sources.add_file(part.source, part.mime)


def _frames_wire(
    part: VideoPart, settings: MediaSettings, sources: MediaSources
) -> list[dict[str, Any]]:
    if part.origin == "url":
        raise _part_error(part)(
            "this endpoint takes images only, and a remote video URL cannot be sampled "
            "(URLs are never downloaded); use a local file or video_mode='native'"
        )
    if part.origin == "path":
        _current_file(part, settings)
    frames = _frames_for(part, settings)
    wire: list[dict[str, Any]] = []
    for number, frame in enumerate(frames, start=1):
        stamp = _video.format_timestamp(frame.timestamp_s)
        wire.append({"type": "text", "text": f"Frame {number}/{len(frames)} at {stamp}"})
        wire.append(
            _image_url_part(
                sources.add_bytes(frame.jpeg_bytes, "image/jpeg"), settings.image_detail
            )
        )
    return wire


def clear_media_caches() -> None:
    """Forget processed images and sampled video frames (they are otherwise kept, bounded)."""
    _image_cache.clear()
    _video.clear_frame_cache()
