"""Fuzzing the parsers that read what servers (and models) send, with hypothesis.

The SSE decoder, the completion parser, the chunk parser/stream reader, the tool-argument
parser and media type detection get over 10,000 generated inputs in total (see ``BUDGET``;
``test_totals`` checks the count and prints it: ``pytest tests/unit/test_fuzz.py -s``). Two
properties: nothing but a ``ChatAPIException`` subclass escapes, whatever the input, and valid
inputs round-trip (encoded events decode to themselves, valid completions and streams parse
to the content they carry, valid arguments validate to themselves, known media are detected).

Settings are fixed (``derandomize=True``, no example database): every run generates the same
inputs, so a failure reproduces and the run time is stable (well under a minute).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from openai_chatapi import ChatAPIException, MediaProcessingError, ToolExecutionError, tool
from openai_chatapi._accumulator import StreamAccumulator
from openai_chatapi._parsing import parse_completion
from openai_chatapi._sse import ServerSentEvent
from openai_chatapi._streaming import _events_for, read_stream
from openai_chatapi.media import MediaSettings, prepare_media, sniff_mime
from openai_chatapi.tools import ToolRegistry

from ..support.fakes import decode_sse

BUDGET: dict[str, int] = {
    "sse_any_bytes": 2000,
    "sse_round_trip": 600,
    "completion_any_body": 900,
    "completion_round_trip": 400,
    "chunks_any_events": 600,
    "stream_round_trip": 400,
    "tool_arguments_any_text": 600,
    "tool_execute_any_text": 250,
    "tool_arguments_round_trip": 800,
    "media_any_bytes": 1500,
    "media_magic_round_trip": 2000,
    "media_real_images": 250,
}
RUNS: Counter[str] = Counter()


def fuzz(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Fixed settings for one fuzz test, with its share of the budget."""
    return settings(
        max_examples=BUDGET[name],
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def count(name: str) -> None:
    RUNS[name] += 1


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for the async parts of the sync hypothesis tests."""
    new = asyncio.new_event_loop()
    yield new
    new.close()


DEEP = 20_000  # nesting far beyond any recursion limit


def deep_json(key: str = "error") -> bytes:
    return b'{"' + key.encode() + b'": ' + b"[" * DEEP + b"]" * DEEP + b"}"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)

# --------------------------------------------------------------------------- SSE decoder


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


sse_like_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from(
            [
                *(b"data:", b"data: ", b"event:", b"id:", b"retry:", b":", b"\n", b"\r", b"\r\n"),
                *(b"\xef\xbb\xbf", b"\xe2\x82", b"\xac", b"\xff", b"[DONE]", b"x", b" ", b"\x00"),
            ]
        ),
        max_size=40,
    ).map(b"".join),
)


@fuzz("sse_any_bytes")
@given(data=sse_like_bytes, cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_sse_decoder_takes_any_bytes_in_any_chunking(data: bytes, cuts: list[int]) -> None:
    count("sse_any_bytes")
    whole = decode_sse([data])
    assert decode_sse(split(data, cuts)) == whole  # chunk boundaries never change the events
    for item in whole:
        assert isinstance(item.data, str) and isinstance(item.event, str)


field_text = st.text(
    alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=["Cs"]),
    max_size=12,
)


@st.composite
def sse_streams(draw: st.DrawFn) -> tuple[bytes, list[ServerSentEvent]]:
    """A valid event stream and the events it encodes."""
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    lines: list[str] = []
    expected: list[ServerSentEvent] = []
    last_id: str | None = None
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.none() | field_text)
        data = draw(st.lists(field_text, min_size=1, max_size=3))
        event_id = draw(st.none() | field_text)
        retry = draw(st.none() | st.integers(0, 10**7))
        if draw(st.booleans()):
            lines.append(":" + draw(field_text))  # a comment
        if name is not None:
            lines.append(f"event: {name}")
        if event_id is not None:
            lines.append(f"id: {event_id}")
            last_id = event_id
        if retry is not None:
            lines.append(f"retry: {retry}")
        lines += [f"data: {line}" for line in data]
        lines.append("")
        expected.append(ServerSentEvent(name or "message", "\n".join(data), last_id, retry))
    text = "".join(line + newline for line in lines)
    if expected and draw(st.booleans()):
        text = text[: -len(newline)]  # no blank line after the last event: flush dispatches it
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text.encode(), expected


@fuzz("sse_round_trip")
@given(stream=sse_streams(), cuts=st.lists(st.integers(min_value=0), max_size=10))
def test_sse_round_trip(stream: tuple[bytes, list[ServerSentEvent]], cuts: list[int]) -> None:
    count("sse_round_trip")
    data, expected = stream
    assert decode_sse(split(data, cuts)) == expected


# --------------------------------------------------------------------------- completions


def completion_dict(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
    }
    body.update(overrides)
    return body


mutated_completions = st.builds(
    lambda base, key, value: json.dumps({**base, key: value}).encode(),
    st.just(completion_dict()),
    st.sampled_from(["id", "object", "created", "model", "choices", "usage", "error", "detail"]),
    json_values,
)
mutated_choices = st.builds(
    lambda choice: json.dumps(completion_dict(choices=[choice])).encode(),
    st.fixed_dictionaries(
        {},
        optional={
            "index": json_values,
            "message": st.fixed_dictionaries(
                {},
                optional={
                    "role": json_values,
                    "content": json_values,
                    "tool_calls": json_values,
                    "refusal": json_values,
                },
            )
            | json_values,
            "finish_reason": json_values,
            "logprobs": json_values,
        },
    ),
)
any_body = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    mutated_completions,
    mutated_choices,
)


@fuzz("completion_any_body")
@given(raw=any_body, strict=st.booleans())
@example(raw=deep_json("error"), strict=False)
@example(raw=deep_json("id"), strict=False)
@example(raw=b'{"detail": ' + b"[" * 5000 + b"]" * 5000 + b"}", strict=True)
def test_completion_parser_takes_any_body(raw: bytes, strict: bool) -> None:
    count("completion_any_body")
    try:
        completion = parse_completion(raw, strict=strict)
    except ChatAPIException:
        return
    assert completion.choices


texts = st.text(max_size=40)
tool_calls = st.lists(
    st.tuples(
        st.text(min_size=1, max_size=10), st.from_regex(r"[a-z_]{1,12}", fullmatch=True)
    ).flatmap(lambda t: st.tuples(st.just(t[0]), st.just(t[1]), texts)),
    max_size=3,
)


@fuzz("completion_round_trip")
@given(
    content=st.none() | texts,
    reasoning=st.none() | texts,
    calls=tool_calls,
    finish=st.sampled_from(["stop", "length", "tool_calls", "content_filter", None]),
    usage=st.none() | st.tuples(st.integers(0, 10**9), st.integers(0, 10**9)),
    ascii_only=st.booleans(),
)
def test_valid_completions_parse_to_what_they_carry(
    content: str | None,
    reasoning: str | None,
    calls: list[tuple[str, str, str]],
    finish: str | None,
    usage: tuple[int, int] | None,
    ascii_only: bool,
) -> None:
    count("completion_round_trip")
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
            for i, n, a in calls
        ]
    body = completion_dict(choices=[{"index": 0, "message": message, "finish_reason": finish}])
    if usage is not None:
        body["usage"] = {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        }
    parsed = parse_completion(json.dumps(body, ensure_ascii=ascii_only).encode(), strict=False)
    got = parsed.choices[0]
    assert got.message is not None
    assert got.message.content == content
    assert got.message.reasoning_content == reasoning
    assert got.finish_reason == finish
    assert [
        (c.id, c.function.name, c.function.arguments) for c in got.message.tool_calls or []
    ] == [(i, n, a) for i, n, a in calls]
    if usage is not None:
        assert parsed.usage is not None
        assert (parsed.usage.prompt_tokens, parsed.usage.completion_tokens) == usage


# --------------------------------------------------------------------------- chunks and streams


def chunk_dict(delta: Any = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {} if delta is None else delta, "finish_reason": None}],
    }
    body.update(overrides)
    return body


chunk_like = st.one_of(
    json_values,
    st.builds(lambda delta: chunk_dict(delta), json_values),
    st.builds(
        lambda key, value: chunk_dict({"content": "x"}, **{key: value}),
        st.sampled_from(["id", "created", "model", "choices", "usage", "error", "object"]),
        json_values,
    ),
    st.builds(
        lambda calls: chunk_dict({"tool_calls": calls}),
        st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "index": st.none() | st.integers(-3, 3) | json_values,
                    "id": st.none() | st.text(max_size=4),
                    "function": st.fixed_dictionaries(
                        {}, optional={"name": json_values, "arguments": json_values}
                    ),
                },
            ),
            max_size=3,
        ),
    ),
    st.builds(
        lambda content, finish, index: chunk_dict(
            {"content": content},
            choices=[{"index": index, "delta": {"content": content}, "finish_reason": finish}],
        ),
        st.none() | texts,
        json_values,
        json_values,
    ),
)
sse_data = st.one_of(
    chunk_like.map(json.dumps),
    st.text(max_size=30),
    st.just("[DONE]"),
    st.just("[" * DEEP),
)
sse_event_lists = st.lists(
    st.builds(ServerSentEvent, st.sampled_from(["message", "message", "error", "ping"]), sse_data),
    max_size=6,
)


def encode_events(events: list[ServerSentEvent]) -> bytes:
    parts = []
    for item in events:
        lines = [f"event: {item.event}"] + [f"data: {line}" for line in item.data.split("\n")]
        parts.append("\n".join(lines) + "\n\n")
    return "".join(parts).encode()


async def body_of(pieces: list[bytes]) -> AsyncIterator[bytes]:
    """A response body arriving in ``pieces`` (what the transport hands the stream reader)."""
    for piece in pieces:
        yield piece


async def read_all(pieces: list[bytes], accumulator: StreamAccumulator, strict: bool) -> list[Any]:
    out: list[Any] = []
    async for batch in read_stream(body_of(pieces), accumulator, strict=strict):
        out += batch
    return out


@fuzz("chunks_any_events")
@given(events=sse_event_lists, strict=st.booleans(), cuts=st.lists(st.integers(0), max_size=5))
def test_chunk_parser_and_stream_reader_take_any_events(
    loop: asyncio.AbstractEventLoop, events: list[ServerSentEvent], strict: bool, cuts: list[int]
) -> None:
    count("chunks_any_events")
    accumulator = StreamAccumulator()
    try:
        _, _, error = _events_for(accumulator, events, strict)
        assert error is None or isinstance(error, ChatAPIException)
        accumulator.result()
    except ChatAPIException:
        pass
    accumulator = StreamAccumulator()
    try:
        loop.run_until_complete(read_all(split(encode_events(events), cuts), accumulator, strict))
        accumulator.result()
    except ChatAPIException:
        pass


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[dict[str, Any]], str, str, dict[int, tuple[str, str]]]:
    """Chunks of a valid streamed reply, with its text, reasoning and tool calls."""
    chunks = [chunk_dict({"role": "assistant", "content": ""})]
    text: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, tuple[str, str]] = {}
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["content", "reasoning", "tool"]))
        piece = draw(texts)
        if kind == "content":
            text.append(piece)
            chunks.append(chunk_dict({"content": piece}))
        elif kind == "reasoning":
            reasoning.append(piece)
            chunks.append(chunk_dict({"reasoning_content": piece}))
        else:
            index = draw(st.integers(0, 2))
            delta: dict[str, Any] = {"index": index, "function": {"arguments": piece}}
            if index not in calls:
                name = draw(st.from_regex(r"[a-z]{1,8}", fullmatch=True))
                delta.update(id=f"call_{index}", type="function")
                delta["function"]["name"] = name
                calls[index] = (name, "")
            calls[index] = (calls[index][0], calls[index][1] + piece)
            chunks.append(chunk_dict({"tool_calls": [delta]}))
    chunks.append(chunk_dict({}, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    return chunks, "".join(text), "".join(reasoning), calls


@fuzz("stream_round_trip")
@given(
    stream=streams(),
    cuts=st.lists(st.integers(0), max_size=12),
    done=st.booleans(),
    strict=st.booleans(),
)
def test_valid_streams_accumulate_to_what_they_carry(
    loop: asyncio.AbstractEventLoop,
    stream: tuple[list[dict[str, Any]], str, str, dict[int, tuple[str, str]]],
    cuts: list[int],
    done: bool,
    strict: bool,
) -> None:
    count("stream_round_trip")
    chunks, text, reasoning, calls = stream
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + ("data: [DONE]\n\n" * done)
    accumulator = StreamAccumulator()
    events = loop.run_until_complete(read_all(split(body.encode(), cuts), accumulator, strict))
    assert (
        "".join(getattr(e, "text", "") for e in events if type(e).__name__ == "ContentDeltaEvent")
        == text
    )
    result = accumulator.result()
    message = result.choices[0].message
    assert message is not None
    assert (message.content or "") == text
    assert (message.reasoning_content or "") == reasoning
    got = {
        i: (c.function.name, c.function.arguments) for i, c in enumerate(message.tool_calls or [])
    }
    assert got == {i: calls[k] for i, k in enumerate(sorted(calls))}
    assert result.choices[0].finish_reason == "stop"


# --------------------------------------------------------------------------- tool arguments


@tool
async def forecast(
    city: str,
    days: int = 1,
    units: Literal["celsius", "fahrenheit"] = "celsius",
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """Weather for a city.

    Args:
        city: The city.
        days: How many days.
        units: Temperature units.
        tags: Labels.
    """
    return {"city": city, "days": days, "units": units, "tags": tags}


REGISTRY = ToolRegistry([forecast])
SCHEMA = REGISTRY.get("forecast").schema  # type: ignore[union-attr]

argument_texts = st.one_of(
    st.text(max_size=60),
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {},
        optional={
            "city": json_values,
            "days": json_values,
            "units": json_values,
            "tags": json_values,
            "extra": json_values,
        },
    ).map(json.dumps),
)


@fuzz("tool_arguments_any_text")
@given(raw=argument_texts)
@example(raw='{"city": ' + "[" * DEEP)
@example(raw="[" * DEEP + "]" * DEEP)
@example(raw='{"city": "x", "tags": ' + "[" * 3000 + "]" * 3000 + "}")
def test_tool_argument_parser_takes_any_text(raw: str) -> None:
    count("tool_arguments_any_text")
    try:
        kwargs = SCHEMA.validate_arguments(raw)
    except ToolExecutionError as exc:
        assert exc.details["kind"] in ("invalid_json", "invalid_arguments")
        return
    assert isinstance(kwargs["city"], str)


@fuzz("tool_execute_any_text")
@given(raw=argument_texts, policy=st.sampled_from(["feedback", "raise"]))
@example(raw="[" * DEEP, policy="feedback")
@example(raw="[" * DEEP, policy="raise")
def test_tool_registry_runs_calls_with_any_argument_text(
    loop: asyncio.AbstractEventLoop, raw: str, policy: Literal["feedback", "raise"]
) -> None:
    count("tool_execute_any_text")
    call = {"id": "c1", "type": "function", "function": {"name": "forecast", "arguments": raw}}
    try:
        results = loop.run_until_complete(REGISTRY.execute([call], timeout=5, errors=policy))
    except ToolExecutionError:
        assert policy == "raise"
        return
    assert len(results) == 1
    result = results[0]
    json.loads(result.content)  # always valid JSON for the model
    assert result.ok or result.error_kind in ("invalid_json", "invalid_arguments")


@fuzz("tool_arguments_round_trip")
@given(
    city=st.text(max_size=30),
    days=st.none() | st.integers(-(2**53), 2**53),
    units=st.none() | st.sampled_from(["celsius", "fahrenheit"]),
    tags=st.none() | st.lists(st.text(max_size=10), max_size=4),
)
def test_valid_tool_arguments_validate_to_themselves(
    city: str, days: int | None, units: str | None, tags: list[str] | None
) -> None:
    count("tool_arguments_round_trip")
    given_args: dict[str, Any] = {"city": city}
    for key, value in (("days", days), ("units", units), ("tags", tags)):
        if value is not None:
            given_args[key] = value
    assert SCHEMA.validate_arguments(json.dumps(given_args)) == given_args


# --------------------------------------------------------------------------- media


MAGIC: dict[bytes, str] = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF89a": "image/gif",
    b"GIF87a": "image/gif",
    b"RIFF\x00\x00\x00\x00WEBP": "image/webp",
    b"RIFF\x00\x00\x00\x00AVI ": "video/x-msvideo",
    b"\x00\x00\x00\x18ftypisom": "video/mp4",
    b"\x00\x00\x00\x14ftypqt  ": "video/quicktime",
    b"\x1a\x45\xdf\xa3": "",  # webm or matroska, by doctype
    b"OggS": "",  # video or audio, by stream
    b"II*\x00": "image/tiff",
    b"MM\x00*": "image/tiff",
    b"BM": "",  # BMP when the header size is right
    b"FLV\x01": "video/x-flv",
    b"ID3": "audio/mpeg",
    b"fLaC": "audio/flac",
}
magic_prefixes = st.sampled_from(list(MAGIC))
media_bytes = st.one_of(
    st.binary(max_size=200),
    st.tuples(magic_prefixes, st.binary(max_size=200)).map(b"".join),
)
SETTINGS = MediaSettings(video_mode="native")


def _data_url(mime: str, payload: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode()}"


# Pillow warns (UserWarning) about corrupt metadata in the junk it is shown; that is not an
# exception escaping, and users see the same warning for such files.
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
@fuzz("media_any_bytes")
@given(
    data=media_bytes,
    as_url=st.sampled_from(["bytes", "data-url", "junk-url"]),
    kind=st.sampled_from(["image", "video"]),
    junk=st.text(max_size=20),
)
def test_media_detection_takes_any_bytes(data: bytes, as_url: str, kind: str, junk: str) -> None:
    count("media_any_bytes")
    mime = sniff_mime(data)
    assert mime is None or (isinstance(mime, str) and "/" in mime)
    item: bytes | str = data
    if as_url == "data-url":
        item = _data_url(f"{kind}/png", data)
    elif as_url == "junk-url":
        item = f"data:{kind}/png;base64,{junk}"
    try:
        if kind == "image":
            parts = prepare_media(item, None, SETTINGS)
        else:
            parts = prepare_media(None, item, SETTINGS)
    except MediaProcessingError as exc:
        assert exc.details["reason"]
        return
    assert len(parts) == 1


@fuzz("media_magic_round_trip")
@given(prefix=magic_prefixes, tail=st.binary(min_size=20, max_size=100))
def test_known_signatures_are_detected(prefix: bytes, tail: bytes) -> None:
    count("media_magic_round_trip")
    expected = MAGIC[prefix]
    mime = sniff_mime(prefix + tail)
    if expected:
        assert mime == expected
    elif prefix == b"BM":
        assert mime in (None, "image/bmp")
    else:
        assert mime is not None and mime.split("/")[0] in ("video", "audio")


@fuzz("media_real_images")
@given(
    fmt=st.sampled_from(["PNG", "JPEG", "GIF", "WEBP", "BMP"]),
    size=st.tuples(st.integers(1, 64), st.integers(1, 64)),
    color=st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
    as_url=st.booleans(),
)
def test_real_images_are_accepted_as_what_they_are(
    fmt: str, size: tuple[int, int], color: tuple[int, int, int], as_url: bool
) -> None:
    count("media_real_images")
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    data = out.getvalue()
    mime = f"image/{fmt.lower()}"
    assert sniff_mime(data) == mime
    parts = prepare_media(_data_url(mime, data) if as_url else data, None, SETTINGS)
    assert len(parts) == 1 and parts[0].mime == mime


# --------------------------------------------------------------------------- totals


def test_totals(record_property: Callable[[str, object], None]) -> None:
    """At least 10,000 generated inputs in total (when the whole module ran)."""
    if set(RUNS) != set(BUDGET):
        pytest.skip(f"only part of the module ran: {sorted(RUNS)}")
    total = sum(RUNS.values())
    record_property("fuzz_examples", total)
    print("\nfuzz examples run:")
    for name, runs in RUNS.items():
        print(f"  {name:<28} {runs:>6}")
    print(f"  {'total':<28} {total:>6}")
    assert total >= 10_000
