"""The SSE decoder: WHATWG field rules, line ends, and chunking at any byte."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openai_chatapi._sse import DONE, ServerSentEvent, SSEDecoder

from ..support.fakes import decode_sse


def E(
    data: str, event: str = "message", id: str | None = None, retry: int | None = None
) -> ServerSentEvent:
    return ServerSentEvent(event=event, data=data, id=id, retry=retry)


CASES: list[tuple[str, bytes, list[ServerSentEvent]]] = [
    ("single event", b"data: hello\n\n", [E("hello")]),
    ("two events in one chunk", b"data: a\n\ndata: b\n\n", [E("a"), E("b")]),
    ("multi-line data joined with LF", b"data: a\ndata: b\ndata:\n\n", [E("a\nb\n")]),
    ("comment only", b": keep-alive\n\n", []),
    ("comment between events", b": ping\n\ndata: x\n\n", [E("x")]),
    ("comment inside an event", b"data: a\n: note\ndata: b\n\n", [E("a\nb")]),
    ("event type", b"event: ping\ndata: {}\n\n", [E("{}", event="ping")]),
    ("event type resets", b"event: a\ndata: 1\n\ndata: 2\n\n", [E("1", "a"), E("2")]),
    ("event without data is dropped", b"event: a\n\ndata: 2\n\n", [E("2")]),
    ("empty event name means message", b"event\ndata: a\n\n", [E("a")]),
    ("error event", b'event: error\ndata: {"error": {}}\n\n', [E('{"error": {}}', "error")]),
    (
        "id carries over; bare id resets it",
        b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
        [E("a", id="1"), E("b", id="1"), E("c", id="")],
    ),
    ("id set by a data-less event", b"id: 7\n\ndata: a\n\n", [E("a", id="7")]),
    (
        "id containing NUL is ignored",
        b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
        [E("a", id="1"), E("b", id="1")],
    ),
    ("retry", b"retry: 3000\ndata: a\n\ndata: b\n\n", [E("a", retry=3000), E("b")]),
    (
        "retry that is not all ASCII digits is ignored",
        "retry: 30s\ndata: a\n\nretry: -1\ndata: b\n\nretry:\ndata: c\n\n"
        "retry: ١٢\ndata: d\n\nretry: 1 \ndata: e\n\n".encode(),
        [E("a"), E("b"), E("c"), E("d"), E("e")],
    ),
    ("unknown fields ignored", b"foo: bar\ndata: a\nData: b\nDATA: c\n\n", [E("a")]),
    ("leading space is not trimmed from names", b" data: a\n\n", []),
    ("data without colon", b"data\n\n", [E("")]),
    ("two bare data lines", b"data\ndata\n\n", [E("\n")]),
    ("empty data", b"data:\n\n", [E("")]),
    ("only a space", b"data: \n\n", [E("")]),
    ("only one space stripped", b"data:  two\n\n", [E(" two")]),
    ("no space after colon", b"data:x\n\n", [E("x")]),
    ("tab is kept", b"data:\tx\n\n", [E("\tx")]),
    ("colons in value", b'data: {"a": "b:c"}\n\n', [E('{"a": "b:c"}')]),
    ("CRLF", b"data: a\r\ndata: b\r\n\r\n", [E("a\nb")]),
    ("CR", b"data: a\rdata: b\r\r", [E("a\nb")]),
    ("mixed line ends", b"data: a\r\ndata: b\rdata: c\n\r\n", [E("a\nb\nc")]),
    ("blank lines between events", b"data: a\n\n\n\r\n\rdata: b\n\n", [E("a"), E("b")]),
    ("missing final blank line", b"data: a\n", [E("a")]),
    ("missing final line end", b"data: a", [E("a")]),
    ("last event unterminated", b"data: a\n\ndata: b", [E("a"), E("b")]),
    ("trailing CR", b"data: a\r", [E("a")]),
    ("BOM at stream start", b"\xef\xbb\xbfdata: a\n\n", [E("a")]),
    ("only one BOM stripped", b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n", []),
    ("BOM inside data kept", b"data: \xef\xbb\xbfx\n\n", [E("\ufeffx")]),
    ("non-ASCII data", "data: héllo € 𝄞\n\n".encode(), [E("héllo € 𝄞")]),
    ("invalid UTF-8 replaced", b"data: a\xffb\xc3\n\n", [E("a\ufffdb\ufffd")]),
    ("UTF-8 cut at end of stream", b"data: \xe2\x82", [E("\ufffd")]),
    ("DONE sentinel", b"data: [DONE]\n\n", [E(DONE)]),
    ("empty stream", b"", []),
]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_tricky_inputs(raw: bytes, expected: list[ServerSentEvent]) -> None:
    assert decode_sse([raw]) == expected
    assert decode_sse([bytes([b]) for b in raw]) == expected


SAMPLE = (
    "\ufeff: hello\n"
    "retry: 2500\n"
    "\n"
    'data: {"choices":[{"delta":{"content":"héllo"}}]}\n'
    "\n"
    "id: 42\n"
    "event: note\n"
    "data: line one\n"
    "data:line two €\n"
    "x-unknown: 1\n"
    "\n"
    'data: {"choices":[{"delta":{"content":" wörld 𝄞"}}]}\n'
    "\n"
    "data: [DONE]\n"
    "\n"
)
SAMPLE_EVENTS = [
    E('{"choices":[{"delta":{"content":"héllo"}}]}'),
    E("line one\nline two €", event="note", id="42"),
    E('{"choices":[{"delta":{"content":" wörld 𝄞"}}]}', id="42"),
    E(DONE, id="42"),
]
LINE_ENDS = {"LF": "\n", "CRLF": "\r\n", "CR": "\r"}


@pytest.fixture(params=list(LINE_ENDS), ids=list(LINE_ENDS))
def sample(request: pytest.FixtureRequest) -> bytes:
    return SAMPLE.replace("\n", LINE_ENDS[request.param]).encode()


def test_sample_whole(sample: bytes) -> None:
    assert decode_sse([sample]) == SAMPLE_EVENTS


def test_sample_split_in_two_at_every_byte(sample: bytes) -> None:
    for i in range(len(sample) + 1):
        assert decode_sse([sample[:i], sample[i:]]) == SAMPLE_EVENTS, f"split at byte {i}"


def test_sample_split_in_three_at_every_pair_of_bytes(sample: bytes) -> None:
    for i in range(len(sample) + 1):
        for j in range(i, len(sample) + 1):
            assert decode_sse([sample[:i], sample[i:j], sample[j:]]) == SAMPLE_EVENTS, (i, j)


def test_sample_byte_by_byte(sample: bytes) -> None:
    assert decode_sse([sample[i : i + 1] for i in range(len(sample))]) == SAMPLE_EVENTS


def test_utf8_character_split_across_chunks() -> None:
    raw = "data: €𝄞\n\n".encode()
    decoder = SSEDecoder()
    assert decoder.feed(raw[:7]) == []  # inside the 3-byte euro sign
    assert decoder.feed(raw[7:11]) == []  # the rest of it, then inside the 4-byte clef
    assert decoder.feed(raw[11:]) == [E("€𝄞")]
    assert decoder.flush() == []


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # This LF completes the CRLF above; were it a second line end the event would fire now.
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\r") == [E("a")]
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"data: b\r\n\r\n") == [E("b")]


def test_events_arrive_as_soon_as_their_blank_line_does() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\ndata: b\n\ndata: c") == [E("a"), E("b")]
    assert decoder.flush() == [E("c")]


def test_decoder_keeps_id_and_retry_and_restarts_after_flush() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: 5\nretry: 100\ndata: a\n\n")
    assert decoder.flush() == []
    assert (decoder.last_event_id, decoder.retry) == ("5", 100)
    # A new stream after flush: BOM stripped again, the last event id carries over.
    assert decoder.feed(b"\xef\xbb\xbfdata: b\n\n") == [E("b", id="5")]


def test_feed_text_matches_feed() -> None:
    decoder = SSEDecoder()
    events = decoder.feed_text("\ufeffdata: a\r")
    events += decoder.feed_text("\ndata: é\r\n\r\n")
    assert events + decoder.flush() == [E("a\né")]


def test_event_is_an_immutable_value() -> None:
    event = E("x", id="1")
    assert event == ServerSentEvent(data="x", id="1")
    assert ServerSentEvent().event == "message"
    assert hash(event) == hash(E("x", id="1"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.data = "y"  # type: ignore[misc]


# --- property tests ------------------------------------------------------------------------

_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\0"), max_size=12)
_line = st.one_of(
    st.tuples(st.just("data"), _text),
    st.tuples(st.just("event"), _text),
    st.tuples(st.just("id"), _text),
    st.tuples(st.just("retry"), st.integers(0, 10**6).map(str)),
    st.tuples(st.just("comment"), _text),
    st.tuples(st.sampled_from(["foo", "Data", "ID", "x-y", "retry-after"]), _text),
)


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[ServerSentEvent]]:
    """A valid event stream and, from its structure, the events it must decode to."""
    blocks = draw(st.lists(st.lists(_line, max_size=5), max_size=6))
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    ending = draw(st.sampled_from(["blank line", "line end", "nothing"]))
    out: list[str] = ["\ufeff"] if draw(st.booleans()) else []
    expected: list[ServerSentEvent] = []
    last_id: str | None = None
    for block in blocks:
        data: list[str] = []
        event, retry = "", None
        for name, value in block:
            if name == "comment":
                out.append(":" + value + eol)
                continue
            space = " " if value.startswith(" ") or draw(st.booleans()) else ""
            out.append(name + ":" + space + value + eol)
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
            elif name == "id":
                last_id = value
            elif name == "retry":
                retry = int(value)
        out.append(eol)
        if data:
            expected.append(E("\n".join(data), event or "message", last_id, retry))
    text = "".join(out)
    if ending != "blank line" and text.endswith(eol + eol):
        text = text[: -len(eol)]
        if ending == "nothing":
            text = text[: -len(eol)]
    return text.encode(), expected


def _split(raw: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c % (len(raw) + 1) for c in cuts), len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(bounds)]


@settings(deadline=None, max_examples=300)
@given(streams(), st.lists(st.integers(min_value=0), max_size=12))
def test_random_chunkings_of_valid_streams(
    stream: tuple[bytes, list[ServerSentEvent]], cuts: list[int]
) -> None:
    raw, expected = stream
    assert decode_sse([raw]) == expected
    assert decode_sse(_split(raw, cuts)) == expected


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=80), st.lists(st.integers(min_value=0), max_size=12))
def test_arbitrary_bytes_never_raise_and_chunking_never_matters(
    raw: bytes, cuts: list[int]
) -> None:
    assert decode_sse(_split(raw, cuts)) == decode_sse([raw])
