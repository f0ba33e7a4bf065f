"""The schema → generated models pipeline, and the schema's conformance to the official spec."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import ValidationError

from openai_chatapi import _generated as g

from ..support.repo_scripts import REPO, UPSTREAM

SCHEMA = REPO / "schema" / "chat_completions.schema.json"
GENERATED = REPO / "openai_chatapi" / "_generated.py"


def _schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return data


def _generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "generate_models.py"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


# --- generation -------------------------------------------------------------------------


def test_committed_module_matches_a_fresh_generation() -> None:
    result = _generate("--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_reports_a_module_made_from_another_schema(tmp_path: Path) -> None:
    schema = _schema()
    schema["$defs"]["Usage"]["properties"]["cost_cents"] = {"type": "integer"}
    changed = tmp_path / "changed.schema.json"
    changed.write_text(json.dumps(schema), encoding="utf-8")
    stale = tmp_path / "stale.py"
    stale.write_text(GENERATED.read_text(encoding="utf-8"), encoding="utf-8")

    result = _generate("--check", "--schema", str(changed), "--output", str(stale))

    assert result.returncode == 1
    assert "stale" in result.stdout
    assert "cost_cents" in result.stdout


def test_module_is_headed_as_generated_and_carries_the_schema_version() -> None:
    first_line = GENERATED.read_text(encoding="utf-8").splitlines()[0]
    assert "generated from schema/chat_completions.schema.json" in first_line
    assert "scripts/generate_models.py" in first_line
    assert "do not edit" in first_line
    assert _schema()["x-schema-version"] == g.SCHEMA_VERSION


@pytest.mark.parametrize(
    "name",
    [
        "ChatCompletionRequest", "StreamOptions", "SystemMessage", "DeveloperMessage",
        "UserMessage", "AssistantMessage", "ToolMessage", "TextPart", "ImageUrlPart", "ImageUrl",
        "InputAudioPart", "FilePart", "VideoUrlPart", "VideoUrl", "RefusalPart", "ToolDefinition",
        "FunctionDefinition", "NamedToolChoice", "ResponseFormatText", "ResponseFormatJsonObject",
        "ResponseFormatJsonSchema", "JsonSchemaFormat", "ChatCompletion", "Choice",
        "ResponseMessage", "ToolCall", "FunctionCall", "Usage", "ChoiceLogprobs", "TokenLogprob",
        "TopLogprob", "ChatCompletionChunk", "ChunkChoice", "ChunkDelta", "ToolCallDelta",
        "FunctionCallDelta", "Model", "ModelList", "ErrorResponse", "ErrorObject",
        "StrictChatCompletion", "StrictChatCompletionChunk", "StrictModel", "StrictModelList",
        "StrictErrorResponse", "StrictToolCall", "StrictUsage",
    ],
)  # fmt: skip
def test_contracted_class_names_exist(name: str) -> None:
    assert isinstance(getattr(g, name), type)


# --- lenient and strict response models -------------------------------------------------

SPARSE_COMPLETION: dict[str, Any] = {
    "model": "local",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hi", "reasoning_content": "thinking"},
            "finish_reason": "stop",
        }
    ],
    "timings": {"predicted_ms": 12.5},
}


def test_lenient_completion_tolerates_missing_fields_and_keeps_unknown_ones() -> None:
    completion = g.ChatCompletion.model_validate(SPARSE_COMPLETION)

    assert completion.id is None and completion.created is None and completion.usage is None
    assert completion.choices[0].message is not None
    assert completion.choices[0].message.content == "hi"
    assert completion.choices[0].message.reasoning_content == "thinking"
    assert completion.model_extra == {"timings": {"predicted_ms": 12.5}}


def test_lenient_models_accept_values_outside_the_openai_enums() -> None:
    body: dict[str, Any] = copy.deepcopy(SPARSE_COMPLETION)
    body["choices"][0]["finish_reason"] = "eos"
    body["object"] = "text_completion"

    completion = g.ChatCompletion.model_validate(body)

    assert completion.choices[0].finish_reason == "eos"


def test_lenient_lists_default_to_empty() -> None:
    assert g.ChatCompletion.model_validate({}).choices == []
    assert g.ModelList.model_validate({}).data == []


def test_strict_twin_rejects_missing_fields_and_names_them() -> None:
    with pytest.raises(ValidationError) as caught:
        g.StrictChatCompletion.model_validate(SPARSE_COMPLETION)

    missing = {err["loc"] for err in caught.value.errors() if err["type"] == "missing"}
    assert {("id",), ("object",), ("created",)} <= missing
    # nested: OpenAI requires refusal on every message; logprobs is optional here because
    # OpenAI's own newer models omit it (schema 1.1.0)
    assert ("choices", 0, "message", "refusal") in missing
    assert ("choices", 0, "logprobs") not in missing


def test_strict_twin_accepts_a_complete_openai_answer() -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        "service_tier": "default",
    }
    completion = g.StrictChatCompletion.model_validate(body)
    assert completion.usage is not None and completion.usage.total_tokens == 4


def test_strict_twin_rejects_an_enum_value_openai_lacks() -> None:
    with pytest.raises(ValidationError) as caught:
        g.StrictChoice.model_validate(
            {"index": 0, "message": {}, "finish_reason": "eos", "logprobs": None}
        )
    assert ("finish_reason",) in {err["loc"] for err in caught.value.errors()}


LLAMA_CPP_CHUNK = (
    b'{"choices":[{"finish_reason":null,"index":0,"delta":{"role":null,"content":null,'
    b'"tool_calls":null,"reasoning_content":"hm"}}],"created":1,"id":"c1","model":"m",'
    b'"system_fingerprint":null,"object":"chat.completion.chunk","usage":null}'
)


def test_chunk_with_explicit_nulls_parses() -> None:
    chunk = g.ChatCompletionChunk.model_validate_json(LLAMA_CPP_CHUNK)

    choice = chunk.choices[0]
    assert choice.finish_reason is None
    assert choice.delta is not None
    assert choice.delta.role is None and choice.delta.tool_calls is None
    assert choice.delta.reasoning_content == "hm"


def test_strict_chunk_requires_finish_reason_but_allows_it_to_be_null() -> None:
    strict = g.StrictChatCompletionChunk.model_validate_json(
        b'{"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}'
    )
    assert strict.choices[0].finish_reason is None
    with pytest.raises(ValidationError) as caught:
        g.StrictChunkChoice.model_validate({"index": 0, "delta": {}})
    assert ("finish_reason",) in {err["loc"] for err in caught.value.errors()}


def test_usage_chunk_and_partial_tool_call_deltas_parse() -> None:
    usage_chunk = g.ChatCompletionChunk.model_validate(
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
    )
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None and usage_chunk.usage.total_tokens == 7

    delta = g.ChunkDelta.model_validate(
        {"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]}
    )
    assert delta.tool_calls is not None
    call = delta.tool_calls[0]
    assert call.id is None and call.type is None
    assert call.function is not None and call.function.arguments == "{"


# --- request models ---------------------------------------------------------------------


def test_request_dump_leaves_out_unset_fields_and_keeps_content_parts() -> None:
    request = g.ChatCompletionRequest(
        model="m",
        messages=[
            g.SystemMessage(role="system", content="be brief"),
            g.UserMessage(
                role="user",
                content=[
                    g.TextPart(type="text", text="what is this?"),
                    g.ImageUrlPart(
                        type="image_url", image_url=g.ImageUrl(url="data:,", detail="low")
                    ),
                    g.VideoUrlPart(type="video_url", video_url=g.VideoUrl(url="data:,")),
                ],
            ),
        ],
        stop=["END"],
    )

    assert request.model_dump(mode="json", exclude_unset=True, by_alias=True) == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:,", "detail": "low"}},
                    {"type": "video_url", "video_url": {"url": "data:,"}},
                ],
            },
        ],
        "stop": ["END"],
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"temperature": 2.5},
        {"top_p": -0.1},
        {"n": 0},
        {"top_logprobs": 21},
        {"reasoning_effort": "extreme"},
        {"stop": []},
        {"messages": []},
    ],
)
def test_request_rejects_values_outside_the_schema(overrides: dict[str, Any]) -> None:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(ValidationError):
        g.ChatCompletionRequest.model_validate({**body, **overrides})


def test_json_schema_format_dumps_its_schema_under_the_wire_name() -> None:
    fmt = g.JsonSchemaFormat.model_validate({"name": "answer", "schema": {"type": "object"}})
    assert fmt.model_dump(exclude_unset=True, by_alias=True) == {
        "name": "answer",
        "schema": {"type": "object"},
    }


# --- conformance with the official spec -------------------------------------------------

needs_upstream = pytest.mark.skipif(
    not UPSTREAM.is_file(), reason=f"official OpenAPI spec not found at {UPSTREAM}"
)


@needs_upstream
def test_check_schema_passes_on_our_schema(check_schema: ModuleType, capsys: Any) -> None:
    assert check_schema.main([str(UPSTREAM)]) == 0
    assert "properties checked" in capsys.readouterr().out


def _set_type(defs: dict[str, Any]) -> None:
    defs["Usage"]["properties"]["prompt_tokens"]["type"] = "string"


def _add_bogus(defs: dict[str, Any]) -> None:
    defs["ChatCompletionRequest"]["properties"]["bogus_knob"] = {"type": "boolean"}


def _widen_enum(defs: dict[str, Any]) -> None:
    defs["Choice"]["properties"]["finish_reason"]["enum"].append("eos")


def _unmark_extension(defs: dict[str, Any]) -> None:
    del defs["ChunkDelta"]["properties"]["reasoning_content"]["x-extension"]


def _require_optional(defs: dict[str, Any]) -> None:
    defs["ToolCallDelta"]["required"] = ["index", "id"]


def _widen_range(defs: dict[str, Any]) -> None:
    defs["ChatCompletionRequest"]["properties"]["presence_penalty"]["maximum"] = 5


@needs_upstream
@pytest.mark.parametrize(
    ("mutate", "where", "problem"),
    [
        (_set_type, "usage.prompt_tokens", "type not allowed"),
        (_add_bogus, "ChatCompletionRequest.bogus_knob", "missing upstream"),
        (_widen_enum, "choices[].finish_reason", "enum values missing"),
        (_unmark_extension, "delta.reasoning_content", "missing upstream"),
        (_require_optional, "tool_calls[]", "required here"),
        (_widen_range, "presence_penalty", "maximum above"),
    ],
)
def test_check_schema_detects_mutations(
    check_schema: ModuleType, upstream: dict[str, Any], mutate: Any, where: str, problem: str
) -> None:
    schema = _schema()
    mutate(schema["$defs"])

    result = check_schema.check(schema, upstream)

    assert any(where in m.where and problem in m.problem for m in result.mismatches), (
        check_schema.format_table(result.mismatches)
    )


@needs_upstream
def test_check_schema_exits_non_zero_with_a_table(
    check_schema: ModuleType, tmp_path: Path, capsys: Any
) -> None:
    schema = _schema()
    _add_bogus(schema["$defs"])
    mutated = tmp_path / "mutated.schema.json"
    mutated.write_text(json.dumps(schema), encoding="utf-8")

    assert check_schema.main([str(UPSTREAM), "--schema", str(mutated)]) == 1
    out = capsys.readouterr().out
    assert "where" in out and "bogus_knob" in out
