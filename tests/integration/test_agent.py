"""ChatAgent end to end against the fake server: history, overrides, stats, models, parsing."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import logging
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from openai_chatapi import (
    APIConnectionError,
    APIResponseError,
    CallOptions,
    ChatAgent,
    ChatCompletion,
    ChatMessage,
    ConfigurationError,
    ImagePart,
    InternalServerError,
    Model,
    ModelConfig,
    ModelList,
    ModelNotFoundError,
    RuntimeConfig,
    TextPart,
    TokenLimitError,
    ToolCall,
    Usage,
    _call_args,
    tool,
)
from openai_chatapi._config import REQUEST_FIELDS

from ..conftest import AgentFactory
from ..support.fakes import API_KEY, FakeServer, Reply, completion, text_chunks, tool_call
from ..support.media_factory import image_bytes
from ..support.waits import cancel_when_set


async def test_chat_end_to_end(agent: ChatAgent, server: FakeServer) -> None:
    server.add_completion("Hello, human!")
    assert await agent.chat("Hello") == "Hello, human!"
    request = server.requests[0]
    assert (request.method, request.url.path) == ("POST", "/v1/chat/completions")
    assert [(m.role, m.content) for m in agent.history] == [
        ("user", "Hello"),
        ("assistant", "Hello, human!"),
    ]
    assert all(isinstance(m, ChatMessage) for m in agent.history)


async def test_history_grows_turn_by_turn(agent: ChatAgent, server: FakeServer) -> None:
    server.add_completion("one").add_completion("two")
    await agent.chat("first")
    await agent.chat("second")
    assert [m.text for m in agent.history] == ["first", "one", "second", "two"]
    assert server.last_body["messages"][:2] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "one"},
    ]


async def test_null_content_reply_becomes_empty_string(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_completion(None)
    assert await agent.chat("say nothing") == ""
    assert agent.history[-1].content == ""


# ------------------------------------------------------------------ failures leave no trace


def _seed(server: FakeServer) -> None:
    server.add_completion("earlier reply")


FAILURES: dict[str, Callable[[FakeServer], None]] = {
    "http_500": lambda s: s.add_json({"error": {"message": "boom"}}, status=500),
    "http_400": lambda s: s.add_json({"error": {"message": "bad"}}, status=400),
    "connection": lambda s: s.add_error(httpx.ConnectError("refused")),
    "timeout": lambda s: s.add_error(httpx.ReadTimeout("slow")),
    "invalid_json": lambda s: s.add(Reply(raw=b"{not json", content_type="application/json")),
    "empty_choices": lambda s: s.add_json({**completion("x"), "choices": []}),
    "wrong_shape": lambda s: s.add_json({"choices": [{"message": "nope"}]}),
    "error_object_in_200": lambda s: s.add_json({"error": {"message": "overloaded"}}),
}


@pytest.mark.parametrize("kind", sorted(FAILURES))
async def test_history_is_unchanged_after_a_failure(
    agent: ChatAgent, server: FakeServer, kind: str
) -> None:
    agent.set_system_prompt("be brief")
    _seed(server)
    await agent.chat("earlier")
    before = agent.history
    last = agent.last_response
    FAILURES[kind](server)
    with pytest.raises((APIResponseError, APIConnectionError)):
        await agent.chat("this one fails")
    assert agent.history == before
    assert agent.last_response is last
    stats = agent.get_stats()
    assert (stats["successes"], stats["failures"]) == (1, 1)
    # The agent still works, and the failed message was not sent again.
    server.add_completion("recovered")
    assert await agent.chat("retry") == "recovered"
    assert "this one fails" not in json.dumps(server.last_body)


@pytest.mark.parametrize(
    "events",
    [
        [*text_chunks(["partial"], usage=None)[:2], "data: {broken json\n\n"],
        text_chunks(["partial"], usage=None)[:2],  # ends without a finish or [DONE]
    ],
    ids=["invalid_chunk", "cut_off"],
)
async def test_history_is_unchanged_after_a_failed_stream(
    make_agent: AgentFactory, server: FakeServer, events: list[Any]
) -> None:
    agent = await make_agent(stream=True)
    server.add_stream(text_chunks(["ok"]))
    await agent.chat("earlier")
    before = agent.history
    server.add_stream(events, done=False)
    with pytest.raises((APIResponseError, APIConnectionError)):
        await agent.chat("this one fails")
    assert agent.history == before


async def test_cancelled_call_leaves_history_unchanged(
    agent: ChatAgent, server: FakeServer
) -> None:
    agent.set_system_prompt("sys")
    server.add_completion("first reply")
    await agent.chat("first")
    before = agent.history

    arrived = asyncio.Event()
    release = asyncio.Event()

    async def blocking(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await release.wait()
        return httpx.Response(200, json=completion("too late"))

    server.handler = blocking  # type: ignore[assignment]
    await cancel_when_set(agent.chat("never finished"), arrived)
    release.set()
    assert agent.history == before
    assert agent.last_response is not None
    assert agent.last_response.choices[0].message.content == "first reply"

    server.handler = None
    server.add_completion("second reply")
    assert await agent.chat("again") == "second reply"
    assert [m.text for m in agent.history][-2:] == ["again", "second reply"]


async def test_cancelled_stream_leaves_history_unchanged(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    agent = await make_agent(stream=True)
    arrived = asyncio.Event()

    async def never_ending(request: httpx.Request) -> httpx.Response:
        class Body(httpx.AsyncByteStream):
            async def __aiter__(self) -> Any:
                yield b'data: {"choices": [{"index": 0, "delta": {"content": "par"}}]}\n\n'
                arrived.set()
                await asyncio.Event().wait()  # the server stalls mid-stream

        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Body())

    server.handler = never_ending  # type: ignore[assignment]
    await cancel_when_set(agent.chat("stream me"), arrived)
    assert agent.history == ()
    assert agent.last_response is None


# ------------------------------------------------------------------ history management


async def test_set_system_prompt_inserts_then_replaces(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_completion("a").add_completion("b")
    await agent.chat("hi")
    agent.set_system_prompt("first prompt")
    assert agent.history[0] == ChatMessage(role="system", content="first prompt")
    assert len(agent.history) == 3
    agent.set_system_prompt("second prompt")
    assert agent.history[0].content == "second prompt"
    assert len(agent.history) == 3
    assert agent.system_prompt == "second prompt"
    await agent.chat("again")
    assert server.last_body["messages"][0] == {"role": "system", "content": "second prompt"}
    with pytest.raises(ConfigurationError):
        agent.set_system_prompt(42)  # type: ignore[arg-type]


async def test_add_message(agent: ChatAgent, server: FakeServer) -> None:
    agent.add_message(ChatMessage(role="user", content="I am Ada."))
    agent.add_message(ChatMessage(role="assistant", content="Hello Ada."))
    server.add_completion("Ada.")
    assert await agent.chat("Who am I?") == "Ada."
    assert [m["content"] for m in server.last_body["messages"]] == [
        "I am Ada.",
        "Hello Ada.",
        "Who am I?",
    ]
    with pytest.raises(ConfigurationError, match="role"):
        agent.add_message({"role": "narrator", "content": "x"})
    with pytest.raises(ConfigurationError, match="not str"):
        agent.add_message("hello")  # type: ignore[arg-type]
    assert len(agent.history) == 4


@pytest.mark.parametrize("keep_system", [True, False])
async def test_clear_history(agent: ChatAgent, server: FakeServer, keep_system: bool) -> None:
    agent.set_system_prompt("sys")
    server.add_completion("a")
    await agent.chat("hi")
    agent.clear_history(keep_system=keep_system)
    expected = (ChatMessage(role="system", content="sys"),) if keep_system else ()
    assert agent.history == expected


async def test_clear_history_keeps_system_by_default(agent: ChatAgent) -> None:
    agent.set_system_prompt("sys")
    agent.add_message(ChatMessage(role="user", content="x"))
    agent.clear_history()
    assert [m.role for m in agent.history] == ["system"]
    agent.clear_history(keep_system=False)
    agent.clear_history()
    assert agent.history == ()


async def test_history_is_a_read_only_view(agent: ChatAgent, server: FakeServer) -> None:
    server.add_completion("a")
    await agent.chat("hi")
    view = agent.history
    assert isinstance(view, tuple)
    with pytest.raises(AttributeError):
        view.append(ChatMessage(role="user", content="sneaky"))  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        agent.history = ()  # type: ignore[misc]
    server.add_completion("b")
    await agent.chat("more")
    assert len(view) == 2  # a snapshot, not a live list
    assert len(agent.history) == 4


# ------------------------------------------------------------------ overrides


async def test_unknown_override_is_refused_before_any_request(
    agent: ChatAgent, server: FakeServer
) -> None:
    with pytest.raises(ConfigurationError) as info:
        await agent.chat("hi", temprature=0.5)  # type: ignore[call-overload]
    assert info.value.details["field"] == "temprature"
    with pytest.raises(ConfigurationError) as info:
        await agent.chat("hi", temperature=9)
    assert info.value.details == {"field": "temperature", "value": 9}
    with pytest.raises(ConfigurationError):
        await agent.chat("hi", api_key="sk-other")  # type: ignore[call-overload]
    assert server.requests == []
    assert agent.history == ()


def test_overrides_are_typed() -> None:
    hints = typing.get_type_hints(CallOptions)
    assert set(hints) == set(REQUEST_FIELDS)
    model_fields = set(ModelConfig.__dataclass_fields__) - {"api_base_url", "api_key", "stream"}
    assert set(hints) == model_fields
    assert CallOptions.__total__ is False
    for method in (ChatAgent.chat, ChatAgent.chat_stream, ChatAgent.submit_tool_results):
        parameter = list(inspect.signature(method).parameters.values())[-1]
        assert parameter.kind is inspect.Parameter.VAR_KEYWORD
        # Unpack[CallOptions], or of a TypedDict of call arguments that extends it.
        annotation = str(parameter.annotation)
        assert annotation.startswith("Unpack[") and annotation.endswith("]")
        keywords = getattr(_call_args, annotation[len("Unpack[") : -1])
        assert issubclass(keywords, dict)
        assert set(CallOptions.__optional_keys__) <= keywords.__optional_keys__


# ------------------------------------------------------------------ responses


async def test_last_response_is_the_full_typed_completion(
    agent: ChatAgent, server: FakeServer
) -> None:
    assert agent.last_response is None
    server.add_completion(
        "The answer is 4.",
        reasoning="2 + 2 = 4",
        usage=(12, 6),
        extra={"system_fingerprint": "fp_1", "service_tier": "default"},
    )
    assert await agent.chat("2+2?") == "The answer is 4."
    response = agent.last_response
    assert isinstance(response, ChatCompletion)
    assert (response.id, response.model, response.created) == (
        "chatcmpl-1",
        "test-model",
        1700000000,
    )
    assert (response.system_fingerprint, response.service_tier) == ("fp_1", "default")
    choice = response.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content == "The answer is 4."
    assert choice.message.reasoning_content == "2 + 2 = 4"
    assert isinstance(response.usage, Usage)
    assert (response.usage.prompt_tokens, response.usage.total_tokens) == (12, 18)
    assert agent.history[-1].reasoning_content == "2 + 2 = 4"


async def test_tool_calls_and_logprobs_are_typed(agent: ChatAgent, server: FakeServer) -> None:
    body = completion("hi")
    body["choices"][0]["logprobs"] = {
        "content": [
            {"token": "hi", "logprob": -0.1, "bytes": [104, 105], "top_logprobs": []},
        ],
        "refusal": None,
    }
    server.add_json(body)
    await agent.chat("hi", logprobs=True)
    assert agent.last_response is not None
    logprobs = agent.last_response.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert (logprobs.content[0].token, logprobs.content[0].logprob) == ("hi", -0.1)


async def test_model_config_stream_makes_chat_stream(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    agent = await make_agent(stream=True)
    server.add_stream(text_chunks(["Hel", "lo", "!"], usage=(4, 3)))
    assert await agent.chat("Hi") == "Hello!"
    assert server.last_body["stream"] is True
    assert server.requests[0].headers["accept"] == "text/event-stream"
    assert [m.text for m in agent.history] == ["Hi", "Hello!"]
    response = agent.last_response
    assert isinstance(response, ChatCompletion)
    assert response.choices[0].message.content == "Hello!"
    stats = agent.get_stats()
    assert (stats["streams"], stats["prompt_tokens"], stats["completion_tokens"]) == (1, 4, 3)


async def test_unknown_response_fields_are_kept(agent: ChatAgent, server: FakeServer) -> None:
    body = completion("hi", extra={"timings": {"predicted_ms": 12.5}, "x_vendor": "yes"})
    body["choices"][0]["message"]["x_note"] = "kept"
    server.add_json(body)
    await agent.chat("hi")
    response = agent.last_response
    assert response is not None
    assert response.model_extra == {"timings": {"predicted_ms": 12.5}, "x_vendor": "yes"}
    assert response.choices[0].message.model_extra == {"x_note": "kept"}


def _llama_cpp_body() -> dict[str, Any]:
    """What llama.cpp's server sends: no ``refusal``, no ``logprobs``, extra ``timings``."""
    return {
        "choices": [
            {
                "finish_reason": "stop",
                "index": 0,
                "message": {"role": "assistant", "content": "Hi from llama"},
            }
        ],
        "created": 1700000000,
        "model": "llama",
        "object": "chat.completion",
        "usage": {"completion_tokens": 3, "prompt_tokens": 5, "total_tokens": 8},
        "id": "chatcmpl-abc",
        "timings": {"prompt_n": 5, "predicted_n": 3},
    }


