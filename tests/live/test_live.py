"""Live suite: the real client against a real llama.cpp server (llama-cpp-python's own server
with SmolLM2-135M-Instruct), started once per session by ``tests/support/live_server.py``.

A 135M model says odd things, so these tests check structure (types, finish reasons, counts,
history, exceptions), never wording. Optional features (``n``, ``seed``, ``logprobs``,
``json_schema``) are decided by probing the server, and skipped with the reason where it does
not support them. ``tests/support/LLAMACPP_QUIRKS.md`` lists what this server does differently from
OpenAI and which test here proves how the client copes.

Run: ``python -m pytest -m live`` (needs the ``local`` extra; skipped cleanly without it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from openai_chatapi import (
    APIResponseError,
    AuthenticationError,
    BadRequestError,
    ChatAgent,
    ChatMessage,
    InternalServerError,
    ModelConfig,
    NotFoundError,
    RuntimeConfig,
    TokenLimitError,
    tool,
)

pytestmark = pytest.mark.live

# Short replies keep the whole file quick; the timeout is generous for a busy machine.
TIMEOUT = 180.0
PROMPT = "Name three colours of the rainbow."


@pytest.fixture
async def live_agent(live_model_config: ModelConfig) -> AsyncIterator[ChatAgent]:
    """A fresh agent on the session's server: temperature 0, short replies, one retry."""
    config = live_model_config.with_overrides({"temperature": 0.0, "max_tokens": 24})
    runtime = RuntimeConfig(enable_logging=False, timeout=TIMEOUT, max_retries=1)
    async with ChatAgent(config, runtime) as agent:
        yield agent


def _finish_reason(agent: ChatAgent) -> str | None:
    assert agent.last_response is not None
    return agent.last_response.choices[0].finish_reason


# --------------------------------------------------------------------------- basics


async def test_plain_chat(live_agent: ChatAgent) -> None:
    text = await live_agent.chat(PROMPT, max_tokens=16)

    assert isinstance(text, str) and text.strip()
    response = live_agent.last_response
    assert response is not None
    assert response.object == "chat.completion"
    assert response.model == live_agent.model_config.model
    message = response.choices[0].message
    assert message is not None
    assert message.role == "assistant"
    assert message.content == text
    assert response.choices[0].finish_reason in ("stop", "length")
    assert [(m.role, m.text) for m in live_agent.history] == [
        ("user", PROMPT),
        ("assistant", text),
    ]


async def test_streamed_pieces_concatenate_to_the_non_streamed_reply(
    live_agent: ChatAgent,
) -> None:
    options: dict[str, Any] = {"seed": 7, "temperature": 0.0, "max_tokens": 20}
    whole = await live_agent.chat(PROMPT, add_to_history=False, **options)
    finish = _finish_reason(live_agent)
    pieces = [
        piece
        async for piece in live_agent.chat_stream(
            PROMPT, add_to_history=False, display_stream=False, **options
        )
    ]

    assert len(pieces) > 1  # really streamed, piece by piece
    if "".join(pieces) != whole:
        again = await live_agent.chat(PROMPT, add_to_history=False, **options)
        if again != whole:
            pytest.skip(
                "temperature 0 is not deterministic on this server: two identical "
                f"non-streamed calls differed ({whole!r} vs {again!r})"
            )
    assert "".join(pieces) == whole
    assert _finish_reason(live_agent) == finish
    # The streamed turn enters the history like a non-streamed one (here: not at all).
    assert live_agent.history == ()


async def test_small_max_tokens_ends_with_length(live_agent: ChatAgent) -> None:
    text = await live_agent.chat("Write a long story about a dragon.", max_tokens=2)

    assert _finish_reason(live_agent) == "length"
    response = live_agent.last_response
    assert response is not None and response.usage is not None
    assert response.usage.completion_tokens == 2
    assert text  # two tokens of something
    assert live_agent.history[-1].text == text  # a cut reply is still a reply


