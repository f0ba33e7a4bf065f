# generated from schema/chat_completions.schema.json by scripts/generate_models.py — do not edit
# Regenerate with `python scripts/generate_models.py`; CI runs it with --check.
"""Pydantic models of the chat-completions wire format (generated; see the schema).

Request models are exact. Response models are lenient (every field optional, unknown
fields kept); each has a ``Strict``-prefixed twin enforcing what OpenAI marks required.
"""

from __future__ import annotations
from typing import Annotated, Any, Literal
from pydantic import BaseModel as _BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType


class WireModel(_BaseModel):
    """Base of every generated model: unknown fields kept, validators built on first use."""

    # defer_build: importing the module must not pay for ~60 validators nobody uses yet.
    model_config = ConfigDict(extra="allow", defer_build=True)


class AssistantAudioRef(WireModel):
    """
    Points at an earlier audio answer of the model.
    """

    id: Annotated[str, Field(description="Id of the audio answer.")]


class AssistantMessage(WireModel):
    """
    An earlier answer of the model, replayed as history.
    """

    role: Annotated[Literal["assistant"], Field(description="Author of this turn.")]
    content: str | AssistantContentParts | None = Field(
        None, description="What the model said; null when it only called tools."
    )
    refusal: Annotated[str | None, Field(description="Why the model declined, if it did.")] = None
    name: Annotated[
        str | None,
        Field(description="Optional label telling apart participants that share a role."),
    ] = None
    audio: Annotated[
        AssistantAudioRef | None, Field(description="A previous audio answer of the model, by id.")
    ] = None
    tool_calls: list[ToolCall] | None = Field(
        None, description="Tool calls the model made in this turn."
    )
    function_call: FunctionCall | None = Field(
        None, description="Legacy (deprecated) single function call, replaced by tool_calls."
    )


class ChatCompletion(WireModel):
    """
    A complete (non-streamed) answer.
    """

    id: Annotated[str | None, Field(description="Unique id of this completion.")] = None
    object: Annotated[str | None, Field(description="Object kind.")] = None
    created: Annotated[int | None, Field(description="Unix time (seconds) of creation.")] = None
    model: Annotated[str | None, Field(description="Model that produced the answer.")] = None
    choices: list[Choice] = Field(
        [], description="One entry per requested alternative (n).", validate_default=True
    )
    usage: Usage | None = None
    system_fingerprint: Annotated[
        str | None,
        Field(description="Identifies the backend configuration that served the request."),
    ] = None
    service_tier: Annotated[
        str | None, Field(description="Processing tier that served the request.")
    ] = None


class ChatCompletionChunk(WireModel):
    """
    One server-sent event of a streamed answer. The optional last chunk has no choices and carries usage.
    """

    id: Annotated[str | None, Field(description="Id shared by every chunk of one completion.")] = (
        None
    )
    object: Annotated[str | None, Field(description="Object kind.")] = None
    created: Annotated[int | None, Field(description="Unix time (seconds) of creation.")] = None
    model: Annotated[str | None, Field(description="Model that produced the answer.")] = None
    choices: list[ChunkChoice] = Field(
        [],
        description="Increments per alternative; empty in the usage chunk.",
        validate_default=True,
    )
    usage: Usage | None = None
    system_fingerprint: Annotated[
        str | None,
        Field(description="Identifies the backend configuration that served the request."),
    ] = None
    service_tier: Annotated[
        str | None, Field(description="Processing tier that served the request.")
    ] = None