async def test_lenient_parsing_accepts_a_llama_cpp_body(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_json(_llama_cpp_body())
    assert await agent.chat("hi") == "Hi from llama"
    assert agent.last_response is not None
    assert agent.last_response.model_extra == {"timings": {"prompt_n": 5, "predicted_n": 3}}


async def test_strict_parsing_names_the_missing_field(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    agent = await make_agent(strict_parsing=True)
    server.add_json(_llama_cpp_body())
    with pytest.raises(APIResponseError) as info:
        await agent.chat("hi")
    exc = info.value
    assert type(exc) is APIResponseError
    missing = {e["field"] for e in exc.details["errors"]}
    assert "choices.0.message.refusal" in missing
    assert exc.details["field"] in missing
    assert exc.details["field"] in exc.message
    assert agent.history == ()

    complete = _llama_cpp_body()
    complete["choices"][0]["logprobs"] = None
    complete["choices"][0]["message"]["refusal"] = None
    server.add_json(complete)
    assert await agent.chat("hi") == "Hi from llama"


async def test_strict_parsing_rejects_a_wrong_object_kind(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    agent = await make_agent(strict_parsing=True)
    body = _llama_cpp_body()
    body["choices"][0]["logprobs"] = None
    body["choices"][0]["message"]["refusal"] = None
    del body["id"]
    server.add_json(body)
    with pytest.raises(APIResponseError) as info:
        await agent.chat("hi")
    assert info.value.details["field"] == "id"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"message": "the server is overloaded", "type": "server_error"}, APIResponseError),
        ({"message": "too long", "code": "context_length_exceeded"}, TokenLimitError),
        ({"message": "no such model", "code": "model_not_found"}, ModelNotFoundError),
    ],
)
async def test_error_object_in_a_200_reply_is_a_typed_error(
    agent: ChatAgent, server: FakeServer, error: dict[str, Any], expected: type[Exception]
) -> None:
    server.add_json({"error": error})
    with pytest.raises(APIResponseError) as info:
        await agent.chat("hi")
    assert type(info.value) is expected
    assert error["message"] in info.value.message
    assert info.value.details["error_code"] == error.get("code")
    assert agent.history == ()


