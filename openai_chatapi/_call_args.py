"""The keyword arguments of the chat methods, written once.

``ChatAgent.chat`` / ``chat_stream`` / ``chat_stream_events`` / ``chat_stream_structured``
(and their ``sync`` mirrors) take their seed positionals (``text``, ``image_paths``,
``video_paths``, ``add_to_history``, then ``auto_execute_tools`` or ``display_stream``) and,
keyword-only, one of the TypedDicts below: the turn's own arguments (tools, media, output
options) plus ``CallOptions``, the per-call overrides of ``ModelConfig``.
:func:`split_call_args` separates the two; an unknown keyword is left with the overrides,
whose check raises ``ConfigurationError`` naming it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from ._config import CallOptions

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover
    from typing_extensions import Unpack

if TYPE_CHECKING:
    from ._output_modes import OutputMode
    from .media import MediaInput
    from .tools import Tool, ToolFunction

__all__ = [
    "CHAT_KEYS",
    "STREAM_STRUCTURED_KEYS",
    "STRUCTURED_CHAT_KEYS",
    "CallOptions",
    "ChatArgs",
    "MediaArg",
    "OutputArgs",
    "StructuredChatArgs",
    "StructuredStreamArgs",
    "ToolChoice",
    "ToolSpec",
    "TurnArgs",
    "Unpack",
    "split_call_args",
]

ToolSpec: TypeAlias = "Tool | ToolFunction[..., Any] | Callable[..., Any]"
"""A tool as given to ``register_tool`` or ``tools=[...]``: a ``@tool``, a ``Tool`` or a
plain function."""
ToolChoice: TypeAlias = "str | Tool | ToolFunction[..., Any] | dict[str, Any]"
"""``tool_choice``: ``"none"``/``"auto"``/``"required"``, a tool's name, a ``Tool``, a
``@tool`` or the wire dict."""
MediaArg: TypeAlias = "MediaInput | Sequence[MediaInput] | None"
"""Media of one kind: one item or a list (paths, bytes or ``data:`` URLs)."""


class TurnArgs(CallOptions, total=False):
    """What every turn-starting method takes besides ``CallOptions``."""

    tools: Sequence[ToolSpec] | None
    tool_choice: ToolChoice | None
    audio_paths: MediaArg
    file_paths: MediaArg


class ChatArgs(TurnArgs, total=False):
    """The keyword arguments of ``chat_stream`` and ``chat_stream_events``."""

    parallel_tool_calls: bool | None


class OutputArgs(CallOptions, total=False):
    """How a structured answer (``response_format=SomeType``) is asked for."""

    output_mode: OutputMode | None
    max_output_retries: int | None


class StructuredChatArgs(ChatArgs, OutputArgs, total=False):
    """The keyword arguments of ``chat`` (besides ``response_format``)."""


class StructuredStreamArgs(TurnArgs, OutputArgs, total=False):
    """The keyword arguments of ``chat_stream_structured`` (besides ``response_format``)."""


_OPTION_KEYS = CallOptions.__optional_keys__
CHAT_KEYS = ChatArgs.__optional_keys__ - _OPTION_KEYS
STRUCTURED_CHAT_KEYS = StructuredChatArgs.__optional_keys__ - _OPTION_KEYS
STREAM_STRUCTURED_KEYS = StructuredStreamArgs.__optional_keys__ - _OPTION_KEYS


def split_call_args(
    kwargs: Mapping[str, Any], keys: frozenset[str]
) -> tuple[StructuredChatArgs, CallOptions]:
    """``kwargs`` as (the turn's arguments among ``keys``, everything else as overrides).

    Anything not in ``keys`` goes to the overrides, which ``ModelConfig.with_overrides``
    checks: an unknown keyword (or one the method does not take) is refused there.
    """
    args: dict[str, Any] = {}
    overrides: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in keys:
            args[key] = value
        else:
            overrides[key] = value
    return cast("StructuredChatArgs", args), cast("CallOptions", overrides)