class ChatCompletionRequest(WireModel):
    """
    Body of POST /chat/completions: the conversation so far and the sampling settings.
    """

    model: Annotated[str, Field(description="Identifier of the model that should answer.")]
    messages: list[
        Annotated[
            SystemMessage
            | DeveloperMessage
            | UserMessage
            | AssistantMessage
            | ToolMessage
            | FunctionMessage,
            Field(discriminator="role"),
        ]
    ] = Field(..., description="The conversation, oldest turn first.", min_length=1)
    temperature: Annotated[
        float | None,
        Field(
            description="Sampling temperature; higher values give more varied text.", ge=0.0, le=2.0
        ),
    ] = None
    top_p: Annotated[
        float | None,
        Field(
            description="Nucleus sampling: only tokens within this cumulative probability mass are considered.",
            ge=0.0,
            le=1.0,
        ),
    ] = None
    max_tokens: Annotated[
        int | None,
        Field(
            description="Older cap on generated tokens; still the one most compatible servers read.",
            ge=1,
        ),
    ] = None
    max_completion_tokens: Annotated[
        int | None, Field(description="Cap on generated tokens, reasoning tokens included.", ge=1)
    ] = None
    frequency_penalty: Annotated[
        float | None,
        Field(
            description="Lowers the chance of a token in proportion to how often it already appeared.",
            ge=-2.0,
            le=2.0,
        ),
    ] = None
    presence_penalty: Annotated[
        float | None,
        Field(
            description="Lowers the chance of any token that already appeared at least once.",
            ge=-2.0,
            le=2.0,
        ),
    ] = None
    n: Annotated[
        int | None, Field(description="How many alternative answers to produce.", ge=1, le=128)
    ] = None
    stop: str | StopSequences | None = Field(
        None, description="Text (or up to four texts) at which generation ends."
    )
    stream: Annotated[
        bool | None, Field(description="Deliver the answer incrementally as server-sent events.")
    ] = None
    stream_options: StreamOptions | None = None
    logprobs: Annotated[
        bool | None, Field(description="Ask for the log probability of each generated token.")
    ] = None
    top_logprobs: Annotated[
        int | None,
        Field(
            description="How many likely alternatives to report per token; needs logprobs.",
            ge=0,
            le=20,
        ),
    ] = None
    seed: Annotated[
        int | None,
        Field(
            description="Best-effort determinism: equal seeds and settings should give equal output."
        ),
    ] = None
    user: Annotated[
        str | None, Field(description="Opaque identifier of the end user, for abuse monitoring.")
    ] = None
    reasoning_effort: Annotated[
        Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None,
        Field(description="How much thinking a reasoning model may do before answering."),
    ] = None
    tools: list[ToolDefinition] | None = Field(
        None, description="Functions the model may ask the caller to run."
    )
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = Field(
        None, description="Whether and which tool the model must call."
    )
    parallel_tool_calls: Annotated[
        bool | None, Field(description="Allow several tool calls in one answer.")
    ] = None
    response_format: (
        ResponseFormatText | ResponseFormatJsonObject | ResponseFormatJsonSchema | None
    ) = Field(
        None,
        description="Shape the answer must take: free text, any JSON object, or JSON matching a schema.",
        discriminator="type",
    )


class Choice(WireModel):
    """
    One alternative answer.
    """

    index: Annotated[int | None, Field(description="Position of this alternative.")] = None
    message: ResponseMessage | None = None
    finish_reason: Annotated[str | None, Field(description="Why generation ended.")] = None
    logprobs: ChoiceLogprobs | None = Field(
        None,
        description="Log-probabilities of the tokens, when asked for. OpenAI lists it as required, but its newer models (gpt-5, o-series) omit the key, so it is optional here.",
    )


class ChoiceLogprobs(WireModel):
    """
    Per-token probabilities of one alternative.
    """

    content: list[TokenLogprob] | None = Field(
        None, description="One entry per token of the answer text."
    )
    refusal: list[TokenLogprob] | None = Field(
        None, description="One entry per token of the refusal text."
    )


class ChunkChoice(WireModel):
    """
    The increment of one alternative.
    """

    index: Annotated[int | None, Field(description="Which alternative this increment extends.")] = (
        None
    )
    delta: ChunkDelta | None = None
    finish_reason: Annotated[
        str | None, Field(description="Why generation ended; null until the last increment.")
    ] = None
    logprobs: ChoiceLogprobs | None = None


class ChunkDelta(WireModel):
    """
    Text and tool-call fragments to append to the message being built.
    """

    role: Annotated[str | None, Field(description="Author; usually only on the first chunk.")] = (
        None
    )
    content: Annotated[str | None, Field(description="Next piece of answer text.")] = None
    refusal: Annotated[str | None, Field(description="Next piece of refusal text.")] = None
    tool_calls: list[ToolCallDelta] | None = Field(
        None, description="Fragments of tool calls, matched up by index."
    )
    reasoning_content: Annotated[
        str | None, Field(description="Next piece of visible chain of thought (reasoning servers).")
    ] = None
    reasoning: Annotated[
        str | None,
        Field(
            description="The same visible reasoning under the name Groq, OpenRouter, Cerebras and Ollama use."
        ),
    ] = None


