"""openai_chatapi: a typed, asyncio, schema-driven client for OpenAI-compatible chat APIs.

Quick use::

    from openai_chatapi import ChatAgent, ModelConfig, RuntimeConfig

    async with ChatAgent(ModelConfig(api_key="sk-...", model="gpt-4o")) as agent:
        print(await agent.chat("Hello"))
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._agent import ChatAgent
from ._config import CallOptions, ChatConfig, ModelConfig, RuntimeConfig
from ._errors import (
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
from ._events import (
    ContentDeltaEvent,
    FinishEvent,
    ReasoningDeltaEvent,
    StreamEvent,
    ToolCallDeltaEvent,
    ToolResultEvent,
    UsageEvent,
)
from ._generated import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    Model,
    ResponseMessage,
    ToolCall,
    Usage,
)
from ._messages import ChatMessage, RefusalPart, TextPart
from ._model_list import ModelList
from ._parts import AudioPart, FilePart, ImagePart, VideoPart
from ._stream_handle import ChatStream
from ._version import __version__

if TYPE_CHECKING:
    from ._history import load_history, save_history
    from ._output_modes import StructuredStream
    from .local import LocalServerExitedError
    from .media import MediaSettings
    from .sync import SyncChatAgent
    from .tools import Tool, ToolFunction, ToolResult, tool

# Optional machinery (tools, media, history files) loads on first use, keeping import fast.
_LAZY = {
    "LocalServerExitedError": "local",
    "load_history": "_history",
    "save_history": "_history",
    "MediaSettings": "media",
    "SyncChatAgent": "sync",
    "Tool": "tools",
    "ToolFunction": "tools",
    "ToolResult": "tools",
    "tool": "tools",
    "StructuredStream": "_output_modes",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'openai_chatapi' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "APIConnectionError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AudioPart",
    "AuthenticationError",
    "BadRequestError",
    "CallOptions",
    "ChatAPIException",
    "ChatAgent",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatConfig",
    "ChatMessage",
    "ChatStream",
    "Choice",
    "ConfigurationError",
    "ContentDeltaEvent",
    "FilePart",
    "FinishEvent",
    "ImagePart",
    "InternalServerError",
    "LocalServerExitedError",
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
    "RefusalPart",
    "ResponseMessage",
    "RuntimeConfig",
    "StreamEvent",
    "StructuredStream",
    "SyncChatAgent",
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
