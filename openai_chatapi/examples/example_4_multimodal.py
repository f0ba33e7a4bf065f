"""Images and video: a picture, then a short clip sent natively and as sampled frames.

Run: ``python -m openai_chatapi.examples.example_4_multimodal [IMAGE] [VIDEO]``
(uses OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL, or the embedded local model).

Without arguments it draws a small picture and writes a two-second clip in a temporary
folder (Pillow and PyAV: ``pip install 'openai_chatapi[image,video]'``). Each step first
shows the user message as it goes on the wire, base64 elided, then the answer.

The embedded local model (SmolLM2 on llama.cpp) reads text only, and llama.cpp's server
refuses a message made of content parts: there the example shows the error and what it
means. Point it at a vision model (``OPENAI_BASE_URL``) to get real answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from openai_chatapi import (
    APIStatusError,
    ChatAgent,
    ChatAPIException,
    ChatMessage,
    MediaProcessingError,
    ModelConfig,
    RuntimeConfig,
    TextPart,
    TokenLimitError,
)
from openai_chatapi.examples._endpoint import endpoint
from openai_chatapi.media import MediaSettings, prepare_media

IMAGE_QUESTION = "What shape and colour do you see in this picture? One sentence."
VIDEO_QUESTION = "What moves in this clip, and in which direction? One sentence."


def make_image(path: Path) -> Path:
    """A red disc on a white background (PNG)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (256, 192), "white")
    ImageDraw.Draw(image).ellipse((78, 46, 178, 146), fill=(220, 30, 30))
    image.save(path, format="PNG")
    return path


def make_video(path: Path, seconds: int = 2, fps: int = 12) -> Path:
    """A blue square crossing a white frame from left to right (MP4)."""
    import av
    from PIL import Image, ImageDraw

    width, height = 160, 96
    with av.open(str(path), mode="w", format="mp4") as container:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        total = seconds * fps
        for i in range(total):
            image = Image.new("RGB", (width, height), "white")
            left = 8 + (width - 48) * i // (total - 1)
            ImageDraw.Draw(image).rectangle((left, 32, left + 32, 64), fill=(30, 60, 220))
            frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def wire_preview(
    text: str, runtime: RuntimeConfig, base_url: str, *, image: Path | None, video: Path | None
) -> list[str]:
    """The user message's content parts as the agent sends them, base64 shown as its size."""
    settings = MediaSettings.from_config(runtime)
    parts = prepare_media(image, video, settings, base_url=base_url)  # checks every file now
    message = ChatMessage(role="user", content=[TextPart(text=text), *parts])
    wire = message.to_wire(media_settings=settings, base_url=base_url)
    return [json.dumps(_elide_base64(part))[:160] for part in wire["content"]]


def _elide_base64(value: Any) -> Any:
    """``value`` with each base64 ``data:`` URL replaced by its type and decoded size."""
    if isinstance(value, dict):
        return {key: _elide_base64(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_elide_base64(item) for item in value]
    if isinstance(value, str) and value.startswith("data:") and ";base64," in value[:100]:
        head, _, data = value.partition(";base64,")
        return f"<{head[5:]} base64, {len(data) * 3 // 4 - data[-2:].count('=')} bytes>"
    return value


async def step(
    title: str,
    config: ModelConfig,
    runtime: RuntimeConfig,
    text: str,
    *,
    local: bool,
    image: Path | None = None,
    video: Path | None = None,
) -> None:
    print(f"\n=== {title}")
    try:
        preview = wire_preview(text, runtime, config.api_base_url, image=image, video=video)
    except MediaProcessingError as exc:
        print(f"cannot use this medium: {exc}")
        return
    print("user message content parts:")
    for line in preview:
        print(f"  {line}")
    async with ChatAgent(config, runtime) as agent:
        try:
            answer = await agent.chat(text, image_paths=image, video_paths=video)
        except APIStatusError as exc:
            print(f"the server refused it: {str(exc).splitlines()[0][:160]}")
            if local:
                print(f"  (expected: {_local_refusal(exc)}; a vision model would answer)")
            elif video is not None and runtime.video_mode == "native":
                print("  (this endpoint does not take video_url parts: use video_mode='frames')")
            return
        except ChatAPIException as exc:
            print(f"request failed: {type(exc).__name__}: {exc}")
            return
    print(f"assistant: {answer.strip()}")
    if local:
        print(
            "  (the local model reads text only: llama.cpp rendered the parts as text,\n"
            "   so this answer is not about the media)"
        )


def _local_refusal(exc: APIStatusError) -> str:
    """Why the text-only local llama.cpp server refused a multimodal message."""
    if isinstance(exc, TokenLimitError):
        return (
            "llama.cpp's text-only chat template pasted the images' base64 into the\n"
            "   prompt as text, which overflows the small model's context"
        )
    return "llama.cpp's server does not know this content part type (it answers 500)"


async def main(argv: Sequence[str] = ()) -> int:
    if len(argv) > 2:
        print(__doc__)
        return 2
    given = [Path(arg) for arg in argv]
    with tempfile.TemporaryDirectory(prefix="openai_chatapi_example_") as folder:
        try:
            image = given[0] if given else make_image(Path(folder) / "disc.png")
            video = given[1] if len(given) > 1 else make_video(Path(folder) / "square.mp4")
        except ImportError as exc:
            print(f"{exc.name} is needed to make the sample media: ", end="")
            print("pip install 'openai_chatapi[image,video]' (or give IMAGE VIDEO paths)")
            return 1
        local = not os.environ.get("OPENAI_BASE_URL")
        async with endpoint(temperature=0.2, max_tokens=60) as config:
            base = RuntimeConfig(
                enable_logging=False, image_detail="low", video_frames=4, video_frame_max_side=256
            )
            await step("an image", config, base, IMAGE_QUESTION, local=local, image=image)
            native = dataclasses.replace(base, video_mode="native")
            await step(
                "a video, sent as is (video_url)",
                config,
                native,
                VIDEO_QUESTION,
                local=local,
                video=video,
            )
            frames = dataclasses.replace(base, video_mode="frames")
            await step(
                "the same video as 4 timestamped frames (image_url parts)",
                config,
                frames,
                VIDEO_QUESTION,
                local=local,
                video=video,
            )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