# ------------------------------------------------------------------ stats


async def test_stats_count_requests_tokens_and_latency(
    agent: ChatAgent, server: FakeServer
) -> None:
    fresh = agent.get_stats()
    assert (fresh["requests"], fresh["successes"], fresh["failures"], fresh["retries"]) == (
        0,
        0,
        0,
        0,
    )
    assert (fresh["average_latency"], fresh["last_latency"]) == (None, None)
    server.add_completion("a", usage=(10, 5)).add_completion("b", usage=(20, 7))
    server.add_json({"error": {"message": "x"}}, status=500)
    await agent.chat("one")
    await agent.chat("two")
    with pytest.raises(InternalServerError):
        await agent.chat("three")
    stats = agent.get_stats()
    assert (stats["requests"], stats["successes"], stats["failures"]) == (3, 2, 1)
    assert (stats["prompt_tokens"], stats["completion_tokens"], stats["total_tokens"]) == (
        30,
        12,
        42,
    )
    assert stats["total_latency"] >= 0
    assert stats["last_latency"] is not None and stats["last_latency"] >= 0
    assert stats["average_latency"] == pytest.approx(stats["total_latency"] / 2)


async def test_usage_without_total_is_summed(agent: ChatAgent, server: FakeServer) -> None:
    body = completion("a", usage=None)
    body["usage"] = {"prompt_tokens": 3, "completion_tokens": 4}
    server.add_json(body)
    await agent.chat("hi")
    assert agent.get_stats()["total_tokens"] == 7


