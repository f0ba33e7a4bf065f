"""The local server's lifecycle, written once for ``with`` and ``async with``.

``Supervisor.start`` and ``Supervisor.stop`` are generators: they do the work (check the
options, launch the child, read its state, kill it) and *yield* what they wait for, a
``Sleep`` or a ``Probe`` (one ``GET /v1/models`` of the readiness check), to one of the two
drivers of ``_steps``: ``run_blocking`` behind ``start_sync``, ``stop_sync`` and ``with``,
``run_async`` behind ``start``, ``stop`` and ``async with``. A ``KeyboardInterrupt`` or a
cancellation that arrives while a driver waits is thrown into the generator at its
``yield``, so the cleanup of a failed or interrupted start (kill the child, keep or delete
its log) is written once, here.

The readiness probe is the one request of this package not sent by ``_transport.py``: it
runs before any agent (or ``ModelConfig``) exists, against the loopback server just started,
and a failure there means "not up yet" (it is polled every 0.1 s until ``startup_timeout``),
not an error to retry, map or log as the transport does.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from .._config import ModelConfig
from .._errors import ChatAPIException, ConfigurationError
from .._redact import redact_text
from . import _launch, _paths, _process, _watch
from ._errors import (
    LocalServerExitedError,
    exited_error,
    is_port_in_use,
    port_in_use_line,
    startup_error,
)
from ._steps import Probe, Sleep, Steps

if TYPE_CHECKING:
    from ._server import LocalModelServer

__all__ = ["Supervisor"]

_PORT_ATTEMPTS = 3
_POLL_INTERVAL = 0.1
_STOP_POLL = 0.05


def _model_config(server: LocalModelServer, base_url: str, api_key: str | None) -> ModelConfig:
    """The ``ModelConfig`` for ``server`` answering at ``base_url`` with ``api_key``."""
    fixed = {"api_base_url", "api_key", "model"} & server.config_overrides.keys()
    if fixed:
        raise ConfigurationError(
            f"config_overrides cannot set {', '.join(sorted(fixed))} (use alias/api_key)",
            {"field": "config_overrides", "keys": sorted(fixed)},
        )
    try:
        return ModelConfig(
            api_base_url=base_url, api_key=api_key, model=server.alias, **server.config_overrides
        )
    except TypeError as exc:  # an unknown field name
        raise ConfigurationError(
            f"invalid config_overrides: {exc}", {"field": "config_overrides"}
        ) from exc


class _PortTaken(Exception):
    """Internal: the server died because another process took its port first."""


class _ExitWatch:
    """What ``_watch`` holds for a running server: its process, and the supervisor weakly
    (an agent kept open must not keep a forgotten server alive)."""

    def __init__(self, proc: subprocess.Popen[bytes], supervisor: Supervisor) -> None:
        self._proc = proc
        self._supervisor = weakref.ref(supervisor)
        self.closed = False

    def exited_error(self, action: str, *, before: bool = False) -> BaseException | None:
        if self.closed or self._proc.poll() is None:
            return None  # running, or stopped by its owner: nothing to name
        supervisor = self._supervisor()
        if supervisor is None:
            return None
        if before:
            return supervisor.exited_error(f"before the request {action}", self._proc, had=True)
        return supervisor.exited_error(f"while answering {action}", self._proc)


class Supervisor:
    """The child process of one ``LocalModelServer`` and the facts of its current (or last)
    run, which the server shows as read-only attributes. ``start`` reads the server's
    options as they are then; nothing here refers to the server after that."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.last_proc: subprocess.Popen[bytes] | None = None
        self.config: ModelConfig | None = None
        self.port: int | None = None
        self.log_path: Path | None = None
        self.command: list[str] = []
        self.model_path: Path | None = None
        self.extra_buffer_types: bool | None = None
        self._api_key: str | None = None
        self._checked_key: str | None = None
        self._log_is_temp = False
        self._log_start = 0
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._watch: _ExitWatch | None = None

    @property
    def base_url(self) -> str | None:
        return None if self.port is None else f"http://{_process.HOST}:{self.port}/v1"

    def log_tail(self, max_lines: int) -> str:
        if self.log_path is None:
            return ""
        return _process.read_tail(self.log_path, self._log_start, max_lines)

    # ----------------------------------------------------------------- the lifecycle

    def start(self, server: LocalModelServer) -> Steps[ModelConfig]:
        """Start the child and wait until it serves the model; its ``ModelConfig``.

        Another process taking the port first is retried on a new port (a fixed port raises
        the startup error). If startup fails or is interrupted the child is killed first.
        """
        self._prepare(server)
        for attempt in range(_PORT_ATTEMPTS):
            self._launch(server)
            try:
                yield from self._until_ready(server)
            except BaseException as exc:
                if self._failed_attempt(server, attempt, exc):
                    continue
                raise
            return self._ready(server)
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, stop_timeout: float) -> Steps[None]:
        """Terminate the child, wait up to ``stop_timeout`` seconds, kill it; safe to repeat."""
        proc = self.proc
        if proc is None:
            return
        exited = proc.poll() is not None  # by itself: keep the log its error names
        try:
            if not exited:
                _process.terminate(proc)
                deadline = time.monotonic() + stop_timeout
                # Polling, not a waiter thread: cancellation stays immediate, no thread left.
                while proc.poll() is None and time.monotonic() < deadline:
                    yield Sleep(_STOP_POLL)
        finally:
            # Also reached when the wait above is interrupted: never leave the child behind.
            _process.kill_and_wait(proc)
            self._finish(keep_log=exited)

    def _prepare(self, server: LocalModelServer) -> None:
        if self.proc is not None:
            raise ConfigurationError("the local model server is already started", {})
        if not sys.executable:
            raise ConfigurationError("cannot find the Python interpreter to run the server", {})
        if server._model_path is not None:
            self.model_path = _paths.checked_model_path(server._model_path, source="model_path")
        missing = _paths.missing_modules(server._server_requirements)
        if missing:
            raise _paths.missing_extra("the local model server", missing)
        if server._model_path is None:
            self.model_path = _paths.default_model_path()
        child_env = {**os.environ, **server.env}
        choice = _launch.repack_choice(child_env)
        if choice not in _launch.REPACK_CHOICES:
            choices = _launch.REPACK_CHOICES
            raise ConfigurationError(
                f"{_launch.REPACK_ENV} must be one of {', '.join(choices)}, not {choice!r}",
                {"field": _launch.REPACK_ENV, "value": choice, "choices": list(choices)},
            )
        self.extra_buffer_types, _ = _launch.extra_buffer_types(child_env)
        # Validate the overrides and the key (one that can be sent in a header) now rather
        # than after a slow start; the server gets the key exactly as the config sends it.
        checked = _model_config(
            server, f"http://{_process.HOST}:1/v1", server._api_key_option or "x"
        )
        self._checked_key = checked.api_key if server._api_key_option else None

    def _launch(self, server: LocalModelServer) -> None:
        self.port = server._fixed_port or _process.free_port()
        self._api_key = self._checked_key or secrets.token_hex(16)
        arguments = {
            "model": str(self.model_path),
            "model_alias": server.alias,
            "host": _process.HOST,
            "port": str(self.port),
            "n_ctx": str(server.n_ctx),
            "chat_format": server.chat_format,
            "interrupt_requests": "false",  # queue concurrent requests instead of cutting them
        }
        self.command = _process.child_command(server._server_module, arguments, server.extra_args)
        env = _process.child_env(server.env, self._api_key)
        log, self.log_path, self._log_is_temp = _process.open_log(server._log_option)
        self._log_start = log.seek(0, os.SEEK_END)
        try:
            self.proc = _process.spawn(self.command, env, log)
        except OSError as exc:
            self._finish(keep_log=False)
            raise ConfigurationError(
                f"could not start the local model server: {exc}",
                {"command": self._public_command(), "error": str(exc)},
            ) from exc
        finally:
            log.close()  # the child holds its own copy
        temp_log = self.log_path if self._log_is_temp else None
        self._finalizer = weakref.finalize(self, _process.abandon, self.proc, temp_log)

    def _until_ready(self, server: LocalModelServer) -> Steps[None]:
        deadline = time.monotonic() + server.startup_timeout
        probe = Probe(f"{self.base_url}/models", {"Authorization": f"Bearer {self._api_key}"})
        while True:
            response = yield probe
            if self._serves(server.alias, response):
                return
            if time.monotonic() >= deadline:
                why = f"not ready after {server.startup_timeout:g} s"
                raise startup_error(why, self.error_details(), timeout=True)
            yield Sleep(_POLL_INTERVAL)

    def _serves(self, alias: str, response: httpx.Response | None) -> bool:
        """Whether the server lists ``alias``; ``_PortTaken`` or the exit error once it exited."""
        if response is not None and response.status_code == 200:
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                if alias in [entry.get("id") for entry in response.json().get("data", [])]:
                    return True
        proc = self.proc
        assert proc is not None
        if proc.poll() is not None:
            if is_port_in_use(self.log_tail(80)):
                raise _PortTaken
            raise self.exited_error("during startup", proc)
        return False

    def _failed_attempt(self, server: LocalModelServer, attempt: int, exc: BaseException) -> bool:
        """Clean up after a start attempt that failed with ``exc``; True means try again.

        A startup error keeps the log file it names; an interruption does not.
        """
        if isinstance(exc, _PortTaken):
            if attempt + 1 < _PORT_ATTEMPTS and server._fixed_port is None:
                self._discard_process(keep_log=False)
                return True
            details = self.error_details()
            hint = port_in_use_line(details["log_tail"])
            error = startup_error("port already in use", details, hint=hint)
            self._discard_process(keep_log=True)
            raise error from None
        self._discard_process(keep_log=isinstance(exc, ChatAPIException))
        return False

    def _ready(self, server: LocalModelServer) -> ModelConfig:
        assert self.proc is not None
        self.config = _model_config(server, f"http://{_process.HOST}:{self.port}/v1", self._api_key)
        self._watch = _ExitWatch(self.proc, self)
        _watch.register(self.config.api_base_url, self._watch)
        return self.config

    def _discard_process(self, *, keep_log: bool) -> None:
        """Kill a process that failed or was interrupted during startup."""
        try:
            if self.proc is not None:
                _process.kill_and_wait(self.proc)
        finally:
            self._finish(keep_log=keep_log)

    def _finish(self, *, keep_log: bool) -> None:
        if self._watch is not None:
            self._watch.closed = True
            if self.config is not None:
                _watch.unregister(self.config.api_base_url, self._watch)
            self._watch = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self.proc is not None:
            self.last_proc = self.proc  # keeps pid and returncode readable after stop
        self.proc = None
        self.config = None
        if self._log_is_temp and not keep_log:
            _process.remove(self.log_path)
            self.log_path = None

    # ----------------------------------------------------------------- errors

    def _public_command(self) -> list[str]:
        """The command line with the bootstrap code and the API key left out."""
        shown = _process.public_command(self.command)
        if self._api_key:
            shown = [redact_text(part, (self._api_key,)) for part in shown]
        return shown

    def error_details(self) -> dict[str, Any]:
        """The facts every error of this run carries (the key redacted from all of them)."""
        tail = self.log_tail(40)
        if self._api_key:
            tail = redact_text(tail, (self._api_key,))
        proc = self.proc or self.last_proc
        return {
            "log_tail": tail,
            "log_path": str(self.log_path) if self.log_path else None,
            "returncode": None if proc is None else proc.poll(),
            "command": self._public_command(),
            "model_path": str(self.model_path),
            "port": self.port,
            "extra_buffer_types": self.extra_buffer_types,
        }

    def exited_error(
        self, when: str, proc: subprocess.Popen[bytes], *, had: bool = False
    ) -> LocalServerExitedError:
        """The error naming the exit of ``proc`` (which has exited) ``when``."""
        returncode = proc.poll()
        assert returncode is not None
        return exited_error(when, returncode, self.error_details(), had=had)