async def test_stop_sequence_ends_the_reply_before_it(live_agent: ChatAgent) -> None:
    # Even at temperature 0, llama-cpp-python's reply depends on what its prompt cache held
    # (another prompt, this one after a 1-token reply, this one after a longer reply). Warm it
    # with the same request first, so that both replies compared below start from the same
    # cache state.
    await live_agent.chat(PROMPT, add_to_history=False, max_tokens=20)
    full = await live_agent.chat(PROMPT, add_to_history=False, max_tokens=20)
    words = full.split()
    if len(words) < 3:
        pytest.skip(f"the reply is too short to pick a stop sequence from: {full!r}")
    # The reply's third word, without the whitespace before it (which may be a newline, as in
    # "1. Red\n2. Orange"): the reply must end just before its first occurrence.
    stop = words[2]
    cut = await live_agent.chat(PROMPT, add_to_history=False, max_tokens=20, stop=[stop])

    assert _finish_reason(live_agent) == "stop"
    assert stop not in cut
    assert full.startswith(cut) and len(cut) < len(full)
    assert cut.rstrip() == full[: full.index(stop)].rstrip()


async def test_concurrent_streams_both_complete(live_model_config: ModelConfig) -> None:
    # By default llama-cpp-python cuts a running stream off when another request arrives;
    # LocalModelServer starts it with --interrupt_requests=false so requests queue instead.
    runtime = RuntimeConfig(enable_logging=False, timeout=TIMEOUT, max_retries=1)

    async def one(prompt: str) -> tuple[str, str | None]:
        async with ChatAgent(live_model_config, runtime) as agent:
            stream = agent.chat_stream(prompt, display_stream=False, max_tokens=12)
            text = "".join([piece async for piece in stream])
            return text, _finish_reason(agent)

    results = await asyncio.gather(one("Count to five."), one("Name two animals."))

    for text, finish in results:
        assert text
        assert finish in ("stop", "length")


# --------------------------------------------------------------------------- probed features


async def test_n_choices_where_supported(live_agent: ChatAgent) -> None:
    await live_agent.chat("Say hi.", add_to_history=False, n=2, max_tokens=4)
    response = live_agent.last_response
    assert response is not None
    if len(response.choices) == 1:
        pytest.skip("the server ignores n: asked for 2 choices, got 1 (llama.cpp quirk)")

    assert [c.index for c in response.choices] == [0, 1]
    assert all(
        c.message is not None and isinstance(c.message.content, str) for c in response.choices
    )


async def test_seed_makes_sampling_repeatable_where_supported(live_agent: ChatAgent) -> None:
    options: dict[str, Any] = {"seed": 1234, "temperature": 1.0, "max_tokens": 12}
    first = await live_agent.chat("Invent a name for a cat.", add_to_history=False, **options)
    second = await live_agent.chat("Invent a name for a cat.", add_to_history=False, **options)
    if first != second:
        pytest.skip(
            "seed does not make sampling repeatable on this server: two calls with seed=1234 "
            f"at temperature 1 differed ({first!r} vs {second!r})"
        )

    assert first == second


async def test_logprobs_where_supported(live_agent: ChatAgent) -> None:
    text = await live_agent.chat(
        "Say hi.", add_to_history=False, max_tokens=3, logprobs=True, top_logprobs=2
    )
    response = live_agent.last_response
    assert response is not None
    logprobs = response.choices[0].logprobs
    if logprobs is None or not logprobs.content:
        pytest.skip("the server returned no logprobs for logprobs=true, top_logprobs=2")

    tokens = logprobs.content
    assert "".join(t.token or "" for t in tokens) == text
    for entry in tokens:
        assert entry.logprob is not None and entry.logprob <= 0.0
        assert 1 <= len(entry.top_logprobs) <= 2
        best, worst = entry.top_logprobs[0].logprob, entry.top_logprobs[-1].logprob
        assert best is not None and worst is not None and best >= worst


async def test_logprobs_without_top_logprobs_parse(live_agent: ChatAgent) -> None:
    # llama.cpp answers `logprobs: null` unless top_logprobs is given; OpenAI returns them.
    text = await live_agent.chat("Say hi.", add_to_history=False, max_tokens=3, logprobs=True)
    response = live_agent.last_response

    assert response is not None and text
    logprobs = response.choices[0].logprobs
    for entry in (logprobs.content or []) if logprobs is not None else []:
        assert entry.logprob is not None and entry.logprob <= 0.0


