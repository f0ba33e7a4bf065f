"""Media inputs: detection, eager validation, wire parts, pass-through, missing extras."""

from __future__ import annotations

import base64
import builtins
import hashlib
import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from openai_chatapi._errors import ConfigurationError, MediaProcessingError
from openai_chatapi.media import (
    ImagePart,
    MediaSettings,
    VideoPart,
    _image,
    _input,
    clear_media_caches,
    prepare_image,
    prepare_media,
    prepare_video,
    resolve_video_mode,
    sniff_mime,
    to_wire_parts,
)
from openai_chatapi.media._body import MediaSources, encode_json_body, redacted_preview

from ..support.media_factory import (
    IMAGE_FORMATS,
    VIDEO_FORMATS,
    audio_only_mp4,
    frame_index,
    image_bytes,
    noisy_png,
    video_bytes,
    write_image,
    write_video,
)

LOCAL = "http://127.0.0.1:8080/v1"
OPENAI = "https://api.openai.com/v1"
IMAGE_MIMES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
}
VIDEO_MIMES = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "ogg": "video/ogg",
    "avi": "video/x-msvideo",
}


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    clear_media_caches()
    yield
    clear_media_caches()


def hide_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behave as if the `image` extra were not installed (call after making the images)."""
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    monkeypatch.setitem(sys.modules, "PIL.ImageOps", None)


@pytest.fixture
def no_pyav(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behave as if the `video` extra were not installed."""
    monkeypatch.setitem(sys.modules, "av", None)


def wire(
    parts: list[Any], settings: MediaSettings | None = None, base_url: str = LOCAL
) -> tuple[list[dict[str, Any]], MediaSources]:
    settings = settings or MediaSettings()
    sources = MediaSources()
    out: list[dict[str, Any]] = []
    for part in parts:
        out += to_wire_parts(part, settings, base_url=base_url, sources=sources)
    return out, sources


def materialized(parts: list[Any], **kwargs: Any) -> list[dict[str, Any]]:
    out, sources = wire(parts, **kwargs)
    result: list[dict[str, Any]] = sources.materialize(out)
    return result


def decode_data_url(url: str) -> tuple[str, bytes]:
    header, _, payload = url.partition(",")
    assert header.startswith("data:") and header.endswith(";base64")
    return header[5:-7], base64.b64decode(payload, validate=True)


def error_of(call: Any, *args: Any, **kwargs: Any) -> MediaProcessingError:
    with pytest.raises(MediaProcessingError) as exc:
        call(*args, **kwargs)
    return exc.value


# ---------------------------------------------------------------- detection from bytes


@pytest.mark.parametrize("fmt", sorted(IMAGE_FORMATS))
def test_sniffs_every_image_format(fmt: str) -> None:
    assert sniff_mime(image_bytes(fmt)) == IMAGE_MIMES[fmt]


@pytest.mark.parametrize("container", sorted(VIDEO_FORMATS))
def test_sniffs_every_video_container(container: str) -> None:
    assert sniff_mime(video_bytes(container)[:4096]) == VIDEO_MIMES[container]


@pytest.mark.parametrize(
    ("header", "mime"),
    [
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00", "audio/mp4"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image/heic"),
        (b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00", "image/avif"),
        (b"OggS\x00\x02" + bytes(22) + b"\x01\x1e\x01vorbis", "audio/ogg"),
        (b"FLV\x01\x05\x00\x00\x00\x09", "video/x-flv"),
        (b"hello, I am text", None),
        (b"", None),
    ],
)
def test_sniffs_look_alikes(header: bytes, mime: str | None) -> None:
    assert sniff_mime(header) == mime


# ---------------------------------------------------------------- images


@pytest.mark.parametrize("fmt", ["png", "jpeg", "gif", "webp"])
def test_native_images_are_referenced_and_sent_as_is(tmp_path: Path, fmt: str) -> None:
    path = write_image(tmp_path / f"photo.{fmt}", fmt)
    (part,) = prepare_media(str(path))
    assert part == ImagePart(source=str(path), mime=IMAGE_MIMES[fmt], size=path.stat().st_size)

    (sent,) = materialized([part])
    assert sent["type"] == "image_url"
    assert "detail" not in sent["image_url"]  # only when set
    assert decode_data_url(sent["image_url"]["url"]) == (IMAGE_MIMES[fmt], path.read_bytes())


