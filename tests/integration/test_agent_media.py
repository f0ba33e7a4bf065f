"""Images and videos through the real agent: what goes on the wire, what stays in history.

Every test drives ``ChatAgent.chat`` / ``chat_stream`` (and the event stream) against the
fake server, or a real loopback HTTP server where the bytes on the socket matter. The media
are real and tiny, made by ``media_factory`` (Pillow and PyAV).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
import socket
import sys
import urllib.request
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PIL", reason="the media tests need the 'image' extra (Pillow)")
pytest.importorskip("av", reason="the media tests need the 'video' extra (PyAV)")

from PIL import Image

from openai_chatapi import (
    ChatAgent,
    ChatMessage,
    ImagePart,
    MediaProcessingError,
    ModelConfig,
    RuntimeConfig,
    TextPart,
    VideoPart,
)
from openai_chatapi import media as media_module
from openai_chatapi._transport import logger as package_logger
from openai_chatapi.media import _history as media_history
from openai_chatapi.media import clear_media_caches

from ..conftest import AgentFactory
from ..support import media_factory as factory
from ..support.fakes import API_KEY, FakeServer, SleepRecorder, ask, completion, text_chunks
from ..support.loopback import Connection, LoopbackServer, Request, response_bytes

OPENAI = "https://api.openai.com/v1"
QUESTION = "What is in these? Qu'y a-t-il ? 猫 🐱"  # non-ASCII: Content-Length counts bytes
HOW = ["chat", "stream", "events"]


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    clear_media_caches()
    yield
    clear_media_caches()


# ---------------------------------------------------------------- helpers


def sent(server: FakeServer, index: int = -1) -> OrderedDict[str, Any]:
    """A request body as received, in wire order."""
    body: OrderedDict[str, Any] = json.loads(
        server.requests[index].content, object_pairs_hook=OrderedDict
    )
    return body


def user_content(server: FakeServer, index: int = -1) -> list[dict[str, Any]]:
    """The content parts of the last user message of one request."""
    users = [m for m in sent(server, index)["messages"] if m["role"] == "user"]
    content: list[dict[str, Any]] = users[-1]["content"]
    return content


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def decode(url: str) -> tuple[str, bytes]:
    """(mime, bytes) of a base64 data URL; the base64 must be strictly valid."""
    header, _, payload = url.partition(",")
    assert header.startswith("data:") and header.endswith(";base64"), header[:80]
    return header[5:-7], base64.b64decode(payload, validate=True)


def url_of(part: dict[str, Any]) -> str:
    url: str = part[part["type"]]["url"]
    return url


def padded_video(path: Path, extra_bytes: int) -> Path:
    """A valid mp4 followed by a ``free`` box of random bytes (several base64 chunks long)."""
    head = factory.video_bytes("mp4")
    filler = hashlib.shake_256(b"filler").digest(extra_bytes)
    path.write_bytes(head + (len(filler) + 8).to_bytes(4, "big") + b"free" + filler)
    return path


def compact(payload: Any) -> bytes:
    """JSON as the client sends it: compact separators, UTF-8, non-ASCII kept."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "photo.png": factory.write_image(tmp_path / "photo.png"),
        "snap.jpg": factory.write_image(tmp_path / "snap.jpg", "jpeg", color=(20, 120, 220)),
        "clip.mp4": factory.write_video(tmp_path / "clip.mp4", "mp4"),
        "clip.webm": factory.write_video(tmp_path / "clip.webm", "webm"),
    }


# ---------------------------------------------------------------- the user message's parts


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("as_type", [str, Path])
async def test_one_image_path_becomes_text_then_image(
    make_agent: AgentFactory,
    server: FakeServer,
    files: dict[str, Path],
    how: str,
    as_type: Callable[[Path], Any],
) -> None:
    agent = await make_agent()
    assert await ask(agent, server, how, "What is this?", image_paths=as_type(files["photo.png"]))
    content = user_content(server)
    assert [p["type"] for p in content] == ["text", "image_url"]
    assert content[0] == {"type": "text", "text": "What is this?"}
    assert decode(url_of(content[1])) == ("image/png", files["photo.png"].read_bytes())
    assert "detail" not in content[1]["image_url"]  # only sent when configured


