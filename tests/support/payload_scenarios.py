"""Request-payload scenarios shared by the snapshot suite and the spec (Prism) suite.

A scenario says how a user configures and calls the client — ``ModelConfig`` and
``RuntimeConfig`` keyword arguments, the conversation already in the history, the tools
registered, and the keyword arguments of the one call — never what the server answers.
:func:`send` performs it on an open ``ChatAgent``; the caller decides where the request
goes (a fake server and a snapshot, or Prism and the official spec). Every call is made with
``auto_execute_tools=False`` so that exactly one request is sent whatever the reply says.
"""

from __future__ import annotations

import base64
import io
import wave
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from openai_chatapi import ChatAgent, ChatMessage, ModelConfig, TextPart, ToolCall, tool
from openai_chatapi.media import prepare_media
from openai_chatapi.tools import ToolFunction

__all__ = [
    "EVERY_FIELD",
    "MP3_BYTES",
    "PDF_BYTES",
    "PDF_PART",
    "PNG_1X1",
    "SCENARIOS",
    "WAV_BYTES",
    "WAV_PART",
    "PayloadScenario",
    "Person",
    "get_weather",
    "lookup",
    "model_config",
    "send",
]

# The smallest valid PNG (1x1, one grey pixel): real image bytes, no Pillow needed.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
)


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(8000)
        clip.writeframes(bytes(160))  # 10 ms of silence
    return out.getvalue()


#: Real audio and document bytes, made with the standard library / by hand.
WAV_BYTES = _wav()
# Two MPEG-1 layer III frames (128 kbit/s, 44.1 kHz: 417 bytes each) of silence.
MP3_BYTES = (b"\xff\xfb\x90\x00" + bytes(413)) * 2
PDF_BYTES = (
    b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n"
    b"2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\n"
    b"trailer <</Root 1 0 R>>\n%%EOF\n"
)
WAV_PART: dict[str, Any] = {
    "type": "input_audio",
    "input_audio": {"data": base64.b64encode(WAV_BYTES).decode(), "format": "wav"},
}
"""``WAV_BYTES`` as a wire content part."""
PDF_PART: dict[str, Any] = {
    "type": "file",
    "file": {
        "file_data": "data:application/pdf;base64," + base64.b64encode(PDF_BYTES).decode(),
        "filename": "notes.pdf",
    },
}
"""``PDF_BYTES`` as a wire content part (named ``notes.pdf``)."""

EVERY_FIELD: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "temperature": 0.2,
    "top_p": 0.9,
    "max_tokens": 256,
    "max_completion_tokens": 300,
    "frequency_penalty": 0.5,
    "presence_penalty": -0.5,
    "n": 2,
    "stop": ["END", "###"],
    "logprobs": True,
    "top_logprobs": 3,
    "seed": 42,
    "user": "user-1234",
    "reasoning_effort": "low",
}


@tool
def get_weather(city: str, unit: str = "celsius") -> str:
    """Current weather for a city.

    Args:
        city: The city name.
        unit: celsius or fahrenheit.
    """
    return f"sunny in {city}"


@tool(strict=True)
def lookup(query: str, limit: int = 3) -> list[str]:
    """Search the notes.

    Args:
        query: What to look for.
        limit: How many hits at most.
    """
    return [query] * limit


class Person(BaseModel):
    name: str
    age: int


def _call(call_id: str, name: str, arguments: str) -> ToolCall:
    return ToolCall.model_validate(
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    )


@dataclass(frozen=True)
class PayloadScenario:
    """One way of configuring and calling the client; :func:`send` performs it."""

    name: str
    model: Mapping[str, Any] = field(default_factory=dict)
    """``ModelConfig`` keyword arguments (``api_base_url``/``api_key`` are the caller's)."""
    runtime: Mapping[str, Any] = field(default_factory=dict)
    """``RuntimeConfig`` keyword arguments."""
    call: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``chat`` (or ``chat_stream``): overrides, tool_choice, ..."""
    text: str = "Hello"
    history: tuple[ChatMessage, ...] = ()
    """The conversation before the call (system prompt included)."""
    tools: tuple[ToolFunction[..., Any], ...] = ()
    images: tuple[str | bytes, ...] = ()
    audio: tuple[str | bytes, ...] = ()
    files: tuple[str | bytes, ...] = ()
    stream: bool = False
    """Call ``chat_stream`` (otherwise ``chat``; ``model={"stream": True}`` streams too)."""

    @property
    def streams(self) -> bool:
        return self.stream or bool(self.model.get("stream"))

    @property
    def structured(self) -> bool:
        """The reply is validated as a Python type (``response_format=SomeModel``)."""
        return isinstance(self.call.get("response_format"), type)


def model_config(
    scenario: PayloadScenario, *, api_base_url: str, api_key: str | None, model: str = "test-model"
) -> ModelConfig:
    """The scenario's ``ModelConfig`` for an endpoint (``model`` unless the scenario names one)."""
    fields = {"model": model, **scenario.model}
    return ModelConfig(api_base_url=api_base_url, api_key=api_key, **fields)


