"""Messages in the official wire format, from real sources, into ``ChatMessage`` and back.

Two tables of wire messages, each validated into ``ChatMessage`` (``ChatMessage(**d)``,
``ChatMessage.model_validate(d)``, ``agent.add_message(d)``) and sent through the client:
the request's ``messages`` must equal the input with the documented drops applied
(``replay_support.as_sent``):

* every message of every recorded request in ``../shared/conformance`` (real traffic of
  the openai SDK and other clients with a dozen servers);
* one message per variant of the official spec's message schemas (read at test time from
  ``../shared/upstream/openai-openapi.yaml``): every role, every content alternative and
  content-part kind, every tool-call kind, every optional property.

Then ``ChatMessage.to_wire()``: the ``openai`` SDK takes it in ``messages=`` and sends the
same messages, and a history rebuilt from it sends the same request.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from openai_chatapi import (
    AudioPart,
    ChatAgent,
    ChatMessage,
    ConfigurationError,
    FilePart,
    ImagePart,
    ModelConfig,
    RefusalPart,
    RuntimeConfig,
    TextPart,
    VideoPart,
)

from ..conftest import AgentFactory
from ..support.fakes import API_KEY, BASE_URL, FakeServer, completion, tool_call
from ..support.payload_scenarios import (
    PDF_BYTES,
    PDF_PART,
    PNG_1X1,
    WAV_BYTES,
    WAV_PART,
    WIRE_HISTORY,
)
from ..support.replay_support import as_sent, load_exchanges

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "conformance"
SPEC = SHARED / "upstream" / "openai-openapi.yaml"
WAYS = ["ChatMessage(**d)", "model_validate", "add_message"]


async def _send_history(
    agent: ChatAgent, server: FakeServer, messages: list[dict[str, Any]], way: str
) -> list[dict[str, Any]]:
    """Put ``messages`` in the history one ``way``, chat once; the history as it was sent."""
    given = copy.deepcopy(messages)
    if way == "ChatMessage(**d)":
        agent.replace_history([ChatMessage(**m) for m in given])
    elif way == "model_validate":
        agent.replace_history([ChatMessage.model_validate(m) for m in given])
    else:
        agent.clear_history(keep_system=False)
        for m in given:
            agent.add_message(m)
    assert given == messages, "validation must not change the caller's dicts"
    server.add_completion("ok")
    await agent.chat("next")
    sent: list[dict[str, Any]] = server.last_body["messages"]
    assert sent[-1] == {"role": "user", "content": "next"}
    return sent[:-1]


# --------------------------------------------------------------------------- recorded messages


def _recorded() -> list[tuple[str, list[dict[str, Any]]]]:
    table = []
    for path in load_exchanges(CORPUS):
        messages = json.loads(path.read_text(encoding="utf-8"))["request"]["body"].get("messages")
        if isinstance(messages, list) and messages and all(isinstance(m, dict) for m in messages):
            table.append((path.relative_to(CORPUS).as_posix(), messages))
    return table


RECORDED = _recorded()


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(
    "messages", [m for _, m in RECORDED] or [None], ids=[n for n, _ in RECORDED] or ["absent"]
)
async def test_recorded_messages_are_sent_as_given(
    agent: ChatAgent, server: FakeServer, messages: list[dict[str, Any]] | None, way: str
) -> None:
    if messages is None:
        pytest.skip(f"no recorded exchanges at {CORPUS}")
    sent = await _send_history(agent, server, messages, way)
    assert sent == [as_sent(m) for m in messages]


def test_the_recorded_table_covers_the_wire_format() -> None:
    if not RECORDED:
        pytest.skip(f"no recorded exchanges at {CORPUS}")
    kinds = {
        part.get("type")
        for _, messages in RECORDED
        for m in messages
        if isinstance(m.get("content"), list)
        for part in m["content"]
    }
    keys = {key for _, messages in RECORDED for m in messages for key in m}
    assert {"text", "image_url", "input_audio", "file", "video_url"} <= kinds
    assert {"annotations", "reasoning", "reasoning_content", "tool_calls", "name"} <= keys


# --------------------------------------------------------------------------- the spec's schemas

# Values for string properties, by name (the spec gives types, not meaningful values).
_STRINGS: dict[str, str] = {
    "url": "https://example.com/cat.png",
    "data": base64.b64encode(WAV_BYTES).decode(),
    "file_data": "data:application/pdf;base64," + base64.b64encode(PDF_BYTES).decode(),
    "file_id": "file-abc123",
    "filename": "notes.pdf",
    "id": "call_1",
    "tool_call_id": "call_1",
    "arguments": '{"city": "Paris"}',
    "name": "get_weather",
    "input": "raw input",
    "refusal": "I cannot help with that.",
}


@cache
def _spec() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    if not SPEC.is_file():
        pytest.skip(f"no official spec at {SPEC}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC.open(encoding="utf-8") as handle:
        spec: dict[str, Any] = yaml.load(handle, Loader=loader)
    return spec


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = _spec()["components"]["schemas"][name]
    return node


def _variants(node: dict[str, Any], name: str = "") -> list[Any]:
    """Example values of a schema: one per alternative of every oneOf/anyOf inside it
    (null alternatives left out); objects get every property, required or not."""
    node = _resolve(node)
    for key in ("oneOf", "anyOf"):
        if key in node:
            out: list[Any] = []
            for option in node[key]:
                if _resolve(option).get("type") != "null":
                    out.extend(_variants(option, name))
            return out
    if "enum" in node:
        return [node["enum"][0]]
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        properties = node.get("properties", {})
        if name == "file":  # file_data and file_id are alternatives, not partners
            properties = {k: v for k, v in properties.items() if k != "file_id"}
            by_id = {"file_id": _variants(node["properties"]["file_id"], "file_id")[0]}
            return [*_object_variants(properties), by_id]
        return _object_variants(properties)
    if kind == "array":
        return [[item] for item in _variants(node["items"], name)]
    if kind == "string":
        return [_STRINGS.get(name, "hello")]
    if kind in ("integer", "number"):
        return [1]
    if kind == "boolean":
        return [True]
    return ["hello"]


def _object_variants(properties: dict[str, Any]) -> list[dict[str, Any]]:
    options = {key: _variants(schema, key) for key, schema in properties.items()}
    base = {key: values[0] for key, values in options.items() if values}
    out = [base]
    for key, values in options.items():
        out.extend({**base, key: value} for value in values[1:])
    return out


def _spec_messages() -> list[dict[str, Any]]:
    union = _spec()["components"]["schemas"]["ChatCompletionRequestMessage"]
    return _variants(union)


def test_the_spec_table_covers_every_message_and_part_kind() -> None:
    messages = _spec_messages()
    roles = {m["role"] for m in messages}
    kinds = {p["type"] for m in messages if isinstance(m["content"], list) for p in m["content"]}
    calls = {c["type"] for m in messages for c in m.get("tool_calls") or []}
    assert roles == {"system", "developer", "user", "assistant", "tool", "function"}
    assert kinds == {"text", "image_url", "input_audio", "file", "refusal"}
    assert calls == {"function", "custom"}
    assert any("function_call" in m for m in messages) and any("audio" in m for m in messages)


@pytest.mark.parametrize("way", WAYS)
async def test_every_spec_message_is_sent_as_given(
    agent: ChatAgent, server: FakeServer, way: str
) -> None:
    for message in _spec_messages():
        (sent,) = await _send_history(agent, server, [message], way)
        assert sent == as_sent(message), json.dumps(message)[:300]


# --------------------------------------------------------------------------- accepted, never fatal


async def test_response_only_fields_and_unknown_keys_are_kept_and_not_sent(
    agent: ChatAgent, server: FakeServer
) -> None:
    message = ChatMessage(
        role="assistant",
        content="Paris.",
        refusal=None,
        annotations=[{"type": "url_citation", "url_citation": {"url": "https://x.test"}}],
        audio=None,
        reasoning="The capital...",
        provider="acme",
    )
    assert message.reasoning_content == "The capital..."
    assert message.annotations and message.model_extra == {"provider": "acme"}
    (sent,) = await _send_history(agent, server, [message.model_dump()], "add_message")
    assert sent == {"role": "assistant", "content": "Paris."}


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"role": "user", "content": "x", "tool_call_id": "c1"}, "tool_call_id"),
        ({"role": "system", "content": "x", "tool_call_id": "c1"}, "tool_call_id"),
        ({"role": "assistant", "content": "x", "tool_call_id": "c1"}, "tool_call_id"),
        ({"role": "user", "content": "x", "refusal": "no"}, "refusal"),
        ({"role": "tool", "tool_call_id": "c1", "content": "x", "refusal": "no"}, "refusal"),
        ({"role": "user", "content": "x", "audio": {"id": "audio_1"}}, "audio"),
    ],
)
async def test_fields_the_role_does_not_allow_are_kept_and_not_sent(
    agent: ChatAgent, server: FakeServer, message: dict[str, Any], field: str
) -> None:
    (sent,) = await _send_history(agent, server, [message], "add_message")
    assert field not in sent
    assert sent == {k: v for k, v in message.items() if k != field}
    assert getattr(agent.history[0], field) == message[field]
    assert field not in agent.history[0].to_wire()


async def test_a_response_message_can_be_added_as_it_is(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_json(
        completion("Checking.", tool_calls=[tool_call("c1", "get_weather", {"city": "Oslo"})])
    )
    server.add_completion("Done.")
    await agent.chat("weather?", auto_execute_tools=False)
    assert agent.last_response is not None
    message = agent.last_response.choices[0].message
    assert message is not None
    agent.clear_history()
    agent.add_message({"role": "user", "content": "weather?"})
    agent.add_message(message)
    agent.add_message({"role": "tool", "tool_call_id": "c1", "content": "sunny"})
    await agent.chat("so?")
    sent = server.last_body["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [tool_call("c1", "get_weather", {"city": "Oslo"})],
    }


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"role": "narrator", "content": "x"}, "role"),
        ({"role": "tool", "content": "x"}, "tool_call_id"),
        ({"role": "function", "content": "x"}, "function's name"),
        ({"role": "user", "content": []}, "content is an empty list"),
        ({"role": "system", "content": []}, "system message needs a string"),
        ({"role": "assistant", "content": []}, "content is an empty list"),
        ({"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}, "assistant"),
        ({"role": "user", "content": [{"type": "image_url", "image_url": {}}]}, "url"),
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "/etc/x"}}]},
            "not a local path|not '/etc/x'",
        ),
        (
            {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA"}}]},
            "format",
        ),
        (
            {"role": "user", "content": [{"type": "file", "file": {"file_data": "%%"}}]},
            "base64",
        ),
        (
            {
                "role": "assistant",
                "content": [
                    {"type": "input_audio", "input_audio": {"data": "AA", "format": "mp3"}}
                ],
            },
            "cannot carry media",
        ),
    ],
)
async def test_invalid_messages_are_refused_naming_the_problem(
    agent: ChatAgent, server: FakeServer, message: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        ChatMessage(**message)
    with pytest.raises(ConfigurationError, match=reason):
        agent.add_message(message)
    with pytest.raises(ConfigurationError, match=reason):
        agent.replace_history([{"role": "user", "content": "ok"}, message])
    assert agent.history == ()
    assert server.requests == []


def test_wire_parts_become_references_that_keep_the_data_as_given() -> None:
    png = "data:image/png;base64," + base64.b64encode(PNG_1X1).decode()
    wav = base64.b64encode(WAV_BYTES).decode()
    message = ChatMessage(
        role="user",
        content=[
            {"type": "text", "text": "hi", "image_url": None},
            {"type": "image_url", "image_url": {"url": png, "detail": "low"}},
            {"type": "video_url", "video_url": {"url": "https://example.com/a.mp4"}},
            {"type": "input_audio", "input_audio": {"data": wav, "format": "wav"}},
            {"type": "file", "file": {"file_id": "file-1"}},
        ],
    )
    assert isinstance(message.content, list)
    text, image, video, audio, document = message.content
    assert text == TextPart(text="hi")
    assert image == ImagePart(source=png, mime="image/png", size=len(PNG_1X1), detail="low")
    assert video == VideoPart(source="https://example.com/a.mp4", mime="video/mp4")
    assert isinstance(audio, AudioPart) and audio.format == "wav" and audio.size == len(WAV_BYTES)
    assert document == FilePart(file_id="file-1")
    assert message.has_media and message.text == "hi"
    assert wav not in repr(message)  # reprs never carry base64
    refused = ChatMessage(role="assistant", content=[{"type": "refusal", "refusal": "no"}])
    assert refused.content == [RefusalPart(refusal="no")] and not refused.has_media


# --------------------------------------------------------------------------- to_wire


@pytest.fixture
def local_media(tmp_path: Path) -> dict[str, Path]:
    paths = {"dot.png": PNG_1X1, "hello.wav": WAV_BYTES, "notes.pdf": PDF_BYTES}
    for name, data in paths.items():
        (tmp_path / name).write_bytes(data)
    return {name: tmp_path / name for name in paths}


async def _conversation(agent: ChatAgent, server: FakeServer, media: dict[str, Path]) -> None:
    agent.replace_history(list(WIRE_HISTORY))
    server.add_completion("Seen.")
    await agent.chat(
        "and these?",
        media["dot.png"],
        audio_paths=media["hello.wav"],
        file_paths=[media["notes.pdf"], PDF_BYTES],
    )


async def test_history_round_trips_through_to_wire(
    make_agent: AgentFactory, server: FakeServer, local_media: dict[str, Path]
) -> None:
    agent = await make_agent()
    await _conversation(agent, server, local_media)
    exported = [m.to_wire() for m in agent.history]
    server.add_completion("again")
    await agent.chat("next")
    original = server.last_body

    assert json.loads(json.dumps(exported)) == exported  # plain JSON, media inline
    assert all("openai-chatapi-media" not in json.dumps(m) for m in exported)
    rebuilt = await make_agent()
    rebuilt.replace_history([ChatMessage.model_validate(m) for m in exported])
    server.add_completion("again")
    await rebuilt.chat("next")
    assert server.last_body == original
    assert exported == original["messages"][:-1]


async def test_the_openai_sdk_sends_to_wire_messages_unchanged(
    agent: ChatAgent, server: FakeServer, local_media: dict[str, Path]
) -> None:
    openai = pytest.importorskip("openai", reason="needs the openai SDK (the 'bench' extra)")
    await _conversation(agent, server, local_media)
    messages = [m.to_wire() for m in agent.history]
    server.add_completion("from the sdk")
    async with httpx.AsyncClient(transport=server.transport()) as http:
        client = openai.AsyncOpenAI(base_url=BASE_URL, api_key=API_KEY, http_client=http)
        reply = await client.chat.completions.create(model="test-model", messages=messages)
    assert reply.choices[0].message.content == "from the sdk"
    assert server.last_body["messages"] == messages
    # ... and the SDK's own response message goes back into a history as it is.
    agent.add_message(reply.choices[0].message)
    assert agent.history[-1].content == "from the sdk"


def test_to_wire_encodes_local_media_inline(local_media: dict[str, Path]) -> None:
    message = ChatMessage(
        role="user",
        content=[
            TextPart(text="x"),
            AudioPart(
                source=str(local_media["hello.wav"]),
                mime="audio/wav",
                size=len(WAV_BYTES),
                format="wav",
            ),
            FilePart(
                source=str(local_media["notes.pdf"]),
                mime="application/pdf",
                filename="notes.pdf",
            ),
        ],
    )
    assert message.to_wire() == {
        "role": "user",
        "content": [
            {"type": "text", "text": "x"},
            WAV_PART,
            PDF_PART,
        ],
    }


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


async def test_a_saved_wire_conversation_loads_into_a_fresh_agent(server: FakeServer) -> None:
    saved = json.loads(json.dumps([m.to_wire() for m in WIRE_HISTORY]))
    assert None not in list(_walk(saved))  # never a null
    config = ModelConfig(api_base_url=BASE_URL, api_key=API_KEY, model="test-model")
    runtime = RuntimeConfig(enable_logging=False)
    async with ChatAgent(config, runtime, http_transport=server.transport()) as agent:
        for message in saved:
            agent.add_message(message)
        server.add_completion("ok")
        await agent.chat("continue")
    assert server.last_body["messages"][:-1] == saved