@pytest.mark.parametrize("how", HOW)
async def test_lists_are_sent_text_first_then_media_in_the_order_given(
    make_agent: AgentFactory, server: FakeServer, files: dict[str, Path], how: str
) -> None:
    gif = factory.image_bytes("gif", color=(10, 200, 10))
    webp_url = data_url("image/webp", factory.image_bytes("webp"))
    agent = await make_agent(video_mode="native")
    await ask(
        agent,
        server,
        how,
        QUESTION,
        image_paths=[
            str(files["photo.png"]),
            files["snap.jpg"],
            gif,
            webp_url,
            "https://images.example.com/cat.jpg",
        ],
        video_paths=[
            files["clip.webm"],
            str(files["clip.mp4"]),
            "https://videos.example.com/a.mp4",
        ],
    )
    content = user_content(server)
    assert content[0] == {"type": "text", "text": QUESTION}
    assert [p["type"] for p in content[1:]] == ["image_url"] * 5 + ["video_url"] * 3
    urls = [url_of(p) for p in content[1:]]
    assert decode(urls[0]) == ("image/png", files["photo.png"].read_bytes())
    assert decode(urls[1]) == ("image/jpeg", files["snap.jpg"].read_bytes())
    assert decode(urls[2]) == ("image/gif", gif)
    assert urls[3] == webp_url
    assert urls[4] == "https://images.example.com/cat.jpg"
    assert decode(urls[5]) == ("video/webm", files["clip.webm"].read_bytes())
    assert decode(urls[6]) == ("video/mp4", files["clip.mp4"].read_bytes())
    assert urls[7] == "https://videos.example.com/a.mp4"


