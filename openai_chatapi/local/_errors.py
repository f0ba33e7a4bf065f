"""The errors of the local server: how its exit, a failed startup and a taken port are named.

The messages are built from the ``details`` of one run (log tail, log path, command, ...; see
``Supervisor.error_details``), so every error of a run carries the same facts.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from .._errors import APIConnectionError, APITimeoutError, ChatAPIException
from ._launch import REPACK_ENV
from ._view import View

__all__ = [
    "LocalServerExitedError",
    "exited_error",
    "is_port_in_use",
    "port_in_use_line",
    "startup_error",
]

_T = TypeVar("_T")
# Signals meaning a crash of native code, for which the AMX hint is worth giving.
_CRASH_SIGNALS = frozenset({"SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT"})


def _detail(kind: type[_T]) -> Callable[[ChatAPIException, str], _T | None]:
    """Reads an error's ``details`` entry of a name when that is a ``kind``, else None."""

    def read(error: ChatAPIException, name: str) -> _T | None:
        value = error.details.get(name)
        return value if isinstance(value, kind) else None

    return read


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

    returncode = View(_detail(int))
    signal = View(_detail(str))
    exit_code = View(_detail(int))
    log_path = View(_detail(str))

    @property
    def log_tail(self) -> str:
        tail = self.details.get("log_tail")
        return tail if isinstance(tail, str) else ""


def is_port_in_use(text: str) -> bool:
    """Whether ``text`` (log lines) says the address is already in use."""
    lowered = text.lower()
    return "address already in use" in lowered or "errno 98" in lowered


def port_in_use_line(tail: str) -> str:
    """``": <the log line saying the address is in use>"``, or ``""`` when none does."""
    lines = [line for line in tail.splitlines() if is_port_in_use(line)]
    return f": {lines[-1].strip()[:200]}" if lines else ""


def _last_line(tail: str) -> str:
    last = tail.strip().splitlines()[-1:] if tail.strip() else []
    return f": {last[0].strip()[:200]}" if last else ""


def _exit_status(returncode: int) -> tuple[str, str | None, int | None]:
    """(phrase, signal name, exit code) for a child's return code."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by signal {-returncode}, {name}", name, None
    return f"exit code {returncode}", None, returncode


def startup_error(
    why: str, details: dict[str, Any], *, timeout: bool = False, hint: str | None = None
) -> APIConnectionError:
    """The server did not become ready (``why``); ``hint`` defaults to its last log line."""
    if hint is None:
        hint = _last_line(details["log_tail"])
    message = f"local model server {why}{hint} (log: {details['log_path']})"
    cls = APITimeoutError if timeout else APIConnectionError
    return cls(message, details)


def exited_error(
    when: str, returncode: int, details: dict[str, Any], *, had: bool = False
) -> LocalServerExitedError:
    """The one error naming the child's exit ``when`` (``"during startup"``, ...);
    ``had``: it had already exited then ("had stopped before the request ...")."""
    phrase, signal_name, exit_code = _exit_status(returncode)
    details.update(returncode=returncode, signal=signal_name, exit_code=exit_code)
    if signal_name is None:
        hint = _last_line(details["log_tail"])  # usually the reason it gave
    elif signal_name in _CRASH_SIGNALS and details["extra_buffer_types"]:
        hint = f" (a native crash: {REPACK_ENV}=off may avoid it)"
    else:
        hint = ""
    message = (
        f"the embedded local model server {'had stopped' if had else 'stopped'} {when} "
        f"({phrase}){hint} "
        f"(log: {details['log_path']})"
    )
    return LocalServerExitedError(message, details)
