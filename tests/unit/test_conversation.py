"""Conversation discipline through the public API: concurrent calls on one agent run one at
a time in call order, ``add_to_history=False`` calls do not wait, and a turn started before
``clear_history()``/``load_history()`` is not committed into the conversation that replaced it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from openai_chatapi import ChatAgent, tool

from ..conftest import AgentFactory
from ..support.fakes import FakeServer, calls_reply, completion, sse, text_chunks, tool_call

SAFETY = 20.0  # seconds: a bound on anything awaited here, never an expected duration


def _last_user_text(request: httpx.Request) -> str:
    messages = json.loads(request.content)["messages"]
    return str([m for m in messages if m["role"] == "user"][-1]["content"])


class GatedServer:
    """Answers each request at once with ``reply to <text>``, except requests whose last
    user text is in ``held``: those wait until the test releases them."""

    def __init__(self, server: FakeServer, *held: str) -> None:
        self.server = server
        self.gates = {text: asyncio.Event() for text in held}
        self.arrived = {text: asyncio.Event() for text in held}
        self.stream_replies = False
        server.handler = self  # type: ignore[assignment]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        text = _last_user_text(request)
        if text in self.gates:
            self.arrived[text].set()
            await self.gates[text].wait()
        if json.loads(request.content).get("stream"):
            body = sse(list(text_chunks([f"reply to {text}"])))
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
        return httpx.Response(200, json=completion(f"reply to {text}"))

    def release(self, text: str) -> None:
        self.gates[text].set()


async def _spin(condition: Any, rounds: int = 200) -> None:
    """Let other tasks run until ``condition()`` holds or ``rounds`` loop turns passed."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)


def _sent_texts(request: httpx.Request) -> list[str]:
    return [str(m["content"]) for m in json.loads(request.content)["messages"]]


async def _second_behind_first(
    agent: ChatAgent, server: FakeServer, first: str, second: str
) -> tuple[GatedServer, asyncio.Task[Any], asyncio.Task[Any]]:
    """``chat(first)`` held at the server, then ``chat(second)`` started and given every
    chance to overtake it; the gate and both tasks."""
    gated = GatedServer(server, first)
    first_task = asyncio.create_task(agent.chat(first))
    await asyncio.wait_for(gated.arrived[first].wait(), SAFETY)
    second_task = asyncio.create_task(agent.chat(second))
    await _spin(lambda: len(server.requests) > 1)
    return gated, first_task, second_task


async def test_concurrent_chats_run_in_call_order_and_see_each_other(
    agent: ChatAgent, server: FakeServer
) -> None:
    # Give the second call every chance to overtake the first (it must not).
    gated, first, second = await _second_behind_first(agent, server, "1st, slow", "2nd")
    assert len(server.requests) == 1
    gated.release("1st, slow")
    replies = await asyncio.wait_for(asyncio.gather(first, second), SAFETY)
    assert replies == ["reply to 1st, slow", "reply to 2nd"]
    assert [m.text for m in agent.history] == [
        "1st, slow",
        "reply to 1st, slow",
        "2nd",
        "reply to 2nd",
    ]
    # The second request carries the first turn as context.
    assert _sent_texts(server.requests[1]) == ["1st, slow", "reply to 1st, slow", "2nd"]