@pytest.mark.parametrize("how", HOW)
async def test_raw_bytes_are_typed_from_their_content(
    make_agent: AgentFactory, server: FakeServer, how: str
) -> None:
    jpeg, webm = factory.image_bytes("jpeg"), factory.video_bytes("webm")
    agent = await make_agent(video_mode="native")
    await ask(agent, server, how, "bytes", image_paths=jpeg, video_paths=[webm])
    _, image, video = user_content(server)
    assert decode(url_of(image)) == ("image/jpeg", jpeg)
    assert decode(url_of(video)) == ("video/webm", webm)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail any attempt to open a real connection (the fake server needs none)."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise AssertionError(f"network access attempted: {args[:2]!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return attempts


@pytest.mark.parametrize("how", HOW)
async def test_http_urls_pass_through_and_are_never_downloaded(
    make_agent: AgentFactory, server: FakeServer, no_network: list[str], how: str
) -> None:
    image = "https://images.example.com/photos/cat.jpg?size=large&v=2"
    video = "http://videos.example.com/clips/dog.mp4"
    agent = await make_agent(video_mode="native", image_detail="low")
    await ask(agent, server, how, "look", image_paths=image, video_paths=video)
    assert user_content(server)[1:] == [
        {"type": "image_url", "image_url": {"url": image, "detail": "low"}},
        {"type": "video_url", "video_url": {"url": video}},
    ]
    assert len(server.requests) == 1 and no_network == []
    part = agent.history[0].content[1]  # type: ignore[index]
    assert isinstance(part, ImagePart) and part.source == image and part.origin == "url"


@pytest.mark.parametrize("how", HOW)
async def test_data_urls_pass_through_unchanged(
    make_agent: AgentFactory, server: FakeServer, how: str
) -> None:
    image = data_url("image/png", factory.image_bytes("png", size=(3, 2)))
    video = data_url("video/mp4", factory.video_bytes("mp4", frames=5))
    agent = await make_agent(video_mode="native")
    await ask(agent, server, how, "inline", image_paths=[image], video_paths=video)
    assert [url_of(p) for p in user_content(server)[1:]] == [image, video]


# ---------------------------------------------------------------- image_detail and video modes


@pytest.mark.parametrize("detail", ["auto", "low", "high"])
async def test_image_detail_is_sent_on_every_image_part(
    make_agent: AgentFactory, server: FakeServer, files: dict[str, Path], detail: str
) -> None:
    agent = await make_agent(image_detail=detail, video_mode="frames", video_frames=2)
    await ask(
        agent,
        server,
        "chat",
        "details",
        image_paths=[
            files["photo.png"],
            factory.image_bytes("gif"),
            "https://images.example.com/cat.jpg",
            data_url("image/png", factory.image_bytes("png")),
        ],
        video_paths=files["clip.mp4"],
    )
    images = [p for p in user_content(server) if p["type"] == "image_url"]
    assert len(images) == 4 + 2  # four images, two sampled frames
    assert all(p["image_url"]["detail"] == detail for p in images)


@pytest.mark.parametrize("how", HOW)
async def test_native_mode_sends_the_video_as_a_video_url_part(
    make_agent: AgentFactory, server: FakeServer, files: dict[str, Path], how: str
) -> None:
    agent = await make_agent(video_mode="native")
    await ask(agent, server, how, "watch", video_paths=files["clip.mp4"])
    content = user_content(server)
    assert [p["type"] for p in content] == ["text", "video_url"]
    assert set(content[1]) == {"type", "video_url"} and set(content[1]["video_url"]) == {"url"}
    assert decode(url_of(content[1])) == ("video/mp4", files["clip.mp4"].read_bytes())


@pytest.mark.parametrize("how", HOW)
async def test_frames_mode_sends_timestamped_jpeg_frames(
    make_agent: AgentFactory, server: FakeServer, files: dict[str, Path], how: str
) -> None:
    agent = await make_agent(video_mode="frames", video_frames=4)
    await ask(agent, server, how, "watch", video_paths=files["clip.mp4"])
    content = user_content(server)
    assert content[0] == {"type": "text", "text": "watch"}
    frames = content[1:]
    assert [p["type"] for p in frames] == ["text", "image_url"] * 4
    labels = [p["text"] for p in frames[0::2]]
    assert [label.split(" at ")[0] for label in labels] == [f"Frame {i}/4" for i in range(1, 5)]
    stamps = [label.split(" at ")[1] for label in labels]
    assert stamps == sorted(stamps) and all(len(s) == len("00:00.000") for s in stamps)
    picked = []
    for part in frames[1::2]:
        mime, jpeg = decode(url_of(part))
        assert mime == "image/jpeg" and jpeg.startswith(b"\xff\xd8\xff")
        picked.append(factory.frame_index(jpeg))
    assert picked == sorted(set(picked)) and picked[0] >= 0 and picked[-1] < 20


AUTO_CASES = [
    pytest.param(OPENAI, None, "frames", id="openai"),
    pytest.param("https://api.openai.com:443/v1/", None, "frames", id="openai-with-port"),
    pytest.param("http://fake.test/v1", None, "native", id="other-host"),
    pytest.param("http://127.0.0.1:8080/v1", None, "native", id="local"),
    pytest.param("https://vision.example/v1", ("vision.example",), "frames", id="user-host"),
    pytest.param(
        "https://eu.vision.example/v1", ("vision.example",), "frames", id="user-subdomain"
    ),
    pytest.param("https://notvision.example/v1", ("vision.example",), "native", id="look-alike"),
]


@pytest.mark.parametrize(("base_url", "extra_hosts", "expected"), AUTO_CASES)
async def test_auto_mode_picks_frames_for_images_only_hosts(
    make_agent: AgentFactory,
    server: FakeServer,
    files: dict[str, Path],
    base_url: str,
    extra_hosts: tuple[str, ...] | None,
    expected: str,
) -> None:
    runtime: dict[str, Any] = {"video_frames": 2}
    if extra_hosts is not None:
        runtime["images_only_hosts"] = ("api.openai.com", *extra_hosts)
    agent = await make_agent(api_base_url=base_url, **runtime)
    await ask(agent, server, "chat", "auto", video_paths=files["clip.mp4"])
    kinds = [p["type"] for p in user_content(server)[1:]]
    assert kinds == (["video_url"] if expected == "native" else ["text", "image_url"] * 2)


# ---------------------------------------------------------------- failures: nothing is sent


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


FailureSetup = Callable[[Path, pytest.MonkeyPatch], dict[str, Any]]


def _missing(tmp: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    return {"image_paths": tmp / "nope.png"}


def _directory(tmp: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    (tmp / "album").mkdir()
    return {"image_paths": str(tmp / "album")}


def _empty(tmp: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    (tmp / "empty.png").touch()
    return {"image_paths": tmp / "empty.png"}


def _not_an_image(tmp: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    (tmp / "notes.png").write_text("just words")
    return {"image_paths": tmp / "notes.png"}


def _image_too_big(tmp: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    return {"image_paths": factory.write_image(tmp / "big.png"), "_max": 10}


def _video_too_big(tmp: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    return {"video_paths": factory.write_video(tmp / "big.mp4"), "_max": 100}


def _corrupt_video(tmp: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    path = tmp / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(5000))
    return {"video_paths": path, "_mode": "native"}


def _corrupt_video_frames(tmp: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    return {**_corrupt_video(tmp, mp), "_mode": "frames"}


def _unsupported_container(tmp: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    path = tmp / "clip.flv"
    path.write_bytes(b"FLV\x01\x05\x00\x00\x00\x09" + bytes(64))
    return {"video_paths": path}


def _not_a_video(tmp: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    return {"video_paths": factory.write_image(tmp / "clip.mp4")}


def _no_video_stream(tmp: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    (tmp / "song.mp4").write_bytes(factory.audio_only_mp4())
    return {"video_paths": tmp / "song.mp4"}


def _frames_without_pyav(tmp: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    path = factory.write_video(tmp / "clip.mp4")
    _hide(mp, "av")
    return {"video_paths": path, "_mode": "frames"}


def _conversion_without_pillow(tmp: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    path = factory.write_image(tmp / "scan.bmp", "bmp")
    _hide(mp, "PIL", "PIL.Image", "PIL.ImageOps")
    return {"image_paths": path}


def _bad_second_item(tmp: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    return {"image_paths": [factory.write_image(tmp / "good.png"), tmp / "gone.png"]}


def _bad_data_url(tmp: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    return {"image_paths": data_url("image/png", factory.video_bytes("mp4"))}


def _remote_video_for_images_only_host(tmp: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    return {"video_paths": "https://videos.example.com/a.mp4", "_mode": "frames"}


FAILURES: list[Any] = [
    pytest.param(_missing, "nope.png", "file not found", id="missing-file"),
    pytest.param(_directory, "album", "is a directory", id="directory"),
    pytest.param(_empty, "empty.png", "file is empty", id="empty-file"),
    pytest.param(_not_an_image, "notes.png", "not an image", id="not-an-image"),
    pytest.param(_image_too_big, "big.png", "max_media_bytes", id="image-over-limit"),
    pytest.param(_video_too_big, "big.mp4", "max_media_bytes", id="video-over-limit"),
    pytest.param(_corrupt_video, "broken.mp4", r"corrupt|decod", id="corrupt-video"),
    pytest.param(_corrupt_video_frames, "broken.mp4", r"corrupt|decod", id="corrupt-video-frames"),
    pytest.param(_unsupported_container, "clip.flv", "unsupported video container", id="flv"),
    pytest.param(_not_a_video, "clip.mp4", "not a video", id="not-a-video"),
    pytest.param(_no_video_stream, "song.mp4", "no video stream", id="no-video-stream"),
    pytest.param(_frames_without_pyav, "clip.mp4", r"openai_chatapi\[video\]", id="no-pyav"),
    pytest.param(_conversion_without_pillow, "scan.bmp", r"'image' extra", id="no-pillow"),
    pytest.param(_bad_second_item, "gone.png", "file not found", id="bad-item-in-list"),
    pytest.param(_bad_data_url, "data URL", "not an image", id="bad-data-url"),
    pytest.param(
        _remote_video_for_images_only_host, "a.mp4", "never downloaded", id="remote-video-frames"
    ),
]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize(("setup", "names", "reason"), FAILURES)
async def test_media_failures_raise_before_anything_is_sent(
    make_agent: AgentFactory,
    server: FakeServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    setup: FailureSetup,
    names: str,
    reason: str,
    how: str,
) -> None:
    kwargs = setup(tmp_path, monkeypatch)
    runtime: dict[str, Any] = {"video_frames": 2}
    if "_max" in kwargs:
        runtime["max_media_bytes"] = kwargs.pop("_max")
    if "_mode" in kwargs:
        runtime["video_mode"] = kwargs.pop("_mode")
    agent = await make_agent(**runtime)
    agent.set_system_prompt("You describe pictures.")
    agent.add_message(ChatMessage(role="user", content="earlier question"))
    agent.add_message(ChatMessage(role="assistant", content="earlier answer"))
    before = agent.history

    with pytest.raises(MediaProcessingError, match=reason) as info:
        await ask(agent, server, how, "describe", **kwargs)

    assert server.requests == []
    assert agent.history == before
    error = info.value
    assert names in str(error)
    assert error.details["reason"] and len(str(error)) < 400  # never a base64 dump
    assert agent.get_stats()["requests"] == 0


async def test_a_file_gone_before_a_later_turn_is_sent_as_a_note(
    make_agent: AgentFactory, server: FakeServer, files: dict[str, Path]
) -> None:
    agent = await make_agent()
    await ask(agent, server, "chat", "first", image_paths=files["photo.png"])
    files["photo.png"].unlink()
    server.add_completion("fine")
    assert await agent.chat("second") == "fine"  # the earlier turn's file never fails it
    assert server.last_body["messages"][0]["content"][1] == {
        "type": "text",
        "text": "[image photo.png is no longer available; not sent]",
    }


# ---------------------------------------------------------------- the body on the wire


def _expected_body(
    agent: ChatAgent, image: Path, video: Path, *, stream: bool
) -> tuple[bytes, OrderedDict[str, Any]]:
    """The request body built by hand, every medium as its full data URL."""
    content = [
        {"type": "text", "text": QUESTION},
        {"type": "image_url", "image_url": {"url": data_url("image/png", image.read_bytes())}},
        {"type": "video_url", "video_url": {"url": data_url("video/mp4", video.read_bytes())}},
    ]
    payload: OrderedDict[str, Any] = OrderedDict(
        model=agent.model_config.model,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": content},
        ],
        temperature=agent.model_config.temperature,
    )
    if stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    return compact(payload), payload


@pytest.mark.parametrize("how", HOW)
async def test_streamed_body_equals_the_materialised_body_byte_for_byte(
    make_agent: AgentFactory, server: FakeServer, tmp_path: Path, how: str
) -> None:
    image = Path(factory.write_image(tmp_path / "photo.png"))
    video = padded_video(tmp_path / "long.mp4", 3 * 1024 * 1024 + 7)  # many chunks, odd size
    agent = await make_agent(video_mode="native")
    agent.set_system_prompt("Be brief.")
    await ask(agent, server, how, QUESTION, image_paths=image, video_paths=video)

    request = server.requests[0]
    expected, payload = _expected_body(agent, image, video, stream=how != "chat")
    assert request.content == expected
    assert json.loads(request.content, object_pairs_hook=OrderedDict) == payload
    assert request.headers["content-length"] == str(len(expected))
    assert "transfer-encoding" not in request.headers
    assert request.headers["content-type"] == "application/json"


class _RecordingServer(LoopbackServer):
    """Records (Content-Length, Transfer-Encoding, body) of each request and answers the
    queued replies, then a completion."""

    def __init__(self) -> None:
        super().__init__(self._answer)
        self.received: list[tuple[str | None, str | None, bytes]] = []
        self.replies: list[tuple[int, dict[str, Any] | None]] = []

    def _answer(self, conn: Connection, request: Request) -> bytes:
        headers = request.headers
        length, chunked = headers.get("content-length"), headers.get("transfer-encoding")
        self.received.append((length, chunked, request.body))
        status, reply = self.replies.pop(0) if self.replies else (200, None)
        return response_bytes(
            status, json.dumps(reply or completion("Seen over a socket.")).encode()
        )


@pytest.fixture
async def socket_server() -> AsyncIterator[_RecordingServer]:
    async with _RecordingServer() as server:
        yield server


@pytest.fixture
async def socket_agent(socket_server: _RecordingServer) -> AsyncIterator[ChatAgent]:
    agent = ChatAgent(
        ModelConfig(api_base_url=socket_server.url, api_key=API_KEY, model="test-model"),
        RuntimeConfig(enable_logging=False, max_retries=1, video_mode="native", timeout=30),
        sleep=SleepRecorder(),
    )
    async with agent:
        yield agent


async def test_over_a_real_socket_the_body_and_content_length_are_exact_and_retries_resend_it(
    socket_agent: ChatAgent, socket_server: _RecordingServer, tmp_path: Path
) -> None:
    image = Path(factory.write_image(tmp_path / "photo.png"))
    video = padded_video(tmp_path / "long.mp4", 2 * 1024 * 1024 + 1)
    error = {"error": {"message": "busy", "type": "server_error", "param": None, "code": None}}
    socket_server.replies.append((503, error))
    socket_agent.set_system_prompt("Be brief.")

    reply = await socket_agent.chat(QUESTION, image_paths=image, video_paths=video)

    assert reply == "Seen over a socket."
    expected, _ = _expected_body(socket_agent, image, video, stream=False)
    assert [(length, chunked) for length, chunked, _ in socket_server.received] == [
        (str(len(expected)), None)
    ] * 2
    first, second = (body for _, _, body in socket_server.received)
    assert first == expected and second == expected
    assert socket_agent.get_stats()["retries"] == 1


@pytest.mark.parametrize("how", HOW)
async def test_a_retry_resends_an_identical_body(
    make_agent: AgentFactory, server: FakeServer, sleeps: SleepRecorder, tmp_path: Path, how: str
) -> None:
    image = Path(factory.write_image(tmp_path / "photo.png"))
    video = padded_video(tmp_path / "long.mp4", 1024 * 1024)
    agent = await make_agent(max_retries=1, video_mode="native")
    error = {"error": {"message": "busy", "type": "server_error", "param": None, "code": None}}
    server.add_json(error, status=503)
    await ask(agent, server, how, QUESTION, image_paths=image, video_paths=video)
    first, second = server.requests
    assert first.content == second.content and len(first.content) > 4 // 3 * 1024 * 1024
    assert first.headers["content-length"] == second.headers["content-length"]
    assert len(sleeps.delays) == 1


# ---------------------------------------------------------------- history


@pytest.mark.parametrize("how", HOW)
async def test_history_keeps_references_and_later_turns_send_the_media_again(
    make_agent: AgentFactory, server: FakeServer, tmp_path: Path, how: str
) -> None:
    picture = tmp_path / "noisy.png"
    picture.write_bytes(factory.noisy_png((200, 200)))
    clip = factory.write_video(tmp_path / "clip.mp4")
    agent = await make_agent(video_mode="native", image_detail="high")
    await ask(agent, server, how, "first", image_paths=picture, video_paths=str(clip))

    user = agent.history[0]
    assert user.content == [
        TextPart(text="first"),
        ImagePart(
            source=str(picture),
            mime="image/png",
            size=picture.stat().st_size,
            mtime_ns=picture.stat().st_mtime_ns,
            detail="high",
        ),
        VideoPart(
            source=str(clip),
            mime="video/mp4",
            size=clip.stat().st_size,
            mtime_ns=clip.stat().st_mtime_ns,
        ),
    ]
    dumped = user.model_dump_json(exclude_none=True)
    assert len(dumped) < 600 < picture.stat().st_size // 10
    assert "base64" not in dumped and "base64" not in repr(agent.history)

    await ask(agent, server, how, "and now?")
    again = sent(server)["messages"]
    assert [m["role"] for m in again] == ["user", "assistant", "user"]
    assert again[0]["content"][0] == {"type": "text", "text": "first"}
    assert decode(url_of(again[0]["content"][1])) == ("image/png", picture.read_bytes())
    assert decode(url_of(again[0]["content"][2])) == ("video/mp4", clip.read_bytes())
    assert again[2]["content"] == "and now?"


@pytest.mark.parametrize("how", HOW)
async def test_without_keep_media_in_history_earlier_media_become_placeholders(
    make_agent: AgentFactory, server: FakeServer, files: dict[str, Path], how: str
) -> None:
    agent = await make_agent(keep_media_in_history=False, video_mode="native")
    await ask(agent, server, how, "first", image_paths=files["photo.png"])
    await ask(
        agent, server, how, "second", image_paths=files["snap.jpg"], video_paths=files["clip.mp4"]
    )
    first_turn, _, this_turn = sent(server)["messages"]
    assert first_turn["content"] == [
        {"type": "text", "text": "first"},
        {"type": "text", "text": "[image omitted from history]"},
    ]
    assert this_turn["content"][0] == {"type": "text", "text": "second"}
    assert decode(url_of(this_turn["content"][1])) == ("image/jpeg", files["snap.jpg"].read_bytes())
    assert decode(url_of(this_turn["content"][2]))[0] == "video/mp4"
    assert server.requests[1].content.count(b";base64,") == 2
    # The history itself still has every medium (only what is sent is trimmed).
    assert isinstance(agent.history[0].content[1], ImagePart)  # type: ignore[index]

    await ask(agent, server, how, "third")
    assert b";base64," not in server.requests[2].content


async def test_saved_history_keeps_media_references_and_reloads_them(
    make_agent: AgentFactory, server: FakeServer, files: dict[str, Path], tmp_path: Path
) -> None:
    agent = await make_agent(video_mode="native", image_detail="low")
    await ask(
        agent,
        server,
        "chat",
        "look",
        image_paths=[files["photo.png"], "https://images.example.com/cat.jpg"],
        video_paths=files["clip.mp4"],
    )
    path = tmp_path / "saved" / "conversation.json"
    path.parent.mkdir()  # save_history does not create directories
    agent.save_history(path)
    text = path.read_text()
    assert str(files["photo.png"]) in text and str(files["clip.mp4"]) in text
    assert "base64" not in text and len(text) < 2000

    other = await make_agent(video_mode="native", image_detail="low")
    other.load_history(path)
    assert other.history == agent.history
    await ask(other, server, "chat", "again?")
    content = sent(server)["messages"][0]["content"]
    assert decode(url_of(content[1])) == ("image/png", files["photo.png"].read_bytes())
    assert content[1]["image_url"]["detail"] == "low"
    assert url_of(content[2]) == "https://images.example.com/cat.jpg"
    assert decode(url_of(content[3])) == ("video/mp4", files["clip.mp4"].read_bytes())


# ---------------------------------------------------------------- logs


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    level, handlers = package_logger.level, list(package_logger.handlers)
    caplog.set_level(logging.DEBUG)
    yield caplog
    package_logger.setLevel(level)
    package_logger.handlers[:] = handlers


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("openai_chatapi"))


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("flags", [{"enable_debug": True}, {"log_http_requests": True}])
async def test_logs_never_contain_base64_media(
    make_agent: AgentFactory,
    server: FakeServer,
    files: dict[str, Path],
    debug_logs: pytest.LogCaptureFixture,
    flags: dict[str, bool],
    how: str,
) -> None:
    inline = factory.image_bytes("png", size=(50, 50), color=(1, 2, 3))
    agent = await make_agent(
        enable_logging=True, log_http_responses=True, video_mode="native", max_retries=1, **flags
    )
    error = {"error": {"message": "busy", "type": "server_error", "param": None, "code": None}}
    server.add_json(error, status=503)  # the retry is logged too
    await ask(
        agent,
        server,
        how,
        "log this",
        image_paths=[files["photo.png"], data_url("image/png", inline)],
        video_paths=files["clip.mp4"],
    )
    await ask(agent, server, how, "and again")  # media re-encoded from history

    text = _logged(debug_logs)
    assert text.count("HTTP request") == 3
    for data in (files["photo.png"].read_bytes(), inline, files["clip.mp4"].read_bytes()):
        encoded = base64.b64encode(data).decode()
        assert encoded[:64] not in text and encoded[-64:] not in text
    assert f"<image/png base64, {files['photo.png'].stat().st_size} bytes>" in text
    assert f"<image/png base64, {len(inline)} bytes>" in text
    assert f"<video/mp4 base64, {files['clip.mp4'].stat().st_size} bytes>" in text
    assert '"text": "log this"' in text
    assert API_KEY not in text


# ---------------------------------------------------------------- the event loop stays free


async def test_media_are_validated_and_encoded_off_the_event_loop(
    make_agent: AgentFactory,
    server: FakeServer,
    files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, bool]] = []

    def spy(module: Any, name: str) -> None:
        real = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
                on_loop = True
            except RuntimeError:
                on_loop = False
            calls.append((name, on_loop))
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    spy(media_history, "prepare_media")  # as the agent's attach step calls it
    spy(media_module, "to_wire_parts")  # as the request builder calls it
    agent = await make_agent(video_mode="frames", video_frames=3)
    await ask(
        agent,
        server,
        "chat",
        "frames",
        image_paths=files["photo.png"],
        video_paths=files["clip.mp4"],
    )
    assert calls and {on_loop for _, on_loop in calls} == {False}
    assert {name for name, _ in calls} == {"prepare_media", "to_wire_parts"}


# ---------------------------------------------------------------- payload snapshots


def _stand_in(url: str, known: dict[str, str]) -> str:
    """A stable stand-in for a base64 medium: the input it came from, found by its digest."""
    mime, data = decode(url)
    name = known.get(hashlib.sha256(data).hexdigest())
    if name is not None:
        return f"<{mime} base64 of {name}>"
    with Image.open(io.BytesIO(data)) as image:
        described = f"{image.format} {image.width}x{image.height}"
    if mime == "image/jpeg":
        described += f", frame #{factory.frame_index(data)}"
    return f"<{mime} base64: {described}>"


def _normalised(body: Any, known: dict[str, str]) -> Any:
    if isinstance(body, dict):
        return type(body)((k, _normalised(v, known)) for k, v in body.items())
    if isinstance(body, list):
        return [_normalised(v, known) for v in body]
    if isinstance(body, str) and body.startswith("data:") and ";base64," in body[:80]:
        return _stand_in(body, known)
    return body


def _digests(named: dict[str, bytes]) -> dict[str, str]:
    return {hashlib.sha256(data).hexdigest(): name for name, data in named.items()}


async def test_payload_snapshot_native(
    make_agent: AgentFactory, server: FakeServer, files: dict[str, Path], snapshot_json: Any
) -> None:
    gif = factory.image_bytes("gif", color=(10, 200, 10))
    dot = factory.image_bytes("png", size=(2, 2))
    known = _digests(
        {
            **{name: path.read_bytes() for name, path in files.items()},
            "raw GIF bytes": gif,
            "the data URL's PNG": dot,
        }
    )
    agent = await make_agent(image_detail="high", api_base_url="http://127.0.0.1:8000/v1")
    agent.set_system_prompt("You describe media.")
    await ask(
        agent,
        server,
        "chat",
        "What is in these?",
        image_paths=[
            files["photo.png"],
            gif,
            data_url("image/png", dot),
            "https://images.example.com/cat.jpg",
        ],
        video_paths=[files["clip.mp4"], "https://videos.example.com/a.webm"],
    )
    assert _normalised(sent(server), known) == snapshot_json


async def test_payload_snapshot_frames_streamed_to_openai(
    make_agent: AgentFactory, server: FakeServer, files: dict[str, Path], snapshot_json: Any
) -> None:
    known = _digests({name: path.read_bytes() for name, path in files.items()})
    agent = await make_agent(api_base_url=OPENAI, image_detail="low", video_frames=3)
    server.add_stream(text_chunks(["ok"]))
    pieces = [
        p
        async for p in agent.chat_stream(
            "Describe the clip.",
            image_paths=files["snap.jpg"],
            video_paths=files["clip.mp4"],
            display_stream=False,
        )
    ]
    assert pieces == ["ok"]
    assert _normalised(sent(server), known) == snapshot_json


async def test_payload_snapshot_media_dropped_from_earlier_turns(
    make_agent: AgentFactory, server: FakeServer, files: dict[str, Path], snapshot_json: Any
) -> None:
    known = _digests({name: path.read_bytes() for name, path in files.items()})
    agent = await make_agent(keep_media_in_history=False, video_mode="native")
    server.add_completion("A red square and a clip.").add_completion("A blue square.")
    await agent.chat("First look.", image_paths=files["photo.png"], video_paths=files["clip.mp4"])
    await agent.chat("Second look.", image_paths=files["snap.jpg"])
    assert _normalised(sent(server), known) == snapshot_json
