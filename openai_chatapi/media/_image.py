"""Images through Pillow (the optional ``image`` extra): reading, converting, downscaling.

:func:`converted` gives the bytes an image is sent as when ``MediaSettings`` ask for a
conversion (a format the API does not take, over ``image_max_side`` or
``image_max_bytes``), or None when it can be sent as it is; results are cached.
"""

from __future__ import annotations

import io
from collections.abc import Hashable
from types import ModuleType
from typing import Any

from .._errors import MediaProcessingError
from .._parts import ImagePart
from ._cache import LRU, identity
from ._failures import import_extra, part_error
from ._input import Item
from ._settings import MediaSettings
from ._sniff import IMAGE_MIME_TYPES

__all__ = [
    "clear_image_cache",
    "converted",
    "import_pil",
    "needs_pillow",
    "open_image",
    "pil_available",
    "pillow_mime",
]

_MiB = 1024 * 1024


def import_pil() -> ModuleType:
    """``PIL.Image``, or ``MediaProcessingError`` naming the ``image`` extra."""
    return import_extra("PIL.Image", "image", "converting or resizing images")


def pil_available() -> bool:
    try:
        import_pil()
    except MediaProcessingError:
        return False
    return True


def open_image(image_module: ModuleType, item: Item | ImagePart) -> Any:
    """Open an image with Pillow (headers only), mapping its errors to MediaProcessingError."""
    if isinstance(item, ImagePart):
        target: Any = io.BytesIO(item.data) if item.data is not None else item.source
        fail = part_error(item)
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


def needs_pillow(mime: str, size: int, settings: MediaSettings) -> bool:
    return (
        mime not in IMAGE_MIME_TYPES
        or settings.image_max_side is not None
        or (settings.image_max_bytes is not None and size > settings.image_max_bytes)
    )


def pillow_mime(entry: Item) -> str | None:
    image_module = import_pil()
    try:
        image = open_image(image_module, entry)
    except MediaProcessingError:
        return None
    with image:
        fmt = (image.format or "").lower()
        mime = image_module.MIME.get(image.format or "") or (f"image/{fmt}" if fmt else None)
        return str(mime) if mime else None


_cache: LRU[tuple[str, bytes]] = LRU(64, 64 * _MiB, size=lambda value: len(value[1]))


def clear_image_cache() -> None:
    """Forget every converted image (they are otherwise kept, bounded)."""
    _cache.clear()


def converted(part: ImagePart, size: int, settings: MediaSettings) -> tuple[str, bytes] | None:
    """``(mime, bytes)`` to send instead of ``part``'s own data, or None to send it as is."""
    if not needs_pillow(part.mime, size, settings):
        return None
    key = _image_key(part, settings)
    processed = _cache.get(key)
    if processed is None:
        processed = _process_image(part, size, settings)
        if processed is not None:
            _cache.put(key, processed)
    return processed


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
    image_module = import_pil()
    from PIL import ImageOps

    fail = part_error(part)
    with open_image(image_module, part) as opened:
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
    source = part.data if part.data is not None else part.source
    assert source is not None
    return (identity(source), settings.image_max_side, settings.image_max_bytes)
