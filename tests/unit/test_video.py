"""Frame sampling with PyAV: counts, timestamps, the frames themselves, errors, caching."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from openai_chatapi import video
from openai_chatapi._errors import MediaProcessingError
from openai_chatapi.video import (
    Frame,
    clear_frame_cache,
    format_timestamp,
    frame_times,
    probe_video,
    sample_frames,
)

from ..support.media_factory import (
    VIDEO_FORMATS,
    audio_only_mp4,
    frame_index,
    video_bytes,
    write_video,
)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_frame_cache()
    yield
    clear_frame_cache()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2-second, 10 fps, 20-frame clip in every container."""
    folder = tmp_path_factory.mktemp("clips")
    return {name: write_video(folder / f"clip.{name}", name) for name in VIDEO_FORMATS}


# ---------------------------------------------------------------- which instants


def test_frame_times_take_the_middle_of_equal_segments() -> None:
    assert frame_times(2.0, count=4) == pytest.approx([0.25, 0.75, 1.25, 1.75])
    assert frame_times(10.0, count=1) == pytest.approx([5.0])


def test_frame_times_by_fps_and_the_cap() -> None:
    assert len(frame_times(2.0, fps=2.0)) == 4
    assert len(frame_times(2.1, fps=2.0)) == 5  # a partial second still gets a frame
    assert len(frame_times(600.0, fps=1.0, max_frames=32)) == 32
    assert len(frame_times(10.0, count=100, max_frames=7)) == 7
    assert frame_times(0.0, count=3) == [0.0, 0.0, 0.0]


def test_frame_times_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        frame_times(1.0, count=0)
    with pytest.raises(ValueError):
        frame_times(1.0, fps=0)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "00:00.000"), (1.25, "00:01.250"), (61.0005, "01:01.000"), (3725.5, "1:02:05.500")],
)
def test_format_timestamp(seconds: float, text: str) -> None:
    assert format_timestamp(seconds) == text


# ---------------------------------------------------------------- sampling real videos


@pytest.mark.parametrize("container", sorted(VIDEO_FORMATS))
def test_samples_the_right_frames_in_every_container(
    clips: dict[str, Path], container: str
) -> None:
    frames = sample_frames(clips[container], count=5, max_side=None)

    # Targets 0.2, 0.6, 1.0, 1.4, 1.8 s land exactly on frames 2, 6, 10, 14, 18.
    assert [frame_index(f.jpeg_bytes) for f in frames] == [2, 6, 10, 14, 18]
    assert [f.timestamp_s for f in frames] == pytest.approx([0.2, 0.6, 1.0, 1.4, 1.8], abs=1e-6)
    assert all((f.width, f.height) == (64, 48) for f in frames)


def test_default_count_is_eight_evenly_spaced(clips: dict[str, Path]) -> None:
    frames = sample_frames(clips["mp4"])
    assert len(frames) == 8
    times = [f.timestamp_s for f in frames]
    assert times == sorted(times)
    assert all(abs(t - (i + 0.5) * 0.25) <= 0.05 + 1e-9 for i, t in enumerate(times))


def test_frames_are_jpeg_and_downscaled_to_max_side(clips: dict[str, Path]) -> None:
    frames = sample_frames(clips["webm"], count=2, max_side=32)
    for frame in frames:
        with Image.open(io.BytesIO(frame.jpeg_bytes)) as image:
            assert image.format == "JPEG"
            assert image.size == (32, 24) == (frame.width, frame.height)


def test_fps_mode_and_max_frames(clips: dict[str, Path]) -> None:
    assert len(sample_frames(clips["mp4"], fps=2.0)) == 4
    assert len(sample_frames(clips["mp4"], fps=50.0, max_frames=6)) == 6


def test_long_video_is_sampled_by_seeking(tmp_path: Path) -> None:
    # 60 s at 2 fps with a keyframe every 4 frames: targets 10 s apart force seeks.
    path = write_video(tmp_path / "long.mp4", "mp4", frames=120, fps=2, gop=4)
    frames = sample_frames(path, count=6)
    assert [f.timestamp_s for f in frames] == pytest.approx([5, 15, 25, 35, 45, 55])
    assert [frame_index(f.jpeg_bytes) for f in frames] == [10, 30, 50, 70, 90, 110]


def test_bytes_and_path_give_the_same_frames(clips: dict[str, Path]) -> None:
    from_path = sample_frames(clips["avi"], count=3)
    from_bytes = sample_frames(clips["avi"].read_bytes(), count=3)
    assert [f.timestamp_s for f in from_path] == [f.timestamp_s for f in from_bytes]
    assert [frame_index(f.jpeg_bytes) for f in from_path] == [
        frame_index(f.jpeg_bytes) for f in from_bytes
    ]


def test_probe_describes_the_video(clips: dict[str, Path]) -> None:
    info = probe_video(clips["mp4"])
    assert info.duration_s == pytest.approx(2.0)
    assert (info.width, info.height) == (64, 48)
    assert info.frame_rate == pytest.approx(10.0)


def test_frame_repr_hides_the_jpeg() -> None:
    frame = Frame(timestamp_s=1.5, jpeg_bytes=b"\xff" * 5000, width=4, height=3)
    assert "5000 bytes" in repr(frame) and "\\xff" not in repr(frame)


# ---------------------------------------------------------------- failures


def _reason(exc: pytest.ExceptionInfo[MediaProcessingError]) -> str:
    return str(exc.value.details["reason"])


def test_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "sound.mp4"
    path.write_bytes(audio_only_mp4())
    with pytest.raises(MediaProcessingError) as exc:
        sample_frames(path)
    assert _reason(exc) == "no video stream"
    assert exc.value.details["path"] == str(path)
    assert str(path) in str(exc.value)


def test_garbage_after_a_valid_header_is_not_decodable(tmp_path: Path) -> None:
    path = tmp_path / "fake.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + os.urandom(4096))
    with pytest.raises(MediaProcessingError) as exc:
        sample_frames(path)
    assert "decodable" in _reason(exc) or "corrupt" in _reason(exc)


def test_truncated_video_fails_cleanly(clips: dict[str, Path]) -> None:
    data = clips["mp4"].read_bytes()
    with pytest.raises(MediaProcessingError):
        sample_frames(data[: len(data) // 3])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaProcessingError) as exc:
        sample_frames(tmp_path / "nope.mp4")
    assert _reason(exc) == "file not found"


def test_missing_pyav_names_the_extra(
    clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` raise ImportError
    with pytest.raises(MediaProcessingError) as exc:
        sample_frames(clips["mp4"])
    assert "pip install 'openai_chatapi[video]'" in str(exc.value)
    assert exc.value.details["extra"] == "video"


# ---------------------------------------------------------------- caching


def test_frames_are_cached_per_file_identity_and_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_video(tmp_path / "c.mp4", "mp4")
    decodes: list[Any] = []
    real = video._sample

    def counting(*args: Any, **kwargs: Any) -> list[Frame]:
        decodes.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(video, "_sample", counting)
    first = sample_frames(path, count=3)
    assert sample_frames(path, count=3) == first
    assert len(decodes) == 1  # a later turn does not decode again
    sample_frames(path, count=4)
    assert len(decodes) == 2  # other settings, other frames

    path.write_bytes(video_bytes("mp4", frames=10))  # the file changed: sample it again
    changed = sample_frames(path, count=3)
    assert len(decodes) == 3
    assert [f.timestamp_s for f in changed] != [f.timestamp_s for f in first]