class CompletionTokensDetails(WireModel):
    """
    Breakdown of the generated tokens.
    """

    reasoning_tokens: Annotated[
        int | None, Field(description="Tokens spent thinking, not shown in the answer.")
    ] = None
    audio_tokens: Annotated[
        int | None, Field(description="Generated tokens that encoded audio.")
    ] = None
    accepted_prediction_tokens: Annotated[
        int | None, Field(description="Predicted-output tokens that were used.")
    ] = None
    rejected_prediction_tokens: Annotated[
        int | None, Field(description="Predicted-output tokens that were discarded.")
    ] = None


class DeveloperMessage(WireModel):
    """
    Instructions from the application developer (newer name for system on some models).
    """

    role: Annotated[Literal["developer"], Field(description="Author of this turn.")]
    content: str | TextParts = Field(
        ..., description="The turn's content: plain text or a list of parts."
    )
    name: Annotated[
        str | None,
        Field(description="Optional label telling apart participants that share a role."),
    ] = None


class ErrorObject(WireModel):
    """
    What went wrong.
    """

    message: Annotated[str | None, Field(description="Human-readable explanation.")] = None
    type: Annotated[
        str | None, Field(description="Error category, for example invalid_request_error.")
    ] = None
    param: Annotated[str | None, Field(description="Request parameter at fault, if any.")] = None
    code: Annotated[str | int | None, Field(description="Machine-readable error code, if any.")] = (
        None
    )


class ErrorResponse(WireModel):
    """
    Body the server sends with an error status.
    """

    error: ErrorObject | None = None


class FileInput(WireModel):
    """
    A document given either inline (file_data) or by reference (file_id).
    """

    filename: Annotated[str | None, Field(description="Name shown to the model.")] = None
    file_data: Annotated[
        str | None, Field(description="The document, base64 encoded (usually as a data: URL).")
    ] = None
    file_id: Annotated[str | None, Field(description="Id of a previously uploaded file.")] = None


class FilePart(WireModel):
    """
    A document (for example a PDF), inline or by uploaded-file id.
    """

    type: Annotated[Literal["file"], Field(description="Part kind.")]
    file: FileInput


class FunctionCall(WireModel):
    """
    Which function to run and with what arguments.
    """

    name: Annotated[str | None, Field(description="Function name.")] = None
    arguments: Annotated[
        str | None,
        Field(description="Arguments as a JSON text; it may be invalid JSON and must be checked."),
    ] = None


class FunctionCallDelta(WireModel):
    """
    A fragment of a function call.
    """

    name: Annotated[str | None, Field(description="Function name (first fragment only).")] = None
    arguments: Annotated[
        str | None, Field(description="Next piece of the arguments JSON text.")
    ] = None


class FunctionDefinition(WireModel):
    """
    Name, purpose and argument schema of a callable function.
    """

    name: Annotated[
        str,
        Field(
            description="Function name the model uses to call it.", pattern="^[A-Za-z0-9_-]{1,64}$"
        ),
    ]
    description: Annotated[
        str | None, Field(description="What the function does and when to use it.")
    ] = None
    parameters: Annotated[
        dict[str, Any] | None, Field(description="JSON Schema of the arguments object.")
    ] = None
    strict: Annotated[
        bool | None, Field(description="Force the arguments to match parameters exactly.")
    ] = None


class FunctionMessage(WireModel):
    """
    Legacy (deprecated) result of a function_call, replaced by tool messages.
    """

    role: Annotated[Literal["function"], Field(description="Author of this turn.")]
    content: Annotated[str | None, Field(description="What the function returned.")]
    name: Annotated[str, Field(description="The function that was called.")]


