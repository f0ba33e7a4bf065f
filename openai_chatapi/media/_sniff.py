"""What media a run of bytes holds: the first ~4 KiB mapped to a media type.

Pure functions over bytes, no I/O: :func:`sniff_mime` knows the images, videos, audio and
documents this package sends, plus common formats it converts or refuses by name.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._parts import AudioFormat

__all__ = [
    "AUDIO_ALIASES",
    "AUDIO_MIME_TYPES",
    "FILE_MIME_TYPES",
    "HEADER_BYTES",
    "IMAGE_MIME_TYPES",
    "SNIFFED_TYPES",
    "VIDEO_MIME_TYPES",
    "sniff_mime",
]

#: Bytes read from the start of a file to tell its type.
HEADER_BYTES = 4096

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
AUDIO_MIME_TYPES: Mapping[str, AudioFormat] = {"audio/wav": "wav", "audio/mpeg": "mp3"}
#: Documents accepted for ``file`` parts (detected from the bytes).
FILE_MIME_TYPES = frozenset({"application/pdf"})
AUDIO_ALIASES = {"audio/x-wav": "audio/wav", "audio/wave": "audio/wav", "audio/mp3": "audio/mpeg"}

# Types sniff_mime recognises by itself (others come from Pillow).
SNIFFED_TYPES = (
    IMAGE_MIME_TYPES
    | VIDEO_MIME_TYPES
    | FILE_MIME_TYPES
    | set(AUDIO_MIME_TYPES)
    | {"image/bmp", "image/tiff"}
)


# Formats told by a fixed prefix alone (no two of these prefixes overlap).
_MAGIC = (
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"8BPS", "image/vnd.adobe.photoshop"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "image/jp2"),
    (b"qoif", "image/qoi"),
    (b"FLV\x01", "video/x-flv"),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "video/x-ms-asf"),
    (b"\x00\x00\x01\xba", "video/mpeg"),
    (b"fLaC", "audio/flac"),
    (b"ID3", "audio/mpeg"),
    (b"%PDF-", "application/pdf"),
)


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
    for magic, mime in _MAGIC:
        if header.startswith(magic):
            return mime
    if header[:2] == b"BM" and len(header) >= 18 and header[14] in (12, 40, 52, 56, 64, 108, 124):
        return "image/bmp"
    if header[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00") and len(header) >= 6:
        return "image/x-icon" if 0 < int.from_bytes(header[4:6], "little") < 256 else None
    if len(header) > 376 and header[0] == header[188] == header[376] == 0x47:
        return "video/mp2t"
    if _mp3_frame(header):
        return "audio/mpeg"
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
