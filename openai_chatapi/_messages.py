"""``ChatMessage``: one entry of the conversation history, as users see and build it.

History keeps references to media (``ImagePart``/``VideoPart``/``AudioPart``/``FilePart``),
never their base64; the request builder encodes them at send time. A message in the
official wire format (a dict from the ``openai`` SDK, a stored conversation, a response
message) validates into a ``ChatMessage`` as it is: see :class:`ChatMessage`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

from ._generated import FunctionCall, ToolCall
from ._parts import WIRE_PART_TYPES, AudioPart, FilePart, ImagePart, VideoPart, part_from_wire

if TYPE_CHECKING:
    from .media import MediaSettings

__all__ = [
    "ChatMessage",
    "ContentPart",
    "RefusalPart",
    "Role",
    "TextPart",
    "call_to_wire",
    "complete_call",
    "text_of",
]

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class TextPart(BaseModel):
    """A text content part (its wire form; keys the wire format does not define are not kept)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["text"] = "text"
    text: str
    prompt_cache_breakpoint: dict[str, Any] | None = None
    """Sent as the part's ``prompt_cache_breakpoint`` (e.g. ``{"mode": "explicit"}``)."""


class RefusalPart(BaseModel):
    """A refusal part of an assistant message's content (as the wire format has it)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["refusal"] = "refusal"
    refusal: str


ContentPart = TextPart | RefusalPart | ImagePart | VideoPart | AudioPart | FilePart
_TEXTUAL = (TextPart, RefusalPart)


def _content_from_wire(value: Any) -> Any:
    """Wire content parts (``image_url``, ``input_audio``, ...) as media references."""
    if not isinstance(value, list):
        return value
    parts: list[Any] = []
    for part in value:
        if isinstance(part, Mapping):
            kind = part.get("type")
            if kind in WIRE_PART_TYPES and (
                kind != "file" or isinstance(part.get("file"), Mapping)
            ):
                part = part_from_wire(dict(part))
        parts.append(part)
    return parts


class ChatMessage(BaseModel):
    """A message of the conversation: who said it and what.

    ``content`` is a string, or a list of parts: text, images, videos, audio and files for
    user messages, text and refusals for assistant messages. Assistant messages may carry
    ``tool_calls`` (or the legacy ``function_call``); tool messages answer one call and
    carry its ``tool_call_id``; legacy ``function`` messages carry the function's ``name``.

    Any message of the official wire format validates as it is (``ChatMessage(**d)``,
    ``model_validate(d)``): content parts in wire form (``image_url`` with ``detail``,
    ``video_url``, ``input_audio``, ``file``, ``refusal``) become the part references above,
    keeping their URL, ``data:`` URL or base64 exactly as given. Fields only responses carry
    are kept and never fatal: ``refusal`` and ``audio`` are sent back when set (``audio`` as
    its ``id``), ``annotations`` and the reasoning (``reasoning_content``, or ``reasoning``
    as Groq, Ollama and OpenRouter call it) are kept for the record and never sent; any
    other key is kept on the message (``model_extra``) and not sent. So are fields the wire
    format does not allow on the role: ``tool_call_id`` except on tool messages,
    ``refusal`` and ``audio`` except on assistant messages.
    """

    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    function_call: FunctionCall | None = None
    """The legacy (pre-``tool_calls``) call of an assistant message; sent back as it is."""
    refusal: str | None = None
    audio: dict[str, Any] | None = None
    """An assistant's audio answer (``id``, ``data``, ``transcript``...); its ``id`` is sent."""
    annotations: list[Any] | None = None
    reasoning_content: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_wire(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "reasoning" in data:
            data = dict(data)
            reasoning = data.get("reasoning")
            if isinstance(reasoning, str) or reasoning is None:
                data.pop("reasoning")
                if reasoning and not data.get("reasoning_content"):
                    data["reasoning_content"] = reasoning
        return data

    @field_validator("content", mode="before")
    @classmethod
    def _content(cls, value: Any) -> Any:
        return _content_from_wire(value)

    @field_validator("content", mode="after")
    @classmethod
    def _content_not_empty_list(cls, value: Any, info: ValidationInfo) -> Any:
        # The wire format has no empty list of parts for any role: every server (and the
        # request model) would refuse each later request of the conversation.
        if isinstance(value, list) and not value:
            role = info.data.get("role", "a")
            raise ValueError(
                f"content is an empty list of parts; a {role} message needs a string "
                "or at least one part"
            )
        return value

    @model_validator(mode="after")
    def _check_role_fields(self) -> ChatMessage:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        if self.role == "function" and not self.name:
            raise ValueError("a function message needs the function's name")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if self.function_call is not None and self.role != "assistant":
            raise ValueError("only assistant messages carry function_call")
        if isinstance(self.content, list):
            if self.role not in ("user", "system", "developer") and any(
                not isinstance(part, _TEXTUAL) for part in self.content
            ):
                raise ValueError(f"{self.role} messages cannot carry media")
            if self.role != "assistant" and any(
                isinstance(part, RefusalPart) for part in self.content
            ):
                raise ValueError("refusal parts belong to assistant messages")
        return self

    @classmethod
    def coerce(cls, message: Any) -> ChatMessage:
        """A ``ChatMessage`` from a ``ChatMessage``, a wire dict, or a response message
        (any pydantic model, such as ``agent.last_response.choices[0].message`` or an
        ``openai`` SDK message); raises ``ConfigurationError`` naming what is wrong."""
        from pydantic import ValidationError

        from ._errors import ConfigurationError

        if isinstance(message, ChatMessage):
            return message
        if isinstance(message, BaseModel):
            message = message.model_dump(mode="python", exclude_unset=True)
            if isinstance(message, dict) and message.get("role") is None:
                message["role"] = "assistant"  # a response message, role left out
        if not isinstance(message, Mapping):
            raise ConfigurationError(
                "a message must be a ChatMessage, a dict or a response message, "
                f"not {type(message).__name__}",
                {"field": "message", "value": type(message).__name__},
            )
        try:
            return cls.model_validate(dict(message))
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            first = errors[0] if errors else {"loc": (), "msg": str(exc)}
            where = ".".join(str(p) for p in first["loc"]) or "message"
            raise ConfigurationError(
                f"invalid message at '{where}': {first['msg']}",
                {"field": where, "errors": errors},
            ) from None

    def to_wire(
        self, *, media_settings: MediaSettings | None = None, base_url: str | None = None
    ) -> dict[str, Any]:
        """The message as a dict in the official wire format, media encoded inline.

        It is what the client sends (reasoning, annotations, unknown keys and null fields
        left out), with local files and bytes as base64 ``data:`` URLs; the ``openai`` SDK
        takes it as an element of ``messages=``, and ``ChatMessage.model_validate`` reads it
        back into an equivalent message. ``media_settings`` and ``base_url`` choose how
        media are encoded as ``ChatAgent`` would (defaults: ``MediaSettings()``, native
        video). Reads the media now: ``MediaProcessingError`` if a file is gone.
        """
        from ._request import MediaEncoder, message_to_wire

        def settings() -> MediaSettings:
            if media_settings is not None:
                return media_settings
            from .media import MediaSettings

            return MediaSettings()

        encoder = MediaEncoder(settings, base_url or "")
        wire = message_to_wire(self, encoder)
        if encoder.sources is not None and len(encoder.sources):
            materialized: dict[str, Any] = encoder.sources.materialize(wire)
            return materialized
        return wire

    @property
    def text(self) -> str:
        """The message's text (text parts joined; media left out)."""
        return text_of(self.content)

    @property
    def has_media(self) -> bool:
        return isinstance(self.content, list) and any(
            not isinstance(part, _TEXTUAL) for part in self.content
        )

    def without_media(self) -> ChatMessage:
        """A copy with media parts replaced by a short note (to save tokens in later turns)."""
        if not isinstance(self.content, list) or not self.has_media:
            return self
        parts: list[ContentPart] = []
        for part in self.content:
            if isinstance(part, _TEXTUAL):
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
    """A tool call as the request's ``tool_calls`` entry (and as the tool registry reads it).

    Calls of other kinds than ``function`` (``custom`` tools) are sent as they came.
    """
    if call.type not in (None, "function") and call.function is None:
        wire: dict[str, Any] = call.model_dump(mode="json", exclude_none=True)
        return wire
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
