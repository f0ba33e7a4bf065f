"""StreamAccumulator: chunks merged into the completion the non-streamed call would return."""

from __future__ import annotations

import json
from typing import Any

from openai_chatapi import ChatAgent, ContentDeltaEvent, FinishEvent, ToolCallDeltaEvent
from openai_chatapi import _generated as gen
from openai_chatapi._accumulator import StreamAccumulator
from openai_chatapi._events import ReasoningDeltaEvent, StreamEvent, UsageEvent
from openai_chatapi._parsing import parse_completion

from ..support.fakes import FakeServer, chunk, completion, text_chunks, tool_call


def feed(chunks: list[dict[str, Any]]) -> tuple[StreamAccumulator, list[StreamEvent]]:
    acc = StreamAccumulator()
    events: list[StreamEvent] = []
    for body in chunks:
        events += acc.add(gen.ChatCompletionChunk.model_validate(body))
    return acc, events


def non_streamed(body: dict[str, Any]) -> gen.ChatCompletion:
    return parse_completion(json.dumps(body).encode(), strict=False)


def call_delta(
    index: int,
    *,
    call_id: str | None = None,
    name: str | None = None,
    arguments: str | None = None,
) -> dict[str, Any]:
    delta: dict[str, Any] = {"index": index, "function": {}}
    if call_id is not None:
        delta["id"] = call_id
        delta["type"] = "function"
    if name is not None:
        delta["function"]["name"] = name
    if arguments is not None:
        delta["function"]["arguments"] = arguments
    return delta


def tool_chunk(*deltas: dict[str, Any]) -> dict[str, Any]:
    return chunk({"tool_calls": list(deltas)})


def wire_calls(completion_: gen.ChatCompletion) -> list[dict[str, Any]]:
    calls = completion_.choices[0].message.tool_calls or []
    return [call.model_dump(exclude_none=True) for call in calls]


def test_content_pieces_are_joined_and_emitted_in_order() -> None:
    acc, events = feed(text_chunks(["Hel", "lo", " world"]))
    result = acc.result()
    assert result.choices[0].message.content == "Hello world"
    assert result.choices[0].message.role == "assistant"
    assert [e.text for e in events if isinstance(e, ContentDeltaEvent)] == ["Hel", "lo", " world"]
    assert acc.finish_reason == "stop"
    assert acc.finished
    assert result.choices[0].finish_reason == "stop"
    assert result.object == "chat.completion"
    assert (result.id, result.model) == ("chatcmpl-s", "test-model")


def test_reasoning_content_is_accumulated_apart_from_the_answer() -> None:
    chunks = [
        chunk({"role": "assistant", "reasoning_content": "Think"}),
        chunk({"reasoning_content": "ing..."}),
        chunk({"content": "42"}),
        chunk({}, finish_reason="stop"),
    ]
    acc, events = feed(chunks)
    message = acc.result().choices[0].message
    assert message.reasoning_content == "Thinking..."
    assert message.content == "42"
    reasoning = [e.text for e in events if isinstance(e, ReasoningDeltaEvent)]
    assert reasoning == ["Think", "ing..."]
    assert [e.text for e in events if isinstance(e, ContentDeltaEvent)] == ["42"]


def test_refusal_is_accumulated_without_content_events() -> None:
    chunks = [
        chunk({"role": "assistant", "refusal": "I can't "}),
        chunk({"refusal": "help with that."}),
        chunk({}, finish_reason="stop"),
    ]
    acc, events = feed(chunks)
    message = acc.result().choices[0].message
    assert message.refusal == "I can't help with that."
    assert message.content is None
    assert not [e for e in events if isinstance(e, ContentDeltaEvent)]


def _logprob(token: str, value: float) -> dict[str, Any]:
    return {
        "token": token,
        "logprob": value,
        "bytes": list(token.encode()),
        "top_logprobs": [{"token": token, "logprob": value, "bytes": list(token.encode())}],
    }


