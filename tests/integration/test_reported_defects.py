"""Defects a hostile tryout of the package found, each reproduced through the public API."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from openai_chatapi import APIResponseError, ChatAgent, ChatMessage, ConfigurationError

from ..conftest import AgentFactory
from ..support.fakes import FakeServer, chunk, completion, text_chunks

# --------------------------------------------------------------------------- empty content lists


def _history_file(path: Path, messages: list[dict[str, object]]) -> Path:
    document = {"format": "openai_chatapi.history", "version": 1, "messages": messages}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


async def test_a_saved_history_with_an_empty_content_list_is_refused(
    agent: ChatAgent, server: FakeServer, tmp_path: Path
) -> None:
    agent.add_message({"role": "user", "content": "kept"})
    target = _history_file(
        tmp_path / "h.json",
        [{"role": "user", "content": "hi"}, {"role": "user", "content": []}],
    )
    with pytest.raises(ConfigurationError, match=r"messages\[1\]\.content: .*empty list"):
        agent.load_history(target)
    assert [m.text for m in agent.history] == ["kept"]
    server.add_completion("ok")
    assert await agent.chat("hello") == "ok"


async def test_a_request_field_error_names_the_field_as_the_payload_has_it(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    agent = await make_agent(stop=["a", "b", "c", "d", "e"])
    with pytest.raises(ConfigurationError, match=r"field 'stop': .*at most 4") as info:
        await agent.chat("hi")
    assert info.value.details["field"] == "stop"
    assert server.requests == [] and agent.history == ()


async def test_a_message_emptied_after_it_was_added_is_named_by_its_place(
    agent: ChatAgent, server: FakeServer
) -> None:
    message = ChatMessage(role="user", content="first")
    agent.add_message(message)
    message.content = []  # no validation on assignment: the request model catches it
    with pytest.raises(
        ConfigurationError, match=r"field 'messages\[0\]\.content': List should have at least 1"
    ):
        await agent.chat("hi")
    assert server.requests == []


# --------------------------------------------------------------------------- reasoning name


@pytest.mark.parametrize("streamed", [False, True])
async def test_reasoning_under_groq_s_name_is_reasoning_content_in_last_response(
    agent: ChatAgent, server: FakeServer, streamed: bool
) -> None:
    if streamed:
        server.add_stream(
            [
                chunk({"role": "assistant", "reasoning": "because"}),
                chunk({"content": "hi"}),
                chunk({}, finish_reason="stop"),
            ]
        )
        assert "".join([p async for p in agent.chat_stream("x", display_stream=False)]) == "hi"
    else:
        body = completion("hi")
        body["choices"][0]["message"]["reasoning"] = "because"
        server.add_json(body)
        assert await agent.chat("x") == "hi"
    assert agent.last_response is not None
    message = agent.last_response.choices[0].message
    assert message.reasoning_content == "because"
    assert agent.history[-1].reasoning_content == "because"


# --------------------------------------------------------------------------- model lists


@pytest.mark.parametrize(
    ("body", "named"),
    [({}, "an empty object"), (completion("hi"), "an object with choices, created")],
    ids=["empty-object", "a-chat-completion"],
)
async def test_a_model_list_without_data_is_an_error_naming_what_came(
    agent: ChatAgent, server: FakeServer, body: dict[str, object], named: str
) -> None:
    server.add_json(body)
    with pytest.raises(APIResponseError, match=f"no 'data' list .*{named}") as info:
        await agent.list_models()
    assert info.value.details["field"] == "data"


async def test_a_minimal_model_list_is_accepted(agent: ChatAgent, server: FakeServer) -> None:
    server.add_json({"data": [{"id": "llama3"}], "extra": True})
    assert [m.id for m in await agent.list_models()] == ["llama3"]


# --------------------------------------------------------------------------- terminals


async def test_display_stream_on_an_ascii_terminal_replaces_what_it_cannot_show(
    agent: ChatAgent, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="ascii"))
    server.add_stream(text_chunks(["caf\u00e9 ", "\u2603", " ok"]))
    pieces = [p async for p in agent.chat_stream("x")]
    assert "".join(pieces) == "caf\u00e9 \u2603 ok"
    assert raw.getvalue() == b"caf? ? ok\n"
    assert [m.text for m in agent.history] == ["x", "caf\u00e9 \u2603 ok"]


async def test_display_stream_to_a_closed_stdout_does_not_fail_the_call(
    agent: ChatAgent, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stdout", closed)
    server.add_stream(text_chunks(["a", "b"]))
    assert "".join([p async for p in agent.chat_stream("x")]) == "ab"
    assert len(agent.history) == 2
