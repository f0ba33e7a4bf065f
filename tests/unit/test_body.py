"""The streamed request body: byte-exact JSON, exact length, re-iterable, safe logs."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openai_chatapi._errors import MediaProcessingError
from openai_chatapi.body import (
    CHUNK_INPUT_BYTES,
    MediaSources,
    RequestBody,
    encode_json_body,
    redacted_preview,
)


def dump(payload: Any) -> bytes:
    """The reference encoding: the fully materialised payload, dumped in one go."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def chat_payload(*urls: str, text: str = "Décris ça 🎥") -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": u, "detail": "low"}} for u in urls]
    return {"model": "m", "messages": [{"role": "user", "content": parts}], "stream": True}


async def collect(body: RequestBody) -> bytes:
    return b"".join([chunk async for chunk in body])


def test_without_media_it_is_just_the_json_bytes() -> None:
    payload = chat_payload("https://example.org/a.png")
    body = encode_json_body(payload, MediaSources())
    assert body.read_all() == dump(payload)
    assert body.content_length == len(dump(payload))
    assert not body.is_streaming
    assert body.headers == {
        "Content-Type": "application/json",
        "Content-Length": str(len(dump(payload))),
    }


@pytest.mark.parametrize(
    "size",
    [
        0,
        1,
        2,
        3,
        4,
        CHUNK_INPUT_BYTES - 1,
        CHUNK_INPUT_BYTES,
        CHUNK_INPUT_BYTES + 1,
        2 * CHUNK_INPUT_BYTES + 2,
    ],
)
async def test_streamed_body_equals_the_materialised_dump(tmp_path: Path, size: int) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(os.urandom(size))
    raw = os.urandom(size // 2 + 1)
    sources = MediaSources()
    payload = chat_payload(sources.add_file(path, "video/mp4"), sources.add_bytes(raw, "image/png"))
    body = encode_json_body(payload, sources)

    expected = dump(sources.materialize(payload))
    assert expected == dump(
        chat_payload(
            "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode(),
            "data:image/png;base64," + base64.b64encode(raw).decode(),
        )
    )
    assert body.is_streaming
    assert body.content_length == len(expected)
    assert body.read_all() == expected
    assert await collect(body) == expected
    assert await collect(body) == expected  # a retry sends the same bytes again


async def test_large_media_is_sent_in_bounded_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(5 * CHUNK_INPUT_BYTES))
    sources = MediaSources()
    body = encode_json_body(chat_payload(sources.add_file(path, "video/mp4")), sources)
    sizes = [len(chunk) async for chunk in body]
    assert max(sizes) <= CHUNK_INPUT_BYTES * 4 // 3
    assert sum(sizes) == body.content_length


