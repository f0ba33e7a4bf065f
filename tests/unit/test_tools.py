"""@tool, Tool, ToolRegistry and running a reply's tool calls."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import math
import subprocess
import sys
import threading
import traceback
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from openai_chatapi._errors import ConfigurationError, ToolExecutionError
from openai_chatapi._generated import FunctionCall, ToolCall
from openai_chatapi.tools import (
    FunctionSchema,
    Tool,
    ToolFunction,
    ToolRegistry,
    ToolResult,
    serialize_result,
    tool,
)

from ..support.waits import rendezvous, thread_meeting, until_cancelled

SAFETY = 10  # seconds; only stops a broken test from hanging, never asserted on


def call(name: str, arguments: str | dict[str, Any] = "{}", call_id: str = "call_1") -> ToolCall:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(id=call_id, type="function", function=FunctionCall(name=name, arguments=raw))


class Forecast(BaseModel):
    city: str
    temperature: float


@dataclasses.dataclass
class Point:
    x: int
    y: int


@tool
async def get_forecast(city: str, days: int = 1) -> Forecast:
    """Forecast for a city.

    Args:
        city: City name.
        days: Number of days.
    """
    return Forecast(city=city, temperature=20.5 + days)


@tool(name="add", description="Add two numbers.", strict=True, timeout=5)
def add_numbers(a: int, b: int) -> int:
    return a + b


# --------------------------------------------------------------------------- declaring


def test_tool_wire_format() -> None:
    assert Tool(name="ping").to_wire() == {
        "type": "function",
        "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}},
    }
    params = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    assert Tool(
        name="search", description="Search.", parameters=params, strict=False
    ).to_wire() == {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search.",
            "parameters": params,
            "strict": False,
        },
    }


def test_tool_rejects_invalid_names() -> None:
    with pytest.raises(ConfigurationError, match="invalid"):
        Tool(name="no spaces allowed")


@pytest.mark.parametrize(
    ("fields", "field", "why"),
    [
        ({"parameters": "nope"}, "parameters", "valid dictionary"),  # was pydantic's error
        ({"parameters": {"type": 5}}, "parameters", "'type' must be 'object'"),  # was accepted
        ({"parameters": {"type": "string"}}, "parameters", "'type' must be 'object'"),
        ({"parameters": {"properties": ["q"]}}, "parameters", "'properties' must be an object"),
        ({"parameters": {"required": "q"}}, "parameters", "'required' must be a list"),
        ({"strict": "maybe"}, "strict", "valid boolean"),
        ({"strict": "yes"}, "strict", "valid boolean"),  # was sent as strict: true
        ({"parameters": {"properties": {"a": object()}}}, "parameters", "plain JSON"),
        ({"parameters": {"properties": {"a": {"maximum": math.nan}}}}, "parameters", "NaN"),
        ({"colour": "red"}, "colour", "Extra inputs"),
    ],
)
def test_a_malformed_tool_definition_is_a_configuration_error_naming_the_field(
    fields: dict[str, Any], field: str, why: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"invalid Tool {field}: .*{why}") as info:
        Tool(name="lookup", **fields)
    assert info.value.details == {"field": field, "tool": "lookup"}
    assert info.value.__cause__ is None  # no pydantic error chained in


def test_a_tool_definition_cannot_be_changed_after_creation() -> None:
    # A registry checks a Tool once and keys it by name: t.parameters = "x" was accepted and
    # failed at registration with an AttributeError.
    lookup = Tool(name="lookup")
    for field, value in (("name", ""), ("parameters", "x"), ("strict", True)):
        with pytest.raises(ConfigurationError, match=f"cannot be changed \\({field}\\)"):
            setattr(lookup, field, value)
    with pytest.raises(ConfigurationError, match="cannot be changed"):
        del lookup.description
    assert lookup == Tool(name="lookup")


def test_bare_decorator_keeps_function_behaviour() -> None:
    assert isinstance(get_forecast, ToolFunction)
    assert get_forecast.name == "get_forecast"
    assert get_forecast.__name__ == "get_forecast"
    assert get_forecast.is_async
    assert get_forecast.timeout is None
    assert isinstance(get_forecast.schema, FunctionSchema)
    assert asyncio.run(get_forecast("Oslo", days=2)) == Forecast(city="Oslo", temperature=22.5)
    assert get_forecast.tool.to_wire() == {
        "type": "function",
        "function": {
            "name": "get_forecast",
            "description": "Forecast for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name."},
                    "days": {"type": "integer", "description": "Number of days.", "default": 1},
                },
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }


def test_decorator_with_options() -> None:
    assert add_numbers(2, 3) == 5
    assert not add_numbers.is_async
    assert add_numbers.timeout == 5
    assert add_numbers.tool.to_wire() == {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two numbers.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    }


def test_decoration_errors_surface_immediately() -> None:
    with pytest.raises(ConfigurationError, match=r"parameter \*\*options of function 'bad'"):

        @tool
        def bad(**options: int) -> None:
            pass

    with pytest.raises(ConfigurationError, match="timeout"):
        tool(timeout=-1)(add_numbers.func)


async def test_decorated_methods_bind_to_their_instance() -> None:
    class Counter:
        def __init__(self) -> None:
            self.total = 0

        @tool
        def bump(self, by: int) -> int:
            """Increase the counter."""
            self.total += by
            return self.total

    counter = Counter()
    registry = ToolRegistry([counter.bump])
    assert registry.definitions()[0]["function"]["parameters"]["required"] == ["by"]
    [result] = await registry.execute([call("bump", {"by": 4})])
    assert result.content == "4"
    assert counter.total == 4


# --------------------------------------------------------------------------- registry


def test_registry_contents() -> None:
    def plain(text: str) -> str:
        """Echo."""
        return text

    registry = ToolRegistry()
    assert len(registry) == 0
    registered = registry.register(plain)
    assert isinstance(registered, ToolFunction)
    registry.register(get_forecast)
    registry.register(Tool(name="lookup"), lambda: "x")
    assert len(registry) == 3
    assert "plain" in registry and "nope" not in registry
    assert registry.get("get_forecast") is get_forecast
    assert registry.get("nope") is None
    assert [d["function"]["name"] for d in registry.definitions()] == [
        "plain",
        "get_forecast",
        "lookup",
    ]
    assert registry.unregister("plain") is True
    assert registry.unregister("plain") is False
    assert registry.names == ["get_forecast", "lookup"]
    copy = registry.copy()
    registry.clear()
    assert len(registry) == 0
    assert copy.names == ["get_forecast", "lookup"]


def test_later_registration_replaces_earlier() -> None:
    registry = ToolRegistry([get_forecast])
    replacement = Tool(name="get_forecast", description="v2")
    registry.register(replacement, lambda city: city)
    assert len(registry) == 1
    assert registry.definitions()[0]["function"]["description"] == "v2"


def test_register_misuse() -> None:
    registry = ToolRegistry()
    with pytest.raises(ConfigurationError, match="needs a handler"):
        registry.register(Tool(name="lonely"))
    with pytest.raises(ConfigurationError, match="only be given with a Tool"):
        registry.register(add_numbers, lambda: None)
    with pytest.raises(ConfigurationError, match="cannot register"):
        registry.register(42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- execution


async def test_results_are_serialised_in_call_order() -> None:
    @tool
    def as_point(x: int) -> Point:
        return Point(x, x)

    @tool
    def as_text() -> str:
        return "plain text"

    @tool
    def as_nothing() -> None:
        return None

    registry = ToolRegistry([get_forecast, as_point, as_text, as_nothing, add_numbers])
    results = await registry.execute(
        [
            call("get_forecast", {"city": "Oslo"}, "c1"),
            call("as_point", {"x": 2}, "c2"),
            call("as_text", "", "c3"),
            call("as_nothing", "{}", "c4"),
            call("add", {"a": 1, "b": 2}, "c5"),
        ]
    )
    assert [r.tool_call_id for r in results] == ["c1", "c2", "c3", "c4", "c5"]
    assert [r.content for r in results] == [
        '{"city": "Oslo", "temperature": 21.5}',
        '{"x": 2, "y": 2}',
        "plain text",
        "null",
        "3",
    ]
    assert all(r.ok and r.error is None for r in results)
    assert results[0].arguments == {"city": "Oslo"}
    assert results[0].output == Forecast(city="Oslo", temperature=21.5)
    assert (results[4].tool_call_id, results[4].content) == ("c5", "3")


async def test_calls_run_concurrently() -> None:
    first, second = rendezvous("first", "second")  # each returns only while the other runs

    registry = ToolRegistry([first, second])
    results = await asyncio.wait_for(
        registry.execute([call("first", call_id="a"), call("second", call_id="b")]), SAFETY
    )
    assert [r.content for r in results] == ["first", "second"]


async def test_sync_handlers_run_in_worker_threads_concurrently() -> None:
    where = thread_meeting(SAFETY)  # breaks unless both calls run in threads together
    loop_thread = threading.get_ident()

    registry = ToolRegistry([where])
    results = await registry.execute(
        [call("where", {"label": "a"}, "a"), call("where", {"label": "b"}, "b")]
    )
    idents = {int(r.content) for r in results}
    assert all(r.ok for r in results)
    assert loop_thread not in idents
    assert len(idents) == 2


async def test_hand_made_tool_gets_parsed_arguments() -> None:
    seen: dict[str, Any] = {}

    async def handler(query: str, limit: int = 3) -> list[str]:
        seen.update(query=query, limit=limit)
        return [query] * limit

    registry = ToolRegistry()
    params = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}
    registry.register(Tool(name="search", parameters=params), handler)
    [ok] = await registry.execute([call("search", {"query": "q", "limit": 2})])
    assert ok.content == '["q", "q"]'
    assert seen == {"query": "q", "limit": 2}
    missing, unbound = await registry.execute(
        [call("search", {"limit": 1}, "m"), call("search", {"query": "q", "page": 2}, "u")]
    )
    assert missing.error_kind == unbound.error_kind == "invalid_arguments"
    assert "query" in (missing.error or "")
    assert "page" in (unbound.error or "")


# --------------------------------------------------------------------------- failures


class Opaque:
    pass


@tool
def explode(reason: str) -> str:
    raise ValueError(f"cannot do {reason}")


@tool
def opaque() -> Opaque:
    return Opaque()


@tool(timeout=0.01)
async def sleepy() -> str:
    await asyncio.Event().wait()  # never finishes on its own
    return "late"


@tool
def strict_args(count: int) -> int:
    return count


FAILURES: list[tuple[ToolCall, str, str]] = [
    (call("strict_args", '{"count": 1'), "invalid_json", "not valid JSON"),
    (call("strict_args", {"count": "many"}), "invalid_arguments", "count:"),
    (call("missing_tool", {}), "unknown_tool", "unknown tool 'missing_tool'"),
    (call("explode", {"reason": "this"}), "handler_error", "ValueError: cannot do this"),
    (call("sleepy"), "timeout", "did not finish within 0.01 seconds"),
    (call("opaque"), "unserializable_result", "cannot be sent as JSON"),
]
FAILURE_IDS = [kind for _, kind, _ in FAILURES]


def failure_registry() -> ToolRegistry:
    return ToolRegistry([explode, opaque, sleepy, strict_args])


@pytest.mark.parametrize(("tool_call", "kind", "text"), FAILURES, ids=FAILURE_IDS)
async def test_failures_become_feedback(tool_call: ToolCall, kind: str, text: str) -> None:
    [result] = await failure_registry().execute([tool_call], errors="feedback")
    assert isinstance(result, ToolResult)
    assert not result.ok
    assert result.error_kind == kind
    assert result.error is not None and text in result.error
    assert json.loads(result.content) == {"error": result.error}
    assert result.tool_call_id == "call_1"


@pytest.mark.parametrize(("tool_call", "kind", "text"), FAILURES, ids=FAILURE_IDS)
async def test_failures_raise(tool_call: ToolCall, kind: str, text: str) -> None:
    with pytest.raises(ToolExecutionError) as info:
        await failure_registry().execute([tool_call], errors="raise")
    details = info.value.details
    assert details["kind"] == kind
    assert details["tool"] == tool_call.function.name  # type: ignore[union-attr]
    assert text in details["error"]
    assert details["tool_call_id"] == "call_1"
    assert "arguments" in details
    assert text in info.value.message


async def test_unknown_tool_lists_available_tools() -> None:
    [result] = await failure_registry().execute([call("nope")])
    assert result.error == (
        "unknown tool 'nope'; available tools: explode, opaque, sleepy, strict_args"
    )


async def test_handler_exception_is_chained_in_raise_mode() -> None:
    with pytest.raises(ToolExecutionError) as info:
        await failure_registry().execute([call("explode", {"reason": "x"})], errors="raise")
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.details["arguments"] == {"reason": "x"}


async def test_long_raw_arguments_are_truncated_in_errors() -> None:
    secret = "sk-" + "s" * 5000
    raw = '{"count": "' + secret
    with pytest.raises(ToolExecutionError) as info:
        await failure_registry().execute([call("strict_args", raw)], errors="raise")
    assert secret not in info.value.message
    assert secret not in repr(info.value.details)


async def test_timeout_argument_applies_when_tool_has_none() -> None:
    cancelled = asyncio.Event()

    @tool
    async def slow() -> str:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return "never"

    [result] = await ToolRegistry([slow]).execute([call("slow")], timeout=0.01)
    assert result.error_kind == "timeout"
    assert cancelled.is_set()  # the handler was cancelled, not left running


async def test_tool_timeout_wins_over_the_default() -> None:
    @tool(timeout=SAFETY)
    async def patient() -> str:
        await asyncio.sleep(0.05)
        return "done"

    registry = ToolRegistry([patient])
    [result] = await registry.execute([call("patient")], timeout=0.001)
    assert result.ok
    registry.register(patient, timeout=0.001)  # register(timeout=...) overrides the tool's own
    [result] = await registry.execute([call("patient")], timeout=SAFETY)
    assert result.error_kind == "timeout"


def test_serialize_result() -> None:
    class Aliased(BaseModel):
        value: int = Field(alias="Value")

    assert serialize_result("as is") == "as is"
    assert serialize_result(Aliased(Value=1)) == '{"value": 1}'
    assert serialize_result([Aliased(Value=2)]) == '[{"value": 2}]'
    assert serialize_result({"p": Point(1, 2), "when": datetime.date(2024, 5, 1)}) == (
        '{"p": {"x": 1, "y": 2}, "when": "2024-05-01"}'
    )
    assert serialize_result({"ü": (1, 2)}) == '{"ü": [1, 2]}'
    with pytest.raises(TypeError):
        serialize_result(Opaque())
    with pytest.raises(ValueError):
        serialize_result(float("nan"))


async def test_feedback_mode_keeps_other_results() -> None:
    registry = failure_registry()
    registry.register(add_numbers)
    results = await registry.execute(
        [call("explode", {"reason": "x"}, "a"), call("add", {"a": 1, "b": 1}, "b")]
    )
    assert [r.ok for r in results] == [False, True]
    assert results[1].content == "2"


_EXITING_TOOLS = '''
import asyncio, sys
from openai_chatapi.tools import ToolRegistry, tool

@tool
def leaves(code: int) -> str:
    """Calls sys.exit, as argparse does on arguments it cannot parse."""
    sys.exit(code)

@tool
def interrupts(what: str) -> str:
    """Raises KeyboardInterrupt or GeneratorExit itself (in its thread no signal arrives)."""
    raise KeyboardInterrupt(what) if what == "ki" else GeneratorExit(what)

@tool
async def leaves_async(code: int) -> str:
    """Raises SystemExit in the event loop's task."""
    raise SystemExit(code)

