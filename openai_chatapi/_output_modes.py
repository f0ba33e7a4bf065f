"""Structured output on any server: output modes, their fallback, validation retries, partials.

A type given as ``response_format`` is prepared once (:class:`OutputPlan`) and can then be
asked for in three ways:

* ``native``: ``response_format: {"type": "json_schema", ...}``, strict where the schema allows;
* ``json``: ``response_format: {"type": "json_object"}`` with the schema in llama.cpp's
  ``schema`` extension field (sent again without it if the server rejects the field), and
  always an instruction describing the schema, appended to the user's message;
* ``tool``: one forced function call whose parameters are the schema; its arguments are the
  answer. Only that answer tool is offered (registered and per-call tools are not, nor run);
  it is named ``final_result``, or ``final_result_1``... when one of them has that name.

``auto`` tries native, then json, then tool, moving on only when the server rejects the request
because of the format (a 400/422, or llama.cpp's 500, naming ``response_format``/the schema),
and remembers per agent and model what worked. Whatever the mode, the history receives the
user's message as written and the answer as a plain assistant message holding the JSON text.

An answer that is not valid JSON or fails validation is shown to the model with the errors,
up to ``max_output_retries`` times; only the final exchange enters the history.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Literal

from . import _generated as gen
from ._errors import (
    APIResponseError,
    APIStatusError,
    ConfigurationError,
    TokenLimitError,
    truncate,
)
from ._events import ContentDeltaEvent, FinishEvent, ToolCallDeltaEvent
from ._messages import ChatMessage, TextPart
from ._partial import PartialParser
from ._stream_handle import StructuredStream

if TYPE_CHECKING:
    from ._config import RuntimeConfig
    from ._output_schema import OutputSchema
    from ._turn import Call, TurnRunner

__all__ = [
    "OUTPUT_MODES",
    "OutputMode",
    "OutputPlan",
    "StructuredStream",
    "check_output_mode",
    "check_output_retries",
    "final_value",
    "resolve",
    "run_structured",
]


OutputMode = Literal["auto", "native", "json", "tool"]
OUTPUT_MODES: tuple[str, ...] = ("auto", "native", "json", "tool")

# The ways of asking, in auto's order; "json_plain" is json mode without the schema field.
_VARIANTS: dict[str, tuple[str, ...]] = {
    "auto": ("native", "json", "json_plain", "tool"),
    "native": ("native",),
    "json": ("json", "json_plain"),
    "tool": ("tool",),
}
_MODE_OF = {"native": "native", "json": "json", "json_plain": "json", "tool": "tool"}
_TOOL_NAME = "final_result"
# Words by which a server's rejection names the structured-output part of the request.
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "schema", "structured output")
_REJECTION_STATUSES = frozenset({400, 415, 422, 500, 501})


def check_output_mode(value: Any, field: str = "output_mode") -> str:
    if value not in OUTPUT_MODES:
        raise ConfigurationError(
            f"{field} must be one of {', '.join(repr(m) for m in OUTPUT_MODES)}, not {value!r}",
            {"field": field, "value": repr(value)},
        )
    return str(value)


def check_output_retries(value: Any, field: str = "max_output_retries") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(
            f"{field} must be an integer >= 0, not {value!r}",
            {"field": field, "value": repr(value)},
        )
    return value


def is_format_rejection(exc: APIStatusError) -> bool:
    """Whether an error status says the server does not accept the output format asked for."""
    if exc.status_code not in _REJECTION_STATUSES or isinstance(exc, TokenLimitError):
        return False
    details = exc.details
    text = " ".join(
        str(part)
        for part in (exc.message, details.get("body"), details.get("error_param"))
        if part is not None
    ).lower()
    return any(word in text for word in _FORMAT_WORDS)


def _error_lines(err: APIResponseError) -> str:
    errors = err.details.get("errors") or []
    if not errors:
        return err.message
    lines = []
    for item in errors[:20]:
        loc = ".".join(str(part) for part in item.get("loc", ())) or "(root)"
        lines.append(f"- {loc}: {item.get('msg', '')}")
    if len(errors) > 20:
        lines.append(f"- and {len(errors) - 20} more")
    return "\n".join(lines)


class OutputPlan:
    """One call's output type, prepared once for every mode: its schema (strict where it can
    be), request options, answer extraction, parsing; and the call's mode and retry budget."""

    def __init__(self, tp: Any, mode: str = "auto", retries: int = 0) -> None:
        from ._output_schema import output_schema

        self.type = tp
        self.mode = mode
        self.retries = retries
        schema: OutputSchema[Any]
        try:
            schema = output_schema(tp, strict=True)
        except ConfigurationError:  # dict, Any...: strict mode cannot express it
            schema = output_schema(tp, strict=False)
        self.schema = schema
        self.name = schema.name
        self.tool_name = _TOOL_NAME
        """The answer tool's name: ``final_result``, or ``final_result_1``... when a tool of
        the call already has that name (set by :meth:`call_for`)."""

    # ------------------------------------------------------------- the request
    def tool_definition(self) -> dict[str, Any]:
        function: dict[str, Any] = {
            "name": self.tool_name,
            "description": f"Give the final answer as {self.name}.",
            "parameters": self.schema.schema,
        }
        if self.schema.strict:
            function["strict"] = True
        return {"type": "function", "function": function}

    def instruction(self) -> str:
        schema = json.dumps(self.schema.schema, ensure_ascii=False)
        return (
            "Answer with one JSON object that matches this JSON schema, and nothing else "
            f"(no Markdown fence, no text before or after):\n{schema}"
        )

    def call_for(self, variant: str, call: Call) -> Call:
        """The call of ``call`` asking for this type the ``variant`` way."""
        options = dataclasses.replace(call.options)
        if variant == "native":
            options.response_format = self.schema.response_format()
        elif variant == "json":
            options.response_format = {"type": "json_object", "schema": self.schema.schema}
        elif variant == "json_plain":
            options.response_format = {"type": "json_object"}
        else:  # tool: only the answer tool is offered, and it is forced
            self.tool_name = _unique_tool_name(call.options.tools)
            options.response_format = None
            options.tools = [self.tool_definition()]
            options.tool_choice = {"type": "function", "function": {"name": self.tool_name}}
            options.parallel_tool_calls = None
            return dataclasses.replace(call, options=options, registry=None, auto_execute=False)
        return dataclasses.replace(call, options=options)

    def user_message(self, variant: str, message: ChatMessage) -> ChatMessage:
        """The user's message as sent: json variants append the schema instruction."""
        if variant not in ("json", "json_plain") or message.role != "user":
            return message
        note = self.instruction()
        content = message.content
        if isinstance(content, list):
            return message.model_copy(update={"content": [*content, TextPart(text=note)]})
        text = content or ""
        return message.model_copy(update={"content": f"{text}\n\n{note}" if text else note})

    # ------------------------------------------------------------- the answer
    def answer_call(self, message: gen.ResponseMessage | None) -> gen.ToolCall | None:
        calls: list[gen.ToolCall] = (message.tool_calls if message is not None else None) or []
        for call in calls:
            if call.function is not None and call.function.name == self.tool_name:
                return call
        return calls[0] if calls else None

    def answer_text(self, variant: str, final: gen.ChatCompletion) -> str:
        message = final.choices[0].message
        if variant == "tool":
            call = self.answer_call(message)
            if call is not None and call.function is not None:
                return call.function.arguments or ""
        return (message.content if message is not None else None) or ""

    def parse(self, text: str) -> Any:
        return self.schema.parse(text)

    def feedback(
        self, variant: str, final: gen.ChatCompletion, error: APIResponseError
    ) -> list[ChatMessage]:
        """The messages that show a failed answer its errors and ask again (sent, not kept)."""
        problems = _error_lines(error)
        message = final.choices[0].message
        call = self.answer_call(message) if variant == "tool" else None
        if call is not None and call.id:
            text = (
                f"The arguments did not validate as {self.name}:\n{problems}\n"
                f"Call {self.tool_name} again with corrected arguments."
            )
            return [ChatMessage(role="tool", tool_call_id=call.id, content=text)]
        how = f"Call {self.tool_name} with" if variant == "tool" else "Answer again with"
        text = (
            f"Your answer did not validate as {self.name}:\n{problems}\n{how} corrected JSON only."
        )
        return [ChatMessage(role="user", content=text)]