def test_the_extension_does_not_decide_the_type(tmp_path: Path) -> None:
    path = write_image(tmp_path / "really_a_gif.jpg", "gif")
    (part,) = prepare_media(path)  # a Path works too
    assert part.mime == "image/gif"


@pytest.mark.parametrize("fmt", ["bmp", "tiff"])
def test_other_formats_are_converted_to_png(tmp_path: Path, fmt: str) -> None:
    path = write_image(tmp_path / f"scan.{fmt}", fmt, size=(33, 21))
    (part,) = prepare_media([path])
    assert part.mime == IMAGE_MIMES[fmt]

    (sent,) = materialized([part])
    mime, data = decode_data_url(sent["image_url"]["url"])
    assert mime == "image/png"
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size) == ("PNG", (33, 21))


def test_raw_bytes_are_an_image_too() -> None:
    data = image_bytes("webp")
    (part,) = prepare_media(data)
    assert (part.data, part.source, part.mime, part.size) == (data, None, "image/webp", len(data))
    (sent,) = materialized([part])
    assert decode_data_url(sent["image_url"]["url"]) == ("image/webp", data)


def test_image_detail_is_sent_per_part(tmp_path: Path) -> None:
    settings = MediaSettings(image_detail="high")
    path = write_image(tmp_path / "a.png")
    parts = prepare_media([path, "https://example.org/b.png"], settings=settings)
    assert all(isinstance(p, ImagePart) and p.detail == "high" for p in parts)
    sent, _ = wire(parts, settings)
    assert [s["image_url"]["detail"] for s in sent] == ["high", "high"]
    # A part without its own detail takes the settings of the turn it is sent in.
    sent, _ = wire([ImagePart(source=str(path), mime="image/png", size=1)], settings)
    assert sent[0]["image_url"]["detail"] == "high"


def _downscaled(path: Path, max_side: int) -> tuple[str, str | None, str, tuple[int, int]]:
    """The MIME type, format, mode and size of the image sent for ``path``."""
    settings = MediaSettings(image_max_side=max_side)
    (sent,) = materialized(prepare_media(path, settings=settings), settings=settings)
    mime, data = decode_data_url(sent["image_url"]["url"])
    with Image.open(io.BytesIO(data)) as image:
        return mime, image.format, image.mode, image.size


def test_downscales_to_image_max_side(tmp_path: Path) -> None:
    path = write_image(tmp_path / "big.jpeg", "jpeg", size=(400, 300))
    mime, image_format, _, size = _downscaled(path, 100)
    assert (mime, image_format, size) == ("image/jpeg", "JPEG", (100, 75))


def test_small_images_are_not_re_encoded(tmp_path: Path) -> None:
    path = write_image(tmp_path / "small.png", size=(50, 40))
    settings = MediaSettings(image_max_side=100, image_max_bytes=10_000)
    (sent,) = materialized(prepare_media(path, settings=settings), settings=settings)
    assert decode_data_url(sent["image_url"]["url"])[1] == path.read_bytes()


def test_transparency_survives_downscaling(tmp_path: Path) -> None:
    path = write_image(tmp_path / "logo.png", mode="RGBA", color=(0, 0, 255, 100), size=(200, 200))
    mime, _, mode, size = _downscaled(path, 50)
    assert (mime, mode, size) == ("image/png", "RGBA", (50, 50))


def test_image_max_bytes_is_met(tmp_path: Path) -> None:
    path = tmp_path / "noise.png"
    path.write_bytes(noisy_png())
    settings = MediaSettings(image_max_bytes=20_000)
    assert path.stat().st_size > 20_000
    (sent,) = materialized(prepare_media(path, settings=settings), settings=settings)
    mime, data = decode_data_url(sent["image_url"]["url"])
    assert mime == "image/jpeg" and len(data) <= 20_000


