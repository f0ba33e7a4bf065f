"""Real, tiny media made on the fly with Pillow and PyAV, for the media tests.

Video frame ``i`` is a flat colour that encodes ``i`` (red = low 4 bits, green = high
bits), so a test can tell from a decoded JPEG which frame the sampler picked.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image

# container name -> (PyAV format, preferred encoders); Theora is rarely built, VP8 in Ogg is.
VIDEO_FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mp4": ("mp4", ("libx264", "mpeg4")),
    "mov": ("mov", ("mjpeg", "libx264", "mpeg4")),
    "webm": ("webm", ("libvpx", "libvpx-vp9")),
    "ogg": ("ogg", ("libtheora", "libvpx")),
    "avi": ("avi", ("mjpeg", "mpeg4")),
    "mkv": ("matroska", ("libx264", "mpeg4")),
}

IMAGE_FORMATS = {
    "png": "PNG",
    "jpeg": "JPEG",
    "gif": "GIF",
    "webp": "WEBP",
    "bmp": "BMP",
    "tiff": "TIFF",
}


def image_bytes(
    fmt: str = "png",
    size: tuple[int, int] = (40, 30),
    color: tuple[int, ...] = (200, 30, 30),
    mode: str = "RGB",
) -> bytes:
    """A flat-colour image in Pillow format ``fmt`` (a key of IMAGE_FORMATS)."""
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format=IMAGE_FORMATS[fmt])
    return out.getvalue()


def noisy_png(size: tuple[int, int] = (300, 300), seed: int = 1) -> bytes:
    """A PNG that compresses badly (pseudo-random pixels), for byte-limit tests."""
    state = seed
    pixels = bytearray()
    for _ in range(size[0] * size[1] * 3):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        pixels.append(state >> 23)
    out = io.BytesIO()
    Image.frombytes("RGB", size, bytes(pixels)).save(out, format="PNG")
    return out.getvalue()


def write_image(path: Path, fmt: str = "png", **kwargs: Any) -> Path:
    path.write_bytes(image_bytes(fmt, **kwargs))
    return path


def frame_color(index: int) -> tuple[int, int, int]:
    return ((index % 16) * 16 + 8, (index // 16) * 16 + 8, 128)


def frame_index(jpeg: bytes) -> int:
    """Which frame a sampled JPEG shows (inverse of ``frame_color``)."""
    with Image.open(io.BytesIO(jpeg)) as image:
        red, green, _ = image.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    return int(round((red - 8) / 16) + 16 * round((green - 8) / 16))


def _encoder(container: str) -> tuple[str, str]:
    fmt, codecs = VIDEO_FORMATS[container]
    for codec in codecs:
        try:
            av.codec.Codec(codec, "w")
        except Exception:
            continue
        return fmt, codec
    raise RuntimeError(f"no encoder available for {container}")


def video_bytes(
    container: str = "mp4",
    *,
    frames: int = 20,
    fps: int = 10,
    size: tuple[int, int] = (64, 48),
    gop: int | None = None,
) -> bytes:
    """A short silent video whose frame ``i`` has colour ``frame_color(i)``."""
    fmt, codec = _encoder(container)
    out = io.BytesIO()
    with av.open(out, mode="w", format=fmt) as output:
        stream = output.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height = size
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
        for i in range(frames):
            frame = av.VideoFrame.from_image(Image.new("RGB", size, frame_color(i)))  # type: ignore[no-untyped-call]
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return out.getvalue()


def write_video(path: Path, container: str = "mp4", **kwargs: Any) -> Path:
    path.write_bytes(video_bytes(container, **kwargs))
    return path


def audio_only_mp4() -> bytes:
    """An mp4 with one AAC audio stream and no video (an 'ftyp' file that is not a video)."""
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as output:
        stream = output.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for i in range(8):
            frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
            frame.planes[0].update(bytes(4096))
            frame.sample_rate = 16000
            frame.pts = i * 1024
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return out.getvalue()
