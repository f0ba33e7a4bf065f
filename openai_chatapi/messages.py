"""``ChatMessage``: one entry of the conversation history, as users see and build it.

History keeps references to media (``ImagePart``/``VideoPart``), never their base64; the
request builder encodes them at send time.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from ._generated import FunctionCall, ToolCall
from .parts import ImagePart, VideoPart

__all__ = [
    "ChatMessage",
    "ContentPart",
    "Role",
    "TextPart",
    "call_to_wire",
    "complete_call",
    "text_of",
]

Role = Literal["system", "developer", "user", "assistant", "tool"]


class TextPart(BaseModel):
    """A text content part."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["text"] = "text"
    text: str


ContentPart = TextPart | ImagePart | VideoPart


class ChatMessage(BaseModel):
    """A message of the conversation: who said it and what.

    ``content`` is a string, or a list of parts (text, images, videos) for user messages.
    Assistant messages may carry ``tool_calls``; tool messages answer one call and carry its
    ``tool_call_id``. ``reasoning_content`` holds a reasoning model's thinking, kept for the
    record and never sent back to the server.
    """

    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None

    @model_validator(mode="after")
    def _check_role_fields(self) -> ChatMessage:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if (
            isinstance(self.content, list)
            and self.role not in ("user", "system", "developer")
            and any(not isinstance(part, TextPart) for part in self.content)
        ):
            raise ValueError(f"{self.role} messages cannot carry media")
        return self

    @property
    def text(self) -> str:
        """The message's text (text parts joined; media left out)."""
        return text_of(self.content)

    @property
    def has_media(self) -> bool:
        return isinstance(self.content, list) and any(
            not isinstance(part, TextPart) for part in self.content
        )

    def without_media(self) -> ChatMessage:
        """A copy with media parts replaced by a short note (to save tokens in later turns)."""
        if not isinstance(self.content, list) or not self.has_media:
            return self
        parts: list[ContentPart] = []
        for part in self.content:
            if isinstance(part, TextPart):
                parts.append(part)
            else:
                parts.append(TextPart(text=f"[{part.type} omitted from history]"))
        return self.model_copy(update={"content": parts})

    @classmethod
    def assistant_tool_calls(cls, content: str | None, calls: list[ToolCall]) -> ChatMessage:
        """An assistant message requesting ``calls``, completed where a server left gaps."""
        return cls(
            role="assistant",
            content=content,
            tool_calls=[complete_call(call, i) for i, call in enumerate(calls)],
        )


def complete_call(call: ToolCall, position: int) -> ToolCall:
    """A tool call with an id, a type, a name and arguments (lenient servers omit some)."""
    function = call.function
    name = (function.name if function is not None else None) or ""
    arguments = (function.arguments if function is not None else None) or "{}"
    return ToolCall(
        id=call.id or f"call_{position}_{name}",
        type="function",
        function=FunctionCall(name=name, arguments=arguments),
    )


def call_to_wire(call: ToolCall) -> dict[str, Any]:
    """A tool call as the request's ``tool_calls`` entry (and as the tool registry reads it)."""
    function = call.function
    return {
        "id": call.id,
        "type": "function",
        "function": {
            "name": function.name if function is not None else "",
            "arguments": function.arguments if function is not None else "{}",
        },
    }


def text_of(content: str | list[ContentPart] | None) -> str:
    """The text of a message content, media left out."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content if isinstance(part, TextPart))