async def main() -> None:
    calls = [
        {"id": "a", "function": {"name": "leaves", "arguments": '{"code": 3}'}},
        {"id": "b", "function": {"name": "leaves_async", "arguments": '{"code": 4}'}},
        {"id": "c", "function": {"name": "interrupts", "arguments": '{"what": "ki"}'}},
        {"id": "d", "function": {"name": "interrupts", "arguments": '{"what": "gx"}'}},
    ]
    for result in await ToolRegistry([leaves, leaves_async, interrupts]).execute(calls):
        print(result.error_kind, result.error)

asyncio.run(main())
print("the program goes on")
'''


def test_a_handler_calling_sys_exit_or_raising_an_interrupt_is_a_failed_call() -> None:
    # Before, the program ended with the tool's exit code (3); run apart so it cannot end pytest.
    done = subprocess.run(
        [sys.executable, "-c", _EXITING_TOOLS], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "handler_error tool 'leaves' failed: it called sys.exit (SystemExit(3))",
        "handler_error tool 'leaves_async' failed: it called sys.exit (SystemExit(4))",
        "handler_error tool 'interrupts' failed: it raised KeyboardInterrupt: ki",
        "handler_error tool 'interrupts' failed: it raised GeneratorExit: gx",
        "the program goes on",
    ]


async def test_raise_mode_cancels_the_other_calls() -> None:
    other_started, other_cancelled = asyncio.Event(), asyncio.Event()

    @tool
    async def waits() -> str:
        await until_cancelled(other_started.set, other_cancelled.set)
        return "never"

    @tool
    async def fails() -> str:
        await other_started.wait()
        raise RuntimeError("boom")

    registry = ToolRegistry([waits, fails])
    with pytest.raises(ToolExecutionError, match="boom"):
        await asyncio.wait_for(
            registry.execute(
                [call("waits", call_id="a"), call("fails", call_id="b")], errors="raise"
            ),
            SAFETY,
        )
    assert other_cancelled.is_set()


@pytest.mark.parametrize("count", [1, 3])
async def test_cancelling_the_caller_cancels_every_handler(count: int) -> None:
    started: list[asyncio.Event] = [asyncio.Event() for _ in range(count)]
    cancelled: list[int] = []

    @tool
    async def hang(index: int) -> str:
        await until_cancelled(started[index].set, lambda: cancelled.append(index))
        return "never"

    registry = ToolRegistry([hang])
    calls = [call("hang", {"index": i}, f"c{i}") for i in range(count)]
    task = asyncio.ensure_future(registry.execute(calls, timeout=SAFETY))
    for event in started:
        await asyncio.wait_for(event.wait(), SAFETY)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == list(range(count))


async def test_a_handler_cancelled_by_itself_fails_without_cancelling_the_caller() -> None:
    # Only the caller's own cancellation propagates (see the test above); a CancelledError
    # from inside a handler is that tool's failure, or the caller would look cancelled.
    @tool
    async def cancels_itself() -> str:
        raise asyncio.CancelledError

    registry = ToolRegistry([cancels_itself])
    [result] = await registry.execute([call("cancels_itself")])
    assert result.error_kind == "cancelled"
    assert "was cancelled" in json.loads(result.content)["error"]
    with pytest.raises(ToolExecutionError) as info:
        await registry.execute([call("cancels_itself")], errors="raise")
    assert info.value.details["kind"] == "cancelled"


async def test_dict_shaped_calls_and_invalid_policy() -> None:
    registry = ToolRegistry([add_numbers])
    raw_call = {"id": "d1", "function": {"name": "add", "arguments": '{"a": 2, "b": 2}'}}
    [result] = await registry.execute([raw_call])
    assert (result.tool_call_id, result.content) == ("d1", "4")
    assert await registry.execute([]) == []
    with pytest.raises(ConfigurationError):
        await registry.execute([raw_call], errors="ignore")  # type: ignore[arg-type]


async def test_raise_mode_raises_the_validation_failure_itself() -> None:
    # One error from the check to the caller: pydantic's errors and cause stay attached.
    with pytest.raises(ToolExecutionError) as info:
        await failure_registry().execute([call("strict_args", {"count": "many"})], errors="raise")
    assert info.value.details["errors"][0]["loc"] == ("count",)
    assert isinstance(info.value.__cause__, ValidationError)
    assert info.value.message.endswith("(tool call 'call_1')")


async def test_results_keep_the_arguments_as_the_model_sent_them() -> None:
    # Arguments are parsed once; the null that means "use the default" is dropped for the
    # handler only, not from what the result reports.
    @tool
    def greet(name: str, greeting: str = "hello") -> str:
        return f"{greeting} {name}"

    registry = ToolRegistry([greet])
    [ok, bad] = await registry.execute(
        [
            call("greet", {"name": "Ann", "greeting": None}, "a"),
            call("greet", {"name": 3, "greeting": None}, "b"),
        ]
    )
    assert ok.content == "hello Ann"
    assert ok.arguments == {"name": "Ann", "greeting": None}
    assert bad.error_kind == "invalid_arguments"
    assert bad.arguments == {"name": 3, "greeting": None}


async def test_a_handler_raising_tool_execution_error_is_a_handler_error() -> None:
    # The handler's own ToolExecutionError is its failure, not the call's verdict.
    @tool
    def nested() -> str:
        raise ToolExecutionError("inner", {"kind": "timeout", "error": "inner"})

    [result] = await ToolRegistry([nested]).execute([call("nested")])
    assert result.error_kind == "handler_error"
    assert result.error == "tool 'nested' failed: ToolExecutionError: inner"


async def test_execute_hides_the_secrets_it_is_given_in_results_and_raised_errors() -> None:
    @tool
    def tells(what: str) -> str:
        """Quotes a secret.

        Args:
            what: ``raise`` to fail with it.
        """
        if what == "raise":
            raise ValueError(f"token {secret} refused")
        return f"token {secret}"

    secret = "sk-hidden-" + "0123456789"  # not in the source a traceback quotes
    registry = ToolRegistry([tells])
    secrets = (secret,)
    ok, failed = await registry.execute(
        [call("tells", {"what": "x"}, "a"), call("tells", {"what": "raise"}, "b")],
        secrets=secrets,
    )
    assert (ok.content, failed.error) == (
        "token [REDACTED]",
        "tool 'tells' failed: ValueError: token [REDACTED] refused",
    )
    with pytest.raises(ToolExecutionError) as info:
        await registry.execute([call("tells", {"what": "raise"})], errors="raise", secrets=secrets)
    assert secret not in "".join(traceback.format_exception(info.value))
    [plain] = await registry.execute([call("tells", {"what": "x"})])  # none given: as returned
    assert plain.content == f"token {secret}"