async def test_reply_without_usage_counts_no_tokens(agent: ChatAgent, server: FakeServer) -> None:
    server.add_completion("a", usage=None)
    await agent.chat("hi")
    stats = agent.get_stats()
    assert (stats["successes"], stats["total_tokens"]) == (1, 0)


async def test_capture_token_usage_false(make_agent: AgentFactory, server: FakeServer) -> None:
    agent = await make_agent(capture_token_usage=False)
    server.add_completion("a", usage=(10, 5))
    await agent.chat("hi")
    stats = agent.get_stats()
    assert (stats["prompt_tokens"], stats["completion_tokens"], stats["total_tokens"]) == (0, 0, 0)
    assert stats["successes"] == 1
    assert stats["last_latency"] is not None


async def test_capture_latency_false(make_agent: AgentFactory, server: FakeServer) -> None:
    agent = await make_agent(capture_latency=False)
    server.add_completion("a", usage=(10, 5))
    await agent.chat("hi")
    stats = agent.get_stats()
    assert (stats["total_latency"], stats["last_latency"], stats["average_latency"]) == (
        0.0,
        None,
        None,
    )
    assert stats["total_tokens"] == 15


async def test_reset_stats(make_agent: AgentFactory, server: FakeServer) -> None:
    agent = await make_agent(max_retries=1, capture_latency=False)
    server.add_json({"error": {"message": "x"}}, status=503).add_completion("a")
    await agent.chat("hi")
    assert agent.get_stats()["retries"] == 1
    agent.reset_stats()
    stats = agent.get_stats()
    for name in ("requests", "successes", "failures", "retries", "total_tokens"):
        assert stats[name] == 0, name
    assert (stats["last_latency"], stats["average_latency"]) == (None, None)
    # Settings survive a reset.
    server.add_completion("b", usage=(1, 1))
    await agent.chat("again")
    assert agent.get_stats()["last_latency"] is None
    assert agent.get_stats()["total_tokens"] == 2


