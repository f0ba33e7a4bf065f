"""An earlier turn's attached file that is later deleted or changed never fails a later turn:
a text note is sent in its place (one warning per file), or, with
``RuntimeConfig(keep_media_bytes=True)``, the bytes kept at attach time."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from openai_chatapi import ChatAgent, MediaProcessingError

from ..conftest import AgentFactory
from ..support.fakes import FakeServer

pytest.importorskip("PIL", reason="the media tests need the 'image' extra (Pillow)")

from ..support.media_factory import image_bytes


def _first_user_content(body: dict[str, Any]) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = body["messages"][0]["content"]
    return content


def _upload(folder: Path, name: str = "upload.png", **kwargs: Any) -> Path:
    path = folder / name
    path.write_bytes(image_bytes("png", **kwargs))
    return path


async def test_a_deleted_file_of_an_earlier_turn_is_replaced_by_a_note(
    make_agent: AgentFactory, server: FakeServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agent = await make_agent(enable_logging=True)  # the warning is this agent's own record
    upload = _upload(tmp_path)
    server.add_completion("a red square").add_completion("yes").add_completion("still yes")
    assert await agent.chat("what is this?", image_paths=str(upload)) == "a red square"
    upload.unlink()  # the usual web pattern: the temporary upload is gone after the turn
    with caplog.at_level(logging.WARNING, logger="openai_chatapi"):
        assert await agent.chat("is it red?") == "yes"
        assert await agent.chat("sure?") == "still yes"
    for body in server.bodies[1:]:
        assert _first_user_content(body) == [
            {"type": "text", "text": "what is this?"},
            {"type": "text", "text": "[image upload.png is no longer available; not sent]"},
        ]
    warnings = [r for r in caplog.records if "upload.png" in r.getMessage()]
    assert len(warnings) == 1  # once per file, not once per request
    # The history itself keeps the reference: the note exists only in what is sent.
    assert agent.history[0].has_media


async def test_a_changed_file_of_an_earlier_turn_is_replaced_by_a_note(
    agent: ChatAgent, server: FakeServer, tmp_path: Path
) -> None:
    upload = _upload(tmp_path, color=(200, 30, 30))
    server.add_completion("red").add_completion("ok")
    await agent.chat("colour?", image_paths=str(upload))
    before = upload.stat()
    # Same size, same type, other pixels; a different modification time.
    upload.write_bytes(image_bytes("png", color=(30, 200, 30)))
    os.utime(upload, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert upload.stat().st_size == before.st_size
    await agent.chat("and now?")
    assert _first_user_content(server.last_body)[1] == {
        "type": "text",
        "text": "[image upload.png was changed after it was attached; not sent]",
    }


async def test_an_unchanged_file_is_still_sent(
    agent: ChatAgent, server: FakeServer, tmp_path: Path
) -> None:
    upload = _upload(tmp_path)
    server.add_completion("one").add_completion("two")
    await agent.chat("look", image_paths=str(upload))
    await agent.chat("again")
    assert _first_user_content(server.last_body)[1]["type"] == "image_url"


async def test_keep_media_bytes_keeps_sending_the_attached_image(
    make_agent: AgentFactory, server: FakeServer, tmp_path: Path
) -> None:
    agent: ChatAgent = await make_agent(keep_media_bytes=True)
    upload = _upload(tmp_path)
    original = upload.read_bytes()
    server.add_completion("red").add_completion("still red")
    await agent.chat("what is this?", image_paths=str(upload))
    upload.unlink()
    assert await agent.chat("and now?") == "still red"
    url = _first_user_content(server.last_body)[1]["image_url"]["url"]
    assert url == "data:image/png;base64," + base64.b64encode(original).decode()


async def test_the_current_turn_still_reports_a_missing_file(
    agent: ChatAgent, server: FakeServer, tmp_path: Path
) -> None:
    with pytest.raises(MediaProcessingError):
        await agent.chat("look", image_paths=str(tmp_path / "missing.png"))
    assert server.requests == []


async def test_a_file_deleted_during_a_tool_round_does_not_fail_the_follow_up(
    agent: ChatAgent, server: FakeServer, tmp_path: Path
) -> None:
    from openai_chatapi import tool

    from ..support.fakes import completion, tool_call

    upload = _upload(tmp_path)

    @tool
    def tidy_up() -> str:
        """Remove the upload."""
        upload.unlink()
        return "removed"

    agent.register_tool(tidy_up)
    server.add_json(
        completion(None, tool_calls=[tool_call("t1", "tidy_up", {})], finish_reason="tool_calls")
    )
    server.add_completion("done")
    assert await agent.chat("look, then tidy up", image_paths=str(upload)) == "done"
    assert _first_user_content(server.last_body)[1]["text"].startswith("[image upload.png")


async def test_the_note_warning_follows_each_agents_own_logging_switch(
    make_agent: AgentFactory, server: FakeServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Records of the turn runner are the agent's own: a second agent with logging off says
    # nothing, and creating it changes nothing for the first.
    loud = await make_agent(enable_logging=True)
    quiet = await make_agent(enable_logging=False)
    for agent, name in ((loud, "loud.png"), (quiet, "quiet.png")):
        upload = _upload(tmp_path, name)
        server.add_completion("a").add_completion("b")
        await agent.chat("look", image_paths=str(upload))
        upload.unlink()
        with caplog.at_level(logging.DEBUG, logger="openai_chatapi"):
            await agent.chat("and now?")
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "loud.png" in said
    assert "quiet.png" not in said