class ImageUrl(WireModel):
    """
    Where to find an image and how closely to look at it.
    """

    url: Annotated[
        str, Field(description="http(s) URL, or data:image/...;base64,... with the bytes inline.")
    ]
    detail: Annotated[
        Literal["auto", "low", "high"] | None,
        Field(description="Resolution the model should use for the image."),
    ] = None


class ImageUrlPart(WireModel):
    """
    An image, by URL or as a data: URL.
    """

    type: Annotated[Literal["image_url"], Field(description="Part kind.")]
    image_url: ImageUrl


class InputAudio(WireModel):
    """
    Inline audio bytes and their encoding.
    """

    data: Annotated[str, Field(description="The audio, base64 encoded.")]
    format: Annotated[Literal["wav", "mp3"], Field(description="Container format of data.")]


class InputAudioPart(WireModel):
    """
    A clip of audio given inline.
    """

    type: Annotated[Literal["input_audio"], Field(description="Part kind.")]
    input_audio: InputAudio


class JsonSchemaFormat(WireModel):
    """
    A named JSON Schema the answer must follow.
    """

    name: Annotated[str, Field(description="Name of the format.", pattern="^[A-Za-z0-9_-]{1,64}$")]
    description: Annotated[str | None, Field(description="What the answer represents.")] = None
    schema_: Annotated[
        dict[str, Any] | None, Field(alias="schema", description="The JSON Schema itself.")
    ] = None
    strict: Annotated[bool | None, Field(description="Enforce the schema exactly.")] = None


class Model(WireModel):
    """
    A model the server offers.
    """

    id: Annotated[
        str | None, Field(description="Model identifier, usable as the request's model.")
    ] = None
    object: Annotated[str | None, Field(description="Object kind.")] = None
    created: Annotated[
        int | None, Field(description="Unix time (seconds) the model was made available.")
    ] = None
    owned_by: Annotated[str | None, Field(description="Organisation that owns the model.")] = None


class ModelList(WireModel):
    """
    Answer of GET /models.
    """

    object: Annotated[str | None, Field(description="Object kind.")] = None
    data: Annotated[list[Model], Field(description="The models.", validate_default=True)] = []


class NamedToolChoice(WireModel):
    """
    Force the model to call one particular function.
    """

    type: Annotated[Literal["function"], Field(description="Tool kind.")]
    function: ToolChoiceFunction


class PromptTokensDetails(WireModel):
    """
    Breakdown of the input tokens.
    """

    cached_tokens: Annotated[
        int | None, Field(description="Input tokens served from the prompt cache.")
    ] = None
    audio_tokens: Annotated[int | None, Field(description="Input tokens that encoded audio.")] = (
        None
    )


class RefusalPart(WireModel):
    """
    A refusal by the model, replayed as history.
    """

    type: Annotated[Literal["refusal"], Field(description="Part kind.")]
    refusal: Annotated[str, Field(description="Why the model declined.")]


class ResponseFormatJsonObject(WireModel):
    """
    Answer with some valid JSON object.
    """

    type: Annotated[Literal["json_object"], Field(description="Format kind.")]


class ResponseFormatJsonSchema(WireModel):
    """
    Answer with JSON that matches a given schema.
    """

    type: Annotated[Literal["json_schema"], Field(description="Format kind.")]
    json_schema: JsonSchemaFormat


class ResponseFormatText(WireModel):
    """
    Answer in free text (the default).
    """

    type: Annotated[Literal["text"], Field(description="Format kind.")]


class ResponseMessage(WireModel):
    """
    The message the model produced.
    """

    role: Annotated[str | None, Field(description="Always the assistant.")] = None
    content: Annotated[
        str | None, Field(description="Answer text; null when the model only called tools.")
    ] = None
    refusal: Annotated[str | None, Field(description="Why the model declined, if it did.")] = None
    tool_calls: list[ToolCall] | None = Field(
        None, description="Functions the model wants the caller to run."
    )
    reasoning_content: Annotated[
        str | None,
        Field(
            description="Visible chain of thought, sent by reasoning servers such as DeepSeek, vLLM and llama.cpp."
        ),
    ] = None
    reasoning: Annotated[
        str | None,
        Field(
            description="The same visible reasoning under the name Groq, OpenRouter, Cerebras and Ollama use."
        ),
    ] = None