def test_converted_images_are_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "scan.bmp", "bmp")
    (part,) = prepare_media(path)
    calls: list[object] = []
    real = _image._process_image

    def counting(*args: Any) -> Any:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(_image, "_process_image", counting)
    first, second = materialized([part]), materialized([part])
    assert first == second and len(calls) == 1


# ---------------------------------------------------------------- image failures


def test_missing_file(tmp_path: Path) -> None:
    err = error_of(prepare_media, str(tmp_path / "nope.png"))
    assert err.details["reason"] == "file not found"
    assert err.details["path"] == str(tmp_path / "nope.png")
    assert "nope.png" in str(err)


def test_directory(tmp_path: Path) -> None:
    assert error_of(prepare_media, tmp_path).details["reason"] == "is a directory"


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").touch()
    assert error_of(prepare_media, tmp_path / "empty.png").details["reason"] == "file is empty"
    assert error_of(prepare_media, b"").details["reason"] == "no data (0 bytes)"


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "secret.png")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(path))

    # The module's own `open`, so this holds even when the tests run as root.
    monkeypatch.setattr(_input, "open", refuse, raising=False)
    err = error_of(prepare_media, path)
    assert err.details["reason"].startswith("permission denied")
    assert err.details["path"] == str(path)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read anything"
)
def test_unreadable_file_for_real(tmp_path: Path) -> None:
    path = write_image(tmp_path / "secret.png")
    path.chmod(0)
    try:
        assert error_of(prepare_media, path).details["reason"].startswith("permission denied")
    finally:
        path.chmod(0o600)


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("just some text, not pixels")
    assert error_of(prepare_media, path).details["reason"] == "not an image (unrecognised data)"


def test_a_video_is_not_an_image(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.png", "mp4")
    assert error_of(prepare_media, path).details["reason"] == "not an image (the data is video/mp4)"


def test_over_the_size_limit(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png")
    settings = MediaSettings(max_media_bytes=10)
    err = error_of(prepare_media, path, settings=settings)
    assert "over the limit of 10 bytes" in err.details["reason"]


def test_a_bad_item_in_a_list_is_named_and_nothing_is_returned(tmp_path: Path) -> None:
    good = write_image(tmp_path / "good.png")
    err = error_of(prepare_media, [good, tmp_path / "bad.png"])
    assert err.details["index"] == 1 and "bad.png" in str(err)


def test_unsupported_format_without_pillow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "scan.bmp", "bmp")
    png = write_image(tmp_path / "fine.png")
    hide_pillow(monkeypatch)
    err = error_of(prepare_media, path)
    assert "unsupported image format image/bmp" in err.details["reason"]
    assert "pip install 'openai_chatapi[image]'" in str(err)
    assert prepare_media(png)[0].mime == "image/png"  # native formats need no extra


def test_resizing_without_pillow_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_image(tmp_path / "a.png")
    hide_pillow(monkeypatch)
    err = error_of(prepare_media, path, settings=MediaSettings(image_max_side=16))
    assert "'image' extra" in str(err)


def test_wrong_argument_types() -> None:
    with pytest.raises(ConfigurationError):
        prepare_media(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        prepare_media([3.5])  # type: ignore[list-item]


# ---------------------------------------------------------------- URLs and data URLs


def test_urls_and_data_urls_pass_through_unchanged() -> None:
    png = image_bytes("png")
    data_url = "data:image/png;base64," + base64.b64encode(png).decode()
    parts = prepare_media(
        ["https://example.org/cat.jpg", data_url],
        ["https://example.org/clip.mp4"],
    )
    assert [p.origin for p in parts] == ["url", "data_url", "url"]
    assert parts[0].size is None and parts[0].mime == "image/jpeg"
    assert parts[1].size == len(png) and parts[1].mime == "image/png"

    sent, sources = wire(parts)
    assert len(sources) == 0  # nothing to stream, nothing downloaded
    assert sent == [
        {"type": "image_url", "image_url": {"url": "https://example.org/cat.jpg"}},
        {"type": "image_url", "image_url": {"url": data_url}},
        {"type": "video_url", "video_url": {"url": "https://example.org/clip.mp4"}},
    ]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("data:image/png,rawtext", "malformed data URL"),
        ("data:;base64,AAAA", "malformed data URL"),
        ("data:video/mp4;base64,AAAA", "not an image type"),
        ("data:image/png;base64,", "has no data"),
        ("data:image/png;base64,@@@@", "not valid base64"),
        ("data:image/png;base64,AAA", "not valid base64"),
        ("ftp://example.org/a.png", "unsupported URL scheme"),
    ],
)
def test_bad_urls_are_refused(url: str, reason: str) -> None:
    assert reason in error_of(prepare_image, url).details["reason"]


