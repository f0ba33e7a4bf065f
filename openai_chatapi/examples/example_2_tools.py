"""Tools and structured output: ``@tool`` functions the model calls, then a typed answer.

Run: ``python -m openai_chatapi.examples.example_2_tools``
(uses OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL, or the embedded local model).

The tools are forced with ``tool_choice`` so that even the tiny local model calls them; a
capable model would pick them by itself. The local llama.cpp server rejects ``json_schema``
response formats, so there the structured answer comes from a forced tool instead (its
arguments are validated against the same pydantic model).
"""

from __future__ import annotations

import asyncio
import json
from typing import Literal

from pydantic import BaseModel, Field

from openai_chatapi import APIResponseError, ChatAgent, ChatAPIException, RuntimeConfig, tool
from openai_chatapi.examples._endpoint import endpoint

_FORECASTS = {"paris": 18.0, "oslo": 7.5, "lima": 22.0}


class Weather(BaseModel):
    city: str
    temperature: float
    units: Literal["celsius", "fahrenheit"]
    summary: str


@tool
async def get_weather(city: str, units: Literal["celsius", "fahrenheit"] = "celsius") -> Weather:
    """Get the current weather in a city.

    Args:
        city: The city name, e.g. "Paris".
        units: Temperature units.
    """
    await asyncio.sleep(0)  # a real tool would await an HTTP API here
    celsius = _FORECASTS.get(city.strip().lower(), 15.0)
    value = celsius if units == "celsius" else celsius * 9 / 5 + 32
    return Weather(city=city, temperature=round(value, 1), units=units, summary="partly cloudy")


@tool
def add(a: float, b: float) -> float:
    """Add two numbers (a sync tool: it runs in a worker thread).

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


class Stop(BaseModel):
    city: str
    nights: int = Field(ge=1, description="Nights spent there")


class TripPlan(BaseModel):
    """A trip: a title and its stops."""

    title: str
    stops: list[Stop]


def show_tool_rounds(agent: ChatAgent, start: int) -> None:
    """Print the tool calls and results of the turn that began at ``history[start]``."""
    names: dict[str, str] = {}
    for message in agent.history[start:]:
        for call in message.tool_calls or ():
            function = call.function
            name = function.name if function and function.name else "?"
            names[str(call.id)] = name
            print(f"  model calls {name}({function.arguments if function else ''})")
        if message.role == "tool":
            print(f"  {names.get(str(message.tool_call_id), 'tool')} -> {message.text}")


async def main() -> None:
    async with endpoint(temperature=0.0, max_tokens=160) as config:
        runtime = RuntimeConfig(enable_logging=True, log_level="WARNING", max_retries=1)
        async with ChatAgent(config, runtime) as agent:
            # A system message also lets llama.cpp's function-calling template render the tools.
            agent.set_system_prompt("You are a helpful assistant. Use the tools when useful.")
            agent.register_tool(get_weather)
            agent.register_tool(add)
            try:
                start = len(agent.history)
                answer = await agent.chat("What is the weather in Paris?", tool_choice=get_weather)
                show_tool_rounds(agent, start)
                print("assistant:", answer)

                start = len(agent.history)
                answer = await agent.chat("What is 2.5 plus 4?", tool_choice="add")
                show_tool_rounds(agent, start)
                print("assistant:", answer)

                await structured_output(agent)
            except ChatAPIException as exc:
                print(f"request failed: {exc} {exc.details}")
                raise
            stats = agent.get_stats()
            print(f"[{stats['requests']} requests, {stats['tool_calls']} tool calls]")


async def structured_output(agent: ChatAgent) -> None:
    """A typed answer, ``response_format=TripPlan``, whole and then streamed as it grows.

    The default output mode (``"auto"``) asks with the server's JSON-schema format and, where
    the server rejects it (the local llama.cpp server), with ``json_object`` or a forced tool
    call; an answer that does not validate is sent back with its errors and asked again.
    """
    question = "Plan a short trip: two nights in Paris, then one night in Lyon."
    try:
        plan = await agent.chat(
            question, response_format=TripPlan, add_to_history=False, max_output_retries=2
        )
    except APIResponseError as exc:
        if "attempts" not in exc.details:
            raise
        # A tiny model may not manage it: every attempt is kept for inspection.
        print(f"[no valid TripPlan after {len(exc.details['attempts'])} attempts: {exc}]")
        return
    print("trip plan:", json.dumps(plan.model_dump(), indent=2))

    print("streamed:")
    stream = agent.chat_stream_structured(
        question, response_format=TripPlan, add_to_history=False, max_output_retries=2
    )
    try:
        async with stream:
            async for partial in stream:
                if stream.restarted:
                    print("  [the answer did not validate: asking again]")
                stops = [stop.city for stop in partial.stops or () if stop is not None]
                print(f"  {'final' if stream.done else 'so far'}: {partial.title!r} {stops}")
    except APIResponseError as exc:
        if "attempts" not in exc.details:
            raise
        print(f"  [no valid TripPlan streamed: {exc}]")


if __name__ == "__main__":
    asyncio.run(main())