StopSequences = TypeAliasType(
    "StopSequences",
    Annotated[
        list[str],
        Field(
            description="One to four texts at which generation ends.", max_length=4, min_length=1
        ),
    ],
)
"""
One to four texts at which generation ends.
"""


class StreamOptions(WireModel):
    """
    Settings that only apply when stream is true.
    """

    include_usage: Annotated[
        bool | None,
        Field(description="Send one last chunk, with no choices, that carries the token usage."),
    ] = None


class StrictChatCompletion(WireModel):
    """
    Strict twin of `ChatCompletion`: fields OpenAI marks required must be present. A complete (non-streamed) answer.
    """

    id: Annotated[str, Field(description="Unique id of this completion.")]
    object: Annotated[Literal["chat.completion"], Field(description="Object kind.")]
    created: Annotated[int, Field(description="Unix time (seconds) of creation.")]
    model: Annotated[str, Field(description="Model that produced the answer.")]
    choices: list[StrictChoice] = Field(..., description="One entry per requested alternative (n).")
    usage: StrictUsage | None = None
    system_fingerprint: Annotated[
        str | None,
        Field(description="Identifies the backend configuration that served the request."),
    ] = None
    service_tier: Annotated[
        Literal["auto", "default", "flex", "scale", "priority", "fast"] | None,
        Field(description="Processing tier that served the request."),
    ] = None


class StrictChatCompletionChunk(WireModel):
    """
    Strict twin of `ChatCompletionChunk`: fields OpenAI marks required must be present. One server-sent event of a streamed answer. The optional last chunk has no choices and carries usage.
    """

    id: Annotated[str, Field(description="Id shared by every chunk of one completion.")]
    object: Annotated[Literal["chat.completion.chunk"], Field(description="Object kind.")]
    created: Annotated[int, Field(description="Unix time (seconds) of creation.")]
    model: Annotated[str, Field(description="Model that produced the answer.")]
    choices: list[StrictChunkChoice] = Field(
        ..., description="Increments per alternative; empty in the usage chunk."
    )
    usage: StrictUsage | None = None
    system_fingerprint: Annotated[
        str | None,
        Field(description="Identifies the backend configuration that served the request."),
    ] = None
    service_tier: Annotated[
        Literal["auto", "default", "flex", "scale", "priority", "fast"] | None,
        Field(description="Processing tier that served the request."),
    ] = None


class StrictChoice(WireModel):
    """
    Strict twin of `Choice`: fields OpenAI marks required must be present. One alternative answer.
    """

    index: Annotated[int, Field(description="Position of this alternative.")]
    message: StrictResponseMessage
    finish_reason: Annotated[
        Literal["stop", "length", "tool_calls", "content_filter", "function_call"],
        Field(description="Why generation ended."),
    ]
    logprobs: StrictChoiceLogprobs | None = Field(
        None,
        description="Log-probabilities of the tokens, when asked for. OpenAI lists it as required, but its newer models (gpt-5, o-series) omit the key, so it is optional here.",
    )


class StrictChoiceLogprobs(WireModel):
    """
    Strict twin of `ChoiceLogprobs`: fields OpenAI marks required must be present. Per-token probabilities of one alternative.
    """

    content: list[StrictTokenLogprob] | None = Field(
        ..., description="One entry per token of the answer text."
    )
    refusal: list[StrictTokenLogprob] | None = Field(
        ..., description="One entry per token of the refusal text."
    )


class StrictChunkChoice(WireModel):
    """
    Strict twin of `ChunkChoice`: fields OpenAI marks required must be present. The increment of one alternative.
    """

    index: Annotated[int, Field(description="Which alternative this increment extends.")]
    delta: StrictChunkDelta
    finish_reason: Annotated[
        Literal["stop", "length", "tool_calls", "content_filter", "function_call"] | None,
        Field(description="Why generation ended; null until the last increment."),
    ]
    logprobs: StrictChoiceLogprobs | None = None


