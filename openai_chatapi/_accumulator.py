"""``StreamAccumulator``: stream chunks merged into the completion a non-streamed call returns.

Each chunk is merged into per-choice parts (text, reasoning, refusal, tool calls, logprobs)
and its events are returned; ``result()`` builds the ``ChatCompletion`` from the parts.
``add_plain`` is the fast path for the common one-choice text chunk, already checked by the
stream reader without model validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from . import _generated as gen
from ._events import (
    ContentDeltaEvent,
    ReasoningDeltaEvent,
    StreamEvent,
    ToolCallDeltaEvent,
    UsageEvent,
)
from ._parsing import validate_repaired, validation_error
from ._text import flush, join_delta, repaired

__all__ = ["StreamAccumulator"]


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
    refusal_logprobs: list[Any] = field(default_factory=list)
    has_logprobs: bool = False
    # A high surrogate that ended the last content/reasoning delta, waiting for its low half.
    content_carry: str = ""
    reasoning_carry: str = ""


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
                if text and (parts.content_carry or not text.isascii()):
                    text, parts.content_carry = join_delta(parts.content_carry, text)
                if text:
                    parts.content.append(text)
                    events.append(ContentDeltaEvent(text, index))
                # DeepSeek/vLLM name it reasoning_content; Groq, OpenRouter, Ollama: reasoning.
                reasoning = delta.reasoning_content or delta.reasoning
                if reasoning and (parts.reasoning_carry or not reasoning.isascii()):
                    reasoning, parts.reasoning_carry = join_delta(parts.reasoning_carry, reasoning)
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
                if choice.logprobs.refusal:
                    parts.refusal_logprobs.extend(choice.logprobs.refusal)
            if choice.finish_reason:
                parts.finish_reason = choice.finish_reason
                if index == 0 or self.finish_reason is None:
                    self.finish_reason = choice.finish_reason
                if parts.content_carry or parts.reasoning_carry:
                    events.extend(_flush_choice(parts, index))
        if chunk.usage is not None:
            self.usage = chunk.usage
            events.append(UsageEvent(chunk.usage))
        return events

    def add_plain(
        self, obj: dict[str, Any], role: str | None, text: str | None, finish: str | None
    ) -> ContentDeltaEvent | None:
        """Merge a one-choice text chunk already checked by ``_plain_content``."""
        self.chunks += 1
        if not self._header:
            self._header = {
                "id": obj.get("id"),
                "created": obj.get("created"),
                "model": obj.get("model"),
            }
        for key in ("system_fingerprint", "service_tier"):
            value = obj.get(key)
            if value is not None:
                self._header[key] = value
        parts = self._choices.get(0)
        if parts is None:
            parts = self._choices[0] = _ChoiceParts()
        if role:
            parts.role = role
        if text and (parts.content_carry or not text.isascii()):
            text, parts.content_carry = join_delta(parts.content_carry, text)
        if finish:
            parts.finish_reason = finish
            self.finish_reason = finish
            if parts.content_carry:
                text = (text or "") + flush(parts.content_carry)
                parts.content_carry = ""
        if text:
            parts.content.append(text)
            return ContentDeltaEvent(text, 0)
        return None

    def flush(self) -> list[StreamEvent]:
        """Events for surrogates still held back when the stream ends (each one U+FFFD)."""
        events: list[StreamEvent] = []
        for index, parts in self._choices.items():
            if parts.content_carry or parts.reasoning_carry:
                events.extend(_flush_choice(parts, index))
        return events

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    def complete(self, choices: int, usage: bool) -> bool:
        """Whether the reply is whole: ``choices`` choices have a finish reason and the
        usage that was asked for arrived (what follows is only ``[DONE]``). Without usage
        asked for it is never sure: servers may send usage after the finish reason anyway."""
        if self.finish_reason is None or not usage or self.usage is None:
            return False
        return self.all_finished(choices)

    def all_finished(self, choices: int) -> bool:
        """Whether ``choices`` choices have their finish reason."""
        if self.finish_reason is None:
            return False
        return sum(1 for parts in self._choices.values() if parts.finish_reason) >= choices

    @property
    def has_choices(self) -> bool:
        """Whether any chunk carried a choice (a stream without one has no reply at all)."""
        return bool(self._choices)

    def result(self) -> gen.ChatCompletion:
        """The merged completion (valid at any point; complete once the stream ended)."""
        choices: list[dict[str, Any]] = []
        for index in sorted(self._choices) or [0]:
            parts = self._choices.get(index) or _ChoiceParts()
            content = parts.content
            if parts.content_carry:
                content = [*content, flush(parts.content_carry)]
            message: dict[str, Any] = {
                "role": parts.role or "assistant",
                "content": "".join(content) if content else None,
            }
            if parts.reasoning or parts.reasoning_carry:
                message["reasoning_content"] = "".join(parts.reasoning) + flush(
                    parts.reasoning_carry
                )
            if parts.refusal:
                message["refusal"] = repaired("".join(parts.refusal))
            if parts.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": repaired(call.id) if call.id else call.id,
                        "type": call.type or "function",
                        "function": {
                            "name": repaired(call.name),
                            "arguments": repaired("".join(call.arguments)),
                        },
                    }
                    for _, call in sorted(parts.tool_calls.items())
                ]
            choice: dict[str, Any] = {
                "index": index,
                "message": message,
                "finish_reason": parts.finish_reason,
            }
            if parts.has_logprobs:
                choice["logprobs"] = {
                    "content": parts.logprobs or None,
                    "refusal": parts.refusal_logprobs or None,
                }
            choices.append(choice)
        data = {**self._header, "object": "chat.completion", "choices": choices}
        if self.usage is not None:
            data["usage"] = self.usage
        try:
            return gen.ChatCompletion.model_validate(data)
        except ValidationError as exc:
            # Header fields of plain chunks are not validated one by one (strict parsing
            # validated each chunk already): convert or drop cosmetic ones now.
            fixed = validate_repaired(gen.ChatCompletion, data, strict=False)
            if fixed is not None:
                return fixed
            failure = validation_error("streamed completion", exc, str(self._header))
        raise failure  # outside the handler: no context quoting the raw data rides along


def _flush_choice(parts: _ChoiceParts, index: int) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    if parts.content_carry:
        text = flush(parts.content_carry)
        parts.content_carry = ""
        parts.content.append(text)
        events.append(ContentDeltaEvent(text, index))
    if parts.reasoning_carry:
        text = flush(parts.reasoning_carry)
        parts.reasoning_carry = ""
        parts.reasoning.append(text)
        events.append(ReasoningDeltaEvent(text, index))
    return events


def _merge_tool_call(parts: _ChoiceParts, call: gen.ToolCallDelta, choice: int) -> StreamEvent:
    index = call.index
    if index is None:
        # Some servers omit the index: a new id starts a new call, fragments join the last.
        latest = max(parts.tool_calls, default=None)
        index = latest if latest is not None else 0
        if latest is not None and call.id and call.id != parts.tool_calls[latest].id:
            index = latest + 1
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
