"""Structured output modes (native, json, tool, auto with fallback) and validation retries.

Everything goes through ``chat(..., response_format=...)`` against the fake server; the
rejection shapes are the real ones: llama.cpp's 500 (read from the recorded exchange in
``../shared/conformance/llamacpp/chat_json_schema.json``) and OpenAI-style 400s naming
``response_format``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

from openai_chatapi import (
    APIResponseError,
    ChatAgent,
    ConfigurationError,
    InternalServerError,
    RuntimeConfig,
)

from ..conftest import AgentFactory, agent_with_one_turn
from ..support.fakes import FakeServer, Reply, calls_reply, completion, tool_call

LLAMA_REJECTION = (
    Path(__file__).resolve().parents[3] / "shared/conformance/llamacpp/chat_json_schema.json"
)
# OpenAI's answer when a model does not support a structured-output format.
OPENAI_400 = {
    "error": {
        "message": "Invalid parameter: 'response_format' of type 'json_schema' is not "
        "supported with this model.",
        "type": "invalid_request_error",
        "param": "response_format",
        "code": None,
    }
}
# A server that knows json_object but not llama.cpp's extra "schema" field.
SCHEMA_FIELD_400 = {
    "error": {
        "message": "Unrecognized request argument supplied: response_format.schema",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
}
JSON_OBJECT_422 = {"detail": "response_format: json_object is not supported"}


class Person(BaseModel):
    name: str
    age: int


ADA = '{"name": "Ada", "age": 36}'


def llama_rejection() -> Reply:
    if not LLAMA_REJECTION.is_file():
        pytest.skip(f"recorded exchange not found: {LLAMA_REJECTION}")
    response = json.loads(LLAMA_REJECTION.read_text())["response"]
    assert response["status"] == 500
    return Reply(status=500, raw=response["body"].encode(), content_type="application/json")


def answer_call(arguments: str, call_id: str = "c1") -> dict[str, Any]:
    return completion(
        None, finish_reason="tool_calls", tool_calls=[tool_call(call_id, "final_result", arguments)]
    )


def formats(server: FakeServer) -> list[str | None]:
    """How each request asked for the answer: the response_format type, or 'tool'."""
    out: list[str | None] = []
    for body in server.bodies:
        if "response_format" in body:
            fmt = body["response_format"]
            out.append(fmt["type"] + ("+schema" if "schema" in fmt else ""))
        elif body.get("tool_choice"):
            out.append("tool")
        else:
            out.append(None)
    return out


def assert_one_exchange(agent: ChatAgent, user_text: str, answer: str) -> None:
    assert [m.role for m in agent.history] == ["user", "assistant"]
    assert agent.history[0].content == user_text
    assert agent.history[1].content == answer
    assert not agent.history[1].tool_calls


# --------------------------------------------------------------------------- modes


async def test_native_accepted_and_remembered(agent: ChatAgent, server: FakeServer) -> None:
    server.add_completion(ADA).add_completion('{"name": "Bob", "age": 5}')

    assert await agent.chat("Who?", response_format=Person) == Person(name="Ada", age=36)
    assert await agent.chat("And?", response_format=Person) == Person(name="Bob", age=5)

    assert formats(server) == ["json_schema", "json_schema"]
    spec = server.bodies[0]["response_format"]["json_schema"]
    assert (spec["name"], spec["strict"]) == ("Person", True)
    assert server.bodies[0]["messages"] == [{"role": "user", "content": "Who?"}]
    assert "tools" not in server.bodies[0]


@pytest.mark.parametrize("rejection", ["llama.cpp-500", "openai-400"])
async def test_native_rejected_falls_back_to_json_and_remembers(
    agent: ChatAgent, server: FakeServer, rejection: str
) -> None:
    if rejection == "llama.cpp-500":
        server.add(llama_rejection())
    else:
        server.add_json(OPENAI_400, status=400)
    server.add_completion(ADA)

    person = await agent.chat("Who?", response_format=Person)

    assert person == Person(name="Ada", age=36)
    assert formats(server) == ["json_schema", "json_object+schema"]
    json_body = server.bodies[1]
    assert (
        json_body["response_format"]["schema"]
        == (server.bodies[0]["response_format"]["json_schema"]["schema"])
    )
    # The instruction describes the schema; it is sent, not kept.
    sent = json_body["messages"][-1]["content"]
    assert sent.startswith("Who?\n\n") and '"age"' in sent and "JSON schema" in sent
    assert_one_exchange(agent, "Who?", ADA)
    # The next call goes straight to what worked, and its request carries the history as kept.
    server.add_completion('{"name": "Bob", "age": 5}')
    assert await agent.chat("And?", response_format=Person) == Person(name="Bob", age=5)
    assert formats(server)[2:] == ["json_object+schema"]
    assert server.last_body["messages"][:2] == [
        {"role": "user", "content": "Who?"},
        {"role": "assistant", "content": ADA},
    ]
    stats = agent.get_stats()
    assert (stats["requests"], stats["failures"], stats["output_retries"]) == (3, 1, 0)


async def test_full_fallback_chain_down_to_the_tool_mode(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add(llama_rejection())
    server.add_json(SCHEMA_FIELD_400, status=400)
    server.add_json(JSON_OBJECT_422, status=422)
    server.add_json(answer_call(ADA))

    person = await agent.chat("Who?", response_format=Person)

    assert person == Person(name="Ada", age=36)
    assert formats(server) == ["json_schema", "json_object+schema", "json_object", "tool"]
    tool_body = server.bodies[3]
    assert tool_body["tool_choice"] == {"type": "function", "function": {"name": "final_result"}}
    (definition,) = tool_body["tools"]
    assert (
        definition["function"]["parameters"]
        == (server.bodies[0]["response_format"]["json_schema"]["schema"])
    )
    assert definition["function"]["strict"] is True
    assert tool_body["messages"] == [{"role": "user", "content": "Who?"}]
    # The history holds the answer as a plain reply: no dangling tool call.
    assert_one_exchange(agent, "Who?", ADA)
    # Remembered: the next call asks with the tool at once, and sends a valid history.
    server.add_json(answer_call('{"name": "Bob", "age": 5}', "c2"))
    assert await agent.chat("And?", response_format=Person) == Person(name="Bob", age=5)
    assert formats(server)[4:] == ["tool"]
    assert [m["role"] for m in server.last_body["messages"]] == ["user", "assistant", "user"]


async def test_the_choice_is_logged_once_at_info(
    make_agent: AgentFactory, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    agent = await make_agent(enable_logging=True)
    server.add_json(OPENAI_400, status=400).add_completion(ADA).add_completion(ADA)
    with caplog.at_level(logging.INFO, logger="openai_chatapi"):
        await agent.chat("Who?", response_format=Person)
        await agent.chat("Again", response_format=Person)
    chosen = [r for r in caplog.records if "structured output for model" in r.getMessage()]
    assert len(chosen) == 1 and chosen[0].levelno == logging.INFO
    assert "json mode" in chosen[0].getMessage()


async def test_a_failure_that_is_not_about_the_format_is_raised(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_json({"error": {"message": "the model crashed"}}, status=500)
    with pytest.raises(InternalServerError, match="crashed"):
        await agent.chat("Who?", response_format=Person)
    assert len(server.requests) == 1
    assert agent.history == ()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": {"message": "temperature must be at most 2", "param": "temperature"}}),
        (400, {"error": {"message": "maximum context length exceeded (response_format too)"}}),
        (401, {"error": {"message": "response_format needs a key"}}),
    ],
    ids=["other-400", "token-limit", "401"],
)
async def test_other_rejections_do_not_fall_back(
    agent: ChatAgent, server: FakeServer, status: int, body: dict[str, Any]
) -> None:
    from openai_chatapi import APIStatusError

    server.add_json(body, status=status)
    with pytest.raises(APIStatusError):
        await agent.chat("Who?", response_format=Person)
    assert len(server.requests) == 1
    assert agent.history == ()


@pytest.mark.parametrize("where", ["call", "runtime"])
async def test_explicit_native_mode_does_not_fall_back(
    make_agent: AgentFactory, server: FakeServer, where: str
) -> None:
    agent = await make_agent(**({"output_mode": "native"} if where == "runtime" else {}))
    server.add(llama_rejection())
    kwargs: dict[str, Any] = {"output_mode": "native"} if where == "call" else {}
    with pytest.raises(InternalServerError):
        await agent.chat("Who?", response_format=Person, **kwargs)
    assert len(server.requests) == 1
    assert agent.history == ()


async def test_explicit_json_mode(agent: ChatAgent, server: FakeServer) -> None:
    server.add_completion(ADA)
    assert await agent.chat("Who?", response_format=Person, output_mode="json") == Person(
        name="Ada", age=36
    )
    assert formats(server) == ["json_object+schema"]
    assert_one_exchange(agent, "Who?", ADA)


async def test_explicit_json_mode_drops_a_rejected_schema_field(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_json(SCHEMA_FIELD_400, status=400).add_completion(ADA)
    await agent.chat("Who?", response_format=Person, output_mode="json")
    assert formats(server) == ["json_object+schema", "json_object"]
    # The instruction is what describes the schema now.
    assert '"name"' in server.last_body["messages"][-1]["content"]


async def test_explicit_tool_mode_with_registered_tools(
    agent: ChatAgent, server: FakeServer
) -> None:
    from openai_chatapi import tool

    @tool
    def ignored(x: int) -> int:
        """Not offered in tool mode."""
        return x

    agent.register_tool(ignored)
    server.add_json(answer_call(ADA))
    person = await agent.chat("Who?", response_format=Person, output_mode="tool")
    assert person == Person(name="Ada", age=36)
    assert [t["function"]["name"] for t in server.last_body["tools"]] == ["final_result"]
    assert_one_exchange(agent, "Who?", ADA)


async def test_a_registered_tool_named_like_the_answer_tool_is_never_mistaken_for_it(
    agent: ChatAgent, server: FakeServer
) -> None:
    from openai_chatapi import tool

    ran: list[str] = []

    @tool
    def final_result(answer: str) -> str:
        """The user's own tool, not the answer tool.

        Args:
            answer: any text.
        """
        ran.append(answer)
        return "user tool ran"

    agent.register_tool(final_result)
    server.add_json(calls_reply(tool_call("c1", "final_result_1", '{"name": "Ada", "age": "x"}')))
    server.add_json(calls_reply(tool_call("c2", "final_result_1", ADA)))
    person = await agent.chat("Who?", response_format=Person, output_mode="tool")
    assert person == Person(name="Ada", age=36) and ran == []
    for body in server.bodies:
        assert [t["function"]["name"] for t in body["tools"]] == ["final_result_1"]
        assert body["tool_choice"] == {"type": "function", "function": {"name": "final_result_1"}}
    assert "Call final_result_1 again" in server.last_body["messages"][-1]["content"]
    assert_one_exchange(agent, "Who?", ADA)


async def test_bad_mode_values_are_configuration_errors(
    agent: ChatAgent, server: FakeServer
) -> None:
    with pytest.raises(ConfigurationError, match="output_mode"):
        await agent.chat("x", response_format=Person, output_mode="xml")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_output_retries"):
        await agent.chat("x", response_format=Person, max_output_retries=-1)
    with pytest.raises(ConfigurationError, match="output_mode"):
        RuntimeConfig(output_mode="yaml")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_output_retries"):
        RuntimeConfig(max_output_retries=-2)
    assert server.requests == [] and agent.history == ()


# --------------------------------------------------------------------------- retries


async def test_invalid_json_then_valid_is_one_retry(agent: ChatAgent, server: FakeServer) -> None:
    server.add_completion('{"name": "Ada", "age": ').add_completion(ADA)

    person = await agent.chat("Who?", response_format=Person)

    assert person == Person(name="Ada", age=36)
    retry = server.bodies[1]["messages"]
    assert retry[:2] == [
        {"role": "user", "content": "Who?"},
        {"role": "assistant", "content": '{"name": "Ada", "age": '},
    ]
    assert retry[2]["role"] == "user" and "not valid JSON" in retry[2]["content"]
    assert_one_exchange(agent, "Who?", ADA)
    assert agent.get_stats()["output_retries"] == 1
    assert agent.last_response is not None
    assert agent.last_response.choices[0].message.content == ADA


async def test_validation_errors_are_sent_back(agent: ChatAgent, server: FakeServer) -> None:
    server.add_completion('{"name": "Ada", "age": "old"}').add_completion(ADA)
    await agent.chat("Who?", response_format=Person)
    feedback = server.bodies[1]["messages"][-1]["content"]
    assert "- age:" in feedback and "integer" in feedback


async def test_retries_exhausted_raise_with_every_attempt(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    agent = await agent_with_one_turn(make_agent, server, max_output_retries=2)
    before = agent.history
    long_text = '{"name": "' + "x" * 500 + '", "age": "old"}'
    texts = ["not json", '{"name": "Ada"}', long_text]
    for index, text in enumerate(texts):
        server.add_json(completion(text, extra={"id": f"chatcmpl-{index}"}))

    with pytest.raises(APIResponseError) as info:
        await agent.chat("Who?", response_format=Person)

    exc = info.value
    assert "after 3 attempts" in exc.message and "does not match Person" in exc.message
    attempts = exc.details["attempts"]
    assert [a["text"] for a in attempts] == texts  # every attempt, in full
    assert attempts[0]["errors"] == [] and "not valid JSON" in attempts[0]["message"]
    assert attempts[1]["errors"][0]["loc"] == ("age",)
    assert exc.details["text"] == long_text
    assert agent.last_response is not None and agent.last_response.id == "chatcmpl-2"
    assert agent.history == before
    assert agent.get_stats()["output_retries"] == 2
    assert len(server.requests) == 4


async def test_no_retries_keeps_the_failed_completion(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    # Issue 14, item 15: the paid-for answer stays recoverable.
    agent = await agent_with_one_turn(make_agent, server, max_output_retries=0)
    text = '{"name": "' + "y" * 1000 + '"}'
    server.add_json(completion(text, extra={"id": "chatcmpl-bad"}))
    with pytest.raises(APIResponseError) as info:
        await agent.chat("Who?", response_format=Person)
    assert info.value.details["text"] == text
    assert agent.last_response is not None and agent.last_response.id == "chatcmpl-bad"
    assert len(server.requests) == 2


async def test_per_call_retries_override_the_runtime(agent: ChatAgent, server: FakeServer) -> None:
    server.add_completion("no").add_completion("no").add_completion(ADA)
    person = await agent.chat("Who?", response_format=Person, max_output_retries=2)
    assert person.name == "Ada" and agent.get_stats()["output_retries"] == 2


async def test_tool_mode_retry_answers_the_call(agent: ChatAgent, server: FakeServer) -> None:
    server.add_json(answer_call('{"name": "Ada"}', "c1")).add_json(answer_call(ADA, "c2"))

    person = await agent.chat("Who?", response_format=Person, output_mode="tool")

    assert person == Person(name="Ada", age=36)
    messages = server.bodies[1]["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "c1"
    assert messages[2]["role"] == "tool" and messages[2]["tool_call_id"] == "c1"
    assert "age" in messages[2]["content"]
    assert server.bodies[1]["tool_choice"]["function"]["name"] == "final_result"
    assert_one_exchange(agent, "Who?", ADA)


async def test_a_text_answer_in_tool_mode_is_accepted_when_valid(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_completion(ADA)
    assert (await agent.chat("Who?", response_format=Person, output_mode="tool")).age == 36


async def test_a_retry_after_a_tool_round_keeps_the_round(
    agent: ChatAgent, server: FakeServer
) -> None:
    from openai_chatapi import tool

    @tool
    def age_of(name: str) -> int:
        """Age of a person."""
        return 36

    agent.register_tool(age_of)
    server.add_json(calls_reply(tool_call("t1", "age_of", {"name": "Ada"})))
    server.add_completion("{}").add_completion(ADA)

    await agent.chat("Who?", response_format=Person)

    assert [m["role"] for m in server.bodies[2]["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert [m.role for m in agent.history] == ["user", "assistant", "tool", "assistant"]
    assert agent.history[-1].content == ADA


@pytest.mark.parametrize("mode", ["native", "json", "tool", "auto"])
@pytest.mark.parametrize(
    ("prefix", "think"),
    [
        ("\ufeff", None),
        ("<think>Ada, surely.</think>\n", "Ada, surely."),
        ('\ufeff<think>\n{maybe} "x"\n</think>\n\n', '{maybe} "x"'),
        ("<thinking>hm</thinking>", "hm"),
    ],
)
async def test_a_bom_and_a_leading_think_block_are_not_part_of_the_json(
    agent: ChatAgent, server: FakeServer, mode: Any, prefix: str, think: str | None
) -> None:
    answer = f"```json\n{ADA}\n```" if think and "{" in think else ADA  # fenced, too
    text = prefix + answer
    server.add_json(answer_call(text) if mode == "tool" else completion(text))
    person = await agent.chat(
        "Who?", response_format=Person, output_mode=mode, max_output_retries=0
    )
    assert person == Person(name="Ada", age=36)
    assert len(server.requests) == 1
    kept = agent.history[-1]
    if mode != "tool" and think is not None:  # the think text is the reasoning, not the answer
        assert (kept.content, kept.reasoning_content) == (answer, think)
    else:
        assert kept.content == text


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("mode", ["native", "json", "tool", "auto"])
async def test_a_refusal_raises_in_every_mode(
    agent: ChatAgent, server: FakeServer, mode: Any
) -> None:
    refused = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    server.add_json(
        completion(
            None, extra={"choices": [{"index": 0, "message": refused, "finish_reason": "stop"}]}
        )
    )
    with pytest.raises(APIResponseError, match="refused") as info:
        await agent.chat("Who?", response_format=Person, output_mode=mode)
    assert info.value.details["refusal"] == "I can't help with that."
    assert len(server.requests) == 1  # a refusal is not retried
    assert agent.history == ()


# --------------------------------------------------------------------------- output types


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Movie(TypedDict):
    title: str
    year: int


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


TYPE_CASES: list[tuple[str, Any, str, Any]] = [
    ("model", Person, ADA, Person(name="Ada", age=36)),
    ("dataclass", Point, '{"x": 1, "y": 2}', Point(1, 2)),
    ("typeddict", Movie, '{"title": "Up", "year": 2009}', {"title": "Up", "year": 2009}),
    (
        "list-of-models",
        list[Person],
        '{"result": [{"name": "A", "age": 1}, {"name": "B", "age": 2}]}',
        [Person(name="A", age=1), Person(name="B", age=2)],
    ),
    (
        "union-of-models",
        Cat | Dog,
        '{"result": {"kind": "dog", "good": true}}',
        Dog(kind="dog", good=True),
    ),
    ("literal", Literal["red", "green"], '{"result": "green"}', "green"),
    ("int", int, '{"result": 42}', 42),
    ("bool", bool, '{"result": false}', False),
    ("str", str, '{"result": "hello"}', "hello"),
]


@pytest.mark.parametrize("mode", ["native", "json", "tool"])
@pytest.mark.parametrize(
    ("tp", "answer", "expected"),
    [case[1:] for case in TYPE_CASES],
    ids=[case[0] for case in TYPE_CASES],
)
async def test_output_types_in_every_mode(
    agent: ChatAgent, server: FakeServer, tp: Any, answer: str, expected: Any, mode: Any
) -> None:
    server.add_json(answer_call(answer) if mode == "tool" else completion(answer))

    value = await agent.chat("Give it", response_format=tp, output_mode=mode)

    assert value == expected and type(value) is type(expected)
    body = server.last_body
    if mode == "native":
        schema = body["response_format"]["json_schema"]["schema"]
    elif mode == "json":
        schema = body["response_format"]["schema"]
    else:
        schema = body["tools"][0]["function"]["parameters"]
    assert schema["type"] == "object"  # a non-object root is wrapped as {"result": ...}
    assert_one_exchange(agent, "Give it", answer)


async def test_a_type_strict_mode_cannot_express_is_sent_loose(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_completion('{"result": {"a": 1}}')
    assert await agent.chat("Map", response_format=dict[str, int]) == {"a": 1}
    assert server.last_body["response_format"]["json_schema"]["strict"] is False
