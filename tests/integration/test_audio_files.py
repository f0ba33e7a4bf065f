"""Audio (``audio_paths``) and documents (``file_paths``) through the real agent.

What goes on the wire (``input_audio`` with bare base64 and its ``format``; ``file`` with a
``data:application/pdf`` URL and its ``filename``), the streamed body against the one built
by hand, every refusal before anything is sent, and the references kept in the history.
The audio and PDF bytes are real and tiny (``payload_scenarios``: the standard library's
``wave``, hand-made MP3 frames and PDF).
"""

from __future__ import annotations

import base64
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest

from openai_chatapi import (
    AudioPart,
    ChatAgent,
    ChatMessage,
    ConfigurationError,
    FilePart,
    MediaProcessingError,
    TextPart,
)
from openai_chatapi.media._body import CHUNK_INPUT_BYTES, MediaSources, encode_json_body

from ..conftest import AgentFactory
from ..support.fakes import FakeServer, ask
from ..support.payload_scenarios import MP3_BYTES, PDF_BYTES, PNG_1X1, WAV_BYTES

HOW = ["chat", "stream", "events"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def audio_part(data: bytes, fmt: str) -> dict[str, Any]:
    return {"type": "input_audio", "input_audio": {"data": b64(data), "format": fmt}}


def file_part(data: bytes, filename: str) -> dict[str, Any]:
    url = "data:application/pdf;base64," + b64(data)
    return {"type": "file", "file": {"filename": filename, "file_data": url}}


def last_content(server: FakeServer) -> Any:
    return server.last_body["messages"][-1]["content"]


@pytest.fixture
def media(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "hello.wav": WAV_BYTES,
        "song.mp3": MP3_BYTES,
        "tagged.mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00" + MP3_BYTES,
        "notes.pdf": PDF_BYTES,
    }
    for name, data in paths.items():
        (tmp_path / name).write_bytes(data)
    return {name: tmp_path / name for name in paths}


# ---------------------------------------------------------------- what is sent


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("as_type", [str, Path])
async def test_paths_become_input_audio_and_file_parts(
    agent: ChatAgent, server: FakeServer, media: dict[str, Path], how: str, as_type: type
) -> None:
    await ask(
        agent,
        server,
        how,
        "listen and read",
        audio_paths=[as_type(media["hello.wav"]), as_type(media["tagged.mp3"])],
        file_paths=as_type(media["notes.pdf"]),
    )
    assert last_content(server) == [
        {"type": "text", "text": "listen and read"},
        audio_part(WAV_BYTES, "wav"),
        audio_part(media["tagged.mp3"].read_bytes(), "mp3"),
        file_part(PDF_BYTES, "notes.pdf"),
    ]


async def test_bytes_and_data_urls_are_typed_from_their_content(
    agent: ChatAgent, server: FakeServer
) -> None:
    wav_url = "data:audio/wav;base64," + b64(WAV_BYTES)
    pdf_url = "data:application/pdf;base64," + b64(PDF_BYTES)
    await ask(
        agent,
        server,
        "chat",
        "these",
        audio_paths=[MP3_BYTES, wav_url],
        file_paths=[PDF_BYTES, pdf_url],
    )
    assert last_content(server) == [
        {"type": "text", "text": "these"},
        audio_part(MP3_BYTES, "mp3"),
        audio_part(WAV_BYTES, "wav"),
        file_part(PDF_BYTES, "document.pdf"),
        file_part(PDF_BYTES, "document.pdf"),
    ]


async def test_images_videos_audio_and_files_together_keep_their_order(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_completion("ok")
    await agent.chat("all", PNG_1X1, audio_paths=WAV_BYTES, file_paths=PDF_BYTES)
    kinds = [part["type"] for part in last_content(server)]
    assert kinds == ["text", "image_url", "input_audio", "file"]


async def test_payload_snapshot(
    agent: ChatAgent, server: FakeServer, media: dict[str, Path], snapshot_json: Any
) -> None:
    agent.set_system_prompt("You transcribe and summarise.")
    server.add_completion("ok")
    await agent.chat(
        "What is said, and what is written?",
        audio_paths=[media["hello.wav"], MP3_BYTES],
        file_paths=[media["notes.pdf"]],
    )
    body = json.loads(server.requests[-1].content, object_pairs_hook=OrderedDict)
    assert body == snapshot_json


# ---------------------------------------------------------------- the streamed body


def _padded_wav(path: Path, extra: int) -> bytes:
    """A WAV whose data chunk holds ``extra`` bytes of noise (several base64 chunks)."""
    noise = os.urandom(extra)
    header = WAV_BYTES[:40]
    data = (
        b"RIFF"
        + (36 + len(noise)).to_bytes(4, "little")
        + header[8:40]
        + len(noise).to_bytes(4, "little")
        + noise
    )
    path.write_bytes(data)
    return data


@pytest.mark.parametrize("how", HOW)
async def test_streamed_body_equals_the_materialised_body_byte_for_byte(
    agent: ChatAgent, server: FakeServer, tmp_path: Path, how: str
) -> None:
    clip = _padded_wav(tmp_path / "long.wav", 2 * CHUNK_INPUT_BYTES + 5)
    document = PDF_BYTES + b"%" + os.urandom(CHUNK_INPUT_BYTES + 1)
    (tmp_path / "big.pdf").write_bytes(document)
    await ask(
        agent,
        server,
        how,
        "Écoute 🎧",
        audio_paths=tmp_path / "long.wav",
        file_paths=tmp_path / "big.pdf",
    )
    payload: dict[str, Any] = {
        "model": agent.model_config.model,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Écoute 🎧"},
                    audio_part(clip, "wav"),
                    file_part(document, "big.pdf"),
                ],
            }
        ],
        "temperature": agent.model_config.temperature,
    }
    if how != "chat":
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    expected = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    request = server.requests[-1]
    assert request.content == expected
    assert request.headers["content-length"] == str(len(expected))
    assert "transfer-encoding" not in request.headers


