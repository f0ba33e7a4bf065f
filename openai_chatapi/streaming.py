"""The stream reader: SSE events → chunk models → typed events, merged into one completion.

``read_stream`` is the hot path of the package: per chunk it decodes SSE, validates the JSON
into the generated chunk model, updates a ``StreamAccumulator`` and yields typed events.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from . import _generated as gen
from .errors import APIConnectionError, APIResponseError, APITimeoutError, error_from_payload
from .parsing import validation_error
from .sse import DONE, SSEDecoder

__all__ = [
    "ContentDeltaEvent",
    "FinishEvent",
    "ReasoningDeltaEvent",
    "StreamAccumulator",
    "StreamEvent",
    "ToolCallDeltaEvent",
    "ToolResultEvent",
    "UsageEvent",
    "read_stream",
]


@dataclass(frozen=True, slots=True)
class ContentDeltaEvent:
    """A piece of the reply's text."""

    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ReasoningDeltaEvent:
    """A piece of the model's reasoning (``reasoning_content`` of DeepSeek/Qwen/vLLM servers)."""

    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ToolCallDeltaEvent:
    """A fragment of a tool call: its id and name arrive first, then argument fragments."""

    index: int
    id: str | None
    name: str | None
    arguments: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """Token usage of the streamed call (the final usage chunk)."""

    usage: gen.Usage


@dataclass(frozen=True, slots=True)
class FinishEvent:
    """One model turn ended; ``response`` is the merged completion of that turn."""

    finish_reason: str | None
    response: gen.ChatCompletion


@dataclass(frozen=True, slots=True)
class ToolResultEvent:
    """A tool requested by the model was run (automatic tool execution)."""

    tool_call_id: str
    name: str
    content: str
    ok: bool
    error: str | None = None


StreamEvent = (
    ContentDeltaEvent
    | ReasoningDeltaEvent
    | ToolCallDeltaEvent
    | UsageEvent
    | FinishEvent
    | ToolResultEvent
)


@dataclass(slots=True)
class _ToolCallParts:
    id: str | None = None
    type: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _ChoiceParts:
    role: str | None = None
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tool_calls: dict[int, _ToolCallParts] = field(default_factory=dict)
    finish_reason: str | None = None
    logprobs: list[Any] = field(default_factory=list)
    has_logprobs: bool = False


class StreamAccumulator:
    """Merges chunks into one completion equal in content to the non-streamed answer."""

    __slots__ = ("_choices", "_header", "chunks", "finish_reason", "usage")

    def __init__(self) -> None:
        self._choices: dict[int, _ChoiceParts] = {}
        self._header: dict[str, Any] = {}
        self.usage: gen.Usage | None = None
        self.chunks = 0
        self.finish_reason: str | None = None

    def add(self, chunk: gen.ChatCompletionChunk) -> list[StreamEvent]:
        """Merge one chunk; return the events it carries."""
        self.chunks += 1
        if not self._header:
            self._header = {
                "id": chunk.id,
                "created": chunk.created,
                "model": chunk.model,
            }
        for key in ("system_fingerprint", "service_tier"):
            value = getattr(chunk, key, None)
            if value is not None:
                self._header[key] = value
        events: list[StreamEvent] = []
        for choice in chunk.choices:
            index = choice.index or 0
            parts = self._choices.get(index)
            if parts is None:
                parts = self._choices[index] = _ChoiceParts()
            delta = choice.delta
            if delta is not None:
                if delta.role:
                    parts.role = delta.role
                text = delta.content
                if text:
                    parts.content.append(text)
                    events.append(ContentDeltaEvent(text, index))
                reasoning = delta.reasoning_content
                if reasoning:
                    parts.reasoning.append(reasoning)
                    events.append(ReasoningDeltaEvent(reasoning, index))
                if delta.refusal:
                    parts.refusal.append(delta.refusal)
                if delta.tool_calls:
                    for call in delta.tool_calls:
                        events.append(_merge_tool_call(parts, call, index))
            if choice.logprobs is not None:
                parts.has_logprobs = True
                if choice.logprobs.content:
                    parts.logprobs.extend(choice.logprobs.content)
            if choice.finish_reason:
                parts.finish_reason = choice.finish_reason
                if index == 0 or self.finish_reason is None:
                    self.finish_reason = choice.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage
            events.append(UsageEvent(chunk.usage))
        return events

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    def result(self) -> gen.ChatCompletion:
        """The merged completion (valid at any point; complete once the stream ended)."""
        choices: list[dict[str, Any]] = []
        for index in sorted(self._choices) or [0]:
            parts = self._choices.get(index) or _ChoiceParts()
            message: dict[str, Any] = {
                "role": parts.role or "assistant",
                "content": "".join(parts.content) if parts.content else None,
            }
            if parts.reasoning:
                message["reasoning_content"] = "".join(parts.reasoning)
            if parts.refusal:
                message["refusal"] = "".join(parts.refusal)
            if parts.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": call.type or "function",
                        "function": {"name": call.name, "arguments": "".join(call.arguments)},
                    }
                    for _, call in sorted(parts.tool_calls.items())
                ]
            choice: dict[str, Any] = {
                "index": index,
                "message": message,
                "finish_reason": parts.finish_reason,
            }
            if parts.has_logprobs:
                choice["logprobs"] = {"content": parts.logprobs}
            choices.append(choice)
        data = {**self._header, "object": "chat.completion", "choices": choices}
        if self.usage is not None:
            data["usage"] = self.usage
        return gen.ChatCompletion.model_validate(data)


