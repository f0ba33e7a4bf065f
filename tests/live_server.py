"""Session-wide real local model server for ``@pytest.mark.live`` tests.

Wire it in ``tests/conftest.py`` with::

    from .live_server import live_local_server, live_model_config  # noqa: F401

``live_model_config`` yields a ready ``ModelConfig`` for one llama.cpp server shared by the
whole session (temperature 0, so structure checks are stable). Tests using it are skipped,
with the reason, when the ``local`` extra is not installed. Both fixtures, and imports of them
into several modules, share one server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from openai_chatapi.config import ModelConfig
from openai_chatapi.local import LOCAL_EXTRA_HINT, LocalModelServer, local_extra_available

__all__ = ["live_local_server", "live_model_config"]

# The machine may be busy (parallel builds, other suites): be generous.
STARTUP_TIMEOUT = 180.0

_shared: LocalModelServer | None = None
_users = 0


def _acquire(log_dir: str) -> LocalModelServer:
    global _shared, _users
    if _shared is None or not _shared.running:
        server = LocalModelServer(
            startup_timeout=STARTUP_TIMEOUT,
            log_path=f"{log_dir}/llama-server.log",
            config_overrides={"temperature": 0.0},
        )
        server.start_sync()
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
