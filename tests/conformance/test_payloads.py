"""The exact JSON request body the client sends, pinned by syrupy snapshots.

Each snapshot is the body as it went over the wire (captured by the fake server), with its
key order kept. Unset fields must be absent, never ``null``.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from openai_chatapi import (
    ChatAgent,
    ChatConfig,
    ChatMessage,
    ModelConfig,
    RuntimeConfig,
    __version__,
)

from ..conftest import AgentFactory
from ..support.fakes import (
    API_KEY,
    BASE_URL,
    FakeServer,
    calls_reply,
    completion,
    text_chunks,
    tool_call,
)
from ..support.payload_scenarios import (
    EVERY_FIELD,
    SCENARIOS,
    Person,
    get_weather,
    model_config,
    send,
)


def wire(server: FakeServer, index: int = -1) -> OrderedDict[str, Any]:
    """The body of one captured request, in wire order; it must never contain ``null``."""
    raw = server.requests[index].content
    assert server.requests[index].headers["content-type"] == "application/json"
    assert b"null" not in raw, raw
    body: OrderedDict[str, Any] = json.loads(raw, object_pairs_hook=OrderedDict)
    return body


Sender = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def sent(make_agent: AgentFactory, server: FakeServer) -> Sender:
    """``await sent(text, **config)``: the body of one ``chat(text)`` by an agent made with
    ``config`` (answered by a plain completion)."""

    async def send(text: str, **config: Any) -> dict[str, Any]:
        agent = await make_agent(**config)
        server.add_completion()
        await agent.chat(text)
        return wire(server)

    return send


async def test_defaults(agent: ChatAgent, server: FakeServer, snapshot_json: Any) -> None:
    server.add_completion("Hi there")
    assert await agent.chat("Hello") == "Hi there"
    body = wire(server)
    assert body == snapshot_json
    # API defaults (top_p=1, penalties 0, n=1) and everything unset stay off the wire.
    assert set(body) == {"model", "messages", "temperature"}


async def test_every_model_config_field_set(
    make_agent: AgentFactory, server: FakeServer, snapshot_json: Any
) -> None:
    agent = await make_agent(**EVERY_FIELD)
    server.add_completion("ok")
    await agent.chat("Hello")
    body = wire(server)
    assert body == snapshot_json
    for name, value in EVERY_FIELD.items():
        assert body[name] == value, name


async def test_every_model_config_field_set_streaming(
    make_agent: AgentFactory, server: FakeServer, snapshot_json: Any
) -> None:
    agent = await make_agent(**EVERY_FIELD, stream=True)
    server.add_stream(text_chunks(["o", "k"]))
    assert await agent.chat("Hello") == "ok"
    body = wire(server)
    assert body == snapshot_json
    assert body["stream"] is True


async def test_per_call_overrides_apply_to_that_call_only(
    make_agent: AgentFactory, server: FakeServer, snapshot_json: Any
) -> None:
    agent = await make_agent(temperature=0.3, max_tokens=50)
    server.add_completion("one").add_completion("two")
    await agent.chat(
        "first",
        temperature=1.5,
        max_tokens=10,
        top_p=0.5,
        model="other-model",
        seed=7,
        stop="STOP",
    )
    await agent.chat("second")
    overridden, plain = wire(server, 0), wire(server, 1)
    assert {"overridden": overridden, "next_call": plain} == snapshot_json
    assert (overridden["temperature"], overridden["max_tokens"]) == (1.5, 10)
    assert (overridden["model"], overridden["top_p"], overridden["seed"]) == ("other-model", 0.5, 7)
    assert (plain["model"], plain["temperature"], plain["max_tokens"]) == ("test-model", 0.3, 50)
    assert "top_p" not in plain and "seed" not in plain and "stop" not in plain
    assert agent.model_config.temperature == 0.3


async def test_stop_as_string(sent: Sender, snapshot_json: Any) -> None:
    body = await sent("Hello", stop="\n\n")
    assert body == snapshot_json
    assert body["stop"] == "\n\n"


async def test_stop_as_list(sent: Sender, snapshot_json: Any) -> None:
    body = await sent("Hello", stop=["a", "b", "c"])
    assert body == snapshot_json
    assert body["stop"] == ["a", "b", "c"]


async def test_logprobs_and_top_logprobs(sent: Sender, snapshot_json: Any) -> None:
    body = await sent("Hello", logprobs=True, top_logprobs=5)
    assert body == snapshot_json
    assert (body["logprobs"], body["top_logprobs"]) == (True, 5)


async def test_logprobs_false_is_sent_when_set(sent: Sender, snapshot_json: Any) -> None:
    body = await sent("Hello", logprobs=False)
    assert body == snapshot_json
    assert body["logprobs"] is False


async def test_reasoning_effort(sent: Sender, snapshot_json: Any) -> None:
    body = await sent("Think hard", reasoning_effort="high", model="o3-mini")
    assert body == snapshot_json
    assert body["reasoning_effort"] == "high"


async def test_system_prompt_and_multi_turn_history(
    agent: ChatAgent, server: FakeServer, snapshot_json: Any
) -> None:
    agent.set_system_prompt("You are terse.")
    server.add_completion("Paris.").add_completion("About 2.1 million.").add_completion("Yes.")
    await agent.chat("Capital of France?")
    await agent.chat("Population?")
    await agent.chat("Sure?")
    body = wire(server)
    assert body == snapshot_json
    assert [m["role"] for m in body["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]


async def test_reasoning_content_is_not_sent_back(
    agent: ChatAgent, server: FakeServer, snapshot_json: Any
) -> None:
    server.add_completion("42", reasoning="Let me think...").add_completion("ok")
    await agent.chat("Answer?")
    await agent.chat("Thanks")
    body = wire(server)
    assert body == snapshot_json
    assert "reasoning_content" not in json.dumps(body)


async def test_add_to_history_false_is_not_sent_next_time(
    agent: ChatAgent, server: FakeServer, snapshot_json: Any
) -> None:
    server.add_completion("remembered").add_completion("forgotten").add_completion("next")
    await agent.chat("keep me")
    await agent.chat("one-off question", add_to_history=False)
    await agent.chat("follow-up")
    one_off, follow_up = wire(server, 1), wire(server, 2)
    assert {"one_off": one_off, "follow_up": follow_up} == snapshot_json
    assert one_off["messages"][-1] == {"role": "user", "content": "one-off question"}
    assert "one-off question" not in json.dumps(follow_up)
    assert "forgotten" not in json.dumps(follow_up)


async def test_max_completion_tokens(sent: Sender, snapshot_json: Any) -> None:
    body = await sent("Hello", max_completion_tokens=1024)
    assert body == snapshot_json
    assert body["max_completion_tokens"] == 1024 and "max_tokens" not in body


async def test_seed_and_user(sent: Sender, snapshot_json: Any) -> None:
    body = await sent("Hello", seed=1234, user="end-user-77")
    assert body == snapshot_json
    assert (body["seed"], body["user"]) == (1234, "end-user-77")


async def test_n(make_agent: AgentFactory, server: FakeServer, snapshot_json: Any) -> None:
    agent = await make_agent(n=3)
    server.add_completion()
    await agent.chat("Hello")
    body = wire(server)
    assert body == snapshot_json
    assert body["n"] == 3


async def test_streaming_body_asks_for_usage(
    agent: ChatAgent, server: FakeServer, snapshot_json: Any
) -> None:
    server.add_stream(text_chunks(["Hel", "lo"]))
    pieces = [piece async for piece in agent.chat_stream("Hello", display_stream=False)]
    assert "".join(pieces) == "Hello"
    body = wire(server)
    assert body == snapshot_json
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert server.requests[-1].headers["accept"] == "text/event-stream"


async def test_streaming_body_without_usage(
    make_agent: AgentFactory, server: FakeServer, snapshot_json: Any
) -> None:
    agent = await make_agent(stream_include_usage=False)
    server.add_stream(text_chunks(["Hi"], usage=None))
    pieces = [piece async for piece in agent.chat_stream("Hello", display_stream=False)]
    assert pieces == ["Hi"]
    body = wire(server)
    assert body == snapshot_json
    assert body["stream"] is True and "stream_options" not in body


async def _ask_weather(
    agent: ChatAgent, server: FakeServer, city: str, reply: str, **call: Any
) -> str:
    """A turn in which the model calls ``get_weather`` for ``city``, then answers ``reply``."""
    agent.register_tool(get_weather)
    server.add_json(calls_reply(tool_call("call_1", "get_weather", {"city": city})))
    server.add_completion(reply)
    return await agent.chat(f"Weather in {city}?", **call)


async def test_registered_tool_with_named_choice(
    agent: ChatAgent, server: FakeServer, snapshot_json: Any
) -> None:
    named = {"tool_choice": get_weather, "parallel_tool_calls": False}
    reply = await _ask_weather(agent, server, "Paris", "It is sunny in Paris.", **named)
    assert reply == "It is sunny in Paris."
    first = wire(server, 0)
    assert first == snapshot_json
    assert first["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert first["parallel_tool_calls"] is False
    assert first["tools"][0]["function"]["name"] == "get_weather"


async def test_assistant_tool_call_turn_has_empty_string_content(
    agent: ChatAgent, server: FakeServer, snapshot_json: Any
) -> None:
    await _ask_weather(agent, server, "Oslo", "Sunny.", tool_choice="get_weather")
    follow_up = wire(server, 1)
    assert follow_up == snapshot_json
    assistant = follow_up["messages"][1]
    assert assistant["role"] == "assistant" and assistant["content"] == ""
    assert assistant["tool_calls"][0]["id"] == "call_1"
    assert follow_up["messages"][2] == {
        "role": "tool",
        "content": "sunny in Oslo",
        "tool_call_id": "call_1",
    }
    # A forced tool choice is not repeated after the tool ran (that would loop forever).
    assert "tool_choice" not in follow_up


async def test_tool_call_turn_added_by_hand(
    agent: ChatAgent, server: FakeServer, snapshot_json: Any
) -> None:
    call = tool_call("call_9", "lookup", {"q": "x"})
    agent.add_message(ChatMessage(role="user", content="look it up"))
    agent.add_message(ChatMessage.model_validate({"role": "assistant", "tool_calls": [call]}))
    agent.add_message(ChatMessage(role="tool", tool_call_id="call_9", content='{"hit": 1}'))
    server.add_completion("Found it.")
    await agent.chat("and?")
    body = wire(server)
    assert body == snapshot_json
    assert body["messages"][1]["content"] == ""


async def test_structured_output_from_pydantic_model(
    agent: ChatAgent, server: FakeServer, snapshot_json: Any
) -> None:
    server.add_completion('{"name": "Ada", "age": 36}')
    person = await agent.chat("Who?", response_format=Person)
    assert person == Person(name="Ada", age=36)
    body = wire(server)
    assert body == snapshot_json
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True


async def test_response_format_json_object(
    agent: ChatAgent, server: FakeServer, snapshot_json: Any
) -> None:
    server.add_completion('{"ok": true}')
    assert await agent.chat("JSON please", response_format={"type": "json_object"}) == (
        '{"ok": true}'
    )
    body = wire(server)
    assert body == snapshot_json
    assert body["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("mode", ["json", "tool"])
async def test_structured_output_modes(
    agent: ChatAgent, server: FakeServer, snapshot_json: Any, mode: Any
) -> None:
    answer = '{"name": "Ada", "age": 36}'
    if mode == "tool":
        server.add_json(completion(None, tool_calls=[tool_call("c1", "final_result", answer)]))
    else:
        server.add_completion(answer)
    person = await agent.chat("Who?", response_format=Person, output_mode=mode)
    assert person == Person(name="Ada", age=36)
    body = wire(server)
    assert body == snapshot_json
    assert ("response_format" in body) is (mode == "json")


async def test_structured_output_retry_request(
    agent: ChatAgent, server: FakeServer, snapshot_json: Any
) -> None:
    server.add_completion('{"name": "Ada"}').add_completion('{"name": "Ada", "age": 36}')
    await agent.chat("Who?", response_format=Person)
    body = wire(server)
    assert body == snapshot_json
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]


async def test_structured_output_streamed(
    agent: ChatAgent, server: FakeServer, snapshot_json: Any
) -> None:
    server.add_stream(text_chunks(['{"name": "Ada", ', '"age": 36}']))
    items = [p async for p in agent.chat_stream_structured("Who?", response_format=Person)]
    assert items[-1] == Person(name="Ada", age=36)
    body = wire(server)
    assert body == snapshot_json
    assert body["stream"] is True


async def test_chat_config_alias_gives_the_same_body(server: FakeServer) -> None:
    bodies = []
    for cls in (ModelConfig, ChatConfig):
        config = cls(api_base_url=BASE_URL, api_key=API_KEY, model="m", temperature=0.1, seed=3)
        server.add_json(completion("x"))
        async with ChatAgent(
            config, RuntimeConfig(enable_logging=False), http_transport=server.transport()
        ) as agent:
            await agent.chat("Hello")
        bodies.append(server.requests[-1].content)
    assert bodies[0] == bodies[1]


async def test_no_key_means_no_authorization_header(server: FakeServer) -> None:
    server.add_completion()
    async with ChatAgent(
        ModelConfig(api_base_url=BASE_URL, model="local"),
        RuntimeConfig(enable_logging=False),
        http_transport=server.transport(),
    ) as agent:
        await agent.chat("Hello")
    request = server.requests[-1]
    assert "authorization" not in request.headers
    assert request.headers["user-agent"].startswith(f"openai_chatapi/{__version__} ")
    assert request.url == f"{BASE_URL}/chat/completions"
    assert request.method == "POST"


@pytest.mark.parametrize("name", ["audio_wav_and_mp3", "pdf_file", "history_in_wire_form"])
async def test_audio_file_and_wire_form_scenarios(
    server: FakeServer, name: str, snapshot_json: Any
) -> None:
    scenario = next(s for s in SCENARIOS if s.name == name)
    server.add_completion("ok")
    config = model_config(scenario, api_base_url=BASE_URL, api_key=API_KEY)
    runtime = RuntimeConfig(enable_logging=False, **scenario.runtime)
    async with ChatAgent(config, runtime, http_transport=server.transport()) as agent:
        await send(agent, scenario)
    assert wire(server) == snapshot_json