def test_logprobs_of_every_chunk_are_concatenated() -> None:
    first, second = _logprob("Hi", -0.25), _logprob("!", -1.5)
    with_lp1 = chunk({"role": "assistant", "content": "Hi"})
    with_lp1["choices"][0]["logprobs"] = {"content": [first], "refusal": None}
    with_lp2 = chunk({"content": "!"})
    with_lp2["choices"][0]["logprobs"] = {"content": [second], "refusal": None}
    acc, _ = feed([with_lp1, with_lp2, chunk({}, finish_reason="stop")])

    expected = completion("Hi!", usage=None)
    expected["choices"][0]["logprobs"] = {"content": [first, second], "refusal": None}
    streamed = acc.result().choices[0].logprobs
    assert streamed is not None
    assert streamed.content == non_streamed(expected).choices[0].logprobs.content  # type: ignore[union-attr]


def test_refusal_logprobs_are_kept() -> None:
    lp = _logprob("No", -0.5)
    refusal = chunk({"role": "assistant", "refusal": "No"})
    refusal["choices"][0]["logprobs"] = {"content": None, "refusal": [lp]}
    acc, _ = feed([refusal, chunk({}, finish_reason="stop")])
    logprobs = acc.result().choices[0].logprobs
    assert logprobs is not None
    assert logprobs.refusal == [gen.TokenLogprob.model_validate(lp)]


def test_usage_chunk_with_empty_choices() -> None:
    acc, events = feed(text_chunks(["a", "b"], usage=(12, 2)))
    usage_events = [e for e in events if isinstance(e, UsageEvent)]
    assert len(usage_events) == 1
    usage = acc.result().usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (12, 2, 14)
    # The usage chunk has no choices: it must not create an empty extra choice.
    assert len(acc.result().choices) == 1
    assert acc.chunks == 5


def test_finish_reason_from_the_last_chunk() -> None:
    acc, _ = feed(text_chunks(["cut"], finish_reason="length"))
    assert acc.finish_reason == "length"
    assert acc.result().choices[0].finish_reason == "length"


def test_unfinished_stream_reports_no_finish_reason() -> None:
    acc, _ = feed([chunk({"role": "assistant", "content": "half"})])
    assert not acc.finished
    assert acc.result().choices[0].finish_reason is None
    assert acc.result().choices[0].message.content == "half"


def test_parallel_tool_calls_interleaved_by_index() -> None:
    # (index, arguments fragment): the two calls' arguments alternate, chunk by chunk
    fragments = [(0, '{"ci'), (1, '{"tz": '), (0, 'ty": "Par'), (1, '"UTC"}'), (0, 'is"}')]
    chunks = [
        chunk({"role": "assistant", "content": None}),
        tool_chunk(call_delta(0, call_id="call_a", name="get_weather", arguments="")),
        tool_chunk(call_delta(1, call_id="call_b", name="get_time", arguments="")),
        *(tool_chunk(call_delta(index, arguments=part)) for index, part in fragments),
        chunk({}, finish_reason="tool_calls"),
    ]
    acc, events = feed(chunks)
    assert wire_calls(acc.result()) == [
        tool_call("call_a", "get_weather", {"city": "Paris"}),
        tool_call("call_b", "get_time", {"tz": "UTC"}),
    ]
    deltas = [e for e in events if isinstance(e, ToolCallDeltaEvent)]
    assert [e.index for e in deltas] == [0, 1, 0, 1, 0, 1, 0]
    assert deltas[0].id == "call_a" and deltas[0].name == "get_weather"
    assert deltas[2].id is None and deltas[2].name is None and deltas[2].arguments == '{"ci'
    assert acc.finish_reason == "tool_calls"


def test_two_calls_in_one_chunk_and_an_argument_per_character() -> None:
    arguments = json.dumps({"query": "naïve café", "limit": 3})
    chunks = [
        tool_chunk(
            call_delta(0, call_id="c0", name="search"),
            call_delta(1, call_id="c1", name="search"),
        )
    ]
    for char in arguments:
        chunks.append(tool_chunk(call_delta(1, arguments=char), call_delta(0, arguments=char)))
    chunks.append(chunk({}, finish_reason="tool_calls"))
    acc, _ = feed(chunks)
    calls = wire_calls(acc.result())
    assert [c["id"] for c in calls] == ["c0", "c1"]
    assert all(json.loads(c["function"]["arguments"]) == json.loads(arguments) for c in calls)