# --------------------------------------------------------------------------- models


async def test_list_models(live_agent: ChatAgent) -> None:
    listing = await live_agent.list_models()

    ids = [m.id for m in listing.data]
    assert live_agent.model_config.model in ids
    assert all(m.object == "model" for m in listing.data)


async def test_retrieve_model_is_not_served(live_agent: ChatAgent) -> None:
    # llama-cpp-python has no GET /v1/models/{id}: a 404 from FastAPI, mapped to NotFoundError.
    model = live_agent.model_config.model
    try:
        found = await live_agent.retrieve_model(model)
    except NotFoundError as exc:
        assert exc.status_code == 404
        assert model in str(exc)
    else:  # a server that has the route
        assert found.id == model


# --------------------------------------------------------------------------- tools


async def test_forced_tool_call_runs_through_the_automatic_loop(live_agent: ChatAgent) -> None:
    calls: list[dict[str, Any]] = []

    @tool
    def get_weather(city: str, units: Literal["celsius", "fahrenheit"] = "celsius") -> str:
        """Get the current weather in a city.

        Args:
            city: The city name, e.g. "Paris".
            units: Temperature units.
        """
        calls.append({"city": city, "units": units})
        return json.dumps({"city": city, "temperature": 18, "units": units})

    # chatml-function-calling renders the tools inside the system message: keep one.
    live_agent.set_system_prompt("You are a helpful assistant.")
    live_agent.register_tool(get_weather)
    await live_agent.chat("What is the weather in Paris?", tool_choice=get_weather, max_tokens=24)

    # The handler ran once with arguments validated against its signature.
    assert len(calls) == 1
    assert isinstance(calls[0]["city"], str) and calls[0]["city"].strip()
    assert calls[0]["units"] in ("celsius", "fahrenheit")
    roles = [m.role for m in live_agent.history]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    request = live_agent.history[2]
    assert request.tool_calls is not None and len(request.tool_calls) == 1
    call = request.tool_calls[0]
    assert call.function is not None and call.function.name == "get_weather"
    assert json.loads(call.function.arguments or "{}")["city"] == calls[0]["city"]
    answer = live_agent.history[3]
    assert answer.tool_call_id == call.id
    assert json.loads(answer.text or "")["city"] == calls[0]["city"]
    # The follow-up request carried the assistant tool-call turn back (llama.cpp rejects
    # `content: null` there) and was answered.
    assert _finish_reason(live_agent) in ("stop", "length")
    assert live_agent.get_stats()["tool_calls"] == 1


async def test_forced_tool_call_streamed(live_agent: ChatAgent) -> None:
    calls: list[str] = []

    @tool
    def lookup(city: str) -> str:
        """Look up facts about a city.

        Args:
            city: The city name.
        """
        calls.append(city)
        return f"{city} is a city."

    live_agent.set_system_prompt("You are a helpful assistant.")
    live_agent.register_tool(lookup)
    pieces = [
        piece
        async for piece in live_agent.chat_stream(
            "Tell me about Rome.", display_stream=False, tool_choice=lookup, max_tokens=16
        )
    ]

    # llama.cpp repeats the whole name in every tool-call delta: it must not be doubled.
    assert len(calls) == 1 and calls[0].strip()
    tool_turn = live_agent.history[2]
    assert tool_turn.tool_calls is not None
    (call,) = tool_turn.tool_calls
    assert call.function is not None and call.function.name == "lookup"
    assert [m.role for m in live_agent.history][-2:] == ["tool", "assistant"]
    assert "".join(pieces) == live_agent.history[-1].text


# --------------------------------------------------------------------------- structured output


class Pet(BaseModel):
    name: str
    age: int