# ------------------------------------------------------------------ models


async def test_list_models(agent: ChatAgent, server: FakeServer) -> None:
    server.add_json(
        {
            "object": "list",
            "data": [
                {"id": "gpt-4o", "object": "model", "created": 1, "owned_by": "openai"},
                {"id": "local", "object": "model", "meta": {"n_ctx": 4096}},
            ],
        }
    )
    models = await agent.list_models()
    assert isinstance(models, ModelList)
    assert all(isinstance(m, Model) for m in models.data)
    assert [m.id for m in models.data] == ["gpt-4o", "local"]
    assert models.data[0].owned_by == "openai"
    assert models.data[1].model_extra == {"meta": {"n_ctx": 4096}}
    request = server.requests[0]
    assert (request.method, request.url.path, request.content) == ("GET", "/v1/models", b"")
    # The list is iterable as its models, with len() and indexing.
    assert [m.id for m in models] == ["gpt-4o", "local"]
    assert len(models) == 2 and models[1] is models.data[1]
    assert [m.id for m in models[:1]] == ["gpt-4o"]


@pytest.mark.parametrize("strict", [False, True])
async def test_an_empty_model_list_iterates_to_nothing(
    make_agent: AgentFactory, server: FakeServer, strict: bool
) -> None:
    agent = await make_agent(strict_parsing=strict)
    server.add_json({"object": "list", "data": []})
    models = await agent.list_models()
    assert list(models) == [] and len(models) == 0 and models.object == "list"