def test_llama_cpp_style_repeated_name_and_id_are_not_doubled() -> None:
    # llama.cpp repeats the id and the full name in every delta of a call.
    pieces = ['{"a"', ": 1", "}"]
    chunks = [
        tool_chunk(call_delta(0, call_id="call_x", name="add_one", arguments=p)) for p in pieces
    ]
    chunks.append(chunk({}, finish_reason="tool_calls"))
    acc, _ = feed(chunks)
    assert wire_calls(acc.result()) == [tool_call("call_x", "add_one", {"a": 1})]


def test_streamed_completion_equals_the_non_streamed_one() -> None:
    calls = [tool_call("call_1", "lookup", {"key": "v"}), tool_call("call_2", "lookup", {})]
    body = completion("Let me check.", finish_reason="tool_calls", tool_calls=calls, usage=(9, 4))
    chunks = [
        chunk({"role": "assistant", "content": "Let me"}),
        chunk({"content": " check."}),
        tool_chunk(call_delta(0, call_id="call_1", name="lookup", arguments='{"key"')),
        tool_chunk(call_delta(0, arguments=': "v"}')),
        tool_chunk(call_delta(1, call_id="call_2", name="lookup", arguments="{}")),
        chunk({}, finish_reason="tool_calls"),
        chunk(usage=(9, 4), choices=False),
    ]
    streamed = feed(chunks)[0].result()
    expected = non_streamed(body)
    got, want = streamed.choices[0], expected.choices[0]
    assert got.message.content == want.message.content
    assert got.message.tool_calls == want.message.tool_calls
    assert got.finish_reason == want.finish_reason
    assert streamed.usage == expected.usage


async def test_agent_stream_and_chat_give_the_same_completion(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_completion("Hello there", usage=(7, 3))
    server.add_stream(text_chunks(["Hello", " there"], usage=(7, 3)))
    assert await agent.chat("hi", add_to_history=False) == "Hello there"
    chat_response = agent.last_response
    assert chat_response is not None
    agent.last_response = None

    pieces = [p async for p in agent.chat_stream("hi", display_stream=False)]
    assert pieces == ["Hello", " there"]
    streamed = agent.last_response
    assert streamed is not None
    assert streamed.choices[0].message.content == chat_response.choices[0].message.content
    assert streamed.choices[0].finish_reason == chat_response.choices[0].finish_reason
    assert streamed.usage == chat_response.usage


async def test_last_response_is_the_accumulated_completion(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_stream(text_chunks(["a", "b", "c"], usage=(1, 3)))
    finishes = []
    async for event in agent.chat_stream_events("go"):
        if isinstance(event, FinishEvent):
            finishes.append(event)
    assert len(finishes) == 1
    assert finishes[0].finish_reason == "stop"
    assert agent.last_response is finishes[0].response
    assert agent.last_response.choices[0].message.content == "abc"


def test_tool_call_deltas_without_index_split_on_new_ids() -> None:
    from openai_chatapi import _generated as gen
    from openai_chatapi._accumulator import StreamAccumulator

    acc = StreamAccumulator()
    deltas = [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x":'}},
        {"function": {"arguments": " 1}"}},
        {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
    ]
    for delta in deltas:
        acc.add(
            gen.ChatCompletionChunk.model_validate(
                {"choices": [{"index": 0, "delta": {"tool_calls": [delta]}}]}
            )
        )
    acc.add(
        gen.ChatCompletionChunk.model_validate(
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
        )
    )
    message = acc.result().choices[0].message
    assert message is not None and message.tool_calls is not None
    calls = [
        (c.id, c.function.name, c.function.arguments) for c in message.tool_calls if c.function
    ]
    assert calls == [("a", "f", '{"x": 1}'), ("b", "g", "{}")]


def test_reasoning_field_of_groq_openrouter_ollama_counts_as_reasoning() -> None:
    from openai_chatapi import _generated as gen
    from openai_chatapi._accumulator import StreamAccumulator
    from openai_chatapi._events import ReasoningDeltaEvent

    acc = StreamAccumulator()
    events = []
    for delta in ({"reasoning": "think "}, {"reasoning": "more"}, {"content": "answer"}):
        events += acc.add(
            gen.ChatCompletionChunk.model_validate({"choices": [{"index": 0, "delta": delta}]})
        )
    assert [e.text for e in events if isinstance(e, ReasoningDeltaEvent)] == ["think ", "more"]
    message = acc.result().choices[0].message
    assert message is not None
    assert message.reasoning_content == "think more"
    assert message.content == "answer"
