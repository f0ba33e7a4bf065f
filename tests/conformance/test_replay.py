"""Replay of real recorded traffic (``../shared/conformance/``) through a loopback server.

For every recorded exchange the test makes the client call that produces the recorded
request, serves the recorded response (status, content type, raw body) from a real HTTP
server on 127.0.0.1, and checks that the client reaches the recorded outcome: the reply
text (streams: the content deltas joined), the tool calls, the finish reason and the usage,
or the right typed exception. Parsing is lenient for every exchange and also strict where
the exchange comes from OpenAI itself. The request the client sent is compared with the
recorded one on what matters: model, stream, message roles and text, tool calls, tools.

The corpus is read at run time and never copied into the project; without it the test skips.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import openai_chatapi as api
from openai_chatapi import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    ChatAgent,
    ChatAPIException,
    ChatCompletion,
    ContentDeltaEvent,
    ModelConfig,
    ModelNotFoundError,
    RuntimeConfig,
    TokenLimitError,
    ToolCall,
)

from ..support.replay_support import (
    Exchange,
    ReplayPlan,
    ReplayServer,
    Round,
    as_sent,
    iter_texts,
    load_exchanges,
    plan_call,
    recorded_reply,
    synthesized_turn,
)

pytestmark = pytest.mark.replay

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "conformance"
FILES = load_exchanges(CORPUS)
API_KEY = "sk-replay-0123456789"

_API_DEFAULTS = {"n": 1, "top_p": 1.0, "frequency_penalty": 0.0, "presence_penalty": 0.0}
_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: api.BadRequestError,
    401: api.AuthenticationError,
    403: api.PermissionDeniedError,
    404: api.NotFoundError,
    422: api.BadRequestError,
    429: api.RateLimitError,
}


@pytest.fixture(scope="module")
def loopback() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server


@dataclass
class Outcome:
    pieces: list[str] = field(default_factory=list)
    text: str | None = None
    response: ChatCompletion | None = None
    error: ChatAPIException | None = None


def _handler(**_: Any) -> str:
    raise AssertionError("replayed tools are never executed (auto_execute_tools=False)")


def _answers(pending: list[ToolCall], round_: Round) -> dict[str, str]:
    """The recorded tool results for the pending calls: by call id, else by position."""
    by_id = {str(r.get("tool_call_id")): r.get("content") for r in round_.results}
    answers: dict[str, str] = {}
    for position, call in enumerate(pending):
        key = str(call.id)
        if key in by_id:
            content = by_id[key]
        elif position < len(round_.results):
            content = round_.results[position].get("content")
        else:
            content = ""
        answers[key] = content if isinstance(content, str) else json.dumps(content)
    return answers


async def _replay(
    exchange: Exchange, plan: ReplayPlan, server: ReplayServer, *, strict: bool
) -> Outcome:
    server.reset()
    model = ModelConfig(
        api_base_url=server.base_url, api_key=API_KEY, stream=plan.stream, **plan.model
    )
    runtime = RuntimeConfig(enable_logging=False, strict_parsing=strict, timeout=30, **plan.runtime)
    for number, round_ in enumerate(plan.rounds, start=1):
        server.queue(
            synthesized_turn(
                exchange.body["model"], round_.assistant, stream=plan.stream, number=number
            )
        )
    server.queue(recorded_reply(exchange))
    outcome = Outcome()
    images = plan.images or None
    videos = plan.videos or None
    media = {"audio_paths": plan.audio or None, "file_paths": plan.files or None}
    async with ChatAgent(model, runtime) as agent:
        agent.replace_history(plan.history)
        for definition in plan.tools:
            agent.register_tool(definition, _handler)
        try:
            if plan.rounds:
                await agent.chat(
                    plan.text, images, videos, auto_execute_tools=False, **media, **plan.call
                )
                for round_ in plan.rounds:
                    answers = _answers(agent.pending_tool_calls, round_)
                    outcome.text = await agent.submit_tool_results(
                        answers, auto_execute_tools=False
                    )
            elif plan.use_events:
                call = {k: v for k, v in plan.call.items() if k != "response_format"}
                events = agent.chat_stream_events(
                    plan.text, images, videos, auto_execute_tools=False, **media, **call
                )
                async for event in events:
                    if type(event) is ContentDeltaEvent:
                        outcome.pieces.append(event.text)
                outcome.text = "".join(outcome.pieces)
            else:
                outcome.text = await agent.chat(
                    plan.text, images, videos, auto_execute_tools=False, **media, **plan.call
                )
        except ChatAPIException as exc:
            outcome.error = exc
        outcome.response = agent.last_response
    assert server.pending == 0, "the client did not send every request of the plan"
    return outcome


def _parsed_calls(response: ChatCompletion) -> list[dict[str, Any]]:
    message = response.choices[0].message
    calls: list[dict[str, Any]] = []
    for call in (message.tool_calls if message is not None else None) or []:
        function = call.function
        name = function.name if function is not None else None
        raw = (function.arguments if function is not None else None) or ""
        try:
            calls.append({"name": name, "arguments": json.loads(raw)})
        except ValueError:
            calls.append({"name": name, "arguments_invalid": raw})
    return calls


def _check_status_error(exchange: Exchange, outcome: Outcome) -> None:
    expect = exchange.expect
    status = expect["error_status"]
    error = outcome.error
    assert isinstance(error, APIStatusError), f"expected HTTP {status} error, got {error!r}"
    wanted = _STATUS_CLASSES.get(
        status, api.InternalServerError if status >= 500 else APIStatusError
    )
    assert isinstance(error, wanted), f"HTTP {status} raised {type(error).__name__}"
    assert error.status_code == status
    assert error.details["error_type"] == expect["error_type"]
    code = expect.get("error_code")
    assert error.details["error_code"] == (None if code is None else str(code))
    if code == "model_not_found":
        assert isinstance(error, ModelNotFoundError)
    if code == "context_length_exceeded":
        assert isinstance(error, TokenLimitError)


def _check_stream_error(exchange: Exchange, outcome: Outcome) -> None:
    expect = exchange.expect
    error = outcome.error
    assert isinstance(error, APIResponseError), f"expected a stream error, got {error!r}"
    assert not isinstance(error, APIConnectionError)
    assert expect["stream_error"] in error.message
    assert "".join(outcome.pieces) == expect["text_before_error"]


def _check_reply(exchange: Exchange, plan: ReplayPlan, outcome: Outcome) -> None:
    expect = exchange.expect
    assert outcome.error is None, f"the client raised {outcome.error!r}"
    response = outcome.response
    assert response is not None
    assert outcome.text == expect["text"]
    if plan.use_events:
        assert "".join(outcome.pieces) == expect["text"]
    message = response.choices[0].message
    assert ((message.content if message is not None else None) or "") == expect["text"]
    assert _parsed_calls(response) == expect["tool_calls"]
    assert response.choices[0].finish_reason == expect["finish_reason"]
    if expect["usage"] is None:
        assert response.usage is None
    else:
        assert response.usage is not None
        assert response.usage.model_dump(mode="json", exclude_unset=True) == expect["usage"]


def _tool_names(body: dict[str, Any]) -> list[str]:
    return [
        str(entry["function"]["name"])
        for entry in body.get("tools") or []
        if entry.get("type") == "function"
    ]


def _calls_of(message: dict[str, Any]) -> list[tuple[str, Any]]:
    out = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        raw = function.get("arguments") or ""
        try:
            arguments = json.loads(raw)
        except ValueError:
            arguments = raw
        out.append((function.get("name"), arguments))
    return out


def _check_request(exchange: Exchange, plan: ReplayPlan, server: ReplayServer) -> None:
    recorded = exchange.body
    last = server.received[-1]
    assert last.method == "POST"
    assert last.path == "/v1/chat/completions"
    assert last.headers.get("authorization") == f"Bearer {API_KEY}"
    sent = last.json
    assert sent["model"] == recorded["model"]
    assert bool(sent.get("stream")) == bool(recorded.get("stream"))
    if recorded.get("stream"):
        assert last.headers.get("accept") == "text/event-stream"
        wanted = bool((recorded.get("stream_options") or {}).get("include_usage"))
        assert bool((sent.get("stream_options") or {}).get("include_usage")) == wanted
    assert _tool_names(sent) == _tool_names(recorded)
    for name in plan.model:
        # The client leaves out parameters equal to the API's defaults (n=1, top_p=1, ...).
        assert sent.get(name, _API_DEFAULTS.get(name)) == recorded[name], name
    if "response_format" in plan.call and not plan.rounds:
        assert sent.get("response_format") == recorded["response_format"]
    if "tool_choice" in plan.call and not plan.rounds:
        assert sent.get("tool_choice") == recorded["tool_choice"]
    if not plan.exact_messages:
        return
    sent_messages = sent["messages"]
    recorded_messages = recorded["messages"]
    assert list(iter_texts(sent_messages)) == list(iter_texts(recorded_messages))
    for ours, theirs in zip(sent_messages, recorded_messages, strict=True):
        assert _calls_of(ours) == _calls_of(theirs)
        if theirs.get("role") == "tool":
            assert ours.get("tool_call_id") == theirs.get("tool_call_id")
    # Every message whole, media included: the recorded one with the documented drops.
    last_user = max(i for i, m in enumerate(recorded_messages) if m.get("role") == "user")
    for number, (ours, theirs) in enumerate(zip(sent_messages, recorded_messages, strict=True)):
        wanted = as_sent(theirs, by_chat=number == last_user)
        assert ours == wanted, f"messages[{number}] differs"


def _ids() -> list[str]:
    return [path.relative_to(CORPUS).as_posix() for path in FILES]


@pytest.mark.parametrize("path", FILES or [None], ids=_ids() or ["corpus-absent"])
async def test_replay(path: Path | None, loopback: ReplayServer) -> None:
    if path is None:
        pytest.skip(f"no recorded exchanges at {CORPUS}")
    exchange = Exchange.load(path, CORPUS)
    plan = plan_call(exchange)
    for strict in (False, True) if exchange.from_openai else (False,):
        outcome = await _replay(exchange, plan, loopback, strict=strict)
        mode = "strict" if strict else "lenient"
        try:
            if "error_status" in exchange.expect:
                _check_status_error(exchange, outcome)
            elif "stream_error" in exchange.expect:
                _check_stream_error(exchange, outcome)
            else:
                _check_reply(exchange, plan, outcome)
            _check_request(exchange, plan, loopback)
        except AssertionError as exc:
            raise AssertionError(f"[{mode}] {exc}\nnot sendable: {plan.dropped}") from exc