async def test_retrieve_model(agent: ChatAgent, server: FakeServer) -> None:
    server.add_json({"id": "gpt-4o", "object": "model", "created": 5, "owned_by": "openai"})
    model = await agent.retrieve_model("gpt-4o")
    assert isinstance(model, Model)
    assert (model.id, model.created, model.owned_by) == ("gpt-4o", 5, "openai")
    assert server.requests[0].url.path == "/v1/models/gpt-4o"


@pytest.mark.parametrize(
    ("model_id", "raw_path"),
    [
        ("meta-llama/Llama-3.1-8B", "/v1/models/meta-llama/Llama-3.1-8B"),
        ("llama3:8b", "/v1/models/llama3:8b"),
        ("a?b=c#d", "/v1/models/a%3Fb=c%23d"),
        ("50%", "/v1/models/50%25"),
        ("with space", "/v1/models/with%20space"),
    ],
)
async def test_a_model_id_stays_one_path_under_models(
    agent: ChatAgent, server: FakeServer, model_id: str, raw_path: str
) -> None:
    # An id with ?, # or % used to reach a query or another path of the server (key attached).
    server.add_json({"id": model_id, "object": "model", "created": 5, "owned_by": "x"})
    await agent.retrieve_model(model_id)
    assert server.requests[0].url.raw_path.decode() == raw_path


@pytest.mark.parametrize("model_id", ["../../admin", "a/../b", "./m", "a//b", "m/"])
async def test_a_model_id_with_dot_or_empty_segments_is_refused_before_sending(
    agent: ChatAgent, server: FakeServer, model_id: str
) -> None:
    with pytest.raises(ConfigurationError, match="path segment") as info:
        await agent.retrieve_model(model_id)
    assert info.value.details["field"] == "model_id"
    assert server.requests == []


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"message": "The model 'nope' does not exist", "code": "model_not_found"}},
        {"error": {"message": "Not Found"}},
        {"detail": "Not Found"},
    ],
)
async def test_missing_model_is_model_not_found(
    agent: ChatAgent, server: FakeServer, body: dict[str, Any]
) -> None:
    server.add_json(body, status=404)
    with pytest.raises(ModelNotFoundError) as info:
        await agent.retrieve_model("nope")
    assert info.value.details["status_code"] == 404


async def test_retrieve_model_needs_an_id(agent: ChatAgent, server: FakeServer) -> None:
    with pytest.raises(ConfigurationError):
        await agent.retrieve_model("")
    assert server.requests == []


async def test_list_models_strict_parsing(make_agent: AgentFactory, server: FakeServer) -> None:
    agent = await make_agent(strict_parsing=True)
    server.add_json({"object": "list", "data": [{"id": "local"}]})
    with pytest.raises(APIResponseError) as info:
        await agent.list_models()
    assert info.value.details["field"].startswith("data.0.")


# ------------------------------------------------------------------ persistence


