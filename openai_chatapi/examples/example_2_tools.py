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

from openai_chatapi import APIStatusError, ChatAgent, ChatAPIException, RuntimeConfig, tool
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


saved_plans: list[TripPlan] = []


@tool
def save_trip(plan: TripPlan) -> str:
    """Save a trip plan (a tool with a nested model argument).

    Args:
        plan: The trip to save.
    """
    saved_plans.append(plan)
    return f"saved trip {plan.title!r} with {len(plan.stops)} stop(s)"


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
    """A typed answer: ``response_format=TripPlan`` where supported, else a forced tool."""
    question = "Plan a short trip: two nights in Paris, then one night in Lyon."
    try:
        plan = await agent.chat(question, response_format=TripPlan, add_to_history=False)
    except APIStatusError as exc:
        # llama.cpp accepts only "text" and "json_object" response formats.
        print(f"[json_schema response_format refused here (HTTP {exc.status_code}): asking for")
        print(" the same TripPlan through a forced tool call, validated the same way]")
        start = len(agent.history)
        await agent.chat(question, tools=[save_trip], tool_choice=save_trip)
        show_tool_rounds(agent, start)
        if not saved_plans:
            print("the model did not produce a trip plan")
            return
        plan = saved_plans[-1]
    print("trip plan:", json.dumps(plan.model_dump(), indent=2))


if __name__ == "__main__":
    asyncio.run(main())
