"""The turn runner: one ``chat``/``chat_stream``/``submit_tool_results`` call from its
arguments to its commit.

A call is resolved once into a :class:`Call` (the model config with its overrides, the request
options, the tools, the output plan). The runner then takes the agent's turn gate, runs the
model <-> tool loop (:meth:`TurnRunner.run`, one model exchange per round through
:class:`~openai_chatapi._model_call.ModelCalls`), and commits the finished turn to the
:class:`~openai_chatapi._conversation.Conversation` (:meth:`TurnRunner.finish`). Data flows
one way: the runner reads the conversation and writes it only in the commit; a failed or
cancelled call leaves it exactly as it was. The facade (``ChatAgent``) hands the runner what
it needs and never the other way round.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from typing import TYPE_CHECKING, Any

from . import _generated as gen
from ._call_args import CHAT_KEYS, split_call_args
from ._conversation import answers_for
from ._errors import ConfigurationError, ToolExecutionError
from ._events import FinishEvent, StreamEvent, ToolResultEvent
from ._messages import ChatMessage, ContentPart, TextPart
from ._request import RequestOptions, build_body
from ._text import check_encodable, repaired

if TYPE_CHECKING:
    from ._call_args import (
        CallOptions,
        ChatArgs,
        MediaArg,
        StructuredChatArgs,
        ToolChoice,
        TurnArgs,
    )
    from ._config import ModelConfig, RuntimeConfig
    from ._conversation import Conversation, Ticket
    from ._model_call import ModelCalls
    from ._output_modes import OutputPlan
    from ._stats import Stats
    from ._stream_handle import OpenStreams
    from .media import MediaSettings
    from .tools import ToolRegistry, ToolResult

__all__ = ["Call", "TurnRunner"]


@dataclasses.dataclass(slots=True)
class Call:
    """Everything one call needs, resolved once before anything is sent."""

    config: ModelConfig
    options: RequestOptions
    registry: ToolRegistry | None
    auto_execute: bool
    keep: bool  # add_to_history
    plan: OutputPlan | None = None  # a structured answer (response_format=SomeType)
    ticket: Ticket | None = None  # set once the turn passed the agent's gate

    @property
    def stream(self) -> bool:
        return self.options.stream


def wire_tool_choice(choice: ToolChoice | None) -> str | dict[str, Any] | None:
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


def _wire_format(response_format: Any) -> dict[str, Any] | None:
    """A dict or ``"text"``/``"json_object"`` ``response_format`` as sent (a type: None)."""
    if response_format is None or isinstance(response_format, dict):
        return response_format
    if isinstance(response_format, str):
        if response_format not in ("text", "json_object"):
            raise ConfigurationError(
                "response_format must be a type, a dict, 'text' or 'json_object'",
                {"field": "response_format", "value": response_format},
            )
        return {"type": response_format}
    return None


@dataclasses.dataclass(slots=True)
class TurnRunner:
    """Runs the turns of one agent over its conversation, model calls and statistics."""

    runtime: RuntimeConfig
    calls: ModelCalls
    stats: Stats
    state: Conversation
    streams: OpenStreams
    _media: MediaSettings | None = None  # built on first use: media are optional

    # ------------------------------------------------------------------ preparation
    def prepare(
        self,
        config: ModelConfig,
        args: StructuredChatArgs,
        overrides: CallOptions,
        response_format: Any = None,
        *,
        auto_execute: bool = True,
        stream: bool | None = None,
        keep: bool = True,
    ) -> Call:
        """The call of these arguments; every invalid argument raises here, before sending."""
        if overrides:
            config = config.with_overrides(dict(overrides))
        registry = self.state.tools
        tools = args.get("tools")
        if tools is not None and not isinstance(tools, (list, tuple)):
            raise ConfigurationError(
                "tools must be a list of @tool functions (tools=[f], not tools=f)",
                {"field": "tools", "value": type(tools).__name__},
            )
        if tools:
            from .tools import Tool, ToolRegistry

            registry = registry.copy() if registry is not None else ToolRegistry()
            for extra in tools:
                if isinstance(extra, Tool):
                    raise ConfigurationError(
                        f"per-call tools must be functions; register Tool {extra.name!r} "
                        "with its handler via register_tool",
                        {"tool": extra.name},
                    )
                registry.register(extra)
        wire_format = _wire_format(response_format)
        plan = None
        if response_format is not None and wire_format is None:
            from ._output_modes import OutputPlan, resolve

            mode, retries = resolve(
                self.runtime, args.get("output_mode"), args.get("max_output_retries")
            )
            plan = OutputPlan(response_format, mode, retries)  # its mode sets the wire format
        options = RequestOptions(
            stream=config.stream if stream is None else stream,
            include_usage=self.runtime.stream_include_usage,
            tools=(registry.definitions() or None) if registry is not None else None,
            tool_choice=wire_tool_choice(args.get("tool_choice")),
            parallel_tool_calls=args.get("parallel_tool_calls"),
            response_format=wire_format,
        )
        return Call(config, options, registry, auto_execute, keep, plan)

    def media_settings(self) -> MediaSettings:
        if self._media is None:
            from .media import MediaSettings

            self._media = MediaSettings.from_config(self.runtime)
        return self._media

    async def user_message(
        self, call: Call, text: str, images: MediaArg, videos: MediaArg, args: TurnArgs
    ) -> ChatMessage:
        """The user's message: ``text`` and its media, validated (files read off the loop)."""
        if not isinstance(text, str):
            raise ConfigurationError(
                "text must be a string", {"field": "text", "value": type(text).__name__}
            )
        check_encodable(text, "text")
        audio = args.get("audio_paths")
        files = args.get("file_paths")
        if images is None and videos is None and audio is None and files is None:
            return ChatMessage(role="user", content=text)
        from .media._history import attach_media

        # Validation reads files, probes videos and (frames mode) decodes them: not on the loop.
        media = await asyncio.to_thread(
            attach_media,
            images,
            videos,
            self.media_settings(),
            base_url=call.config.api_base_url,
            audio_paths=audio,
            file_paths=files,
            keep_bytes=self.runtime.keep_media_bytes,
        )
        if not media:
            return ChatMessage(role="user", content=text)
        parts: list[ContentPart] = [TextPart(text=text), *media]
        return ChatMessage(role="user", content=parts)

    # ------------------------------------------------------------------ turns
    @asynccontextmanager
    async def _gate(self, call: Call, *, streamed: bool = False) -> AsyncIterator[None]:
        """Hold the agent's turn (when the call changes the history) with no calls pending."""
        await self.streams.close_abandoned()  # before waiting for the turn it holds
        async with self.state.gate.turn(exclusive=call.keep, streamed=streamed) as call.ticket:
            self.state.check_no_pending()
            yield

    async def reply(self, call: Call, user: ChatMessage) -> Any:
        """A non-streamed turn to its end: the reply text, or the validated structured value."""
        async with self._gate(call):
            if call.plan is not None:
                from ._output_modes import final_value, run_structured

                return await final_value(run_structured(self, [user], call, partials=False))
            return await self._complete([user], call)

    async def answer(
        self, call: Call, results: Mapping[str, Any] | Sequence[ToolResult | Mapping[str, Any]]
    ) -> str:
        """Answer the pending tool calls with ``results`` and continue the turn."""
        await self.streams.close_abandoned()  # before waiting for the turn it holds
        async with self.state.gate.turn(exclusive=True) as call.ticket:
            pending = self.state.pending
            if not pending:
                raise ConfigurationError("there are no pending tool calls to answer", {})
            answers = answers_for(self.state.pending_calls, results)
            turn = [*pending, *(_tool_message(a) for a in answers)]
            return str(await self._complete(turn, call))

    async def events(
        self,
        config: ModelConfig,
        text: str,
        images: MediaArg,
        videos: MediaArg,
        kwargs: ChatArgs,
        keep: bool,
        auto_execute: bool,
    ) -> AsyncGenerator[StreamEvent, None]:
        """A streamed turn's events; it is prepared when the first event is asked for."""
        args, overrides = split_call_args(kwargs, CHAT_KEYS)
        call = self.prepare(
            config, args, overrides, auto_execute=auto_execute, stream=True, keep=keep
        )
        turn = [await self.user_message(call, text, images, videos, args)]
        final: gen.ChatCompletion | None = None
        async with self._gate(call, streamed=True):
            async with aclosing(self.run(turn, call)) as batches:
                async for batch in batches:
                    last = batch[-1]
                    if type(last) is FinishEvent:
                        final = last.response
                    for event in batch:
                        yield event
            assert final is not None
            self.finish(turn, call, final)

    async def structured(
        self, call: Call, text: str, images: MediaArg, videos: MediaArg, args: TurnArgs
    ) -> AsyncGenerator[Any, None]:
        """A streamed structured turn's updates (partials, restarts, the final value)."""
        from ._output_modes import run_structured

        user = await self.user_message(call, text, images, videos, args)
        async with self._gate(call, streamed=True):
            steps = run_structured(self, [user], call, partials=True)
            async with aclosing(steps):
                async for step in steps:
                    yield step

    async def _complete(self, turn: list[ChatMessage], call: Call) -> str:
        final: gen.ChatCompletion | None = None
        async with aclosing(self.run(turn, call)) as batches:
            async for batch in batches:
                last = batch[-1]
                if type(last) is FinishEvent:
                    final = last.response
        assert final is not None
        return self.finish(turn, call, final)

    def finish(self, turn: list[ChatMessage], call: Call, final: gen.ChatCompletion) -> str:
        """Commit a completed turn; return the reply text."""
        message = final.choices[0].message
        self.state.commit(turn, call.ticket, final, keep=call.keep, auto_execute=call.auto_execute)
        return (message.content if message is not None else None) or ""

    # ------------------------------------------------------------------ the loop
    def _request_history(self, turn: list[ChatMessage], *, later_round: bool) -> list[ChatMessage]:
        history = self.state.history
        if not self.runtime.keep_media_in_history:
            history = [m.without_media() for m in history]
        if later_round:  # the turn's files were checked when it was first sent: now as history
            history = [*history, *turn]
            turn = []
        if any(m.has_media for m in history):
            from .media._history import without_stale_media

            # An earlier turn's file that is gone or changed never fails this turn.
            history = without_stale_media(history, self.state.stale, self.state.log)
        return [*history, *turn]

    async def run(
        self, turn: list[ChatMessage], call: Call
    ) -> AsyncGenerator[list[StreamEvent], None]:
        """Model turns and tool rounds until a reply without (auto-executed) tool calls.

        Yields batches of events (one per network read when streaming; the last batch of
        each model turn ends with its ``FinishEvent``). Messages produced along the way are
        appended to ``turn``; nothing touches the history here.
        """
        await self.streams.close_abandoned()  # a stream this task left frees its connection
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
                    media_settings=self.media_settings,
                )
            else:
                body = build_body(
                    call.config, history, call.options, media_settings=self.media_settings
                )
            completion: gen.ChatCompletion | None = None
            if call.stream:
                async with aclosing(self.calls.stream(body, call.config.n)) as batches:
                    async for batch in batches:
                        last = batch[-1]
                        if type(last) is FinishEvent:
                            completion = last.response
                        yield batch
            else:
                completion = await self.calls.complete(body)
                yield [FinishEvent(completion.choices[0].finish_reason, completion)]
            assert completion is not None
            message = completion.choices[0].message
            content = message.content if message is not None else None
            calls = message.tool_calls if message is not None else None
            if not calls:
                reasoning = (
                    (message.reasoning_content or message.reasoning)
                    if message is not None
                    else None
                )
                turn.append(
                    ChatMessage(
                        role="assistant", content=content or "", reasoning_content=reasoning
                    )
                )
                return
            self.stats.record_tool_calls(len(calls))
            assistant = ChatMessage.assistant_tool_calls(content, calls)
            turn.append(assistant)
            if not call.auto_execute:
                return
            rounds += 1
            results = await self._tool_round(call, assistant, rounds)
            yield [
                ToolResultEvent(r.tool_call_id, r.name, r.content, r.ok, r.error) for r in results
            ]
            for result in results:
                turn.append(_tool_message(result))
                if not result.ok:
                    failures += 1
                    if failures > self.runtime.max_tool_failures:
                        raise ToolExecutionError(
                            f"tool {result.name!r} failed too often: {result.error}",
                            {
                                "tool": result.name,
                                "error": result.error,
                                "arguments": result.arguments,
                                "failures": failures,
                            },
                        )

    async def _tool_round(
        self, call: Call, assistant: ChatMessage, rounds: int
    ) -> list[ToolResult]:
        """Run the tool calls of ``assistant`` (round number ``rounds``)."""
        runtime = self.runtime
        made = assistant.tool_calls or []  # completed: each has an id and a function
        if rounds > runtime.max_tool_rounds:
            first = made[0].function or gen.FunctionCall(name="")
            raise ToolExecutionError(
                f"the model kept calling tools for more than {runtime.max_tool_rounds} rounds",
                {
                    "tool": first.name,
                    "error": "max_tool_rounds exceeded",
                    "arguments": (first.arguments or "")[:500],
                    "rounds": rounds - 1,
                },
            )
        registry = call.registry if call.registry is not None else self.state.tools
        if registry is None:  # the model called a tool where none is registered
            from .tools import ToolRegistry

            registry = ToolRegistry()
        try:
            async with self.state.gate.running_tools():
                results = await registry.execute(
                    made,
                    timeout=runtime.tool_timeout,
                    errors=runtime.tool_errors,
                    secrets=self.calls.secrets,  # a handler may quote the key
                )
        except ToolExecutionError:
            self.stats.record_tool_round(failed=1)
            raise
        succeeded = sum(1 for r in results if r.ok)
        self.stats.record_tool_round(succeeded=succeeded, failed=len(results) - succeeded)
        if call.options.tool_choice not in (None, "auto", "none"):
            # A forced tool ("required" or named) would be called again forever.
            call.options.tool_choice = None
        return results


def _tool_message(result: ToolResult) -> ChatMessage:
    # A handler's text may hold lone surrogates: repaired before it is sent or kept.
    return ChatMessage(
        role="tool", tool_call_id=result.tool_call_id, content=repaired(result.content)
    )