def _merge_tool_call(parts: _ChoiceParts, call: gen.ToolCallDelta, choice: int) -> StreamEvent:
    index = call.index or 0
    slot = parts.tool_calls.get(index)
    if slot is None:
        slot = parts.tool_calls[index] = _ToolCallParts()
    if call.id and not slot.id:
        slot.id = call.id
    if call.type:
        slot.type = call.type
    name: str | None = None
    arguments = ""
    function = call.function
    if function is not None:
        name = function.name
        # Some servers (llama.cpp) repeat the whole name in every delta: never double it.
        if name and name != slot.name:
            slot.name = name if not slot.name or name.startswith(slot.name) else slot.name + name
        if function.arguments:
            arguments = function.arguments
            slot.arguments.append(arguments)
    return ToolCallDeltaEvent(index, call.id, name, arguments, choice)


def parse_chunk(data: str, *, strict: bool) -> gen.ChatCompletionChunk:
    """One ``data:`` payload as a chunk model; an error object raises its typed exception."""
    try:
        if strict:
            gen.StrictChatCompletionChunk.model_validate_json(data, strict=True)
        chunk = gen.ChatCompletionChunk.model_validate_json(data)
    except ValidationError as exc:
        payload = _maybe_error(data)
        if payload is not None:
            raise error_from_payload(payload, body=data[:2000]) from None
        raise validation_error("stream chunk", exc, data) from None
    extra = chunk.__pydantic_extra__
    if extra and "error" in extra and extra["error"]:
        raise error_from_payload({"error": extra["error"]}, body=data[:2000])
    return chunk


def _maybe_error(data: str) -> Any:
    try:
        payload = json.loads(data)
    except ValueError:
        return None
    if isinstance(payload, dict) and "error" in payload:
        return payload
    return None


def _stream_error(event_data: str) -> APIResponseError:
    payload = _maybe_error(event_data)
    if payload is None:
        payload = {"error": {"message": event_data or "error event in stream"}}
    return error_from_payload(payload, body=event_data[:2000])


async def read_stream(
    response: httpx.Response,
    accumulator: StreamAccumulator,
    *,
    strict: bool,
) -> AsyncGenerator[StreamEvent, None]:
    """Yield typed events from an open SSE response until ``[DONE]`` or the end of the body.

    A body that ends without ``[DONE]`` and without a finish reason is truncated: it raises
    ``APIResponseError``. Network failures mid-stream raise ``APIConnectionError``.
    """
    decoder = SSEDecoder()
    done = False
    add = accumulator.add
    try:
        async for raw in response.aiter_bytes():
            for sse in decoder.feed(raw):
                data = sse.data
                if sse.event == "error":
                    raise _stream_error(data)
                if data == DONE:
                    done = True
                    break
                if not data:
                    continue
                for event in add(parse_chunk(data, strict=strict)):
                    yield event
            if done:
                break
        if not done:
            for sse in decoder.flush():
                if sse.event == "error":
                    raise _stream_error(sse.data)
                if sse.data == DONE:
                    done = True
                elif sse.data:
                    for event in add(parse_chunk(sse.data, strict=strict)):
                        yield event
    except httpx.TimeoutException as exc:
        raise APITimeoutError(
            f"stream timed out ({type(exc).__name__}) after {accumulator.chunks} chunks",
            {"error": type(exc).__name__, "chunks": accumulator.chunks},
        ) from None
    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise APIConnectionError(
            f"stream interrupted ({type(exc).__name__}) after {accumulator.chunks} chunks",
            {"error": type(exc).__name__, "chunks": accumulator.chunks},
        ) from None
    if not done and not accumulator.finished:
        raise APIResponseError(
            f"stream truncated: it ended after {accumulator.chunks} chunks without [DONE] "
            "or a finish reason",
            {"chunks": accumulator.chunks, "truncated": True},
        )