def _think_as_reasoning(message: ChatMessage, text: str) -> ChatMessage:
    """The answer kept without a leading think block, whose text becomes the reasoning."""
    from ._preamble import split_preamble

    think, answer = split_preamble(text)
    if think is None or message.content != text:
        return message
    reasoning = "\n\n".join(r for r in (message.reasoning_content, think) if r)
    return message.model_copy(update={"content": answer, "reasoning_content": reasoning or None})


def _unique_tool_name(tools: list[dict[str, Any]] | None) -> str:
    """``final_result``, suffixed until no tool of the call (registered or per call) has
    that name: the model must never mistake the answer tool for one of the user's."""
    taken = {
        str(function.get("name"))
        for tool in tools or ()
        if isinstance(function := tool.get("function"), dict)
    }
    name, number = _TOOL_NAME, 0
    while name in taken:
        number += 1
        name = f"{_TOOL_NAME}_{number}"
    return name


def _refusal(final: gen.ChatCompletion, text: str) -> str | None:
    message = final.choices[0].message
    refusal = message.refusal if message is not None else None
    return refusal if refusal and not text.strip() else None


@dataclasses.dataclass(frozen=True, slots=True)
class Update:
    """One step of a structured run: a partial object, a restart, or the final value."""

    kind: Literal["partial", "restart", "final"]
    value: Any = None
    attempt: int = 0


