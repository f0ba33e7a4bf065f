"""``ChatAgent``: the public facade over one conversation, its tools and its statistics.

The agent validates what it is given and hands each call to its turn runner (``_turn.py``):
the runner prepares the call once, runs the model <-> tool loop and commits the turn to the
conversation only when the whole call succeeded. A failed or cancelled call leaves the
history exactly as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from . import _generated as gen
from ._call_args import (
    STREAM_STRUCTURED_KEYS,
    STRUCTURED_CHAT_KEYS,
    CallOptions,
    ChatArgs,
    MediaArg,
    StructuredChatArgs,
    StructuredStreamArgs,
    ToolSpec,
    Unpack,
    WireFormat,
    split_call_args,
)
from ._call_checks import check_flags, check_output_options
from ._config import ModelConfig, RuntimeConfig
from ._conversation import Conversation
from ._errors import ConfigurationError
from ._events import StreamEvent
from ._messages import ChatMessage
from ._model_call import ModelCalls
from ._redact import redact_url
from ._stats import Stats
from ._stream_handle import ChatStream, ClosesOnExit, OpenStreams, reply_text
from ._text import check_encodable
from ._turn import TurnRunner

if TYPE_CHECKING:
    import httpx
    from pydantic import BaseModel

    from ._model_list import ModelList
    from ._output_modes import StructuredStream
    from ._transport import Sleep
    from .tools import ToolRegistry, ToolResult

__all__ = ["ChatAgent", "MediaArg", "ToolSpec"]


T = TypeVar("T")


def _check_type(name: str, value: Any, kind: type) -> None:
    if value is not None and not isinstance(value, kind):
        raise ConfigurationError(
            f"{name} must be a {kind.__name__}", {"field": name, "value": type(value).__name__}
        )


class ChatAgent(ClosesOnExit):
    """A conversation with an OpenAI-compatible chat API.

    Use it as an async context manager: ``async with ChatAgent(cfg, rt) as agent:``. It owns
    one HTTP connection pool, the history, the registered tools and the statistics.
    """

    def __init__(
        self,
        model_config: ModelConfig | None = None,
        runtime_config: RuntimeConfig | None = None,
        *,
        http_transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        _check_type("model_config", model_config, ModelConfig)
        _check_type("runtime_config", runtime_config, RuntimeConfig)
        self.model_config = model_config if model_config is not None else ModelConfig()
        self.runtime_config = runtime = runtime_config or RuntimeConfig()
        self._stats = stats = Stats(runtime.capture_token_usage, runtime.capture_latency)
        self._calls = ModelCalls(self.model_config, runtime, stats, http_transport, sleep)
        self._transport = self._calls.transport
        self._state = Conversation(self._transport.log)
        self._streams = OpenStreams()  # streams that may still hold a connection
        self._runner = TurnRunner(runtime, self._calls, stats, self._state, self._streams)

    @property
    def last_response(self) -> gen.ChatCompletion | None:
        """The full typed response of the last successful model call (also of a structured
        answer that failed validation, so that it is never lost)."""
        return self._state.last_response

    @last_response.setter
    def last_response(self, value: gen.ChatCompletion | None) -> None:
        self._state.last_response = value

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> ChatAgent:
        await self._transport.open()
        return self

    async def aclose(self) -> None:
        """Close the connection pool (``async with`` does this for you)."""
        await self._transport.aclose()

    def __repr__(self) -> str:
        cfg = self.model_config
        return (
            f"ChatAgent(model={cfg.model!r}, api_base_url={redact_url(cfg.api_base_url)!r}, "
            f"messages={len(self._state.history)}, tools={len(self._state.tools or ())})"
        )

    # ------------------------------------------------------------------ history
    @property
    def history(self) -> tuple[ChatMessage, ...]:
        """A read-only view of the conversation."""
        return tuple(self._state.history)

    @property
    def system_prompt(self) -> str | None:
        system = self._state.system_message()
        return system.text if system is not None else None

    def set_system_prompt(self, prompt: str) -> None:
        """Set (or replace) the system prompt at the start of the conversation."""
        if not isinstance(prompt, str):
            raise ConfigurationError(
                "the system prompt must be a string", {"field": "prompt", "value": prompt}
            )
        check_encodable(prompt, "prompt")
        self._state.set_system_message(ChatMessage(role="system", content=prompt))

    def add_message(self, message: ChatMessage | Mapping[str, Any] | BaseModel) -> None:
        """Append a message to the history as it is.

        A ``ChatMessage``, a message dict in the official wire format, or a response message
        (``agent.last_response.choices[0].message``, an ``openai`` SDK message); anything
        invalid raises ``ConfigurationError`` naming the field.
        """
        coerced = ChatMessage.coerce(message)
        check_encodable(coerced.text, "message.content")
        self._state.history.append(coerced)

    def clear_history(self, keep_system: bool = True) -> None:
        """Forget the conversation (keeping the system prompt unless told otherwise)."""
        check_flags(keep_system=keep_system)
        system = self._state.system_message() if keep_system else None
        self._state.replace([system] if system is not None else [])

    def replace_history(
        self, messages: Sequence[ChatMessage | Mapping[str, Any] | BaseModel]
    ) -> None:
        """Replace the whole conversation (used when loading a saved one); takes what
        ``add_message`` takes, and changes nothing when one message is invalid."""
        if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Iterable):
            raise ConfigurationError("replace_history takes a list of messages", {})
        self._state.replace([ChatMessage.coerce(m) for m in messages])

    def save_history(self, path: str | os.PathLike[str]) -> None:
        """Write the conversation to a JSON file (media kept as references); its directory
        must exist."""
        from ._history import save_history

        save_history(self._state.history, path)

    def load_history(self, path: str | os.PathLike[str]) -> None:
        """Replace the conversation with one saved by ``save_history``.

        A missing, corrupt or foreign file raises ``ConfigurationError`` and changes nothing.
        """
        from ._history import load_history

        self.replace_history(load_history(path))

    # ------------------------------------------------------------------ tools
    def register_tool(self, tool: ToolSpec, handler: Callable[..., Any] | None = None) -> None:
        """Register a tool: a ``@tool`` function, or a hand-made ``Tool`` with its handler."""
        from .tools import Tool

        if isinstance(tool, Tool) and handler is None:
            raise ConfigurationError(
                f"tool {tool.name!r} needs a handler: register_tool(tool, handler)",
                {"tool": tool.name},
            )
        self.tools.register(tool, handler)

    def clear_tools(self) -> None:
        """Forget every registered tool."""
        if self._state.tools is not None:
            self._state.tools.clear()

    @property
    def tools(self) -> ToolRegistry:
        """The registered tools."""
        if self._state.tools is None:
            from .tools import ToolRegistry

            self._state.tools = ToolRegistry()
        return self._state.tools

    @property
    def pending_tool_calls(self) -> list[gen.ToolCall]:
        """Tool calls the model asked for in a ``chat(..., auto_execute_tools=False)`` call."""
        return self._state.pending_calls

    # ------------------------------------------------------------------ stats
    def get_stats(self) -> dict[str, Any]:
        """Requests, successes, failures, retries, tokens, latency and streaming figures."""
        return self._stats.as_dict()

    def reset_stats(self) -> None:
        """Zero every counter."""
        self._stats.reset()

    # ------------------------------------------------------------------ models
    async def list_models(self) -> ModelList:
        """The models the server offers (iterate it, or read ``.data``)."""
        await self._streams.close_abandoned()
        return await self._calls.list_models()

    async def retrieve_model(self, model_id: str) -> gen.Model:
        """One model by id; a missing model raises ``ModelNotFoundError``."""
        if not isinstance(model_id, str) or not model_id:
            raise ConfigurationError("model_id must be a non-empty string", {"field": "model_id"})
        await self._streams.close_abandoned()
        return await self._calls.retrieve_model(model_id)

    # ------------------------------------------------------------------ chat
    @overload
    async def chat(
        self,
        text: str,
        image_paths: MediaArg = None,
        video_paths: MediaArg = None,
        add_to_history: bool = True,
        auto_execute_tools: bool = True,
        *,
        response_format: WireFormat | None = None,
        **kwargs: Unpack[StructuredChatArgs],
    ) -> str: ...

    @overload
    async def chat(
        self,
        text: str,
        image_paths: MediaArg = None,
        video_paths: MediaArg = None,
        add_to_history: bool = True,
        auto_execute_tools: bool = True,
        *,
        response_format: type[T],
        **kwargs: Unpack[StructuredChatArgs],
    ) -> T: ...

    async def chat(
        self,
        text: str,
        image_paths: MediaArg = None,
        video_paths: MediaArg = None,
        add_to_history: bool = True,
        auto_execute_tools: bool = True,
        *,
        response_format: type[Any] | WireFormat | None = None,
        **kwargs: Unpack[StructuredChatArgs],
    ) -> Any:
        """One turn: send ``text`` (and media), run requested tools, return the reply text.

        Media are validated before anything is sent: images and videos, ``audio_paths``
        (WAV or MP3, sent as ``input_audio``) and ``file_paths`` (PDF, sent as ``file``
        parts), each one item or a list of paths, bytes or ``data:`` URLs.

        With ``response_format=SomeModel`` the reply is validated and returned as a
        ``SomeModel`` instance, asked for the ``output_mode`` way (default: the runtime's,
        ``"auto"``), and asked again with the errors up to ``max_output_retries`` times. The
        user message and the reply enter the history only when the call succeeds (and
        ``add_to_history`` is true).
        """
        check_flags(add_to_history=add_to_history, auto_execute_tools=auto_execute_tools)
        args, overrides = split_call_args(kwargs, STRUCTURED_CHAT_KEYS)
        check_output_options(args.get("output_mode"), args.get("max_output_retries"))
        call = self._runner.prepare(
            self.model_config,
            args,
            overrides,
            response_format,
            auto_execute=auto_execute_tools,
            keep=add_to_history,
        )
        user = await self._runner.user_message(call, text, image_paths, video_paths, args)
        return await self._runner.reply(call, user)

    async def submit_tool_results(
        self,
        results: Mapping[str, Any] | Sequence[ToolResult | Mapping[str, Any]],
        *,
        add_to_history: bool = True,
        auto_execute_tools: bool = True,
        **overrides: Unpack[CallOptions],
    ) -> str:
        """Answer the pending tool calls (``auto_execute_tools=False``) and continue the turn.

        ``results`` maps each tool call id to its result (any JSON-serialisable value), or is
        a list of ``ToolResult`` or of ``{"tool_call_id": ..., "content": ...}`` dicts. Every
        pending call must be answered. Until they are, a new ``chat``/``chat_stream`` raises
        ``ConfigurationError``; ``clear_history()`` drops them.
        """
        check_flags(add_to_history=add_to_history, auto_execute_tools=auto_execute_tools)
        call = self._runner.prepare(
            self.model_config, {}, overrides, auto_execute=auto_execute_tools, keep=add_to_history
        )
        return await self._runner.answer(call, results)

    # ------------------------------------------------------------------ streaming
    def chat_stream_events(
        self,
        text: str,
        image_paths: MediaArg = None,
        video_paths: MediaArg = None,
        add_to_history: bool = True,
        auto_execute_tools: bool = True,
        **kwargs: Unpack[ChatArgs],
    ) -> ChatStream[StreamEvent]:
        """Stream one turn as typed events (content, reasoning, tool calls, usage, finish).

        Tools requested by the model run when its turn ends (``ToolResultEvent`` each), and
        streaming continues with the model's follow-up. The turn enters the history only when
        the stream completes; stopping early leaves the history untouched.

        The stream (an async generator) closes its HTTP response when its loop ends, when
        ``async with agent.chat_stream_events(...) as stream:`` exits, on ``aclose()``, or
        when the task that left its loop early starts another call on this agent.
        """
        check_flags(add_to_history=add_to_history, auto_execute_tools=auto_execute_tools)
        events = self._runner.events(
            self.model_config,
            text,
            image_paths,
            video_paths,
            kwargs,
            add_to_history,
            auto_execute_tools,
        )
        return ChatStream(events, self._streams)

    def chat_stream(
        self,
        text: str,
        image_paths: MediaArg = None,
        video_paths: MediaArg = None,
        add_to_history: bool = True,
        display_stream: bool = True,
        *,
        auto_execute_tools: bool = True,
        **kwargs: Unpack[ChatArgs],
    ) -> ChatStream[str]:
        """Stream one turn, yielding the reply's text pieces as they arrive.

        ``display_stream`` also writes them to stdout; ``RuntimeConfig.stream_chunk_callback``
        gets every piece; ``stream_enable_progress`` shows a live indicator on stderr. It is
        the text of the event stream ``chat_stream_events`` yields, and closes the same ways
        (its loop ends, ``async with ... as stream:`` exits, ``aclose()``, or the task that
        left its loop starts another call on this agent).
        """
        check_flags(add_to_history=add_to_history, display_stream=display_stream)
        check_flags(auto_execute_tools=auto_execute_tools)
        events = self._runner.events(
            self.model_config,
            text,
            image_paths,
            video_paths,
            kwargs,
            add_to_history,
            auto_execute_tools,
        )
        return ChatStream(reply_text(events, self.runtime_config, display_stream), self._streams)

    def chat_stream_structured(
        self,
        text: str,
        image_paths: MediaArg = None,
        video_paths: MediaArg = None,
        add_to_history: bool = True,
        *,
        response_format: type[T],
        **kwargs: Unpack[StructuredStreamArgs],
    ) -> StructuredStream[T]:
        """Stream a structured answer: partial ``response_format`` objects, then the valid one.

        ``async for partial in agent.chat_stream_structured(text, response_format=Person)``
        yields the object as received so far each time it grows, and last the validated
        object. Modes and validation retries are those of ``chat``; a retry restarts the
        sequence (see ``StructuredStream.restarted``). The turn enters the history when the
        validated object has been yielded.
        """
        from ._output_modes import StructuredStream

        check_flags(add_to_history=add_to_history)
        if response_format is None or isinstance(response_format, (str, dict)):
            raise ConfigurationError(
                "chat_stream_structured needs a type as response_format",
                {"field": "response_format", "value": repr(response_format)},
            )
        args, overrides = split_call_args(kwargs, STREAM_STRUCTURED_KEYS)
        call = self._runner.prepare(
            self.model_config, args, overrides, response_format, stream=True, keep=add_to_history
        )
        updates = self._runner.structured(call, text, image_paths, video_paths, args)
        return StructuredStream(updates)
