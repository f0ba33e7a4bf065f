"""openai_chatapi: a typed, asyncio, schema-driven client for OpenAI-compatible chat APIs.

Quick use::

    from openai_chatapi import ChatAgent, ModelConfig, RuntimeConfig

    async with ChatAgent(ModelConfig(api_key="sk-...", model="gpt-4o")) as agent:
        print(await agent.chat("Hello"))
"""

from ._generated import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    Model,
    ModelList,
    ResponseMessage,
    ToolCall,
    Usage,
)
from ._version import __version__
from .agent import ChatAgent
from .config import CallOptions, ChatConfig, ModelConfig, RuntimeConfig
from .errors import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ChatAPIException,
    ConfigurationError,
    InternalServerError,
    MediaProcessingError,
    ModelNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    TokenLimitError,
    ToolExecutionError,
)
from .history import load_history, save_history
from .media import ImagePart, MediaSettings, VideoPart
from .messages import ChatMessage, TextPart
from .streaming import (
    ContentDeltaEvent,
    FinishEvent,
    ReasoningDeltaEvent,
    StreamEvent,
    ToolCallDeltaEvent,
    ToolResultEvent,
    UsageEvent,
)
from .tools import Tool, ToolFunction, ToolResult, tool

__all__ = [
    "APIConnectionError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CallOptions",
    "ChatAPIException",
    "ChatAgent",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatConfig",
    "ChatMessage",
    "Choice",
    "ConfigurationError",
    "ContentDeltaEvent",
    "FinishEvent",
    "ImagePart",
    "InternalServerError",
    "MediaProcessingError",
    "MediaSettings",
    "Model",
    "ModelConfig",
    "ModelList",
    "ModelNotFoundError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ReasoningDeltaEvent",
    "ResponseMessage",
    "RuntimeConfig",
    "StreamEvent",
    "TextPart",
    "TokenLimitError",
    "Tool",
    "ToolCall",
    "ToolCallDeltaEvent",
    "ToolExecutionError",
    "ToolFunction",
    "ToolResult",
    "ToolResultEvent",
    "Usage",
    "UsageEvent",
    "VideoPart",
    "__version__",
    "load_history",
    "save_history",
    "tool",
]
