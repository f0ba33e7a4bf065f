"""A local model server that dies is named: one ``LocalServerExitedError``, no retries.

The stand-in server (``tests/support/local_standin.py``) runs through the real process management of
``LocalModelServer`` and the real agent, transport and CLI; it answers readiness and then
kills itself with SIGSEGV on the first chat (or mid-stream), or exits with code 7 before it
is ready. Every chat it receives is counted in a file, so "no retry against the dead port"
is checked by what the server saw, not by timing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

import pytest

import openai_chatapi
from openai_chatapi import APIConnectionError, ChatAgent, ChatAPIException, RuntimeConfig
from openai_chatapi import _cli as cli
from openai_chatapi import local as local_module
from openai_chatapi.local import LocalModelServer, LocalServerExitedError

from .test_local import assert_stopped, is_gone

TESTS_DIR = Path(__file__).resolve().parents[1] / "support"
# A bound against hanging forever, not a timing assertion.
BOUND = 60.0

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals are POSIX")


class StandIn(LocalModelServer):
    _server_module = "local_standin"
    _server_requirements = ()


@pytest.fixture(autouse=True)
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary server logs go here, so tests can see what is kept."""
    path = tmp_path / "tmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"not really a model")
    return path


@pytest.fixture
def chat_count(tmp_path: Path) -> Path:
    return tmp_path / "chats.txt"


