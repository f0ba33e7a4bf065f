"""The request builder: configuration + history + media + tools → the JSON request body.

Every body is validated through the generated ``ChatCompletionRequest`` model and dumped
without unset fields. Sampling parameters equal to the API's own defaults are left out, so
servers that reject a parameter are not sent it unless the user asked for a real value.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from ._config import SAMPLING_FIELDS, ModelConfig
from ._errors import ConfigurationError
from ._generated import ChatCompletionRequest
from ._messages import ChatMessage, RefusalPart, TextPart, call_to_wire

if TYPE_CHECKING:
    from ._transport import Body
    from .body import MediaSources, RequestBody
    from .media import MediaSettings

__all__ = [
    "MediaBody",
    "MediaEncoder",
    "RequestOptions",
    "build_body",
    "build_payload",
    "build_request",
    "message_to_wire",
]

# Parameters the API treats as defaults anyway: omitted at their default value.
_API_DEFAULTS: dict[str, Any] = {
    "top_p": 1.0,
    "frequency_penalty": 0.0,
    "presence_penalty": 0.0,
    "n": 1,
}


@dataclass(slots=True)
class RequestOptions:
    """Per-request settings beyond ``ModelConfig``."""

    stream: bool = False
    include_usage: bool = True
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None


class MediaEncoder:
    """Turns media parts into wire parts for one request; set up on the first media part.

    Requests without media never import the media machinery (it is optional and heavier).
    """

    def __init__(self, settings: Callable[[], MediaSettings], base_url: str) -> None:
        self._settings_factory = settings
        self._base_url = base_url
        self._settings: MediaSettings | None = None
        self.sources: MediaSources | None = None

    def wire_parts(self, part: Any) -> list[dict[str, Any]]:
        from .body import MediaSources
        from .media import to_wire_parts

        if self.sources is None or self._settings is None:
            self.sources = MediaSources()
            self._settings = self._settings_factory()
        return to_wire_parts(part, self._settings, base_url=self._base_url, sources=self.sources)


class MediaBody:
    """A request body with media: streamed (base64 encoded while sent), described for logs.

    Iterating it yields the JSON bytes, any number of times (retries resend the same bytes);
    ``content_length`` is exact. :meth:`preview` is the payload with each medium shown as
    ``<mime base64, N bytes>``, never its base64.
    """

    __slots__ = ("_preview", "stream")

    def __init__(self, stream: RequestBody, preview: str) -> None:
        self.stream = stream
        self._preview = preview

    @property
    def content_length(self) -> int:
        return self.stream.content_length

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.stream.__aiter__()

    def preview(self) -> str:
        """The payload as JSON text with media elided (for logs and debugging)."""
        return self._preview

    def __repr__(self) -> str:
        return f"<MediaBody {self.content_length} bytes>"


def message_to_wire(message: ChatMessage, media: MediaEncoder) -> dict[str, Any]:
    """One history message in wire form (media encoded lazily through ``media``).

    Sent: role, content, name, tool calls (or the legacy ``function_call``), tool call id,
    and an assistant's ``refusal`` and ``audio`` id when set. Never sent: the reasoning,
    ``annotations``, null fields, keys the wire format does not define, and fields it does
    not allow on the message's role (a user message's ``tool_call_id``, a tool message's
    ``refusal``): those are kept on the message like unknown keys. A tool message's
    ``name`` is sent (Groq and Mistral document it; OpenAI accepts it).
    """
    wire: dict[str, Any] = {"role": message.role}
    content = message.content
    if isinstance(content, list):
        parts: list[dict[str, Any]] = []
        for part in content:
            if isinstance(part, TextPart):
                parts.append({"type": "text", "text": part.text})
            elif isinstance(part, RefusalPart):
                parts.append({"type": "refusal", "refusal": part.refusal})
                continue
            else:
                parts.extend(media.wire_parts(part))
            if part.prompt_cache_breakpoint is not None:
                parts[-1]["prompt_cache_breakpoint"] = part.prompt_cache_breakpoint
        wire["content"] = parts
    elif content is not None:
        wire["content"] = content
    if message.name is not None:
        wire["name"] = message.name
    assistant = message.role == "assistant"
    if message.refusal is not None and assistant:
        wire["refusal"] = message.refusal
    audio_id = (message.audio or {}).get("id")
    if isinstance(audio_id, str) and assistant:
        wire["audio"] = {"id": audio_id}
    if message.tool_calls:
        # Some servers (llama.cpp) refuse a null or missing content beside tool calls.
        wire.setdefault("content", "")
        wire["tool_calls"] = [call_to_wire(call) for call in message.tool_calls]
    elif "content" not in wire:
        wire["content"] = ""
    if message.function_call is not None:
        call = message.function_call
        wire["function_call"] = {"name": call.name or "", "arguments": call.arguments or "{}"}
    if message.tool_call_id is not None and message.role == "tool":
        wire["tool_call_id"] = message.tool_call_id
    return wire


def build_request(
    config: ModelConfig,
    messages: list[dict[str, Any]],
    options: RequestOptions,
) -> ChatCompletionRequest:
    """The request as the generated model (only the fields that are set)."""
    payload: dict[str, Any] = {"model": config.model, "messages": messages}
    for name in SAMPLING_FIELDS:
        value = getattr(config, name)
        if value is None or (name in _API_DEFAULTS and value == _API_DEFAULTS[name]):
            continue
        payload[name] = value
    if options.stream:
        payload["stream"] = True
        if options.include_usage:
            payload["stream_options"] = {"include_usage": True}
    if options.tools:
        payload["tools"] = options.tools
        if options.tool_choice is not None:
            payload["tool_choice"] = options.tool_choice
        if options.parallel_tool_calls is not None:
            payload["parallel_tool_calls"] = options.parallel_tool_calls
    elif options.tool_choice not in (None, "none"):
        raise ConfigurationError(
            "tool_choice was given but no tools are registered or passed",
            {"field": "tool_choice", "value": options.tool_choice},
        )
    if options.response_format is not None:
        payload["response_format"] = options.response_format
    try:
        return ChatCompletionRequest.model_validate(payload)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = _most_telling(errors)
        field = _readable_path(first["loc"], payload)
        raise ConfigurationError(
            f"invalid request field '{field}': {first['msg']}",
            {"field": field, "errors": errors},
        ) from None


def _most_telling(errors: list[Any]) -> Any:
    """The error to report: a union's "not a string" beside "list too short" says little."""
    for error in errors:
        if not str(error["type"]).endswith("_type"):
            return error
    return errors[0]


