"""``ChatAgent``: the conversation, its statistics and the tool loop.

Data flows one way: the agent asks the request builder for a body, the transport sends it,
the parser or stream reader turns the answer into models, and the agent commits the turn to
the history only when the whole call succeeded. A failed or cancelled call leaves the history
exactly as it was.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from . import _generated as gen
from ._accumulator import StreamAccumulator
from ._call_args import (
    CHAT_KEYS,
    STREAM_STRUCTURED_KEYS,
    STRUCTURED_CHAT_KEYS,
    CallOptions,
    ChatArgs,
    MediaArg,
    StructuredChatArgs,
    StructuredStreamArgs,
    ToolChoice,
    ToolSpec,
    TurnArgs,
    Unpack,
    split_call_args,
)
from ._call_checks import check_flags, check_output_options
from ._config import ModelConfig, RuntimeConfig
from ._conversation import Ticket, TurnGate, answers_for, pending_calls_error
from ._display import StreamDisplay
from ._errors import (
    ChatAPIException,
    ConfigurationError,
    ModelNotFoundError,
    NotFoundError,
    ToolExecutionError,
)
from ._events import ContentDeltaEvent, FinishEvent, StreamEvent, ToolResultEvent
from ._messages import ChatMessage, ContentPart, TextPart, call_to_wire
from ._parsing import parse_completion, parse_model, parse_model_list
from ._redact import redact_url, scrub_exception
from ._request import RequestOptions, build_body
from ._stats import Stats, StreamTiming
from ._stream_handle import ChatStream, OpenStreams
from ._streaming import read_stream
from ._text import check_encodable, repaired

if TYPE_CHECKING:
    import httpx
    from pydantic import BaseModel

    from ._model_list import ModelList
    from ._output_modes import StructuredStream
    from ._transport import Body, Sleep
    from .media import MediaSettings
    from .tools import ToolRegistry, ToolResult

__all__ = ["ChatAgent", "MediaArg", "ToolSpec"]

logger = logging.getLogger("openai_chatapi")

T = TypeVar("T")


def _configure_logging(runtime: RuntimeConfig) -> None:
    if not runtime.enable_logging:
        return
    logger.setLevel(logging.DEBUG if runtime.enable_debug else runtime.log_level)
    root = logging.getLogger()
    if not root.handlers and not any(
        not isinstance(h, logging.NullHandler) for h in logger.handlers
    ):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


def _wire_tool_choice(choice: ToolChoice | None) -> str | dict[str, Any] | None:
    """``tool_choice`` in wire form: a mode, or a named function from a name/Tool/@tool."""
    if choice is None or isinstance(choice, dict):
        return choice
    from .tools import Tool, ToolFunction

    if isinstance(choice, str):
        if choice in ("none", "auto", "required"):
            return choice
        name = choice
    elif isinstance(choice, (Tool, ToolFunction)):
        name = choice.name
    else:
        raise ConfigurationError(
            "tool_choice must be 'none', 'auto', 'required', a tool name, a Tool or a @tool",
            {"field": "tool_choice", "value": repr(choice)},
        )
    return {"type": "function", "function": {"name": name}}


class _Call:
    """Everything one ``chat``/``chat_stream`` call needs, resolved once."""

    __slots__ = ("auto_execute", "config", "options", "registry", "stream", "structured", "ticket")

    def __init__(
        self,
        config: ModelConfig,
        options: RequestOptions,
        registry: ToolRegistry | None,
        auto_execute: bool,
        stream: bool,
        structured: Any,
    ) -> None:
        self.config = config
        self.options = options
        self.registry = registry
        self.auto_execute = auto_execute
        self.stream = stream
        self.structured = structured
        self.ticket: Ticket | None = None  # set once the turn passed the agent's gate


class ChatAgent:
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
        if model_config is not None and not isinstance(model_config, ModelConfig):
            raise ConfigurationError(
                "model_config must be a ModelConfig",
                {"field": "model_config", "value": type(model_config).__name__},
            )
        if runtime_config is not None and not isinstance(runtime_config, RuntimeConfig):
            raise ConfigurationError(
                "runtime_config must be a RuntimeConfig",
                {"field": "runtime_config", "value": type(runtime_config).__name__},
            )
        self.model_config = model_config if model_config is not None else ModelConfig()
        self.runtime_config = runtime = runtime_config or RuntimeConfig()
        _configure_logging(runtime)
        self._stats = Stats(runtime.capture_token_usage, runtime.capture_latency)
        self._sleep: Sleep = sleep or asyncio.sleep
        # The network stack (httpx) loads with the first agent, not with the package.
        from ._transport import Transport

        self._transport = Transport(
            self.model_config,
            runtime,
            http_transport=http_transport,
            sleep=self._sleep,
            on_retry=self._stats.record_retry,
        )
        self._media: MediaSettings | None = None  # built on first use: media are optional
        self._history: list[ChatMessage] = []
        self._tools: ToolRegistry | None = None  # built on first use: tools are optional
        self._pending: list[ChatMessage] | None = None
        # Structured output: (model, requested mode) -> the way of asking that worked.
        self._output_modes: dict[tuple[str, str], str] = {}
        self._turns = TurnGate()  # one history-changing turn at a time; the epoch
        self._streams = OpenStreams()  # streams that may still hold a connection
        self._stale_media: set[str] = set()  # earlier turns' files already warned about
        self.last_response: gen.ChatCompletion | None = None
        """The full typed response of the last successful model call (also of a structured
        answer that failed validation, so that it is never lost)."""

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> ChatAgent:
        await self._transport.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (``async with`` does this for you)."""
        await self._transport.aclose()

    def __repr__(self) -> str:
        cfg = self.model_config
        return (
            f"ChatAgent(model={cfg.model!r}, api_base_url={redact_url(cfg.api_base_url)!r}, "
            f"messages={len(self._history)}, tools={len(self._tools or ())})"
        )

    # ------------------------------------------------------------------ history
    @property
    def history(self) -> tuple[ChatMessage, ...]:
        """A read-only view of the conversation."""
        return tuple(self._history)

    @property
    def system_prompt(self) -> str | None:
        first = self._history[0] if self._history else None
        return first.text if first is not None and first.role == "system" else None

    def set_system_prompt(self, prompt: str) -> None:
        """Set (or replace) the system prompt at the start of the conversation."""
        if not isinstance(prompt, str):
            raise ConfigurationError(
                "the system prompt must be a string", {"field": "prompt", "value": prompt}
            )
        check_encodable(prompt, "prompt")
        message = ChatMessage(role="system", content=prompt)
        if self._history and self._history[0].role == "system":
            self._history[0] = message
        else:
            self._history.insert(0, message)

    def add_message(self, message: ChatMessage | Mapping[str, Any] | BaseModel) -> None:
        """Append a message to the history as it is.

        A ``ChatMessage``, a message dict in the official wire format, or a response message
        (``agent.last_response.choices[0].message``, an ``openai`` SDK message); anything
        invalid raises ``ConfigurationError`` naming the field.
        """
        coerced = ChatMessage.coerce(message)
        check_encodable(coerced.text, "message.content")
        self._history.append(coerced)

    def clear_history(self, keep_system: bool = True) -> None:
        """Forget the conversation (keeping the system prompt unless told otherwise)."""
        system = self._history[0] if self._history and self._history[0].role == "system" else None
        self._history = [system] if keep_system and system is not None else []
        self._pending = None
        self._turns.new_epoch()

    def replace_history(
        self, messages: Sequence[ChatMessage | Mapping[str, Any] | BaseModel]
    ) -> None:
        """Replace the whole conversation (used when loading a saved one); takes what
        ``add_message`` takes, and changes nothing when one message is invalid."""
        if isinstance(messages, (str, bytes, Mapping)):
            raise ConfigurationError("replace_history takes a list of messages", {})
        self._history = [ChatMessage.coerce(m) for m in messages]
        self._pending = None
        self._turns.new_epoch()

    def save_history(self, path: str | os.PathLike[str]) -> None:
        """Write the conversation to a JSON file (media kept as references); its directory
        must exist."""
        from ._history import save_history

        save_history(self._history, path)

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

        if isinstance(tool, Tool):
            if handler is None:
                raise ConfigurationError(
                    f"tool {tool.name!r} needs a handler: register_tool(tool, handler)",
                    {"tool": tool.name},
                )
            self.tools.register(tool, handler)
        else:
            self.tools.register(tool, handler)

    def clear_tools(self) -> None:
        """Forget every registered tool."""
        if self._tools is not None:
            self._tools.clear()

    @property
    def tools(self) -> ToolRegistry:
        """The registered tools."""
        if self._tools is None:
            from .tools import ToolRegistry

            self._tools = ToolRegistry()
        return self._tools

    def _media_settings(self) -> MediaSettings:
        if self._media is None:
            from .media import MediaSettings

            self._media = MediaSettings.from_config(self.runtime_config)
        return self._media

    @property
    def pending_tool_calls(self) -> list[gen.ToolCall]:
        """Tool calls the model asked for in a ``chat(..., auto_execute_tools=False)`` call."""
        if not self._pending:
            return []
        return list(self._pending[-1].tool_calls or [])

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
        try:
            raw = await self._transport.request("GET", "models")
            return parse_model_list(raw, strict=self.runtime_config.strict_parsing)
        except ChatAPIException as exc:
            scrub_exception(exc, self._transport.secrets)
            raise

    async def retrieve_model(self, model_id: str) -> gen.Model:
        """One model by id; a missing model raises ``ModelNotFoundError``."""
        if not isinstance(model_id, str) or not model_id:
            raise ConfigurationError("model_id must be a non-empty string", {"field": "model_id"})
        strict = self.runtime_config.strict_parsing
        await self._streams.close_abandoned()
        try:
            raw = await self._transport.request("GET", f"models/{model_id}")
            return parse_model(gen.Model, raw, strict=strict, what="model")
        except ChatAPIException as exc:
            scrub_exception(exc, self._transport.secrets)
            if isinstance(exc, NotFoundError) and not isinstance(exc, ModelNotFoundError):
                raise ModelNotFoundError(f"model not found: {model_id}", exc.details) from None
            raise

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
        response_format: None = None,
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

    @overload
    async def chat(
        self,
        text: str,
        image_paths: MediaArg = None,
        video_paths: MediaArg = None,
        add_to_history: bool = True,
        auto_execute_tools: bool = True,
        *,
        response_format: dict[str, Any] | Literal["text", "json_object"],
        **kwargs: Unpack[StructuredChatArgs],
    ) -> str: ...

    async def chat(
        self,
        text: str,
        image_paths: MediaArg = None,
        video_paths: MediaArg = None,
        add_to_history: bool = True,
        auto_execute_tools: bool = True,
        *,
        response_format: type[Any] | dict[str, Any] | Literal["text", "json_object"] | None = None,
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
        output_mode = args.get("output_mode")
        max_output_retries = args.get("max_output_retries")
        check_output_options(output_mode, max_output_retries)
        call = self._prepare_call(
            args, overrides, response_format, auto_execute=auto_execute_tools, stream=None
        )
        if call.structured is not None:
            from ._output_modes import complete_structured, resolve

            mode, retries = resolve(self, output_mode, max_output_retries)
        user = await self._user_message(text, image_paths, video_paths, args)
        await self._streams.close_abandoned()  # before waiting for the turn it holds
        async with self._turns.turn(exclusive=add_to_history) as call.ticket:
            if self._pending:
                raise pending_calls_error(len(self.pending_tool_calls))
            if call.structured is not None:
                return await complete_structured(self, [user], call, add_to_history, mode, retries)
            return await self._complete_turn([user], call, add_to_history)

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
        call = self._prepare_call({}, overrides, None, auto_execute=auto_execute_tools, stream=None)
        await self._streams.close_abandoned()  # before waiting for the turn it holds
        async with self._turns.turn(exclusive=True) as call.ticket:
            if not self._pending:
                raise ConfigurationError("there are no pending tool calls to answer", {})
            answers = answers_for(self.pending_tool_calls, results)
            turn = [
                *self._pending,
                *(
                    ChatMessage(
                        role="tool", tool_call_id=a.tool_call_id, content=repaired(a.content)
                    )
                    for a in answers
                ),
            ]
            text = await self._complete_turn(turn, call, add_to_history)
        return str(text)

    async def _complete_turn(
        self,
        turn: list[ChatMessage],
        call: _Call,
        add_to_history: bool,
    ) -> Any:
        final: gen.ChatCompletion | None = None
        async with aclosing(self._run(turn, call)) as batches:
            async for batch in batches:
                last = batch[-1]
                if type(last) is FinishEvent:
                    final = last.response
        assert final is not None
        return self._finish(turn, call, final, add_to_history)

    def _finish(
        self,
        turn: list[ChatMessage],
        call: _Call,
        final: gen.ChatCompletion,
        add_to_history: bool,
    ) -> Any:
        """Commit a completed turn; return the reply text."""
        message = final.choices[0].message
        text = (message.content if message is not None else None) or ""
        if not self._turns.may_commit(call.ticket):
            # Started before clear_history()/load_history(), or taken over: not this
            # conversation's turn any more.
            logger.debug("a turn of a replaced conversation ended; it is not committed")
        elif turn[-1].role == "assistant" and turn[-1].tool_calls and not call.auto_execute:
            self._pending = turn
        else:
            self._pending = None
            if add_to_history:
                self._history.extend(turn)
        self.last_response = final
        return text

    async def _user_message(
        self,
        text: str,
        images: MediaArg,
        videos: MediaArg,
        args: TurnArgs,
    ) -> ChatMessage:
        if not isinstance(text, str):
            raise ConfigurationError(
                "text must be a string", {"field": "text", "value": type(text).__name__}
            )
        check_encodable(text, "text")
        audio = args.get("audio_paths")
        files = args.get("file_paths")
        if images is None and videos is None and audio is None and files is None:
            return ChatMessage(role="user", content=text)
        from ._media_history import attach_media

        # Validation reads files, probes videos and (frames mode) decodes them: not on the loop.
        media = await asyncio.to_thread(
            attach_media,
            images,
            videos,
            self._media_settings(),
            base_url=self.model_config.api_base_url,
            audio_paths=audio,
            file_paths=files,
            keep_bytes=self.runtime_config.keep_media_bytes,
        )
        if not media:
            return ChatMessage(role="user", content=text)
        parts: list[ContentPart] = [TextPart(text=text), *media]
        return ChatMessage(role="user", content=parts)

    def _prepare_call(
        self,
        args: StructuredChatArgs,
        overrides: CallOptions,
        response_format: type[Any] | dict[str, Any] | str | None,
        *,
        auto_execute: bool,
        stream: bool | None,
    ) -> _Call:
        config = (
            self.model_config.with_overrides(dict(overrides)) if overrides else self.model_config
        )
        registry = self._tools
        tools = args.get("tools")
        if tools:
            from .tools import Tool

            registry = self.tools.copy()
            for extra in tools:
                if isinstance(extra, Tool):
                    raise ConfigurationError(
                        f"per-call tools must be functions; register Tool {extra.name!r} "
                        "with its handler via register_tool",
                        {"tool": extra.name},
                    )
                registry.register(extra)
        structured: Any = None
        wire_format: dict[str, Any] | None
        if response_format is None:
            wire_format = None
        elif isinstance(response_format, dict):
            wire_format = response_format
        elif isinstance(response_format, str):
            if response_format not in ("text", "json_object"):
                raise ConfigurationError(
                    "response_format must be a type, a dict, 'text' or 'json_object'",
                    {"field": "response_format", "value": response_format},
                )
            wire_format = {"type": response_format}
        else:
            from ._output_modes import OutputPlan

            structured = OutputPlan(response_format)  # its mode sets the wire format
            wire_format = None
        options = RequestOptions(
            stream=config.stream if stream is None else stream,
            include_usage=self.runtime_config.stream_include_usage,
            tools=(registry.definitions() or None) if registry is not None else None,
            tool_choice=_wire_tool_choice(args.get("tool_choice")),
            parallel_tool_calls=args.get("parallel_tool_calls"),
            response_format=wire_format,
        )
        return _Call(config, options, registry, auto_execute, options.stream, structured)

    def _request_history(self, turn: list[ChatMessage], *, later_round: bool) -> list[ChatMessage]:
        history = self._history
        if not self.runtime_config.keep_media_in_history:
            history = [m.without_media() for m in history]
        if later_round:  # the turn's files were checked when it was first sent: now as history
            history = [*history, *turn]
            turn = []
        if any(m.has_media for m in history):
            from ._media_history import without_stale_media

            # An earlier turn's file that is gone or changed never fails this turn.
            history = without_stale_media(history, self._stale_media)
        return [*history, *turn]

    # ------------------------------------------------------------------ the loop
    async def _run(
        self, turn: list[ChatMessage], call: _Call
    ) -> AsyncGenerator[list[StreamEvent], None]:
        """Model turns and tool rounds until a reply without (auto-executed) tool calls.

        Yields batches of events (one per network read when streaming; the last batch of
        each model turn ends with its ``FinishEvent``). Messages produced along the way are
        appended to ``turn``; nothing touches the history here.
        """
        await self._streams.close_abandoned()  # a stream this task left frees its connection
        runtime = self.runtime_config
        rounds = 0
        failures = 0
        while True:
            history = self._request_history(turn, later_round=rounds > 0)
            if any(message.has_media for message in history):
                # Encoding re-checks files, may convert images or sample frames: off the loop.
                body = await asyncio.to_thread(
                    build_body,
                    call.config,
                    history,
                    call.options,
                    media_settings=self._media_settings,
                )
            else:
                body = build_body(
                    call.config, history, call.options, media_settings=self._media_settings
                )
            completion: gen.ChatCompletion | None = None
            if call.stream:
                async with aclosing(self._stream_once(body, call.config.n)) as batches:
                    async for batch in batches:
                        last = batch[-1]
                        if type(last) is FinishEvent:
                            completion = last.response
                        yield batch
            else:
                completion = await self._complete_once(body)
                yield [FinishEvent(completion.choices[0].finish_reason, completion)]
            assert completion is not None
            message = completion.choices[0].message
            content = message.content if message is not None else None
            calls = message.tool_calls if message is not None else None
            if not calls:
                turn.append(
                    ChatMessage(
                        role="assistant",
                        content=content or "",
                        reasoning_content=(
                            (message.reasoning_content or message.reasoning)
                            if message is not None
                            else None
                        ),
                    )
                )
                return
            self._stats.tool_calls += len(calls)
            assistant = ChatMessage.assistant_tool_calls(content, calls)
            turn.append(assistant)
            wire_calls = [call_to_wire(c) for c in assistant.tool_calls or ()]
            if not call.auto_execute:
                return
            rounds += 1
            if rounds > runtime.max_tool_rounds:
                raise ToolExecutionError(
                    f"the model kept calling tools for more than {runtime.max_tool_rounds} rounds",
                    {
                        "tool": wire_calls[0]["function"]["name"],
                        "error": "max_tool_rounds exceeded",
                        "arguments": wire_calls[0]["function"]["arguments"][:500],
                        "rounds": rounds - 1,
                    },
                )
            registry = call.registry if call.registry is not None else self.tools
            self._stats.tool_rounds += 1
            try:
                async with self._turns.running_tools():
                    results = await registry.execute(
                        wire_calls, timeout=runtime.tool_timeout, errors=runtime.tool_errors
                    )
            except ToolExecutionError:
                self._stats.tool_failures += 1
                raise
            succeeded = sum(1 for r in results if r.ok)
            self._stats.tool_successes += succeeded
            self._stats.tool_failures += len(results) - succeeded
            if call.options.tool_choice not in (None, "auto", "none"):
                # A forced tool ("required" or named) would be called again forever.
                call.options.tool_choice = None
            yield [
                ToolResultEvent(r.tool_call_id, r.name, r.content, r.ok, r.error) for r in results
            ]
            for result in results:
                turn.append(
                    ChatMessage(
                        role="tool",
                        tool_call_id=result.tool_call_id,
                        content=repaired(result.content),  # a handler's text may hold surrogates
                    )
                )
                if not result.ok:
                    failures += 1
                    if failures > runtime.max_tool_failures:
                        raise ToolExecutionError(
                            f"tool {result.name!r} failed too often: {result.error}",
                            {
                                "tool": result.name,
                                "error": result.error,
                                "arguments": result.arguments,
                                "failures": failures,
                            },
                        )

    async def _complete_once(self, body: Body) -> gen.ChatCompletion:
        started = time.perf_counter()
        try:
            raw = await self._transport.request("POST", "chat/completions", body)
            completion = parse_completion(
                raw, strict=self.runtime_config.strict_parsing, scrub=self._transport.secrets
            )
        except ChatAPIException as exc:
            scrub_exception(exc, self._transport.secrets)
            self._stats.record_failure()
            raise
        except BaseException:  # cancelled: the request was sent all the same
            self._stats.record_cancelled()
            raise
        self._stats.record_success(time.perf_counter() - started, completion.usage)
        return completion

    async def _stream_once(
        self, body: Body, choices: int = 1
    ) -> AsyncGenerator[list[StreamEvent], None]:
        """One streamed model turn in batches; failures before the first event are retried."""
        runtime = self.runtime_config
        retries = self._transport.retries()  # one budget for every retry of this model call
        while True:
            accumulator = StreamAccumulator()
            started = time.perf_counter()
            first: float | None = None
            connected = False
            try:
                async with (
                    self._transport.stream("chat/completions", body, retries) as chunks,
                    aclosing(
                        read_stream(
                            chunks,
                            accumulator,
                            strict=runtime.strict_parsing,
                            content_type=chunks.content_type,
                            choices=choices,
                            usage=runtime.stream_include_usage,
                            timeout=float(runtime.timeout),
                            sent_at=chunks.sent_at,
                        )
                    ) as batches,
                ):
                    connected = True
                    async for batch in batches:
                        if first is None:
                            first = time.perf_counter() - started
                        yield batch
                # Inside the try: a merged reply that does not validate is a failure like any.
                completion = accumulator.result()
            except ChatAPIException as exc:
                # Failures before the headers were already retried by the transport.
                retry = connected and first is None and not retries.exhausted
                if retry and retries.policy.retryable_error(exc):
                    try:
                        await retries.backoff(type(exc).__name__)
                    except BaseException:
                        self._stats.record_cancelled()
                        raise
                    continue
                scrub_exception(exc, self._transport.secrets)
                self._stats.record_failure()
                raise
            except BaseException:  # cancelled, or abandoned (closed at a yield)
                self._stats.record_cancelled()
                raise
            break
        duration = time.perf_counter() - started
        self._stats.record_success(duration, completion.usage)
        usage = completion.usage
        tokens = (usage.completion_tokens if usage is not None else None) or accumulator.chunks
        self._stats.record_stream(StreamTiming(first, duration, accumulator.chunks, tokens))
        yield [FinishEvent(accumulator.finish_reason, completion)]

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
        events = self._events(
            text, image_paths, video_paths, add_to_history, auto_execute_tools, kwargs
        )
        return ChatStream(events, self._streams)

    async def _events(
        self,
        text: str,
        image_paths: MediaArg,
        video_paths: MediaArg,
        add_to_history: bool,
        auto_execute_tools: bool,
        kwargs: ChatArgs,
    ) -> AsyncGenerator[StreamEvent, None]:
        args, overrides = split_call_args(kwargs, CHAT_KEYS)
        call = self._prepare_call(
            args, overrides, None, auto_execute=auto_execute_tools, stream=True
        )
        turn = [await self._user_message(text, image_paths, video_paths, args)]
        final: gen.ChatCompletion | None = None
        await self._streams.close_abandoned()  # before waiting for the turn it holds
        async with self._turns.turn(exclusive=add_to_history, streamed=True) as call.ticket:
            if self._pending:
                raise pending_calls_error(len(self.pending_tool_calls))
            async with aclosing(self._run(turn, call)) as batches:
                async for batch in batches:
                    last = batch[-1]
                    if type(last) is FinishEvent:
                        final = last.response
                    for event in batch:
                        yield event
            assert final is not None
            self._finish(turn, call, final, add_to_history)

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
        check_flags(
            add_to_history=add_to_history,
            display_stream=display_stream,
            auto_execute_tools=auto_execute_tools,
        )
        events = self._events(
            text, image_paths, video_paths, add_to_history, auto_execute_tools, kwargs
        )
        return ChatStream(self._text(events, display_stream), self._streams)

    async def _text(
        self, events: AsyncGenerator[StreamEvent, None], display_stream: bool
    ) -> AsyncGenerator[str, None]:
        runtime = self.runtime_config
        display = StreamDisplay(
            to_stdout=display_stream,
            callback=runtime.stream_chunk_callback,
            progress=runtime.stream_enable_progress,
        )
        completed = False
        try:
            async with aclosing(events):
                async for event in events:
                    # The text of the first choice, the one that enters the history.
                    if type(event) is ContentDeltaEvent and not event.choice:
                        if display.active:
                            display.write(event.text)
                        yield event.text
            completed = True
        finally:
            display.close(completed)

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
        from ._output_modes import OutputPlan, StructuredStream, resolve, run_structured

        check_flags(add_to_history=add_to_history)
        if response_format is None or isinstance(response_format, (str, dict)):
            raise ConfigurationError(
                "chat_stream_structured needs a type as response_format",
                {"field": "response_format", "value": repr(response_format)},
            )
        args, overrides = split_call_args(kwargs, STREAM_STRUCTURED_KEYS)
        call = self._prepare_call(args, overrides, response_format, auto_execute=True, stream=True)
        assert isinstance(call.structured, OutputPlan)
        mode, retries = resolve(self, args.get("output_mode"), args.get("max_output_retries"))

        async def updates() -> AsyncGenerator[Any, None]:
            user = await self._user_message(text, image_paths, video_paths, args)
            await self._streams.close_abandoned()  # before waiting for the turn it holds
            async with self._turns.turn(exclusive=add_to_history, streamed=True) as call.ticket:
                if self._pending:
                    raise pending_calls_error(len(self.pending_tool_calls))
                steps = run_structured(
                    self, [user], call, add_to_history, mode=mode, retries=retries, partials=True
                )
                async with aclosing(steps):
                    async for step in steps:
                        yield step

        return StructuredStream(updates())
