"""Shared fixtures: a fake server behind the real client, and an injected sleep."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from openai_chatapi import ChatAgent, ModelConfig, RuntimeConfig

from .support.fakes import API_KEY, BASE_URL, FakeServer, SleepRecorder
from .support.live_server import live_local_server, live_model_config, local_model_path  # noqa: F401
from .support.repo_scripts import load_script, load_upstream

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def pytest_configure(config: pytest.Config) -> None:
    # A runner that started us as a background job of a non-interactive shell passes SIGINT
    # on ignored, and ignored it stays in every child: the Ctrl-C tests of the CLI and the
    # local server would then wait for children that never see it. A handled signal goes back
    # to its default in a child, so Python's own handler brings each child the usual Ctrl-C.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests decide about keys themselves; a developer's real key must never leak in.
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


AgentFactory = Callable[..., Any]


@pytest.fixture
async def make_agent(server: FakeServer, sleeps: SleepRecorder) -> AsyncIterator[AgentFactory]:
    """Open agents wired to the fake server; all are closed after the test."""
    opened: list[ChatAgent] = []

    async def factory(**kwargs: Any) -> ChatAgent:
        model_fields = {
            k: kwargs.pop(k) for k in list(kwargs) if k in ModelConfig.__dataclass_fields__
        }
        model_fields.setdefault("api_base_url", BASE_URL)
        model_fields.setdefault("api_key", API_KEY)
        model_fields.setdefault("model", "test-model")
        kwargs.setdefault("enable_logging", False)
        agent = ChatAgent(
            ModelConfig(**model_fields),
            RuntimeConfig(**kwargs),
            http_transport=server.transport(),
            sleep=sleeps,
        )
        await agent.__aenter__()
        opened.append(agent)
        return agent

    yield factory
    for agent in opened:
        await agent.aclose()


@pytest.fixture
async def agent(make_agent: AgentFactory) -> ChatAgent:
    result: ChatAgent = await make_agent()
    return result


def pytest_report_header() -> list[str]:
    return [
        f"shared folder: {SHARED} ({'present' if SHARED.is_dir() else 'absent'})",
        local_model_path(),
    ]


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """syrupy's snapshot, stored as JSON (the payload snapshots)."""
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.fixture(scope="session")
def check_schema() -> ModuleType:
    """``scripts/check_schema.py`` as a module."""
    return load_script("check_schema")


@pytest.fixture(scope="session")
def upstream(check_schema: ModuleType) -> dict[str, Any]:
    """The official spec as published (nullable and all); skips the test without it."""
    return load_upstream(check_schema)


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh directory that ``tempfile`` uses as its default for the test."""
    import tempfile

    path = tmp_path / "tmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


async def agent_with_one_turn(make_agent: AgentFactory, server: FakeServer, **config: Any) -> Any:
    """An agent made with ``config`` whose history holds one plain turn (Hello / Hi.)."""
    agent = await make_agent(**config)
    server.add_completion("Hi.")
    await agent.chat("Hello")
    return agent
