"""Lenient parsing of what real servers send: content as a list of parts (Mistral/Magistral)
and cosmetic fields of the wrong type keep the reply; strict parsing may still reject them."""

from __future__ import annotations

from typing import Any

import pytest

from openai_chatapi import APIResponseError, ChatAgent
from openai_chatapi._events import ContentDeltaEvent, ReasoningDeltaEvent, StreamEvent

from ..conftest import AgentFactory
from ..support.fakes import FakeServer, chunk, completion

MAGISTRAL_CONTENT = [
    {"type": "thinking", "thinking": [{"type": "text", "text": "The capital of France "}]},
    {"type": "thinking", "thinking": "is well known."},
    {"type": "reference", "reference_ids": [1]},  # an unknown part type: ignored
    {"type": "text", "text": "Paris"},
    {"type": "text", "text": "."},
]


async def _events(agent: ChatAgent) -> list[StreamEvent]:
    return [event async for event in agent.chat_stream_events("capital of France?")]


# ------------------------------------------------------------------ content as parts


async def test_message_content_as_parts_is_joined_and_thinking_is_reasoning(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_json(completion(MAGISTRAL_CONTENT))  # type: ignore[arg-type]
    assert await agent.chat("capital of France?") == "Paris."
    assert agent.last_response is not None
    message = agent.last_response.choices[0].message
    assert message is not None
    assert message.reasoning_content == "The capital of France is well known."
    assert agent.history[-1].text == "Paris."
    assert agent.history[-1].reasoning_content == "The capital of France is well known."


async def test_delta_content_as_parts_streams_text_and_reasoning(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_stream(
        [
            chunk({"role": "assistant", "content": [MAGISTRAL_CONTENT[0]]}),
            chunk({"content": [MAGISTRAL_CONTENT[1], MAGISTRAL_CONTENT[2]]}),
            chunk({"content": [{"type": "text", "text": "Paris"}]}),
            chunk({"content": [{"type": "text", "text": "."}, {"type": "image_url"}]}),
            chunk({"content": []}, finish_reason="stop"),
        ]
    )
    events = await _events(agent)
    reasoning = [e.text for e in events if isinstance(e, ReasoningDeltaEvent)]
    text = [e.text for e in events if isinstance(e, ContentDeltaEvent)]
    assert reasoning == ["The capital of France ", "is well known."]
    assert text == ["Paris", "."]
    assert agent.history[-1].text == "Paris."
    assert agent.history[-1].reasoning_content == "The capital of France is well known."


async def test_parts_content_in_chat_stream(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream(
        [
            chunk({"role": "assistant", "content": [MAGISTRAL_CONTENT[0]]}),
            chunk({"content": [{"type": "text", "text": "Paris."}]}, finish_reason="stop"),
        ]
    )
    pieces = [p async for p in agent.chat_stream("capital?", display_stream=False)]
    assert pieces == ["Paris."]


async def test_strict_parsing_rejects_content_as_parts(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    agent = await make_agent(strict_parsing=True)
    server.add_json(completion(MAGISTRAL_CONTENT))  # type: ignore[arg-type]
    with pytest.raises(APIResponseError, match="content"):
        await agent.chat("capital?")
    assert agent.history == ()


# ------------------------------------------------------------------ cosmetic fields


def _odd_completion() -> dict[str, Any]:
    body = completion("kept", extra={"id": 12345, "created": 1700000000.7})
    body["usage"] = {"prompt_tokens": 10.0, "completion_tokens": 5.4, "total_tokens": "15"}
    return body


async def test_cosmetic_fields_of_the_wrong_type_keep_the_reply(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_json(_odd_completion())
    assert await agent.chat("hi") == "kept"
    response = agent.last_response
    assert response is not None
    assert (response.id, response.created) == ("12345", 1700000001)
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (10, 5)
    assert response.usage.total_tokens == 15
    assert agent.get_stats()["total_tokens"] == 15


async def test_cosmetic_fields_that_cannot_be_converted_are_dropped(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_json(completion("kept", extra={"created": "yesterday", "model": ["m"]}))
    assert await agent.chat("hi") == "kept"
    assert agent.last_response is not None
    assert (agent.last_response.created, agent.last_response.model) == (None, None)


async def test_a_real_problem_is_still_an_error(agent: ChatAgent, server: FakeServer) -> None:
    body = completion("x")
    body["choices"][0]["message"]["tool_calls"] = "not a list"
    server.add_json(body)
    with pytest.raises(APIResponseError, match="tool_calls"):
        await agent.chat("hi")


async def test_strict_parsing_rejects_cosmetic_type_errors(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    agent = await make_agent(strict_parsing=True)
    server.add_json(_odd_completion())
    with pytest.raises(APIResponseError):
        await agent.chat("hi")


async def test_cosmetic_fields_in_a_stream_keep_the_reply(
    agent: ChatAgent, server: FakeServer
) -> None:
    first = chunk({"role": "assistant", "content": "str"})
    first.update(id=987, created=1700000000.25)
    usage = chunk(choices=False)
    usage["usage"] = {"prompt_tokens": 3.0, "completion_tokens": 2.0, "total_tokens": 5.0}
    server.add_stream([first, chunk({"content": "eam"}), chunk({}, finish_reason="stop"), usage])
    pieces = [p async for p in agent.chat_stream("hi", display_stream=False)]
    assert "".join(pieces) == "stream"
    assert agent.history[-1].text == "stream"
    response = agent.last_response
    assert response is not None and response.usage is not None
    assert (response.id, response.created, response.usage.total_tokens) == ("987", 1700000000, 5)