async def test_save_and_load_history_round_trip(
    agent: ChatAgent, server: FakeServer, tmp_path: Path, make_agent: AgentFactory
) -> None:
    picture = tmp_path / "cat.png"
    picture.write_bytes(image_bytes("png"))
    agent.set_system_prompt("sys")
    agent.register_tool(lookup)
    server.add_completion(
        None, tool_calls=[tool_call("call_1", "lookup", {"q": "cats"})], finish_reason="tool_calls"
    )
    server.add_completion("Cats are great.", reasoning="thinking about cats")
    await agent.chat("Tell me about this", image_paths=str(picture))
    agent.add_message(
        ChatMessage(
            role="user",
            content=[
                TextPart(text="and this one"),
                ImagePart(source="https://example.com/dog.jpg", mime="image/jpeg", detail="low"),
            ],
        )
    )
    saved = agent.history
    roles = [m.role for m in saved]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]

    path = tmp_path / "conversation.json"
    agent.save_history(path)
    text = path.read_text()
    assert str(picture) in text and "https://example.com/dog.jpg" in text
    assert "base64" not in text  # media kept as references

    other = await make_agent()
    other.register_tool(lookup)
    other.load_history(path)
    assert other.history == saved
    assert other.history[2].tool_calls == [
        ToolCall.model_validate(tool_call("call_1", "lookup", {"q": "cats"}))
    ]
    assert other.history[4].reasoning_content == "thinking about cats"
    image = other.history[1].content
    assert isinstance(image, list) and isinstance(image[1], ImagePart)

    # The loaded conversation is sent like the original one.
    server.add_completion("ok").add_completion("ok")
    await agent.chat("next")
    await other.chat("next")
    assert server.requests[-1].content == server.requests[-2].content


@tool
def lookup(q: str) -> str:
    """Look something up."""
    return f"results for {q}"


