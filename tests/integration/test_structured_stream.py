"""Streamed partial objects: ``chat_stream_structured`` against the fake server.

The answers are streamed one character per delta (every JSON boundary is a chunk boundary)
and, separately, the SSE body is cut into network reads of every size from 1 byte up.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from pydantic import BaseModel

from openai_chatapi import APIResponseError, ChatAgent, ConfigurationError, StructuredStream

from ..conftest import AgentFactory
from ..support.fakes import FakeServer, chunk, text_chunks
from .test_output_modes import OPENAI_400


class Person(BaseModel):
    name: str
    age: int
    city: str | None = None


@dataclasses.dataclass
class Point:
    x: int
    label: str


ADA = {"name": "Ada Lovelace", "age": 36, "city": "London"}
ADA_TEXT = json.dumps(ADA)
PEOPLE = [{"name": "Ada", "age": 36, "city": None}, {"name": "Alan", "age": 41, "city": "Wilmslow"}]
PEOPLE_TEXT = json.dumps({"result": PEOPLE})


async def collect(stream: StructuredStream[Any]) -> list[Any]:
    return [item async for item in stream]


def char_chunks(text: str) -> list[dict[str, Any]]:
    return text_chunks(list(text))


def tool_chunks(arguments: str, step: int = 1) -> list[dict[str, Any]]:
    head = {
        "index": 0,
        "id": "c1",
        "type": "function",
        "function": {"name": "final_result", "arguments": ""},
    }
    out = [chunk({"role": "assistant", "tool_calls": [head]})]
    for i in range(0, len(arguments), step):
        piece = arguments[i : i + step]
        out.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    out.append(chunk({}, finish_reason="tool_calls"))
    return out


def check_model_partials(items: list[Any], *, growing: bool = True) -> None:
    """Fields fill in order; strings grow as prefixes; the last item is the valid answer."""
    final = items[-1]
    assert final == Person(**ADA)
    seen_complete: set[str] = set()
    for item in items[:-1]:
        assert isinstance(item, Person)
        for field, value in ADA.items():
            got = getattr(item, field)
            if got is None:
                assert field not in seen_complete  # a field never disappears
                continue
            if isinstance(value, str):
                assert value.startswith(got)
            else:
                assert isinstance(got, int) and str(value).startswith(str(got))
            if got == value:
                seen_complete.add(field)
    if growing:
        names = [item.name for item in items if item.name is not None]
        assert len(set(names)) > 3  # the name grew piece by piece


async def test_partial_model_one_character_per_delta(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream(char_chunks(ADA_TEXT))

    stream = agent.chat_stream_structured("Who?", response_format=Person)
    items = await collect(stream)

    check_model_partials(items)
    assert stream.done and stream.final == Person(**ADA) and stream.attempt == 0
    assert not stream.restarted
    assert [m.role for m in agent.history] == ["user", "assistant"]
    assert agent.history[1].content == ADA_TEXT
    assert server.last_body["stream"] is True
    assert server.last_body["response_format"]["type"] == "json_schema"


@pytest.mark.parametrize("split", range(1, 41))
async def test_partial_model_at_every_network_boundary(
    agent: ChatAgent, server: FakeServer, split: int
) -> None:
    pieces = [ADA_TEXT[i : i + 5] for i in range(0, len(ADA_TEXT), 5)]
    server.add_stream(text_chunks(pieces), split=split)
    items = await collect(agent.chat_stream_structured("Who?", response_format=Person))
    check_model_partials(items, growing=False)
    assert len(items) >= 3


async def test_every_cut_of_the_answer_gives_a_consistent_partial(
    agent: ChatAgent, server: FakeServer
) -> None:
    # Two deltas, cut at each position of the JSON text.
    for cut in range(1, len(ADA_TEXT)):
        server.add_stream(text_chunks([ADA_TEXT[:cut], ADA_TEXT[cut:]]))
        items = await collect(
            agent.chat_stream_structured("Who?", response_format=Person, add_to_history=False)
        )
        assert items[-1] == Person(**ADA), cut
        for item in items[:-1]:
            assert isinstance(item, Person)
            assert item.name is None or ADA["name"].startswith(item.name)


class Reading(BaseModel):
    label: str
    count: int
    values: list[float]
    delta: float | None = None


READING = {"label": "R2 12", "count": 123, "values": [1.5, -20.25, 3e2], "delta": -0.125}


@pytest.mark.parametrize("step", [1, 2, 3])
async def test_a_number_is_shown_only_once_it_is_complete(
    agent: ChatAgent, server: FakeServer, step: int
) -> None:
    text = json.dumps(READING)
    server.add_stream(text_chunks([text[i : i + step] for i in range(0, len(text), step)]))
    items = await collect(agent.chat_stream_structured("Read", response_format=Reading))
    assert items[-1] == Reading(**READING)
    for item in items[:-1]:
        assert item.count in (None, 123)  # never 1 or 12 while "123" arrives
        assert item.delta in (None, -0.125)
        assert item.values is None or item.values == READING["values"][: len(item.values)]
        assert item.label is None or READING["label"].startswith(item.label)
    # Digits inside a string still grow one piece at a time.
    assert step != 1 or any(item.label == "R2 1" for item in items)


def check_list_partials(items: list[Any]) -> None:
    final = [Person(**p) for p in PEOPLE]
    assert items[-1] == final
    lengths = [len(item) for item in items]
    assert lengths == sorted(lengths) and lengths[-1] == 2
    for item in items[:-1]:
        assert isinstance(item, list)
        # The completed items so far, then the growing last one.
        for index, person in enumerate(item[:-1]):
            assert person == final[index]
        if item:
            last = item[-1]
            assert isinstance(last, Person)
            expected = PEOPLE[len(item) - 1]
            assert last.name is None or str(expected["name"]).startswith(last.name)
    assert any(len(item) == 2 and item[-1].age is None for item in items)  # the 2nd grew


async def test_partial_list_one_character_per_delta(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream(char_chunks(PEOPLE_TEXT))
    items = await collect(agent.chat_stream_structured("Who?", response_format=list[Person]))
    check_list_partials(items)
    assert agent.history[1].content == PEOPLE_TEXT


@pytest.mark.parametrize("split", [1, 2, 3, 7, 16, 50])
async def test_partial_list_at_network_boundaries(
    agent: ChatAgent, server: FakeServer, split: int
) -> None:
    server.add_stream(char_chunks(PEOPLE_TEXT), split=split)
    check_list_partials(
        await collect(agent.chat_stream_structured("Who?", response_format=list[Person]))
    )


async def test_partial_dataclass(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream(char_chunks('{"x": 12, "label": "north"}'))
    items = await collect(agent.chat_stream_structured("Where?", response_format=Point))
    assert items[-1] == Point(12, "north")
    assert all(isinstance(item, Point) for item in items)
    assert any(item.x == 12 and item.label is None for item in items)


async def test_a_streamed_retry_restarts_the_sequence(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream(char_chunks('{"name": "Ada", "age": "old"}'))
    server.add_stream(char_chunks(ADA_TEXT))

    stream = agent.chat_stream_structured("Who?", response_format=Person)
    items: list[tuple[Any, bool, int]] = []
    async for item in stream:
        items.append((item, stream.restarted, stream.attempt))

    restarts = [i for i, (_, restarted, _) in enumerate(items) if restarted]
    assert len(restarts) == 1
    first_of_retry = restarts[0]
    assert all(attempt == 0 for _, _, attempt in items[:first_of_retry])
    assert all(attempt == 1 for _, _, attempt in items[first_of_retry:])
    # The new sequence starts over: the name grows again from its beginning.
    assert len(items[first_of_retry][0].name or "") < len("Ada Lovelace")
    assert items[-1][0] == Person(**ADA)
    assert len(stream.failed_attempts) == 1
    assert stream.failed_attempts[0]["text"] == '{"name": "Ada", "age": "old"}'
    assert stream.failed_attempts[0]["errors"][0]["loc"] == ("age",)
    # The retry request showed the errors; the history keeps one exchange.
    assert "age" in server.bodies[1]["messages"][-1]["content"]
    assert [m.role for m in agent.history] == ["user", "assistant"]
    assert agent.history[1].content == ADA_TEXT
    assert agent.get_stats()["output_retries"] == 1


async def test_streamed_retries_exhausted(make_agent: AgentFactory, server: FakeServer) -> None:
    agent = await make_agent(max_output_retries=1)
    server.add_stream(char_chunks("nope")).add_stream(char_chunks('{"name": 1}'))
    with pytest.raises(APIResponseError) as info:
        await collect(agent.chat_stream_structured("Who?", response_format=Person))
    assert [a["text"] for a in info.value.details["attempts"]] == ["nope", '{"name": 1}']
    assert agent.history == ()


async def test_streamed_tool_mode(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream(tool_chunks(ADA_TEXT, step=3))
    stream = agent.chat_stream_structured("Who?", response_format=Person, output_mode="tool")
    items = await collect(stream)
    check_model_partials(items)
    assert server.last_body["tool_choice"]["function"]["name"] == "final_result"
    assert [m.role for m in agent.history] == ["user", "assistant"]
    assert agent.history[1].content == ADA_TEXT and not agent.history[1].tool_calls


async def test_streamed_fallback_after_a_rejection(agent: ChatAgent, server: FakeServer) -> None:
    server.add_json(OPENAI_400, status=400)
    server.add_stream(char_chunks(ADA_TEXT))
    items = await collect(agent.chat_stream_structured("Who?", response_format=Person))
    assert items[-1] == Person(**ADA)
    assert server.bodies[1]["response_format"]["type"] == "json_object"
    assert [m.role for m in agent.history] == ["user", "assistant"]


async def test_a_fenced_answer_streams(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream(char_chunks(f"```json\n{ADA_TEXT}\n```"))
    items = await collect(agent.chat_stream_structured("Who?", response_format=Person))
    assert items[-1] == Person(**ADA) and len(items) > 5


@pytest.mark.parametrize("prefix", ["\ufeff", '<think>\nSay "{" first? No.\n</think>\n\n'])
async def test_a_bom_or_a_think_block_before_the_json_streams(
    agent: ChatAgent, server: FakeServer, prefix: str
) -> None:
    server.add_stream(char_chunks(prefix + ADA_TEXT))
    items = await collect(agent.chat_stream_structured("Who?", response_format=Person))
    assert items[-1] == Person(**ADA)
    check_model_partials(items)


async def test_leaving_early_changes_nothing(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream(char_chunks(ADA_TEXT))
    async with agent.chat_stream_structured("Who?", response_format=Person) as stream:
        async for _item in stream:
            break
    assert agent.history == ()
    assert not stream.done


async def test_stream_needs_a_type(agent: ChatAgent, server: FakeServer) -> None:
    with pytest.raises(ConfigurationError, match="response_format"):
        agent.chat_stream_structured("x", response_format={"type": "json_object"})  # type: ignore[arg-type]
    assert server.requests == []


async def test_a_streamed_refusal_raises(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream(
        [
            chunk({"role": "assistant", "content": None, "refusal": "I can't"}),
            chunk({"refusal": " help."}),
            chunk({}, finish_reason="stop"),
        ]
    )
    with pytest.raises(APIResponseError, match="refused") as info:
        await collect(agent.chat_stream_structured("Who?", response_format=Person))
    assert info.value.details["refusal"] == "I can't help."
    assert len(server.requests) == 1 and agent.history == ()


async def test_completed_list_items_are_built_once(agent: ChatAgent, server: FakeServer) -> None:
    # Items before the growing last one are complete: later partials reuse them as they are
    # (each partial does not rebuild the whole list).
    server.add_stream(char_chunks(PEOPLE_TEXT))
    items = await collect(agent.chat_stream_structured("Who?", response_format=list[Person]))
    partials = [item for item in items[:-1] if len(item) == 2]
    assert len(partials) > 5
    assert all(p[0] is partials[0][0] for p in partials)
    assert partials[0][1] is not partials[-1][1]  # the growing one is rebuilt