_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "none", "list", "dict"})


def _readable_path(loc: tuple[Any, ...], payload: Any) -> str:
    """An error location as the payload's path (``messages[0].content``), walking the data
    so the union members pydantic names (``user``, ``str``, ``list[...]``) are left out."""
    path = ""
    data: Any = payload
    tag_used = False
    for segment in loc:
        if isinstance(segment, int):
            path += f"[{segment}]"
            data = (
                data[segment]
                if isinstance(data, list) and -len(data) <= segment < len(data)
                else None
            )
            tag_used = False
            continue
        if isinstance(data, dict):
            if segment in data:
                path += f".{segment}" if path else str(segment)
                data = data[segment]
                tag_used = False
                continue
            if not tag_used and segment in (data.get("role"), data.get("type")):
                tag_used = True  # the discriminated union's member
                continue
            if "[" in segment or segment in _TYPE_NAMES:
                continue  # a union member's name at an object value
        elif data is not None:
            continue  # a union member's name (``str``, ``list[...]``) at a non-object value
        path += f".{segment}" if path else str(segment)
        data = None
    return path or "<request>"


def build_payload(
    config: ModelConfig,
    messages: list[dict[str, Any]],
    options: RequestOptions,
) -> dict[str, Any]:
    """The request as a plain JSON-ready dict, without unset fields."""
    model = build_request(config, messages, options)
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude_unset=True, by_alias=True)
    return dumped


def build_body(
    config: ModelConfig,
    history: list[ChatMessage],
    options: RequestOptions,
    *,
    media_settings: Callable[[], MediaSettings],
) -> Body:
    """The encoded request body: bytes, or a re-iterable stream when media are attached."""
    media = MediaEncoder(media_settings, config.api_base_url)
    messages = [message_to_wire(message, media) for message in history]
    try:
        if media.sources is None or not len(media.sources):
            model = build_request(config, messages, options)
            # The serializer is built on first use (defer_build): look it up here, not at import.
            serializer = ChatCompletionRequest.__pydantic_serializer__
            return serializer.to_json(model, exclude_unset=True, by_alias=True)
        from .body import encode_json_body, redacted_preview

        payload = build_payload(config, messages, options)
        # The preview is made now, so the body keeps no reference to big data-URL strings.
        return MediaBody(encode_json_body(payload, media.sources), redacted_preview(payload, None))
    except (PydanticSerializationError, UnicodeEncodeError):
        raise _unencodable(history) from None


def _unencodable(history: list[ChatMessage]) -> ConfigurationError:
    """The error for a conversation holding text that UTF-8 cannot encode (a lone surrogate)."""
    from ._text import has_surrogate

    def texts(message: ChatMessage) -> list[str]:
        found = [message.text, message.name or "", message.tool_call_id or ""]
        for call in message.tool_calls or ():
            function = call.function
            found.append(call.id or "")
            if function is not None:
                found += [function.name or "", function.arguments or ""]
        return found

    where = next(
        (i for i, m in enumerate(history) if any(has_surrogate(t) for t in texts(m))), None
    )
    return ConfigurationError(
        "the conversation holds text that cannot be encoded as UTF-8 (a UTF-16 surrogate)"
        + (f" in message {where}" if where is not None else ""),
        {"field": "messages", "message": where},
    )