BAD_FILES: dict[str, str] = {
    "not_json": "{this is not json",
    "a_list": "[1, 2, 3]",
    "foreign_format": json.dumps({"format": "something.else", "version": 1, "messages": []}),
    "no_format": json.dumps({"messages": [{"role": "user", "content": "x"}]}),
    "future_version": json.dumps(
        {"format": "openai_chatapi.history", "version": 99, "messages": []}
    ),
    "bad_role": json.dumps(
        {
            "format": "openai_chatapi.history",
            "version": 1,
            "messages": [{"role": "wizard", "content": "x"}],
        }
    ),
    "tool_without_id": json.dumps(
        {
            "format": "openai_chatapi.history",
            "version": 1,
            "messages": [{"role": "tool", "content": "x"}],
        }
    ),
    "messages_not_a_list": json.dumps(
        {"format": "openai_chatapi.history", "version": 1, "messages": "x"}
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
async def test_loading_a_bad_file_raises_and_changes_nothing(
    agent: ChatAgent, tmp_path: Path, kind: str
) -> None:
    agent.set_system_prompt("keep me")
    agent.add_message(ChatMessage(role="user", content="and me"))
    before = agent.history
    path = tmp_path / "bad.json"
    path.write_text(BAD_FILES[kind])
    with pytest.raises(ConfigurationError) as info:
        agent.load_history(path)
    assert info.value.details["path"] == str(path)
    assert agent.history == before


async def test_loading_a_missing_or_binary_file_raises(agent: ChatAgent, tmp_path: Path) -> None:
    agent.add_message(ChatMessage(role="user", content="stay"))
    with pytest.raises(ConfigurationError):
        agent.load_history(tmp_path / "missing.json")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigurationError):
        agent.load_history(binary)
    with pytest.raises(ConfigurationError):
        agent.load_history(tmp_path)  # a directory
    assert [m.text for m in agent.history] == ["stay"]


# ------------------------------------------------------------------ manual tool execution


async def test_manual_tool_execution(agent: ChatAgent, server: FakeServer) -> None:
    ran: list[str] = []

    @tool
    def get_time(city: str) -> str:
        """The local time in a city."""
        ran.append(city)
        return "12:00"

    agent.register_tool(get_time)
    server.add_completion(
        None,
        tool_calls=[
            tool_call("call_a", "get_time", {"city": "Rome"}),
            tool_call("call_b", "get_time", {"city": "Lima"}),
        ],
        finish_reason="tool_calls",
    )
    assert await agent.chat("Time in Rome and Lima?", auto_execute_tools=False) == ""
    assert ran == []
    pending = agent.pending_tool_calls
    assert [c.id for c in pending] == ["call_a", "call_b"]
    assert pending[0].function is not None and pending[0].function.name == "get_time"
    assert agent.history == ()  # the turn is not finished yet

    with pytest.raises(ConfigurationError) as info:
        await agent.submit_tool_results({"call_a": "13:00"})
    assert info.value.details["missing"] == ["call_b"]
    # An id no call has (a typo) was dropped without a word beside the right answers.
    with pytest.raises(ConfigurationError, match="'call_z'; pending: 'call_a', 'call_b'") as info:
        await agent.submit_tool_results({"call_z": "?", "call_a": "13:00", "call_b": "06:00"})
    assert info.value.details["unknown"] == ["call_z"]
    answer = {"tool_call_id": "call_a", "content": "13:00"}
    with pytest.raises(ConfigurationError, match="result 1 answers tool call 'call_a' a second"):
        await agent.submit_tool_results([answer, answer])
    assert len(server.requests) == 1
    assert [c.id for c in agent.pending_tool_calls] == ["call_a", "call_b"]

    server.add_completion("Rome 13:00, Lima 06:00.")
    reply = await agent.submit_tool_results({"call_a": "13:00", "call_b": "06:00"})
    assert reply == "Rome 13:00, Lima 06:00."
    assert ran == []
    assert agent.pending_tool_calls == []
    messages = server.last_body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assert messages[1]["content"] == ""
    assert [(m["tool_call_id"], m["content"]) for m in messages[2:]] == [
        ("call_a", "13:00"),
        ("call_b", "06:00"),
    ]
    assert [m.role for m in agent.history] == ["user", "assistant", "tool", "tool", "assistant"]


async def test_submit_without_pending_calls_is_an_error(agent: ChatAgent) -> None:
    with pytest.raises(ConfigurationError):
        await agent.submit_tool_results({"x": 1})


async def test_failed_submit_keeps_the_calls_pending(agent: ChatAgent, server: FakeServer) -> None:
    agent.register_tool(lookup)
    server.add_completion(
        None, tool_calls=[tool_call("c1", "lookup", {"q": "x"})], finish_reason="tool_calls"
    )
    await agent.chat("look", auto_execute_tools=False)
    server.add_json({"error": {"message": "down"}}, status=500)
    with pytest.raises(InternalServerError):
        await agent.submit_tool_results({"c1": "found"})
    assert [c.id for c in agent.pending_tool_calls] == ["c1"]
    assert agent.history == ()
    server.add_completion("done")
    assert await agent.submit_tool_results({"c1": "found"}) == "done"
    assert [m.role for m in agent.history] == ["user", "assistant", "tool", "assistant"]


# ------------------------------------------------------------------ lifecycle


async def test_agent_config_type_is_checked() -> None:
    with pytest.raises(ConfigurationError):
        ChatAgent(RuntimeConfig())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        ChatAgent(ModelConfig(), ModelConfig())  # type: ignore[arg-type]


async def test_context_manager_opens_and_closes(server: FakeServer) -> None:
    server.add_completion("hi")
    agent = ChatAgent(
        ModelConfig(api_base_url="http://fake.test/v1", model="m"),
        RuntimeConfig(enable_logging=False),
        http_transport=server.transport(),
    )
    async with agent as entered:
        assert entered is agent
        assert await agent.chat("hello") == "hi"
    with pytest.raises(ConfigurationError, match="this agent was closed"):
        await agent.chat("after close")
    assert len(server.requests) == 1


async def test_the_api_key_is_sent_even_when_the_url_carries_credentials(
    make_agent: Any, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    # httpx sends a URL's user:password as Basic auth, which used to replace the key silently.
    agent = await make_agent(api_base_url="http://user:pw-1234@fake.test/v1", enable_logging=True)
    server.add_completion("ok")
    with caplog.at_level(logging.WARNING, logger="openai_chatapi"):
        assert await agent.chat("hi") == "ok"
    sent = server.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.url.userinfo == b""
    assert "the key is sent (Authorization: Bearer)" in caplog.text
    assert "pw-1234" not in caplog.text


async def test_url_credentials_are_sent_as_basic_auth_without_a_key(
    make_agent: Any, server: FakeServer
) -> None:
    agent = await make_agent(api_base_url="http://user:pw-1234@fake.test/v1", api_key=None)
    server.add_completion("ok")
    assert await agent.chat("hi") == "ok"
    expected = "Basic " + base64.b64encode(b"user:pw-1234").decode()
    assert server.requests[-1].headers["authorization"] == expected