class StrictChunkDelta(WireModel):
    """
    Strict twin of `ChunkDelta`: fields OpenAI marks required must be present. Text and tool-call fragments to append to the message being built.
    """

    role: Annotated[
        Literal["developer", "system", "user", "assistant", "tool"] | None,
        Field(description="Author; usually only on the first chunk."),
    ] = None
    content: Annotated[str | None, Field(description="Next piece of answer text.")] = None
    refusal: Annotated[str | None, Field(description="Next piece of refusal text.")] = None
    tool_calls: list[StrictToolCallDelta] | None = Field(
        None, description="Fragments of tool calls, matched up by index."
    )
    reasoning_content: Annotated[
        str | None, Field(description="Next piece of visible chain of thought (reasoning servers).")
    ] = None
    reasoning: Annotated[
        str | None,
        Field(
            description="The same visible reasoning under the name Groq, OpenRouter, Cerebras and Ollama use."
        ),
    ] = None


class StrictCompletionTokensDetails(WireModel):
    """
    Strict twin of `CompletionTokensDetails`: fields OpenAI marks required must be present. Breakdown of the generated tokens.
    """

    reasoning_tokens: Annotated[
        int | None, Field(description="Tokens spent thinking, not shown in the answer.")
    ] = None
    audio_tokens: Annotated[
        int | None, Field(description="Generated tokens that encoded audio.")
    ] = None
    accepted_prediction_tokens: Annotated[
        int | None, Field(description="Predicted-output tokens that were used.")
    ] = None
    rejected_prediction_tokens: Annotated[
        int | None, Field(description="Predicted-output tokens that were discarded.")
    ] = None


class StrictErrorObject(WireModel):
    """
    Strict twin of `ErrorObject`: fields OpenAI marks required must be present. What went wrong.
    """

    message: Annotated[str, Field(description="Human-readable explanation.")]
    type: Annotated[str, Field(description="Error category, for example invalid_request_error.")]
    param: Annotated[str | None, Field(description="Request parameter at fault, if any.")]
    code: Annotated[str | int | None, Field(description="Machine-readable error code, if any.")]


class StrictErrorResponse(WireModel):
    """
    Strict twin of `ErrorResponse`: fields OpenAI marks required must be present. Body the server sends with an error status.
    """

    error: StrictErrorObject


class StrictFunctionCall(WireModel):
    """
    Strict twin of `FunctionCall`: fields OpenAI marks required must be present. Which function to run and with what arguments.
    """

    name: Annotated[str, Field(description="Function name.")]
    arguments: Annotated[
        str,
        Field(description="Arguments as a JSON text; it may be invalid JSON and must be checked."),
    ]


class StrictFunctionCallDelta(WireModel):
    """
    Strict twin of `FunctionCallDelta`: fields OpenAI marks required must be present. A fragment of a function call.
    """

    name: Annotated[str | None, Field(description="Function name (first fragment only).")] = None
    arguments: Annotated[
        str | None, Field(description="Next piece of the arguments JSON text.")
    ] = None


class StrictModel(WireModel):
    """
    Strict twin of `Model`: fields OpenAI marks required must be present. A model the server offers.
    """

    id: Annotated[str, Field(description="Model identifier, usable as the request's model.")]
    object: Annotated[Literal["model"], Field(description="Object kind.")]
    created: Annotated[int, Field(description="Unix time (seconds) the model was made available.")]
    owned_by: Annotated[str, Field(description="Organisation that owns the model.")]


class StrictModelList(WireModel):
    """
    Strict twin of `ModelList`: fields OpenAI marks required must be present. Answer of GET /models.
    """

    object: Annotated[Literal["list"], Field(description="Object kind.")]
    data: Annotated[list[StrictModel], Field(description="The models.")]


class StrictPromptTokensDetails(WireModel):
    """
    Strict twin of `PromptTokensDetails`: fields OpenAI marks required must be present. Breakdown of the input tokens.
    """

    cached_tokens: Annotated[
        int | None, Field(description="Input tokens served from the prompt cache.")
    ] = None
    audio_tokens: Annotated[int | None, Field(description="Input tokens that encoded audio.")] = (
        None
    )