def test_data_url_content_is_checked_against_the_kind() -> None:
    mp4 = base64.b64encode(video_bytes("mp4")).decode()
    err = error_of(prepare_image, f"data:image/png;base64,{mp4}")
    assert "video/mp4" in err.details["reason"]


def test_file_urls_are_local_paths(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png")
    assert prepare_image(path.as_uri()).source == str(path)


# ---------------------------------------------------------------- videos


@pytest.mark.parametrize("container", sorted(VIDEO_FORMATS))
def test_native_video_in_every_container(tmp_path: Path, container: str) -> None:
    path = write_video(tmp_path / f"clip.{container}", container)
    (part,) = prepare_media(video_paths=path, settings=MediaSettings(video_mode="native"))
    assert isinstance(part, VideoPart) and part.mime == VIDEO_MIMES[container]

    (sent,) = materialized([part])
    assert sent["type"] == "video_url"
    assert decode_data_url(sent["video_url"]["url"]) == (VIDEO_MIMES[container], path.read_bytes())


@pytest.mark.parametrize("container", sorted(VIDEO_FORMATS))
def test_frames_mode_sends_timestamped_jpegs(tmp_path: Path, container: str) -> None:
    path = write_video(tmp_path / f"clip.{container}", container)
    settings = MediaSettings(video_mode="frames", video_frames=5, image_detail="low")
    sent = materialized(prepare_media(video_paths=[path], settings=settings), settings=settings)

    assert [p["type"] for p in sent] == ["text", "image_url"] * 5
    assert [p["text"] for p in sent[::2]] == [
        "Frame 1/5 at 00:00.200",
        "Frame 2/5 at 00:00.600",
        "Frame 3/5 at 00:01.000",
        "Frame 4/5 at 00:01.400",
        "Frame 5/5 at 00:01.800",
    ]
    for image_part in sent[1::2]:
        assert image_part["image_url"]["detail"] == "low"
        assert decode_data_url(image_part["image_url"]["url"])[0] == "image/jpeg"


def test_frames_respect_fps_max_and_side(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", "mp4", size=(160, 120))
    settings = MediaSettings(
        video_mode="frames", video_fps=30.0, video_max_frames=5, video_frame_max_side=40
    )
    sent = materialized(prepare_media(video_paths=path, settings=settings), settings=settings)
    images = [decode_data_url(p["image_url"]["url"])[1] for p in sent[1::2]]
    assert len(images) == 5
    with Image.open(io.BytesIO(images[0])) as image:
        assert image.size == (40, 30)


@pytest.mark.parametrize(
    ("mode", "base_url", "expected"),
    [
        ("auto", OPENAI, "frames"),
        ("auto", "https://API.OpenAI.com/v1/", "frames"),
        ("auto", LOCAL, "native"),
        ("auto", "https://eu.api.openai.com/v1", "frames"),  # subdomains count
        ("auto", "https://notapi.openai.com.evil.net/v1", "native"),
        ("native", OPENAI, "native"),
        ("frames", LOCAL, "frames"),
    ],
)
def test_resolve_video_mode(mode: Any, base_url: str, expected: str) -> None:
    assert resolve_video_mode(MediaSettings(video_mode=mode), base_url) == expected


def test_images_only_hosts_is_user_extendable(tmp_path: Path) -> None:
    settings = MediaSettings(images_only_hosts=("api.openai.com", "Images.Example.COM"))
    assert resolve_video_mode(settings, "https://images.example.com/v1") == "frames"
    path = write_video(tmp_path / "clip.webm", "webm")
    (part,) = prepare_media(video_paths=path, settings=settings)
    assert [p["type"] for p in wire([part], settings, LOCAL)[0]] == ["video_url"]
    frames = wire([part], settings, "https://images.example.com/v1")[0]
    assert [p["type"] for p in frames] == ["text", "image_url"] * 8


def test_raw_video_bytes(tmp_path: Path) -> None:
    data = video_bytes("ogg")
    (part,) = prepare_media(video_paths=data)
    assert (part.origin, part.mime, part.size) == ("bytes", "video/ogg", len(data))
    (sent,) = materialized([part])
    assert decode_data_url(sent["video_url"]["url"]) == ("video/ogg", data)
    frames = materialized([part], base_url=OPENAI)
    assert len(frames) == 16


def test_data_url_video_can_be_sampled() -> None:
    data_url = "data:video/webm;base64," + base64.b64encode(video_bytes("webm")).decode()
    (part,) = prepare_media(video_paths=data_url, settings=MediaSettings(video_mode="frames"))
    assert part.source == data_url
    assert len(materialized([part], base_url=OPENAI)) == 16
    assert materialized([part]) == [{"type": "video_url", "video_url": {"url": data_url}}]


# ---------------------------------------------------------------- video failures


def test_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_text("not a movie")
    err = error_of(prepare_media, video_paths=path)
    assert err.details["reason"] == "not a video (unrecognised data)"
    assert err.details["kind"] == "video"


def test_an_image_is_not_a_video(tmp_path: Path) -> None:
    path = write_image(tmp_path / "clip.mp4")
    err = error_of(prepare_media, video_paths=path)
    assert err.details["reason"] == "not a video (the data is image/png)"


def test_unsupported_container(tmp_path: Path) -> None:
    path = tmp_path / "clip.flv"
    path.write_bytes(b"FLV\x01\x05\x00\x00\x00\x09" + bytes(64))
    err = error_of(prepare_media, video_paths=path)
    assert err.details["reason"].startswith("unsupported video container video/x-flv")


def test_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "song.mp4"
    path.write_bytes(audio_only_mp4())
    for mode in ("native", "frames"):
        err = error_of(prepare_media, video_paths=path, settings=MediaSettings(video_mode=mode))
        assert err.details["reason"] == "no video stream"
        assert err.details["path"] == str(path)


def test_corrupt_video(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(5000))
    err = error_of(prepare_media, video_paths=path)
    assert "decodable" in err.details["reason"] or "corrupt" in err.details["reason"]


def test_video_over_the_size_limit(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", "mp4")
    err = error_of(prepare_media, video_paths=path, settings=MediaSettings(max_media_bytes=100))
    assert "max_media_bytes" in err.details["reason"]


def test_remote_video_cannot_be_sampled() -> None:
    url = "https://example.org/clip.mp4"
    err = error_of(prepare_video, url, MediaSettings(video_mode="frames"))
    assert "never downloaded" in err.details["reason"]
    (part,) = prepare_media(video_paths=url)  # auto, endpoint not known yet: accepted
    with pytest.raises(MediaProcessingError, match="images only"):
        wire([part], base_url=OPENAI)
    with pytest.raises(MediaProcessingError, match="never downloaded"):
        prepare_media(video_paths=url, base_url=OPENAI)


def test_without_pyav_native_works_and_frames_names_the_extra(
    tmp_path: Path, no_pyav: None
) -> None:
    path = write_video(tmp_path / "clip.mp4", "mp4")
    (part,) = prepare_media(video_paths=path, settings=MediaSettings(video_mode="native"))
    assert wire([part])[0][0]["type"] == "video_url"

    err = error_of(prepare_media, video_paths=path, settings=MediaSettings(video_mode="frames"))
    assert "pip install 'openai_chatapi[video]'" in str(err)
    assert err.details["extra"] == "video"
    with pytest.raises(MediaProcessingError, match=r"openai_chatapi\[video\]"):
        wire([part], base_url=OPENAI)


# ---------------------------------------------------------------- changes before sending


def test_file_deleted_before_sending(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png")
    (part,) = prepare_media(path)
    path.unlink()
    assert error_of(wire, [part]).details["reason"] == "file not found"


def test_file_grown_over_the_limit_before_sending(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", "mp4")
    settings = MediaSettings(max_media_bytes=path.stat().st_size + 10, video_mode="native")
    (part,) = prepare_media(video_paths=path, settings=settings)
    with path.open("ab") as handle:
        handle.write(bytes(100))
    assert "max_media_bytes" in error_of(wire, [part], settings).details["reason"]


def test_file_replaced_by_another_type_before_sending(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png")
    (part,) = prepare_media(path)
    write_image(path, "jpeg")
    assert "changed since it was attached" in error_of(wire, [part]).details["reason"]


# ---------------------------------------------------------------- history references


def test_parts_round_trip_through_json(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png")
    raw = image_bytes("gif")
    parts = prepare_media([path, raw, "https://example.org/x.png"], video_paths=video_bytes("avi"))
    saved = json.dumps([p.model_dump(mode="json") for p in parts])
    assert base64.b64encode(raw).decode() in saved  # raw bytes are kept, as base64 text

    loaded = [
        (ImagePart if item["type"] == "image" else VideoPart).model_validate(item)
        for item in json.loads(saved)
    ]
    assert loaded == parts
    assert materialized(loaded) == materialized(parts)


def test_part_repr_never_shows_the_bytes() -> None:
    part = prepare_image(image_bytes("png", size=(300, 300)))
    assert "bytes>" in repr(part) and "\\x89PNG" not in repr(part)
    data_url = "data:image/png;base64," + base64.b64encode(image_bytes("png")).decode()
    assert data_url not in repr(prepare_image(data_url))


def test_a_part_needs_exactly_one_origin() -> None:
    with pytest.raises(ValueError):
        ImagePart(mime="image/png")
    with pytest.raises(ValueError):
        ImagePart(source="/a.png", data=b"x", mime="image/png")


def test_settings_validation_and_from_config() -> None:
    with pytest.raises(ConfigurationError):
        MediaSettings(video_mode="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        MediaSettings(video_frames=0)
    with pytest.raises(ConfigurationError):
        MediaSettings(image_detail="ultra")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        MediaSettings(video_fps=-1)

    class Config:
        video_frames = 3
        image_detail = "low"
        unrelated = True

    settings = MediaSettings.from_config(Config())
    assert (settings.video_frames, settings.image_detail, settings.video_max_frames) == (
        3,
        "low",
        32,
    )


# ---------------------------------------------------------------- payload snapshots


def _describe_media(url: str, known: dict[str, str]) -> str:
    """A stable stand-in for base64 content: the input file's name, or what was generated."""
    mime, data = decode_data_url(url)
    digest = hashlib.sha256(data).hexdigest()
    if digest in known:
        return f"<{mime} base64 of {known[digest]}>"
    with Image.open(io.BytesIO(data)) as image:
        described = f"<{mime} base64: {image.format} {image.width}x{image.height}"
    if mime == "image/jpeg":
        described += f", frame #{frame_index(data)}"
    return described + ">"


def _normalise(value: Any, known: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v, known) for v in value]
    if isinstance(value, str) and value.startswith("data:") and ";base64," in value[:64]:
        return _describe_media(value, known)
    return value


def _snapshot_payload(
    tmp_path: Path, settings: MediaSettings, base_url: str
) -> tuple[dict[str, Any], bytes, dict[str, Any]]:
    files = {
        "photo.png": write_image(tmp_path / "photo.png"),
        "gif-named.jpg": write_image(tmp_path / "gif-named.jpg", "gif"),
        "scan.bmp": write_image(tmp_path / "scan.bmp", "bmp", size=(20, 10)),
        "clip.mp4": write_video(tmp_path / "clip.mp4", "mp4"),
    }
    raw_webp = image_bytes("webp")
    small_png = image_bytes("png", size=(2, 2))
    data_url = "data:image/png;base64," + base64.b64encode(small_png).decode()
    known = {hashlib.sha256(p.read_bytes()).hexdigest(): name for name, p in files.items()}
    known[hashlib.sha256(raw_webp).hexdigest()] = "raw webp bytes"
    known[hashlib.sha256(small_png).hexdigest()] = "the data URL's PNG"

    parts = prepare_media(
        [files["photo.png"], raw_webp, files["gif-named.jpg"], files["scan.bmp"], data_url],
        [files["clip.mp4"], "https://example.org/clip.webm"]
        if resolve_video_mode(settings, base_url) == "native"
        else [files["clip.mp4"]],
        settings,
        base_url=base_url,
    )
    content, sources = wire(parts, settings, base_url)
    payload = {
        "model": "vision-model",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What is this?"}, *content]}
        ],
    }
    body = encode_json_body(payload, sources)
    full = sources.materialize(payload)
    return payload, body.read_all(), {"normalised": _normalise(full, known), "full": full}


def test_payload_snapshot_native(tmp_path: Path, snapshot: Any) -> None:
    settings = MediaSettings(image_detail="auto")
    payload, sent, views = _snapshot_payload(tmp_path, settings, LOCAL)
    assert sent == json.dumps(views["full"], ensure_ascii=False, separators=(",", ":")).encode()
    assert views["normalised"] == snapshot
    preview = redacted_preview(payload, None)
    assert ";base64," not in preview and "<video/mp4 base64, " in preview


def test_payload_snapshot_frames(tmp_path: Path, snapshot: Any) -> None:
    settings = MediaSettings(video_frames=4)
    _, sent, views = _snapshot_payload(tmp_path, settings, OPENAI)
    assert sent == json.dumps(views["full"], ensure_ascii=False, separators=(",", ":")).encode()
    assert views["normalised"] == snapshot


def test_builtins_open_is_untouched() -> None:
    # Guard for test_unreadable_file: the patch must stay local to the media module.
    assert _input.__dict__.get("open", builtins.open) is builtins.open


# ---------------------------------------------------------------- more formats and inputs


def test_a_format_only_pillow_knows_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "old.tga"
    Image.new("RGB", (12, 8), (1, 2, 3)).save(path, format="TGA")
    (part,) = prepare_media(path)
    assert part.mime == "image/x-tga"
    (sent,) = materialized([part])
    mime, data = decode_data_url(sent["image_url"]["url"])
    with Image.open(io.BytesIO(data)) as image:
        assert (mime, image.size) == ("image/png", (12, 8))


def test_a_format_pillow_cannot_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "photo.heic"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(100))
    err = error_of(prepare_media, path)
    assert err.details["reason"] == "unsupported image format image/heic (Pillow cannot read it)"


def test_animated_gif_is_downscaled_to_its_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (80, 80), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    settings = MediaSettings(image_max_side=20)
    (sent,) = materialized(prepare_media(path, settings=settings), settings=settings)
    mime, data = decode_data_url(sent["image_url"]["url"])
    with Image.open(io.BytesIO(data)) as image:
        assert (mime, image.size) == ("image/png", (20, 20))
        assert image.convert("RGB").getpixel((10, 10)) == (255, 0, 0)


def test_any_iterable_of_items_is_accepted(tmp_path: Path) -> None:
    paths = [write_image(tmp_path / f"{i}.png") for i in range(3)]
    parts = prepare_media(p for p in paths)
    assert [p.source for p in parts] == [str(p) for p in paths]


def test_images_come_first_then_videos_in_the_order_given(tmp_path: Path) -> None:
    a, b = write_image(tmp_path / "a.png"), write_image(tmp_path / "b.jpeg", "jpeg")
    v1, v2 = write_video(tmp_path / "1.webm", "webm"), write_video(tmp_path / "2.avi", "avi")
    parts = prepare_media([b, a], [v2, v1])
    assert [Path(p.source or "").name for p in parts] == ["b.jpeg", "a.png", "2.avi", "1.webm"]