async def send(agent: ChatAgent, scenario: PayloadScenario) -> Any:
    """Seed the history and tools, then make the scenario's one call; return its result."""
    agent.replace_history(list(scenario.history))
    for definition in scenario.tools:
        agent.register_tool(definition)
    images = list(scenario.images) or None
    if scenario.stream and scenario.structured:
        stream = agent.chat_stream_structured(
            scenario.text, images, response_format=scenario.call["response_format"]
        )
        return [item async for item in stream][-1]
    media = {
        "audio_paths": list(scenario.audio) or None,
        "file_paths": list(scenario.files) or None,
    }
    if scenario.stream:
        pieces = [
            piece
            async for piece in agent.chat_stream(
                scenario.text,
                images,
                display_stream=False,
                auto_execute_tools=False,
                **media,
                **scenario.call,
            )
        ]
        return "".join(pieces)
    return await agent.chat(
        scenario.text, images, auto_execute_tools=False, **media, **scenario.call
    )


_TOOL_TURN = (
    ChatMessage(role="user", content="look it up"),
    ChatMessage(
        role="assistant",
        content=None,
        tool_calls=[_call("call_9", "lookup", '{"query": "x"}')],
    ),
    ChatMessage(role="tool", tool_call_id="call_9", content='["x"]'),
)

# A conversation as the openai SDK (or a stored JSON) holds it: every message kind and
# content part of the official wire format, read with ChatMessage(**message).
WIRE_HISTORY = tuple(
    ChatMessage(**message)
    for message in (
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}], "name": "ops"},
        {
            "role": "user",
            "name": "ada",
            "content": [
                {"type": "text", "text": "Look, listen, read."},
                {"type": "image_url", "image_url": {"url": "https://example.com/y.jpg"}},
                {
                    "type": "image_url",
                    "image_url": {
                        "url": "data:image/png;base64," + base64.b64encode(PNG_1X1).decode(),
                        "detail": "high",
                    },
                },
                WAV_PART,
                PDF_PART,
                {"type": "file", "file": {"file_id": "file-abc123"}},
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "refusal", "refusal": "I cannot read that file."}],
            "refusal": "I cannot read that file.",
            "annotations": [],
            "audio": {"id": "audio_1", "data": "AAAA", "expires_at": 1, "transcript": "no"},
        },
        {"role": "user", "content": "Then call the function."},
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            "reasoning": "The legacy call it is.",
        },
        {"role": "function", "name": "get_weather", "content": "sunny"},
        {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "hot"}]},
        {"role": "assistant", "content": "Oslo is sunny, Rome is hot.", "reasoning_content": "ok"},
    )
)

