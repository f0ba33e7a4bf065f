"""Session-wide real local model server for ``@pytest.mark.live`` tests.

Wire it in ``tests/conftest.py`` with::

    from .live_server import live_local_server, live_model_config  # noqa: F401

``live_model_config`` yields a ready ``ModelConfig`` for one llama.cpp server shared by the
whole session (temperature 0, so structure checks are stable). Tests using it are skipped,
with the reason, when the ``local`` extra is not installed; when it is installed, a server
that cannot start or whose model cannot answer a first short chat fails every test using it
(never a skip), with the server's log tail. Both fixtures, and imports of them into several
modules, share one server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from openai_chatapi._config import ModelConfig
from openai_chatapi._local_launch import REPACK_ENV, cpu_reports_amx, extra_buffer_types
from openai_chatapi.local import LOCAL_EXTRA_HINT, LocalModelServer, local_extra_available

__all__ = ["live_local_server", "live_model_config", "local_model_path"]

# The machine may be busy (parallel builds, other suites): be generous.
STARTUP_TIMEOUT = 180.0

ANSWER_TIMEOUT = 180.0

_shared: LocalModelServer | None = None
_users = 0


def local_model_path() -> str:
    """One line for the test report header: which path the embedded model loads with."""
    extra, why = extra_buffer_types()
    return (
        f"local model: CPU reports AMX: {'yes' if cpu_reports_amx() else 'no'}; "
        f"llama.cpp extra buffer types {'on' if extra else 'off (AMX-safe path)'}: {why} "
        f"(${REPACK_ENV}=auto|on|off)"
    )


def _fail_unless_it_answers(server: LocalModelServer) -> None:
    """A first short chat; on failure stop the server and fail loudly with its log."""
    config = server.config
    try:
        response = httpx.post(
            f"{config.api_base_url}/chat/completions",
            headers={"Authorization": f"Bearer {config.api_key}"},
            json={
                "model": config.model,
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 4,
            },
            timeout=ANSWER_TIMEOUT,
            trust_env=False,
        )
        response.raise_for_status()
        if not isinstance(response.json()["choices"][0]["message"]["content"], str):
            raise ValueError(f"no text in the answer: {response.text[:500]}")
    except (httpx.HTTPError, ValueError, LookupError, TypeError) as exc:
        deadline = time.monotonic() + 5
        while server.returncode is None and time.monotonic() < deadline:
            time.sleep(0.05)  # a crash: let the child be reaped, to report how it died
        status = server.returncode
        tail = server.log_tail(60)
        log_path = server.log_path
        server.stop_sync()
        pytest.fail(
            f"the 'local' extra is installed but the local model cannot answer: "
            f"{type(exc).__name__}: {exc}; server return code {status}; {local_model_path()}; "
            f"log {log_path}:\n{tail}",
            pytrace=False,
        )


def _acquire(log_dir: str) -> LocalModelServer:
    global _shared, _users
    if _shared is None or not _shared.running:
        server = LocalModelServer(
            startup_timeout=STARTUP_TIMEOUT,
            log_path=f"{log_dir}/llama-server.log",
            config_overrides={"temperature": 0.0},
        )
        server.start_sync()
        _fail_unless_it_answers(server)
        _shared = server
    _users += 1
    return _shared


def _release() -> None:
    global _shared, _users
    _users -= 1
    if _users <= 0 and _shared is not None:
        _shared.stop_sync()
        _shared = None
        _users = 0


@contextmanager
def _session_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModelServer]:
    if not local_extra_available():
        pytest.skip(f"needs the 'local' extra: {LOCAL_EXTRA_HINT}")
    server = _acquire(str(tmp_path_factory.mktemp("live-server")))
    try:
        yield server
    finally:
        _release()


@pytest.fixture(scope="session")
def live_local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModelServer]:
    """The running session server (pid, log file, ...); skips without the ``local`` extra."""
    with _session_server(tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="session")
def live_model_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelConfig]:
    """A ``ModelConfig`` for the session's real local model server (temperature 0)."""
    with _session_server(tmp_path_factory) as server:
        yield server.config