def chats_seen(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def standin(model_file: Path, mode: str, chat_count: Path, **kw: Any) -> StandIn:
    return StandIn(
        model_file,
        env={"PYTHONPATH": str(TESTS_DIR)},
        extra_args=["--standin", mode, "--chat-count", str(chat_count)],
        startup_timeout=BOUND,
        **kw,
    )


def log_kept(error: LocalServerExitedError) -> bool:
    return error.log_path is not None and Path(error.log_path).is_file()


def runtime(**kw: Any) -> RuntimeConfig:
    # Retries on, fast: the point is that none of them is sent to the dead port.
    options: dict[str, Any] = {"enable_logging": False, "max_retries": 3, "retry_delay": 0.01}
    return RuntimeConfig(**{**options, **kw})


def assert_names_the_crash(error: LocalServerExitedError, server: LocalModelServer) -> None:
    assert isinstance(error, APIConnectionError)
    message = str(error)
    assert "embedded local model server stopped" in message
    assert "SIGSEGV" in message and "\n" not in message
    assert error.signal == "SIGSEGV" == error.details["signal"]
    assert error.returncode == -signal.SIGSEGV == error.details["returncode"]
    assert error.exit_code is None
    assert "standin: crashing now" in error.log_tail
    assert error.log_tail == error.details["log_tail"]
    # faulthandler (enabled by the launcher) put the Python stack of the crash in the log.
    assert "Segmentation fault" in error.log_tail
    assert error.log_path is not None and error.log_path in message
    assert str(server.port) in message  # the request it was answering
    command = " ".join(error.details["command"])
    assert "--api_key" not in command  # the key is passed in the environment, not argv


async def test_segv_on_the_first_chat_is_one_named_error(
    model_file: Path, chat_count: Path
) -> None:
    server = standin(model_file, "segv-on-chat", chat_count)
    async with server as config, ChatAgent(config, runtime()) as agent:
        agent.set_system_prompt("be brief")
        before = list(agent.history)
        with pytest.raises(LocalServerExitedError) as info:
            await asyncio.wait_for(agent.chat("hello"), BOUND)
        assert_names_the_crash(info.value, server)
        assert list(agent.history) == before, "a failed call leaves the conversation as it was"
        assert chats_seen(chat_count) == 1, "no retry against the dead port"
        pid = server.pid
        assert pid is not None and is_gone(pid)

        assert "stopped while answering POST" in str(info.value)
        # Later calls fail the same way at once, still without a request.
        with pytest.raises(LocalServerExitedError) as later:
            await asyncio.wait_for(agent.chat("again"), BOUND)
        message = str(later.value)
        assert "server had stopped before the request POST" in message
        assert "while answering" not in message and "SIGSEGV" in message
        with pytest.raises(LocalServerExitedError):
            await asyncio.wait_for(agent.list_models(), BOUND)
        assert chats_seen(chat_count) == 1
    assert_stopped(server)
    assert log_kept(info.value), "the log its error names is kept"


async def test_segv_mid_stream_is_one_named_error(model_file: Path, chat_count: Path) -> None:
    server = standin(model_file, "segv-mid-stream", chat_count)
    pieces: list[str] = []
    async with server as config, ChatAgent(config, runtime()) as agent:

        async def read() -> None:
            async for piece in agent.chat_stream("hello", display_stream=False):
                pieces.append(piece)

        with pytest.raises(LocalServerExitedError) as info:
            await asyncio.wait_for(read(), BOUND)
        assert_names_the_crash(info.value, server)
        assert list(agent.history) == []
        assert chats_seen(chat_count) == 1
    assert pieces == ["standin"]  # what arrived before the crash was delivered
    assert_stopped(server)


def test_exit_before_ready_is_one_named_error(model_file: Path, chat_count: Path) -> None:
    server = standin(model_file, "exit-before-ready", chat_count)
    with pytest.raises(LocalServerExitedError) as info:
        server.start_sync()
    error = info.value
    message = str(error)
    assert "embedded local model server stopped during startup" in message
    assert "exit code 7" in message
    assert "standin refuses to load the model" in message  # its last words
    assert error.exit_code == 7 == error.details["exit_code"] == error.returncode
    assert error.signal is None
    assert "standin refuses to load the model" in error.log_tail
    assert error.log_path is not None and Path(error.log_path).exists()
    assert_stopped(server)


async def test_a_healthy_server_is_unaffected(model_file: Path, chat_count: Path) -> None:
    server = standin(model_file, "ok", chat_count)
    async with server as config, ChatAgent(config, runtime()) as agent:
        assert await agent.chat("hello") == "standin reply"
        assert "".join([p async for p in agent.chat_stream("hi", display_stream=False)]) == (
            "standin"
        )
        assert chats_seen(chat_count) == 2
    assert_stopped(server)


async def test_after_a_clean_stop_nothing_is_named(model_file: Path, chat_count: Path) -> None:
    # A server its owner stopped did not crash: a request then is an ordinary failure.
    server = standin(model_file, "ok", chat_count)
    async with server as config, ChatAgent(config, runtime(max_retries=0)) as agent:
        await server.stop()
        with pytest.raises(APIConnectionError) as info:
            await asyncio.wait_for(agent.chat("hello"), BOUND)
        assert not isinstance(info.value, LocalServerExitedError)
    assert_stopped(server)


def test_the_error_is_exported_and_never_retryable() -> None:
    assert openai_chatapi.LocalServerExitedError is LocalServerExitedError
    assert "LocalServerExitedError" in openai_chatapi.__all__
    assert issubclass(LocalServerExitedError, APIConnectionError)
    assert issubclass(LocalServerExitedError, ChatAPIException)
    from openai_chatapi._retry import RetryPolicy

    assert not RetryPolicy.retryable_error(LocalServerExitedError("gone", {}))
    assert RetryPolicy.retryable_error(APIConnectionError("refused", {}))


def test_cli_prints_the_crash_as_its_one_line(
    model_file: Path,
    chat_count: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(local_module.LocalModelServer, "_server_module", "local_standin")
    monkeypatch.setattr(local_module.LocalModelServer, "_server_requirements", ())
    monkeypatch.setenv("PYTHONPATH", str(TESTS_DIR))
    monkeypatch.setenv("LOCAL_STANDIN_MODE", "segv-on-chat")
    monkeypatch.setenv(local_module.MODEL_PATH_ENV, str(model_file))
    code = cli.main(["chat", "--max-retries", "2", "What is the capital of France?"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    notice, error = captured.err.splitlines()
    assert "using the embedded local model" in notice
    assert error.startswith("openai-chatapi: error: the embedded local model server stopped")
    assert "SIGSEGV" in error and "log: " in error
    log_path = error.rsplit("log: ", 1)[1].rstrip(")")
    assert "standin: crashing now" in Path(log_path).read_text()


def test_live_fixture_fails_loudly_when_the_model_cannot_answer(
    model_file: Path, chat_count: Path
) -> None:
    from ..support import live_server

    server = standin(model_file, "segv-on-chat", chat_count)
    server.start_sync()
    with pytest.raises(pytest.fail.Exception) as info:
        live_server._fail_unless_it_answers(server)
    message = str(info.value)
    assert "the local model cannot answer" in message
    assert f"return code {-signal.SIGSEGV}" in message
    assert "Segmentation fault" in message  # the log tail
    assert_stopped(server)