async def test_bare_base64_sources_are_sent_in_bounded_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big.wav"
    data = _padded_wav(path, 4 * CHUNK_INPUT_BYTES)
    sources = MediaSources()
    payload = {"data": sources.add_file(path, "audio/wav", bare=True)}
    body = encode_json_body(payload, sources)
    sizes = [len(chunk) async for chunk in body]
    assert max(sizes) <= CHUNK_INPUT_BYTES * 4 // 3
    assert body.read_all() == json.dumps({"data": b64(data)}).replace(" ", "").encode()
    assert sum(sizes) == body.content_length == len(body.read_all())


# ---------------------------------------------------------------- refusals


def _case(tmp: Path, name: str, data: bytes | None) -> str:
    path = tmp / name
    if data is not None:
        path.write_bytes(data)
    return str(path)


REFUSALS: list[Any] = [
    ("audio_paths", lambda t: _case(t, "gone.wav", None), "gone.wav", "file not found"),
    ("audio_paths", lambda t: _case(t, "empty.wav", b""), "empty.wav", "file is empty"),
    ("audio_paths", lambda t: str(t), str, "is a directory"),
    ("audio_paths", lambda t: _case(t, "pic.wav", PNG_1X1), "pic.wav", "the data is image/png"),
    ("audio_paths", lambda t: _case(t, "x.flac", b"fLaC" + bytes(40)), "x.flac", "audio/flac"),
    ("audio_paths", lambda t: _case(t, "junk.mp3", b"hello" * 9), "junk.mp3", "unrecognised"),
    ("audio_paths", lambda t: b"", "raw bytes", "no data"),
    ("audio_paths", lambda t: "https://example.com/a.mp3", "a.mp3", "never downloaded"),
    ("audio_paths", lambda t: "data:audio/wav;base64,@@@@", "data URL", "not valid base64"),
    ("audio_paths", lambda t: "data:image/png;base64," + b64(PNG_1X1), "data URL", "not an"),
    ("audio_paths", lambda t: "data:audio/wav;base64," + b64(PDF_BYTES), "data URL", "is appl"),
    ("file_paths", lambda t: _case(t, "gone.pdf", None), "gone.pdf", "file not found"),
    ("file_paths", lambda t: _case(t, "empty.pdf", b""), "empty.pdf", "file is empty"),
    ("file_paths", lambda t: _case(t, "song.pdf", WAV_BYTES), "song.pdf", "is audio/wav"),
    ("file_paths", lambda t: _case(t, "n.txt", b"just text"), "n.txt", "not a PDF document"),
    ("file_paths", lambda t: b"", "raw bytes", "no data"),
    ("file_paths", lambda t: "https://example.com/a.pdf", "a.pdf", "never downloaded"),
    ("file_paths", lambda t: "data:text/plain;base64,aGk=", "data URL", "supported document"),
]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize(("argument", "make", "named", "reason"), REFUSALS)
async def test_refusals_raise_before_anything_is_sent(
    agent: ChatAgent,
    server: FakeServer,
    tmp_path: Path,
    how: str,
    argument: str,
    make: Any,
    named: Any,
    reason: str,
) -> None:
    agent.add_message(ChatMessage(role="user", content="earlier"))
    before = agent.history
    item = make(tmp_path)
    with pytest.raises(MediaProcessingError, match=reason) as info:
        await ask(agent, server, how, "hi", **{argument: item})
    assert server.requests == [] and agent.history == before
    error = info.value
    assert (named(tmp_path) if callable(named) else named) in str(error)
    assert error.details["kind"] == ("audio" if argument == "audio_paths" else "file")
    assert error.details["reason"] and len(str(error)) < 400