async def test_structured_output_in_auto_mode_returns_a_model(live_agent: ChatAgent) -> None:
    question = "Describe a pet cat with its name and age."
    pet = await live_agent.chat(question, response_format=Pet, max_tokens=80, max_output_retries=2)
    assert isinstance(pet, Pet)
    # One exchange in the history whatever the mode and the attempts: the answer as JSON.
    assert [m.role for m in live_agent.history] == ["user", "assistant"]
    assert live_agent.history[0].text == question
    assert Pet.model_validate_json(live_agent.history[1].text) == pet
    # The mode that worked is remembered: the next call is not rejected first.
    failures = live_agent.get_stats()["failures"]
    again = await live_agent.chat(
        "Describe a pet dog with its name and age.",
        response_format=Pet,
        max_tokens=80,
        max_output_retries=2,
        add_to_history=False,
    )
    assert isinstance(again, Pet)
    assert live_agent.get_stats()["failures"] == failures


async def test_structured_output_streams_partial_objects(live_agent: ChatAgent) -> None:
    stream = live_agent.chat_stream_structured(
        "Describe a pet cat with its name and age.",
        response_format=Pet,
        max_tokens=80,
        max_output_retries=2,
    )
    items = [item async for item in stream]
    assert stream.done and isinstance(stream.final, Pet)
    assert items[-1] == stream.final
    assert all(isinstance(item, Pet) for item in items)
    assert len(items) >= 2  # at least one partial object before the validated one
    assert [m.role for m in live_agent.history] == ["user", "assistant"]


async def test_native_json_schema_mode_where_supported(live_agent: ChatAgent) -> None:
    question = "Describe a pet cat with its name and age."
    try:
        pet = await live_agent.chat(
            question, response_format=Pet, max_tokens=60, output_mode="native"
        )
    except InternalServerError as exc:
        # llama.cpp accepts only "text" and "json_object": a validation failure, sent as 500.
        assert exc.status_code == 500
        assert exc.details["error_type"] == "internal_server_error"
        assert "response_format" in str(exc)
        assert live_agent.history == ()  # a failed call leaves no trace
        pytest.skip("this server rejects json_schema response formats (500)")
    assert isinstance(pet, Pet)


async def test_dict_response_formats_are_sent_as_given(live_agent: ChatAgent) -> None:
    question = "Describe a pet cat with its name and age."
    # json_object mode: any JSON object.
    text = await live_agent.chat(
        question, response_format={"type": "json_object"}, max_tokens=60, add_to_history=False
    )
    if _finish_reason(live_agent) == "stop":
        assert isinstance(json.loads(text), dict)
    else:  # cut by max_tokens: still the start of an object
        assert text.lstrip().startswith("{")

    # llama-cpp-python's extension: json_object with a "schema" constrains the reply to it.
    schema = Pet.model_json_schema()
    text = await live_agent.chat(
        question,
        response_format={"type": "json_object", "schema": schema},
        max_tokens=60,
        add_to_history=False,
    )
    assert _finish_reason(live_agent) == "stop"
    pet = Pet.model_validate_json(text)
    assert isinstance(pet.age, int)


# --------------------------------------------------------------------------- errors


async def test_context_overflow_is_a_token_limit_error(live_agent: ChatAgent) -> None:
    live_agent.set_system_prompt("You are brief.")
    before = live_agent.history
    with pytest.raises(TokenLimitError) as caught:
        await live_agent.chat("word " * 5000, max_tokens=5)

    exc = caught.value
    assert isinstance(exc, BadRequestError)
    assert exc.status_code == 400
    assert exc.details["error_code"] == "context_length_exceeded"
    assert live_agent.history == before
    assert live_agent.get_stats()["failures"] == 1


async def test_server_validation_failure_is_an_internal_server_error(
    live_model_config: ModelConfig,
) -> None:
    # The "developer" role is valid for OpenAI; llama.cpp's request model rejects it, and its
    # validation failures come back as 500 (not 400): mapped to InternalServerError.
    runtime = RuntimeConfig(enable_logging=False, timeout=TIMEOUT, max_retries=0)
    async with ChatAgent(live_model_config, runtime) as agent:
        agent.add_message(ChatMessage(role="developer", content="Be brief."))
        before = agent.history
        with pytest.raises(InternalServerError) as caught:
            await agent.chat("Hi", max_tokens=3)

    exc = caught.value
    assert exc.status_code == 500
    assert exc.details["error_type"] == "internal_server_error"
    assert agent.history == before


