"""The public API type-checks as documented: mypy accepts the documented values and catches
typos (run on small snippets with mypy's API; skipped when mypy is not installed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from openai_chatapi import ChatAgent, ModelConfig

from ..conftest import REPO_ROOT
from ..support.fakes import FakeServer

mypy_api = pytest.importorskip("mypy.api", reason="needs mypy (the dev extra)")

SNIPPET = """
from typing import assert_type
from openai_chatapi import ChatAgent, ModelConfig

async def use(agent: ChatAgent) -> None:
    assert_type(await agent.chat("x", response_format="json_object"), str)
    assert_type(await agent.chat("x", response_format="text"), str)
    assert_type(await agent.chat("x", response_format={"type": "json_object"}), str)
    await agent.chat("x", reasoning_effort="low")

ModelConfig(reasoning_effort="high")
ModelConfig(reasoning_effort=None)
ModelConfig(reasoning_effort="hgih")  # line 13: the typo mypy must report
"""


def test_response_format_strings_and_reasoning_effort_type_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This checkout's package, not whichever copy is installed in the environment.
    monkeypatch.setenv("MYPYPATH", str(REPO_ROOT))
    source = tmp_path / "snippet.py"
    source.write_text(textwrap.dedent(SNIPPET), encoding="utf-8")
    out, err, status = mypy_api.run(
        [
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--python-version",
            "3.11",
            str(source),
        ]
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1, out + err
    assert "snippet.py:13:" in errors[0] and "reasoning_effort" in errors[0]
    assert status == 1


async def test_the_literals_are_the_values_accepted_at_run_time(server: FakeServer) -> None:
    for effort in ("none", "minimal", "low", "medium", "high", "xhigh", "max"):
        assert ModelConfig(reasoning_effort=effort).reasoning_effort == effort
    server.add_completion('{"a": 1}')
    agent = ChatAgent(
        ModelConfig(api_base_url="http://fake.test/v1", model="m"),
        http_transport=server.transport(),
    )
    async with agent:
        assert await agent.chat("json please", response_format="json_object") == '{"a": 1}'
    assert server.last_body["response_format"] == {"type": "json_object"}