async def test_many_concurrent_calls_keep_their_order(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    agent = await make_agent()
    gated = GatedServer(server, "q0")
    texts = [f"q{i}" for i in range(6)]
    calls = asyncio.gather(*(agent.chat(text) for text in texts))
    await asyncio.wait_for(gated.arrived["q0"].wait(), SAFETY)
    await _spin(lambda: len(server.requests) > 1)  # the others queue behind the first
    gated.release("q0")
    replies = await asyncio.wait_for(calls, SAFETY)
    assert replies == [f"reply to {text}" for text in texts]
    assert [m.text for m in agent.history][::2] == texts
    assert [len(_sent_texts(r)) for r in server.requests] == [1, 3, 5, 7, 9, 11]


async def test_streams_and_chats_share_the_order(
    make_agent: AgentFactory, server: FakeServer
) -> None:
    agent = await make_agent()
    gated = GatedServer(server, "streamed first")

    async def consume() -> str:
        return "".join([p async for p in agent.chat_stream("streamed first", display_stream=False)])

    first = asyncio.create_task(consume())
    await asyncio.wait_for(gated.arrived["streamed first"].wait(), SAFETY)
    second = asyncio.create_task(agent.chat("then this"))
    await _spin(lambda: len(server.requests) > 1)
    gated.release("streamed first")
    assert await asyncio.wait_for(first, SAFETY) == "reply to streamed first"
    assert await asyncio.wait_for(second, SAFETY) == "reply to then this"
    assert [m.text for m in agent.history] == [
        "streamed first",
        "reply to streamed first",
        "then this",
        "reply to then this",
    ]


async def test_calls_outside_the_history_do_not_wait(agent: ChatAgent, server: FakeServer) -> None:
    gated = GatedServer(server, "slow")
    slow = asyncio.create_task(agent.chat("slow"))
    await asyncio.wait_for(gated.arrived["slow"].wait(), SAFETY)
    # Completes while the slow turn still holds the agent.
    side = await asyncio.wait_for(agent.chat("aside", add_to_history=False), SAFETY)
    assert side == "reply to aside"
    assert not slow.done()
    gated.release("slow")
    await asyncio.wait_for(slow, SAFETY)
    assert [m.text for m in agent.history] == ["slow", "reply to slow"]


@pytest.mark.parametrize("replace", ["clear_history", "load_history"])
async def test_a_turn_started_before_the_conversation_was_replaced_is_not_committed(
    agent: ChatAgent, server: FakeServer, tmp_path: Path, replace: str
) -> None:
    GatedServer(server)
    agent.set_system_prompt("be brief")
    await agent.chat("saved question")
    saved = tmp_path / "saved.json"
    agent.save_history(saved)
    agent.clear_history()
    gated = GatedServer(server, "old question")
    old = asyncio.create_task(agent.chat("old question"))
    await asyncio.wait_for(gated.arrived["old question"].wait(), SAFETY)
    if replace == "clear_history":
        agent.clear_history()
        expected = ["be brief"]
    else:
        agent.load_history(saved)
        expected = ["be brief", "saved question", "reply to saved question"]
    gated.release("old question")
    # The call itself succeeded and returns its reply...
    assert await asyncio.wait_for(old, SAFETY) == "reply to old question"
    # ...but its turn does not land in the conversation that replaced its own.
    assert [m.text for m in agent.history] == expected
    assert await agent.chat("new question") == "reply to new question"
    assert [m.text for m in agent.history] == [*expected, "new question", "reply to new question"]


async def test_a_turn_waiting_its_turn_joins_the_replacing_conversation(
    agent: ChatAgent, server: FakeServer
) -> None:
    gated, first, waiting = await _second_behind_first(agent, server, "first", "second")
    agent.clear_history()  # the second call has not started its turn yet
    gated.release("first")
    await asyncio.wait_for(asyncio.gather(first, waiting), SAFETY)
    assert [m.text for m in agent.history] == ["second", "reply to second"]


async def test_a_cancelled_waiter_does_not_block_the_others(
    agent: ChatAgent, server: FakeServer
) -> None:
    gated = GatedServer(server, "first")
    first = asyncio.create_task(agent.chat("first"))
    await asyncio.wait_for(gated.arrived["first"].wait(), SAFETY)
    cancelled = asyncio.create_task(agent.chat("never sent"))
    third = asyncio.create_task(agent.chat("third"))
    await _spin(lambda: False, rounds=20)
    cancelled.cancel()
    gated.release("first")
    await asyncio.wait_for(asyncio.gather(first, third), SAFETY)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert [m.text for m in agent.history] == ["first", "reply to first", "third", "reply to third"]
    assert "never sent" not in [_last_user_text(r) for r in server.requests]


async def test_a_stream_left_open_in_the_same_task_does_not_block_the_next_call(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_stream(text_chunks(["abandoned ", "reply"])).add_completion("next reply")
    stream = agent.chat_stream("abandon me", display_stream=False)
    async for _piece in stream:
        break  # the generator is still referenced, not closed
    # Awaited in this task (asyncio.wait_for would run it in another one): waiting for the
    # stream this same task left open would wait forever, so the new call takes over.
    assert await agent.chat("next") == "next reply"
    await stream.aclose()
    # The abandoned turn never entered the history.
    assert [m.text for m in agent.history] == ["next", "next reply"]


async def test_a_tool_handler_calling_its_own_agent_gets_a_clear_error(
    agent: ChatAgent, server: FakeServer
) -> None:
    side_replies: list[str] = []

    @tool
    async def consult(question: str) -> str:
        """Ask the same agent."""
        side_replies.append(await agent.chat(question, add_to_history=False))
        return await agent.chat(question)  # would wait for the running turn: refused

    agent.register_tool(consult)
    server.add_json(calls_reply(tool_call("c1", "consult", {"question": "inner"})))
    server.add_completion("inner answer")
    server.add_completion("outer answer")
    assert await asyncio.wait_for(agent.chat("outer"), SAFETY) == "outer answer"
    assert side_replies == ["inner answer"]
    fed_back = [m for m in server.last_body["messages"] if m["role"] == "tool"]
    error = json.loads(fed_back[0]["content"])["error"]
    assert "would wait for itself" in error and "add_to_history=False" in error