async def test_required_tool_choice_is_an_internal_server_error(live_agent: ChatAgent) -> None:
    # chatml-function-calling cannot do tool_choice="required": a 500 with an empty message.
    @tool
    def ping() -> str:
        """Answer pong."""
        return "pong"

    live_agent.set_system_prompt("You are a helpful assistant.")
    live_agent.register_tool(ping)
    try:
        await live_agent.chat("Ping, please.", tool_choice="required", max_tokens=8)
    except InternalServerError as exc:
        assert exc.status_code == 500
        assert str(exc).strip() != "HTTP 500:"  # never an empty message
    else:  # a server that supports it ran the tool
        assert live_agent.get_stats()["tool_calls"] >= 1


async def test_wrong_api_key_is_an_authentication_error(live_model_config: ModelConfig) -> None:
    # The local server requires its random key; FastAPI's {"detail": ...} body is understood.
    config = dataclasses.replace(live_model_config, api_key="sk-wrong")
    runtime = RuntimeConfig(enable_logging=False, timeout=TIMEOUT)
    async with ChatAgent(config, runtime) as agent:
        with pytest.raises(AuthenticationError) as caught:
            await agent.list_models()

    assert caught.value.status_code == 401
    assert "Invalid API key" in str(caught.value)
    assert "sk-wrong" not in str(caught.value) and "sk-wrong" not in repr(caught.value.details)


async def test_any_model_name_is_served_by_the_loaded_model(live_agent: ChatAgent) -> None:
    # llama-cpp-python serves its one model under any name (no 404 model_not_found).
    text = await live_agent.chat("Say hi.", model="no-such-model", max_tokens=2)

    assert text
    assert live_agent.last_response is not None
    assert live_agent.last_response.model == "no-such-model"


async def test_streamed_context_overflow_is_a_truncated_stream(live_agent: ChatAgent) -> None:
    # Streamed, llama.cpp answers 200, sends no event at all and drops the connection: the
    # reason is only in its log. The client reports a truncated stream and recovers.
    with pytest.raises(APIResponseError) as caught:
        async for _ in live_agent.chat_stream("word " * 5000, max_tokens=5, display_stream=False):
            pass

    assert not isinstance(caught.value, TokenLimitError)
    assert "truncated" in str(caught.value)
    assert live_agent.history == ()
    # The dropped keep-alive connection may be picked for the next request: one retry copes.
    assert await live_agent.chat("Say hi.", max_tokens=3)


# --------------------------------------------------------------------------- statistics


async def test_usage_is_counted_in_stats(live_agent: ChatAgent) -> None:
    await live_agent.chat("Say hi.", max_tokens=4)
    usage = live_agent.last_response.usage if live_agent.last_response else None
    stats = live_agent.get_stats()

    assert usage is not None and usage.prompt_tokens and usage.completion_tokens
    assert stats["requests"] == stats["successes"] == 1
    assert stats["prompt_tokens"] == usage.prompt_tokens
    assert stats["completion_tokens"] == usage.completion_tokens
    assert stats["total_tokens"] == usage.total_tokens

    # Streamed: the client asks for usage (stream_options.include_usage), and counts it when
    # the server sends it. llama.cpp never does; then the tokens are left uncounted, not guessed.
    stream = live_agent.chat_stream("Say hi.", max_tokens=4, display_stream=False)
    pieces = [piece async for piece in stream]
    streamed = live_agent.last_response
    after = live_agent.get_stats()

    assert pieces
    assert streamed is not None
    assert after["requests"] == after["successes"] == 2
    assert after["streams"] == 1 and after["stream_chunks"] >= len(pieces)
    if streamed.usage is None:  # this server: no usage chunk
        assert after["total_tokens"] == stats["total_tokens"]
    else:
        assert after["total_tokens"] == stats["total_tokens"] + streamed.usage.total_tokens
