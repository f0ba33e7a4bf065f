"""The chat methods' parameters: one positional prefix, everything else keyword-only, and the
call arguments split from the model-config overrides in one place."""

from __future__ import annotations

import inspect

import pytest

from openai_chatapi import ChatAgent, ConfigurationError
from openai_chatapi._call_args import (
    CHAT_KEYS,
    STREAM_STRUCTURED_KEYS,
    STRUCTURED_CHAT_KEYS,
    split_call_args,
)

PREFIX = ["text", "image_paths", "video_paths", "add_to_history"]
POSITIONAL = (inspect.Parameter.POSITIONAL_OR_KEYWORD,)


def _positional(method: object) -> list[str]:
    params = list(inspect.signature(method).parameters.values())  # type: ignore[arg-type]
    return [p.name for p in params if p.kind in POSITIONAL and p.name != "self"]


@pytest.mark.parametrize(
    ("name", "positional"),
    [
        ("chat", [*PREFIX, "auto_execute_tools"]),
        ("chat_stream_events", [*PREFIX, "auto_execute_tools"]),
        ("chat_stream", [*PREFIX, "display_stream"]),
        ("chat_stream_structured", PREFIX),
    ],
)
def test_shared_positional_prefix_and_keyword_only_rest(name: str, positional: list[str]) -> None:
    method = getattr(ChatAgent, name)
    assert _positional(method) == positional
    rest = [
        p
        for p in inspect.signature(method).parameters.values()
        if p.name != "self" and p.kind not in POSITIONAL
    ]
    assert all(
        p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD) for p in rest
    )
    assert rest and rest[-1].kind is inspect.Parameter.VAR_KEYWORD


def test_chat_stream_takes_auto_execute_tools_by_keyword_only() -> None:
    params = inspect.signature(ChatAgent.chat_stream).parameters
    assert params["auto_execute_tools"].kind is inspect.Parameter.KEYWORD_ONLY


def test_the_key_sets_of_each_method() -> None:
    turn = {"tools", "tool_choice", "audio_paths", "file_paths"}
    assert turn | {"parallel_tool_calls"} == CHAT_KEYS
    assert turn | {"parallel_tool_calls", "output_mode", "max_output_retries"} == (
        STRUCTURED_CHAT_KEYS
    )
    assert turn | {"output_mode", "max_output_retries"} == STREAM_STRUCTURED_KEYS


def test_split_sends_call_arguments_one_way_and_the_rest_to_overrides() -> None:
    args, overrides = split_call_args(
        {"tools": [], "temperature": 0.5, "output_mode": "json", "bogus": 1}, CHAT_KEYS
    )
    assert args == {"tools": []}
    assert overrides == {"temperature": 0.5, "output_mode": "json", "bogus": 1}
    assert split_call_args({}, CHAT_KEYS) == ({}, {})


async def test_unknown_and_misplaced_keywords_are_configuration_errors() -> None:
    agent = ChatAgent()
    with pytest.raises(ConfigurationError, match=r"unknown call option.*bogus"):
        await agent.chat("hi", bogus=1)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match=r"unknown call option.*output_mode"):
        async for _ in agent.chat_stream_events("hi", output_mode="json"):  # type: ignore[call-arg]
            pass
    with pytest.raises(ConfigurationError, match=r"unknown call option.*parallel_tool_calls"):
        agent.chat_stream_structured(
            "hi",
            response_format=dict,
            parallel_tool_calls=True,  # type: ignore[call-arg]
        )
