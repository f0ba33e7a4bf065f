"""The typed events of a stream: what ``chat_stream_events`` yields.

Small immutable records, one per kind of news a streamed call brings; ``StreamEvent`` is
their union (tell them apart with ``type(event) is ContentDeltaEvent`` or ``match``). The
stream reader (``_streaming``) and the accumulator (``_accumulator``) make them; the turn
runner adds ``ToolResultEvent`` and ``FinishEvent``.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _generated as gen

__all__ = [
    "ContentDeltaEvent",
    "FinishEvent",
    "ReasoningDeltaEvent",
    "StreamEvent",
    "ToolCallDeltaEvent",
    "ToolResultEvent",
    "UsageEvent",
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