async def run_structured(
    runner: TurnRunner, turn: list[ChatMessage], call: Call, *, partials: bool
) -> AsyncGenerator[Update, None]:
    """Ask for ``call.plan`` until a valid answer; commit it; yield progress and the value.

    ``turn`` starts with the user's message; it holds the messages sent in this call (failed
    attempts and their feedback included); only the final exchange is committed.
    """
    plan = call.plan
    assert plan is not None
    state = runner.state
    key = (call.config.model, plan.mode)
    memory = state.output_modes
    variants = _VARIANTS[plan.mode]
    remembered = memory.get(key)
    index = variants.index(remembered) if remembered in variants else 0
    start = len(turn)
    original = turn[0]
    attempts: list[dict[str, Any]] = []
    scaffold: set[int] = set()  # positions in turn of failed answers and their feedback
    attempt = 0
    while True:
        variant = variants[index]
        vcall = plan.call_for(variant, call)
        turn[0] = plan.user_message(variant, original)
        parser = PartialParser(plan.type, wrapped=plan.schema.wrapped) if partials else None
        final: gen.ChatCompletion | None = None
        try:
            async with aclosing(runner.run(turn, vcall)) as batches:
                async for batch in batches:
                    for event in batch:
                        if isinstance(event, FinishEvent):
                            final = event.response
                            continue
                        if parser is None:
                            continue
                        if isinstance(event, ContentDeltaEvent):
                            if variant == "tool" or event.choice:
                                continue
                            changed, value = parser.feed(event.text)
                        elif isinstance(event, ToolCallDeltaEvent):
                            if variant != "tool" or event.choice or event.index:
                                continue
                            changed, value = parser.feed(event.arguments)
                        else:
                            continue
                        if changed:
                            yield Update("partial", value, attempt)
        except APIStatusError as exc:
            if index + 1 < len(variants) and is_format_rejection(exc):
                index += 1
                del turn[start:]
                scaffold.clear()
                runner.state.log.debug(
                    "structured output: the server rejected %s mode (HTTP %s); trying %s",
                    _MODE_OF[variant],
                    exc.status_code,
                    _MODE_OF[variants[index]],
                )
                continue
            raise
        assert final is not None
        text = plan.answer_text(variant, final)
        refusal = _refusal(final, text)
        if refusal is not None:
            state.last_response = final
            raise APIResponseError(
                f"the model refused to answer: {truncate(refusal, 200)}",
                {"refusal": refusal, "errors": [], "type": plan.name, "mode": _MODE_OF[variant]},
            )
        try:
            value = plan.parse(text)
        except APIResponseError as error:
            attempts.append(
                {
                    "text": text,
                    "message": error.message,
                    "errors": error.details.get("errors", []),
                    "mode": _MODE_OF[variant],
                }
            )
            state.last_response = final
            if len(attempts) > plan.retries:
                raise _exhausted(plan, attempts, error) from error
            runner.stats.record_output_retry()
            # _run appended the failed answer; the feedback follows it. Neither is kept.
            scaffold.add(len(turn) - 1)
            for message in plan.feedback(variant, final, error):
                scaffold.add(len(turn))
                turn.append(message)
            attempt += 1
            if partials:
                yield Update("restart", attempts[-1], attempt)
            continue
        break
    if memory.get(key) != variant:
        memory[key] = variant
        runner.state.log.info(
            "structured output for model %r: %s mode", call.config.model, _MODE_OF[variant]
        )
    committed = [m for i, m in enumerate(turn) if i not in scaffold]
    committed[0] = original
    if committed[-1].tool_calls and variant == "tool":
        # Kept as the answer it is, so the history never holds an unanswered tool call.
        committed[-1] = ChatMessage(role="assistant", content=text)
    elif variant != "tool":
        committed[-1] = _think_as_reasoning(committed[-1], text)
    runner.finish(committed, call, final)
    yield Update("final", value, attempt)


def resolve(runtime: RuntimeConfig, mode: Any, retries: Any) -> tuple[str, int]:
    """The output mode and retry budget of one call (per-call values, else the runtime's)."""
    mode = check_output_mode(runtime.output_mode if mode is None else mode)
    retries = check_output_retries(runtime.max_output_retries if retries is None else retries)
    return mode, retries


async def final_value(updates: AsyncGenerator[Update, None]) -> Any:
    """Run a structured call to its validated value (not streamed, or streamed unseen)."""
    value: Any = None
    async with aclosing(updates):
        async for update in updates:
            if update.kind == "final":
                value = update.value
    return value


def _exhausted(
    plan: OutputPlan, attempts: list[dict[str, Any]], last: APIResponseError
) -> APIResponseError:
    count = len(attempts)
    message = last.message if count == 1 else f"{last.message} (after {count} attempts)"
    details = dict(last.details)
    details.update({"type": plan.name, "text": attempts[-1]["text"], "attempts": attempts})
    return APIResponseError(message, details)
