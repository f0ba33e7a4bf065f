"""The server's child process as the parent sees it: its command line, environment, log
file, and how it is signalled and reaped.

The child runs ``_launch.py`` by path (the package itself need not be importable there, and
its directory must not shadow top-level modules on ``sys.path``); the launcher then runs the
server module. It leads its own session on POSIX (its own process group, so Ctrl-C in the
terminal reaches the parent only, and stopping it stops everything it started).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from . import _launch

__all__ = [
    "HOST",
    "abandon",
    "child_command",
    "child_env",
    "free_port",
    "kill_and_wait",
    "open_log",
    "read_tail",
    "remove",
    "spawn",
    "terminate",
]

HOST = "127.0.0.1"
_LAUNCHER = Path(_launch.__file__)
# Runs the launcher by path in the child, which then runs the server module (_launch.main).
_BOOTSTRAP = "import runpy, sys; runpy.run_path(sys.argv.pop(1), run_name='__main__')"
# llama_cpp.server lets $HOST, $PORT and $CONFIG_FILE override its arguments.
_OVERRIDING_ENV = frozenset({"HOST", "PORT", "CONFIG_FILE"})
_TAIL_BYTES = 8192


def free_port() -> int:
    """A loopback port nobody listens on right now (another process may take it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def child_command(module: str, arguments: Mapping[str, str], extra: Sequence[str]) -> list[str]:
    """``python -c <bootstrap> <launcher> <module> --name=value... <extra...>``.

    ``--name=value``: a value starting with ``-`` must not read as an option to argparse.
    The first four items are the interpreter and the bootstrap (see ``public_command``).
    """
    return [
        sys.executable,
        "-c",
        _BOOTSTRAP,
        str(_LAUNCHER),
        module,
        *(f"--{name}={value}" for name, value in arguments.items()),
        *extra,
    ]


def public_command(command: Sequence[str]) -> list[str]:
    """The command line as shown in errors: ``python -m <module> <arguments>``."""
    return ["python", "-m", *command[4:]]


def child_env(extra: Mapping[str, str], api_key: str) -> dict[str, str]:
    """This process's environment for the child, with ``extra`` and the launcher's inputs."""
    inherited = {k: v for k, v in os.environ.items() if k.upper() not in _OVERRIDING_ENV}
    env = {**inherited, **extra, "PYTHONUNBUFFERED": "1"}
    env[_launch.PARENT_PID_ENV] = str(os.getpid())
    # The key goes in the child's environment (readable only by its owner), never on its
    # command line (readable by every local user); the launcher hands it to the server.
    env[_launch.API_KEY_ENV] = api_key
    return env


def open_log(path: Path | None) -> tuple[IO[bytes], Path, bool]:
    """The log for appending: ``path``, or a new temporary file; (handle, path, is_temp)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("ab"), path, False
    fd, name = tempfile.mkstemp(prefix="openai_chatapi-local-", suffix=".log")
    return os.fdopen(fd, "ab"), Path(name), True


def spawn(command: list[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start the child, its output (both streams) appended to ``log``, no stdin."""
    options: dict[str, Any] = {}
    if os.name == "posix":
        options["start_new_session"] = True  # own process group; no terminal signals
    else:
        options["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        close_fds=True,
        **options,
    )


def read_tail(path: Path, start: int, max_lines: int) -> str:
    """The last ``max_lines`` lines of ``path`` written after offset ``start``."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(start, size - _TAIL_BYTES))
            data = handle.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", errors="replace").splitlines()
    return "\n".join(lines[-max_lines:])


def terminate(proc: subprocess.Popen[bytes], *, kill: bool = False) -> None:
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


def kill_and_wait(proc: subprocess.Popen[bytes]) -> None:
    """Kill the child unless it has exited, and reap it."""
    if proc.poll() is None:
        terminate(proc, kill=True)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def abandon(proc: subprocess.Popen[bytes], temp_log: Path | None) -> None:
    """Safety net for a server never stopped (collected, or still running at exit):
    terminate, wait up to two seconds, kill; remove its temporary log."""
    if proc.poll() is None:
        terminate(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2.0)
    kill_and_wait(proc)
    remove(temp_log)


def remove(path: Path | None) -> None:
    """Delete ``path`` if it is a file still there."""
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()