@pytest.mark.parametrize("argument", ["audio_paths", "file_paths"])
async def test_over_the_size_limit_is_refused(
    make_agent: AgentFactory, server: FakeServer, media: dict[str, Path], argument: str
) -> None:
    agent = await make_agent(max_media_bytes=50)
    path = media["hello.wav" if argument == "audio_paths" else "notes.pdf"]
    with pytest.raises(MediaProcessingError, match="over the limit of 50 bytes") as info:
        await agent.chat("hi", **{argument: path})
    assert info.value.details["path"] == str(path)
    assert server.requests == []


@pytest.mark.parametrize("argument", ["audio_paths", "file_paths"])
async def test_a_wrong_python_type_is_a_configuration_error(
    agent: ChatAgent, server: FakeServer, argument: str
) -> None:
    with pytest.raises(ConfigurationError, match="not int"):
        await agent.chat("hi", **{argument: [42]})
    with pytest.raises(ConfigurationError, match="not dict"):
        await agent.chat("hi", **{argument: {"a": 1}})
    assert server.requests == []


# ---------------------------------------------------------------- history


async def test_history_keeps_references_and_later_turns_send_them_again(
    agent: ChatAgent, server: FakeServer, media: dict[str, Path]
) -> None:
    await ask(agent, server, "chat", "first", audio_paths=media["song.mp3"], file_paths=PDF_BYTES)
    user = agent.history[0]
    assert isinstance(user.content, list)
    text, clip, document = user.content
    assert text == TextPart(text="first")
    assert clip == AudioPart(
        source=str(media["song.mp3"]),
        mime="audio/mpeg",
        size=len(MP3_BYTES),
        mtime_ns=media["song.mp3"].stat().st_mtime_ns,
        format="mp3",
    )
    assert isinstance(document, FilePart) and document.data == PDF_BYTES
    assert document.filename == "document.pdf" and document.origin == "bytes"
    assert "base64" not in repr(agent.history)

    await ask(agent, server, "chat", "second")
    assert server.last_body["messages"][0]["content"] == [
        {"type": "text", "text": "first"},
        audio_part(MP3_BYTES, "mp3"),
        file_part(PDF_BYTES, "document.pdf"),
    ]


async def test_an_earlier_turns_audio_file_gone_is_sent_as_a_note(
    agent: ChatAgent, server: FakeServer, media: dict[str, Path]
) -> None:
    await ask(agent, server, "chat", "first", audio_paths=media["hello.wav"])
    media["hello.wav"].unlink()
    await ask(agent, server, "chat", "second")
    sent = server.last_body["messages"][0]["content"]
    assert sent[0] == {"type": "text", "text": "first"}
    assert sent[1]["type"] == "text" and "hello.wav" in sent[1]["text"]
    assert "not sent" in sent[1]["text"] and len(agent.history) == 4


async def test_without_keep_media_in_history_earlier_audio_and_files_become_notes(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    agent = await make_agent(keep_media_in_history=False)
    await ask(agent, server, "chat", "first", audio_paths=WAV_BYTES, file_paths=PDF_BYTES)
    await ask(agent, server, "chat", "second")
    assert server.last_body["messages"][0]["content"] == [
        {"type": "text", "text": "first"},
        {"type": "text", "text": "[audio omitted from history]"},
        {"type": "text", "text": "[file omitted from history]"},
    ]


async def test_saved_history_keeps_the_references_and_reloads_them(
    agent: ChatAgent, server: FakeServer, media: dict[str, Path], tmp_path: Path
) -> None:
    await ask(agent, server, "chat", "first", audio_paths=media["hello.wav"], file_paths=PDF_BYTES)
    agent.save_history(tmp_path / "talk.json")
    saved = (tmp_path / "talk.json").read_text()
    assert str(media["hello.wav"]) in saved
    agent.clear_history()
    agent.load_history(tmp_path / "talk.json")
    await ask(agent, server, "chat", "second")
    assert server.last_body["messages"][0] == server.bodies[0]["messages"][0]


@pytest.mark.parametrize(
    "part",
    [
        AudioPart(source="https://example.com/a.wav", mime="audio/wav", format="wav"),
        FilePart(source="https://example.com/a.pdf", mime="application/pdf"),
    ],
)
async def test_a_hand_made_part_pointing_at_a_url_is_refused_at_send(
    agent: ChatAgent, server: FakeServer, part: AudioPart | FilePart
) -> None:
    agent.add_message(ChatMessage(role="user", content=[TextPart(text="hi"), part]))
    with pytest.raises(MediaProcessingError, match="never downloaded"):
        await agent.chat("next")
    assert server.requests == []
