"""``save_history`` failures: always ``ConfigurationError``, never a temporary file left."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openai_chatapi import ChatAgent, ChatMessage, ConfigurationError, load_history

from ..support.fakes import FakeServer


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def _agent_with_a_turn(agent: ChatAgent, server: FakeServer) -> ChatAgent:
    server.add_completion("hello")
    await agent.chat("hi")
    return agent


async def test_saving_to_a_directory(agent: ChatAgent, server: FakeServer, tmp_path: Path) -> None:
    await _agent_with_a_turn(agent, server)
    target = tmp_path / "conversation.json"
    target.mkdir()
    with pytest.raises(ConfigurationError, match="directory") as info:
        agent.save_history(target)
    assert info.value.details["path"] == str(target)
    assert _leftovers(tmp_path) == [] and _files(target) == []


async def test_saving_text_that_cannot_be_encoded(agent: ChatAgent, tmp_path: Path) -> None:
    agent.replace_history([ChatMessage(role="user", content="cut \ud83d")])
    target = tmp_path / "conversation.json"
    with pytest.raises(ConfigurationError, match="encoded"):
        agent.save_history(target)
    assert _files(tmp_path) == []


async def test_a_failure_while_replacing_the_file_removes_the_temporary_file(
    agent: ChatAgent, server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _agent_with_a_turn(agent, server)
    target = tmp_path / "conversation.json"
    target.write_text("previous", encoding="utf-8")

    def refuse(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ConfigurationError, match=r"cannot replace .*: Permission denied"):
        agent.save_history(target)
    monkeypatch.undo()
    assert _leftovers(tmp_path) == []
    assert target.read_text(encoding="utf-8") == "previous"  # the old file is intact
    agent.save_history(target)
    assert _leftovers(tmp_path) == []


async def test_saving_into_a_missing_directory_names_it_and_creates_nothing(
    agent: ChatAgent, server: FakeServer, tmp_path: Path
) -> None:
    await _agent_with_a_turn(agent, server)
    folder = tmp_path / "no" / "such"
    with pytest.raises(ConfigurationError, match=f"the directory {folder} does not exist") as info:
        agent.save_history(folder / "conversation.json")
    assert info.value.details["directory"] == str(folder)
    assert _files(tmp_path) == []
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="is not a directory"):
        agent.save_history(tmp_path / "file" / "conversation.json")


@pytest.mark.skipif(not Path("/proc/version").is_file(), reason="needs Linux /proc")
async def test_a_write_failure_says_what_failed(agent: ChatAgent, server: FakeServer) -> None:
    await _agent_with_a_turn(agent, server)
    with pytest.raises(ConfigurationError, match=r"/proc/version: cannot create a file in /proc"):
        agent.save_history("/proc/version")


def test_a_conversation_saved_by_the_previous_release_loads(tmp_path: Path) -> None:
    # Written by 0.4.0 before the internal modules were renamed: the format id is the file
    # format's name, never a module path.
    saved = tmp_path / "old.json"
    saved.write_text(
        '{"format": "openai_chatapi.history", "version": 1, "messages": ['
        '{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}, '
        '{"role": "assistant", "content": "hello"}]}',
        encoding="utf-8",
    )
    messages = load_history(saved)
    assert [(m.role, m.content) for m in messages] == [
        ("system", "be brief"),
        ("user", "hi"),
        ("assistant", "hello"),
    ]