class StrictResponseMessage(WireModel):
    """
    Strict twin of `ResponseMessage`: fields OpenAI marks required must be present. The message the model produced.
    """

    role: Annotated[Literal["assistant"], Field(description="Always the assistant.")]
    content: Annotated[
        str | None, Field(description="Answer text; null when the model only called tools.")
    ]
    refusal: Annotated[str | None, Field(description="Why the model declined, if it did.")]
    tool_calls: list[StrictToolCall] | None = Field(
        None, description="Functions the model wants the caller to run."
    )
    reasoning_content: Annotated[
        str | None,
        Field(
            description="Visible chain of thought, sent by reasoning servers such as DeepSeek, vLLM and llama.cpp."
        ),
    ] = None
    reasoning: Annotated[
        str | None,
        Field(
            description="The same visible reasoning under the name Groq, OpenRouter, Cerebras and Ollama use."
        ),
    ] = None


class StrictTokenLogprob(WireModel):
    """
    Strict twin of `TokenLogprob`: fields OpenAI marks required must be present. A generated token, its log probability and its likeliest alternatives.
    """

    token: Annotated[str, Field(description="The token text.")]
    logprob: Annotated[float, Field(description="Natural log of the token's probability.")]
    bytes: Annotated[
        list[int] | None,
        Field(description="UTF-8 bytes of the token; null when it has no text form."),
    ]
    top_logprobs: list[StrictTopLogprob] = Field(
        ..., description="The most likely tokens at this position."
    )


class StrictToolCall(WireModel):
    """
    Strict twin of `ToolCall`: fields OpenAI marks required must be present. A request from the model to run one function.
    """

    id: Annotated[str, Field(description="Id to quote in the tool message carrying the result.")]
    type: Annotated[Literal["function"], Field(description="Tool kind.")]
    function: StrictFunctionCall


class StrictToolCallDelta(WireModel):
    """
    Strict twin of `ToolCallDelta`: fields OpenAI marks required must be present. A fragment of one tool call; id, type and name come first, arguments arrive in pieces.
    """

    index: Annotated[
        int, Field(description="Which tool call of the message this fragment extends.")
    ]
    id: Annotated[str | None, Field(description="Tool call id (first fragment only).")] = None
    type: Annotated[
        Literal["function"] | None, Field(description="Tool kind (first fragment only).")
    ] = None
    function: StrictFunctionCallDelta | None = None


class StrictTopLogprob(WireModel):
    """
    Strict twin of `TopLogprob`: fields OpenAI marks required must be present. A candidate token at one position.
    """

    token: Annotated[str, Field(description="The token text.")]
    logprob: Annotated[float, Field(description="Natural log of the token's probability.")]
    bytes: Annotated[
        list[int] | None,
        Field(description="UTF-8 bytes of the token; null when it has no text form."),
    ]


class StrictUsage(WireModel):
    """
    Strict twin of `Usage`: fields OpenAI marks required must be present. Token accounting for one request.
    """

    prompt_tokens: Annotated[int, Field(description="Tokens in the input.")]
    completion_tokens: Annotated[int, Field(description="Tokens generated.")]
    total_tokens: Annotated[int, Field(description="Input plus generated tokens.")]
    prompt_tokens_details: StrictPromptTokensDetails | None = None
    completion_tokens_details: StrictCompletionTokensDetails | None = None


class SystemMessage(WireModel):
    """
    Instructions that frame the whole conversation.
    """

    role: Annotated[Literal["system"], Field(description="Author of this turn.")]
    content: str | TextParts = Field(
        ..., description="The turn's content: plain text or a list of parts."
    )
    name: Annotated[
        str | None,
        Field(description="Optional label telling apart participants that share a role."),
    ] = None


class TextPart(WireModel):
    """
    A piece of plain text.
    """

    type: Annotated[Literal["text"], Field(description="Part kind.")]
    text: Annotated[str, Field(description="The text.")]


AssistantContentParts = TypeAliasType(
    "AssistantContentParts",
    Annotated[
        list[Annotated[TextPart | RefusalPart, Field(discriminator="type")]],
        Field(
            description="Assistant content given as a non-empty list of text and refusal parts.",
            min_length=1,
        ),
    ],
)
"""
Assistant content given as a non-empty list of text and refusal parts.
"""


TextParts = TypeAliasType(
    "TextParts",
    Annotated[
        list[TextPart],
        Field(description="Content given as a non-empty list of text parts.", min_length=1),
    ],
)
"""
Content given as a non-empty list of text parts.
"""


