"""Text that cannot be encoded never enters the conversation: surrogate pairs split across
stream chunks are joined, lone surrogates become U+FFFD (streamed or not), and user text
holding one is refused before anything is sent.

``json.dumps`` writes a surrogate as a ``\\udXXX`` escape, as a JavaScript proxy cutting text
at UTF-16 positions does: each chunk below is valid JSON on its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openai_chatapi import ChatAgent, ChatMessage, ConfigurationError, tool
from openai_chatapi._events import ContentDeltaEvent, ReasoningDeltaEvent

from ..support.fakes import FakeServer, Reply, chunk, completion, text_chunks, tool_call

SMILE = "\U0001f600"


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def _streamed(agent: ChatAgent, text: str = "hi", **kwargs: object) -> list[str]:
    return [p async for p in agent.chat_stream(text, display_stream=False, **kwargs)]  # type: ignore[arg-type]


async def test_a_surrogate_pair_split_across_chunks_is_joined(
    agent: ChatAgent, server: FakeServer, tmp_path: Path
) -> None:
    server.add_stream(text_chunks(["smile \ud83d", "\ude00!"]))
    pieces = await _streamed(agent)
    assert "".join(pieces) == f"smile {SMILE}!"
    assert all(_encodable(p) for p in pieces)
    assert agent.history[-1].text == f"smile {SMILE}!"
    # The agent is not poisoned: the next request carries the reply, saving works.
    server.add_completion("next")
    assert await agent.chat("again") == "next"
    assert server.last_body["messages"][1]["content"] == f"smile {SMILE}!"
    agent.save_history(tmp_path / "h.json")
    assert SMILE in (tmp_path / "h.json").read_text(encoding="utf-8")


async def test_the_joined_pair_is_what_display_stream_prints(
    agent: ChatAgent, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_stream(text_chunks(["smile \ud83d", "\ude00!"]))
    async for _ in agent.chat_stream("hi", display_stream=True):
        pass
    assert capsys.readouterr().out == f"smile {SMILE}!\n"


async def test_lone_surrogates_in_a_stream_become_replacement_characters(
    agent: ChatAgent, server: FakeServer
) -> None:
    # A high half followed by something else, a low half alone, a high half ending the stream.
    server.add_stream(text_chunks(["a\ud83d", "b", "\ude00c", "d\ud83d"]))
    pieces = await _streamed(agent)
    assert "".join(pieces) == "a\ufffdb\ufffdcd\ufffd"
    assert all(_encodable(p) for p in pieces)
    assert agent.history[-1].text == "a\ufffdb\ufffdcd\ufffd"


async def test_a_high_surrogate_ending_a_stream_without_finish_reason(
    agent: ChatAgent, server: FakeServer
) -> None:
    server.add_stream([chunk({"role": "assistant", "content": "end \ud83d"})])  # [DONE] only
    assert "".join(await _streamed(agent)) == "end \ufffd"
    assert agent.history[-1].text == "end \ufffd"


async def test_reasoning_deltas_are_repaired_too(agent: ChatAgent, server: FakeServer) -> None:
    server.add_stream(
        [
            chunk({"role": "assistant", "reasoning_content": "think \ud83d"}),
            chunk({"reasoning_content": "\ude00"}),
            chunk({"content": "ok \ud83d"}),
            chunk({}, finish_reason="stop"),
        ]
    )
    events = [e async for e in agent.chat_stream_events("hi")]
    thoughts = "".join(e.text for e in events if isinstance(e, ReasoningDeltaEvent))
    text = "".join(e.text for e in events if isinstance(e, ContentDeltaEvent))
    assert (thoughts, text) == (f"think {SMILE}", "ok \ufffd")
    assert agent.history[-1].reasoning_content == f"think {SMILE}"


@pytest.mark.parametrize("strict", [False, True])
async def test_surrogates_in_a_non_streamed_reply(
    make_agent: object, server: FakeServer, strict: bool
) -> None:
    agent: ChatAgent = await make_agent(strict_parsing=strict)  # type: ignore[operator]
    reply = completion("pair \ud83d\ude00, lone \ud83d, low \ude00.")
    reply["choices"][0]["message"]["refusal"] = None  # strict parsing requires the key
    server.add(Reply(raw=json.dumps(reply).encode(), content_type="application/json"))
    assert await agent.chat("hi") == f"pair {SMILE}, lone \ufffd, low \ufffd."
    server.add_json(completion(f"next {SMILE}", extra={"system_fingerprint": "fp"}))
    server.replies[-1].json_body["choices"][0]["message"]["refusal"] = None
    assert await agent.chat("again") == f"next {SMILE}"


async def test_user_text_that_cannot_be_encoded_is_refused_before_sending(
    agent: ChatAgent, server: FakeServer
) -> None:
    with pytest.raises(ConfigurationError, match="surrogate") as info:
        await agent.chat("bad \ud83d text")
    assert info.value.details == {"field": "text", "position": 4}
    with pytest.raises(ConfigurationError, match="surrogate"):
        await _streamed(agent, "bad \udc00")
    with pytest.raises(ConfigurationError, match="surrogate"):
        agent.set_system_prompt("sys \ud800")
    with pytest.raises(ConfigurationError, match="surrogate"):
        agent.add_message(ChatMessage(role="user", content="x\udfff"))
    assert server.requests == []
    assert agent.history == ()


async def test_a_conversation_poisoned_by_hand_gives_a_configuration_error(
    agent: ChatAgent, server: FakeServer
) -> None:
    agent.replace_history(
        [ChatMessage(role="user", content="ok"), ChatMessage(role="assistant", content="x\ud83d")]
    )
    with pytest.raises(ConfigurationError, match="message 1"):
        await agent.chat("next")
    assert server.requests == []


async def test_a_tool_result_with_a_lone_surrogate_is_repaired(
    agent: ChatAgent, server: FakeServer
) -> None:
    @tool
    def cut() -> str:
        """Text cut in the middle of an emoji."""
        return "cut \ud83d"

    agent.register_tool(cut)
    server.add_json(
        completion(None, tool_calls=[tool_call("c1", "cut", {})], finish_reason="tool_calls")
    )
    server.add_completion("ok")
    assert await agent.chat("cut") == "ok"
    assert server.last_body["messages"][-1]["content"] == "cut \ufffd"