SCENARIOS: list[PayloadScenario] = [
    PayloadScenario("defaults"),
    PayloadScenario("every_model_config_field", model=EVERY_FIELD),
    PayloadScenario("every_model_config_field_streaming", model={**EVERY_FIELD, "stream": True}),
    PayloadScenario(
        "per_call_overrides",
        model={"temperature": 0.3, "max_tokens": 50},
        call={
            "temperature": 1.5,
            "max_tokens": 10,
            "top_p": 0.5,
            "model": "other-model",
            "seed": 7,
            "stop": "STOP",
        },
    ),
    PayloadScenario("stop_as_string", model={"stop": "\n\n"}),
    PayloadScenario("stop_as_list", model={"stop": ["a", "b", "c"]}),
    PayloadScenario("logprobs_and_top_logprobs", model={"logprobs": True, "top_logprobs": 5}),
    PayloadScenario("logprobs_false", model={"logprobs": False}),
    PayloadScenario("reasoning_effort", model={"model": "o3-mini", "reasoning_effort": "high"}),
    PayloadScenario("max_completion_tokens", model={"max_completion_tokens": 1024}),
    PayloadScenario("seed_and_user", model={"seed": 1234, "user": "end-user-77"}),
    PayloadScenario("n", model={"n": 3}),
    PayloadScenario(
        "system_prompt_and_multi_turn_history",
        text="Sure?",
        history=(
            ChatMessage(role="system", content="You are terse."),
            ChatMessage(role="user", content="Capital of France?"),
            ChatMessage(role="assistant", content="Paris."),
            ChatMessage(role="user", content="Population?"),
            ChatMessage(role="assistant", content="About 2.1 million."),
        ),
    ),
    PayloadScenario(
        "developer_message",
        history=(ChatMessage(role="developer", content="Answer in French."),),
    ),
    PayloadScenario(
        "reasoning_content_not_sent_back",
        text="Thanks",
        history=(
            ChatMessage(role="user", content="Answer?"),
            ChatMessage(role="assistant", content="42", reasoning_content="Let me think..."),
        ),
    ),
    PayloadScenario("add_to_history_false", call={"add_to_history": False}),
    PayloadScenario("streaming_asks_for_usage", stream=True),
    PayloadScenario(
        "streaming_without_usage", stream=True, runtime={"stream_include_usage": False}
    ),
    PayloadScenario(
        "named_tool_choice",
        text="Weather in Paris?",
        tools=(get_weather,),
        call={"tool_choice": "get_weather", "parallel_tool_calls": False},
    ),
    PayloadScenario("tool_choice_auto", tools=(get_weather, lookup), call={"tool_choice": "auto"}),
    PayloadScenario("tool_choice_required", tools=(get_weather,), call={"tool_choice": "required"}),
    PayloadScenario("tool_choice_none", tools=(get_weather,), call={"tool_choice": "none"}),
    PayloadScenario("strict_tool", tools=(lookup,)),
    PayloadScenario(
        "streaming_with_tools",
        stream=True,
        tools=(get_weather,),
        call={"tool_choice": "get_weather"},
    ),
    PayloadScenario("tool_call_turn_in_history", text="and?", history=_TOOL_TURN, tools=(lookup,)),
    # One request each: no validation retry (a mocked answer is not the requested object).
    PayloadScenario(
        "structured_output_from_pydantic_model",
        runtime={"max_output_retries": 0},
        call={"response_format": Person},
    ),
    PayloadScenario(
        "structured_output_json_mode",
        runtime={"max_output_retries": 0},
        call={"response_format": Person, "output_mode": "json"},
    ),
    PayloadScenario(
        "structured_output_tool_mode",
        runtime={"max_output_retries": 0},
        call={"response_format": Person, "output_mode": "tool"},
    ),
    PayloadScenario(
        "structured_output_streamed",
        stream=True,
        runtime={"max_output_retries": 0, "output_mode": "native"},
        call={"response_format": Person},
    ),
    PayloadScenario(
        "response_format_json_object", call={"response_format": {"type": "json_object"}}
    ),
    PayloadScenario(
        "response_format_json_schema_dict",
        call={
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "schema": {
                        "type": "object",
                        "properties": {"answer": {"type": "string"}},
                        "required": ["answer"],
                        "additionalProperties": False,
                    },
                    "strict": True,
                },
            }
        },
    ),
    PayloadScenario(
        "image_url",
        text="What is this?",
        images=("https://example.com/cat.png",),
        runtime={"image_detail": "low"},
    ),
    PayloadScenario(
        "image_data_url",
        text="What is this?",
        images=("data:image/png;base64," + base64.b64encode(PNG_1X1).decode(),),
    ),
    PayloadScenario("image_bytes_streamed_body", text="What is this?", images=(PNG_1X1,)),
    PayloadScenario(
        "image_in_history",
        text="What breed is it?",
        history=(
            ChatMessage(
                role="user",
                content=[
                    TextPart(text="Remember this picture."),
                    *prepare_media(["https://example.com/dog.jpg"]),
                ],
            ),
            ChatMessage(role="assistant", content="Noted."),
        ),
    ),
    PayloadScenario(
        "audio_wav_and_mp3",
        text="Transcribe both.",
        audio=(WAV_BYTES, "data:audio/mpeg;base64," + base64.b64encode(MP3_BYTES).decode()),
    ),
    PayloadScenario("audio_streaming", stream=True, text="What is said?", audio=(WAV_BYTES,)),
    PayloadScenario(
        "pdf_file",
        text="Summarise.",
        files=(PDF_BYTES, "data:application/pdf;base64," + base64.b64encode(PDF_BYTES).decode()),
    ),
    PayloadScenario("history_in_wire_form", text="Go on.", history=WIRE_HISTORY),
]