class TokenLogprob(WireModel):
    """
    A generated token, its log probability and its likeliest alternatives.
    """

    token: Annotated[str | None, Field(description="The token text.")] = None
    logprob: Annotated[
        float | None, Field(description="Natural log of the token's probability.")
    ] = None
    bytes: Annotated[
        list[int] | None,
        Field(description="UTF-8 bytes of the token; null when it has no text form."),
    ] = None
    top_logprobs: list[TopLogprob] = Field(
        [], description="The most likely tokens at this position.", validate_default=True
    )


class ToolCall(WireModel):
    """
    A request from the model to run one function.
    """

    id: Annotated[
        str | None, Field(description="Id to quote in the tool message carrying the result.")
    ] = None
    type: Annotated[str | None, Field(description="Tool kind.")] = None
    function: FunctionCall | None = None


class ToolCallDelta(WireModel):
    """
    A fragment of one tool call; id, type and name come first, arguments arrive in pieces.
    """

    index: Annotated[
        int | None, Field(description="Which tool call of the message this fragment extends.")
    ] = None
    id: Annotated[str | None, Field(description="Tool call id (first fragment only).")] = None
    type: Annotated[str | None, Field(description="Tool kind (first fragment only).")] = None
    function: FunctionCallDelta | None = None


class ToolChoiceFunction(WireModel):
    """
    The function that must be called.
    """

    name: Annotated[str, Field(description="Function name.")]


class ToolDefinition(WireModel):
    """
    A function the model may call.
    """

    type: Annotated[Literal["function"], Field(description="Tool kind.")]
    function: FunctionDefinition


class ToolMessage(WireModel):
    """
    The result of running one tool call, sent back to the model.
    """

    role: Annotated[Literal["tool"], Field(description="Author of this turn.")]
    content: Annotated[
        str | TextParts, Field(description="The turn's content: plain text or a list of parts.")
    ]
    tool_call_id: Annotated[str, Field(description="The id of the tool call this result answers.")]


class TopLogprob(WireModel):
    """
    A candidate token at one position.
    """

    token: Annotated[str | None, Field(description="The token text.")] = None
    logprob: Annotated[
        float | None, Field(description="Natural log of the token's probability.")
    ] = None
    bytes: Annotated[
        list[int] | None,
        Field(description="UTF-8 bytes of the token; null when it has no text form."),
    ] = None


class Usage(WireModel):
    """
    Token accounting for one request.
    """

    prompt_tokens: Annotated[int | None, Field(description="Tokens in the input.")] = None
    completion_tokens: Annotated[int | None, Field(description="Tokens generated.")] = None
    total_tokens: Annotated[int | None, Field(description="Input plus generated tokens.")] = None
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class UserMessage(WireModel):
    """
    A turn written by the person using the application.
    """

    role: Annotated[Literal["user"], Field(description="Author of this turn.")]
    content: str | UserContentParts = Field(
        ..., description="The turn's content: plain text or a list of parts."
    )
    name: Annotated[
        str | None,
        Field(description="Optional label telling apart participants that share a role."),
    ] = None


class VideoUrl(WireModel):
    """
    Where to find a video.
    """

    url: Annotated[
        str, Field(description="http(s) URL, or data:video/...;base64,... with the bytes inline.")
    ]


class VideoUrlPart(WireModel):
    """
    A video, by URL or as a data: URL. Understood by some compatible servers only.
    """

    type: Annotated[Literal["video_url"], Field(description="Part kind.")]
    video_url: VideoUrl


UserContentParts = TypeAliasType(
    "UserContentParts",
    Annotated[
        list[
            Annotated[
                TextPart | ImageUrlPart | InputAudioPart | FilePart | VideoUrlPart,
                Field(discriminator="type"),
            ]
        ],
        Field(
            description="User content given as a non-empty list of text, image, audio, file or video parts.",
            min_length=1,
        ),
    ],
)
"""
User content given as a non-empty list of text, image, audio, file or video parts.
"""


SCHEMA_VERSION = "1.2.0"
"""Version of the schema these models were generated from."""
