"""Structured output through the agent: ``chat(..., response_format=...)`` against a fake server."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field
from typing_extensions import assert_type

from openai_chatapi import APIResponseError, ChatAgent, ConfigurationError, tool

from ..conftest import AgentFactory, agent_with_one_turn
from ..support.fakes import FakeServer, calls_reply, completion, tool_call


class City(BaseModel):
    name: str
    population: Annotated[int, Field(ge=0)]
    country: str = "unknown"


class Trip(BaseModel):
    """A planned trip."""

    destination: City
    days: int
    mode: Literal["train", "plane"]
    notes: str | None = None


async def test_model_output_is_requested_strictly_and_returned_validated(
    agent: ChatAgent, server: FakeServer
) -> None:
    answer = {
        "destination": {"name": "Oslo", "population": 700000, "country": "NO"},
        "days": 3,
        "mode": "train",
        "notes": None,
    }
    server.add_completion(json.dumps(answer))

    trip = await agent.chat("Plan a trip", response_format=Trip)

    assert_type(trip, Trip)
    assert trip == Trip(
        destination=City(name="Oslo", population=700000, country="NO"), days=3, mode="train"
    )
    fmt = server.last_body["response_format"]
    assert fmt["type"] == "json_schema"
    spec = fmt["json_schema"]
    assert (spec["name"], spec["strict"]) == ("Trip", True)
    schema = spec["schema"]
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["destination", "days", "mode", "notes"]  # strict: all listed
    assert schema["properties"]["mode"]["enum"] == ["train", "plane"]
    city = schema["properties"]["destination"]
    assert city["additionalProperties"] is False
    assert city["required"] == ["name", "population", "country"]
    assert city["properties"]["country"]["type"] == ["string", "null"]  # optional → nullable
    assert "$defs" not in schema and "title" not in json.dumps(schema)
    # The raw answer is what the history keeps.
    assert [m.role for m in agent.history] == ["user", "assistant"]
    assert json.loads(agent.history[1].text) == answer


async def test_null_for_a_defaulted_field_means_the_default(
    agent: ChatAgent, server: FakeServer
) -> None:
    # Strict schemas make optional fields nullable; null must then mean "use the default".
    server.add_completion('{"name": "Bergen", "population": 290000, "country": null}')
    city = await agent.chat("A city", response_format=City)
    assert city == City(name="Bergen", population=290000)


@pytest.mark.parametrize(
    ("text", "fragment", "has_errors"),
    [
        ("not json at all", "not valid JSON", False),
        ('{"name": "Oslo"}', "population: missing required value", True),
        ('{"name": "Oslo", "population": -5}', "population", True),
        ('{"name": "Oslo", "population": "many"}', "population", True),
        ("", "not valid JSON", False),
    ],
    ids=["not-json", "missing-field", "constraint", "wrong-type", "empty"],
)
async def test_invalid_output_raises_and_leaves_history(
    make_agent: AgentFactory, server: FakeServer, text: str, fragment: str, has_errors: bool
) -> None:
    agent = await agent_with_one_turn(make_agent, server, max_output_retries=0)
    before = agent.history
    server.add_completion(text)

    with pytest.raises(APIResponseError) as info:
        await agent.chat("A city", response_format=City)

    assert fragment in info.value.message
    details = info.value.details
    assert details["type"] == "City"
    assert details["text"] == text
    if has_errors:
        assert details["errors"] and all("loc" in e and "msg" in e for e in details["errors"])
        assert details["errors"][0]["loc"][0] == "population"
    assert agent.history == before
    # The agent stays usable.
    server.add_completion('{"name": "Oslo", "population": 1}')
    assert await agent.chat("Again", response_format=City) == City(name="Oslo", population=1)


async def test_a_refusal_is_an_api_response_error(agent: ChatAgent, server: FakeServer) -> None:
    refused = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    server.add_json(
        completion(
            None, extra={"choices": [{"index": 0, "message": refused, "finish_reason": "stop"}]}
        )
    )
    with pytest.raises(APIResponseError) as info:
        await agent.chat("A city", response_format=City)
    assert "refused" in info.value.message
    assert info.value.details["refusal"] == "I can't help with that."
    assert agent.history == ()


async def test_non_object_types_are_wrapped_and_unwrapped(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_completion('{"result": [3, 1, 2]}')
    numbers = await agent.chat("Three numbers", response_format=list[int])

    assert_type(numbers, list[int])
    assert numbers == [3, 1, 2]
    spec = server.last_body["response_format"]["json_schema"]
    assert spec["strict"] is True
    assert spec["schema"] == {
        "type": "object",
        "properties": {"result": {"type": "array", "items": {"type": "integer"}}},
        "required": ["result"],
        "additionalProperties": False,
    }
    # A model that forgets the wrapper is still understood.
    server.add_completion("[4, 5]")
    assert await agent.chat("Two more", response_format=list[int]) == [4, 5]
    server.add_completion('{"result": ["x"]}')
    with pytest.raises(APIResponseError) as info:
        await agent.chat("Bad", response_format=list[int], max_output_retries=0)
    assert info.value.details["errors"][0]["loc"] == (0,)


async def test_list_of_models(agent: ChatAgent, server: FakeServer) -> None:
    server.add_completion(
        '{"result": [{"name": "A", "population": 1}, {"name": "B", "population": 2}]}'
    )
    cities = await agent.chat("Two cities", response_format=list[City])
    assert_type(cities, list[City])
    assert [c.name for c in cities] == ["A", "B"]


async def test_dict_response_format_is_passed_through(agent: ChatAgent, server: FakeServer) -> None:
    custom = {
        "type": "json_schema",
        "json_schema": {
            "name": "color",
            "schema": {
                "type": "object",
                "properties": {"color": {"type": "string"}},
                "required": ["color"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    }
    server.add_completion('{"color": "blue"}')
    text = await agent.chat("A color", response_format=custom)
    assert_type(text, str)
    assert text == '{"color": "blue"}'  # no type given: the text is returned as it is
    assert server.last_body["response_format"] == custom


@pytest.mark.parametrize("fmt", ["json_object", {"type": "json_object"}])
async def test_json_object_mode(agent: ChatAgent, server: FakeServer, fmt: Any) -> None:
    server.add_completion('{"anything": [1, 2]}')
    text = await agent.chat("Some JSON", response_format=fmt)
    assert text == '{"anything": [1, 2]}'
    assert server.last_body["response_format"] == {"type": "json_object"}


async def test_invalid_response_formats_are_configuration_errors(
    agent: ChatAgent, server: FakeServer
) -> None:
    with pytest.raises(ConfigurationError):
        await agent.chat("x", response_format="yaml")  # type: ignore[call-overload]
    with pytest.raises(ConfigurationError):
        await agent.chat("x", response_format={"type": "xml"})
    assert server.requests == []
    assert agent.history == ()


async def test_structured_output_after_a_tool_round(agent: ChatAgent, server: FakeServer) -> None:
    @tool
    def population(city: str) -> int:
        """Population of a city."""
        return 700000

    agent.register_tool(population)
    server.add_json(calls_reply(tool_call("p1", "population", {"city": "Oslo"})))
    server.add_completion('{"name": "Oslo", "population": 700000, "country": "NO"}')

    city = await agent.chat("Oslo as a City", response_format=City)

    assert city == City(name="Oslo", population=700000, country="NO")
    first, second = server.bodies
    assert first["response_format"] == second["response_format"]
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "p1", "content": "700000"}
    assert [m.role for m in agent.history] == ["user", "assistant", "tool", "assistant"]