async def test_the_same_medium_can_appear_twice(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abcdefg")
    sources = MediaSources()
    sentinel = sources.add_file(path, "image/png")
    payload = chat_payload(sentinel, sentinel)
    body = encode_json_body(payload, sources)
    assert await collect(body) == dump(sources.materialize(payload))


async def test_file_changed_after_encoding_fails_at_send(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    path.write_bytes(b"0123456789")
    sources = MediaSources()
    body = encode_json_body(chat_payload(sources.add_file(path, "video/mp4")), sources)

    path.write_bytes(b"0123456789abc")
    with pytest.raises(MediaProcessingError) as exc:
        await collect(body)
    assert "changed size" in exc.value.details["reason"]
    assert exc.value.details["path"] == str(path)

    path.unlink()
    with pytest.raises(MediaProcessingError) as exc:
        body.read_all()
    assert "file not found" in exc.value.details["reason"]


def test_add_file_checks_the_file_now(tmp_path: Path) -> None:
    sources = MediaSources()
    with pytest.raises(MediaProcessingError, match="file not found"):
        sources.add_file(tmp_path / "missing.png", "image/png")
    with pytest.raises(MediaProcessingError, match="not a regular file"):
        sources.add_file(tmp_path, "image/png")
    with pytest.raises(ValueError):
        sources.add_bytes(b"x", "not a mime")


def test_sentinels_from_another_registry_are_refused() -> None:
    mine, theirs = MediaSources(), MediaSources()
    payload = chat_payload(theirs.add_bytes(b"abc", "image/png"))
    with pytest.raises(ValueError, match="another MediaSources"):
        encode_json_body(payload, mine)
    with pytest.raises(ValueError, match="no MediaSources"):
        encode_json_body(payload)


def test_text_that_only_looks_like_a_sentinel_is_left_alone() -> None:
    sources = MediaSources()
    mangled = sources.add_bytes(b"abc", "image/png").split("?")[0]
    payload = chat_payload(text=f"see {mangled} and openai-chatapi-media://x")
    assert encode_json_body(payload, sources).read_all() == dump(payload)


def test_sentinel_in_user_text_stays_text() -> None:
    # Text that merely looks like a data URL is not touched.
    payload = chat_payload(text="data:image/png;base64,AAAA is an example")
    assert encode_json_body(payload, MediaSources()).read_all() == dump(payload)


# ---------------------------------------------------------------- over real HTTP


class Received:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []


async def _handle(received: Received, reader: asyncio.StreamReader, writer: Any) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")[1:]
            headers = {
                k.strip().lower(): v.strip()
                for k, v in (line.split(":", 1) for line in lines if ":" in line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            received.headers.append(headers)
            received.bodies.append(body)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def loopback() -> AsyncIterator[tuple[str, Received]]:
    received = Received()
    server = await asyncio.start_server(
        lambda r, w: _handle(received, r, w), host="127.0.0.1", port=0
    )
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/v1/chat/completions", received
        server.close()


async def test_httpx_sends_the_exact_body_with_content_length(
    tmp_path: Path, loopback: tuple[str, Received]
) -> None:
    url, received = loopback
    path = tmp_path / "clip.mp4"
    path.write_bytes(os.urandom(3 * CHUNK_INPUT_BYTES + 5))
    sources = MediaSources()
    payload = chat_payload(sources.add_file(path, "video/mp4"))
    body = encode_json_body(payload, sources)

    async with httpx.AsyncClient() as client:
        for _ in range(2):  # the second send stands for a retry
            request = client.build_request("POST", url, content=body, headers=body.headers)
            response = await client.send(request)
            assert response.status_code == 200
        response = await client.post(url, content=body, headers=body.headers)
        assert response.status_code == 200

    expected = dump(sources.materialize(payload))
    assert received.bodies == [expected, expected, expected]
    assert all(h["content-length"] == str(len(expected)) for h in received.headers)
    assert all("transfer-encoding" not in h for h in received.headers)


async def test_media_errors_surface_through_httpx(
    tmp_path: Path, loopback: tuple[str, Received]
) -> None:
    url, _ = loopback
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"x" * 100)
    sources = MediaSources()
    body = encode_json_body(chat_payload(sources.add_file(path, "video/mp4")), sources)
    path.unlink()
    async with httpx.AsyncClient() as client:
        with pytest.raises(MediaProcessingError):
            await client.post(url, content=body, headers=body.headers)


# ---------------------------------------------------------------- log previews


def test_redacted_preview_elides_base64_and_sentinels() -> None:
    sources = MediaSources()
    png = base64.b64encode(b"\x89PNG" + bytes(96)).decode()
    payload = chat_payload(
        f"data:image/png;base64,{png}",
        sources.add_bytes(bytes(12345), "video/mp4"),
        "https://example.org/cat.jpg",
    )
    preview = redacted_preview(payload, None)
    assert "<image/png base64, 100 bytes>" in preview
    assert "<video/mp4 base64, 12345 bytes>" in preview
    assert "https://example.org/cat.jpg" in preview
    assert "Décris ça 🎥" in preview
    assert png not in preview and "openai-chatapi-media" not in preview


def test_redacted_preview_is_cut_to_the_limit() -> None:
    preview = redacted_preview({"text": "x" * 5000}, 100)
    assert preview.startswith('{"text": "xxx')
    assert len(preview) < 200 and "more characters" in preview
