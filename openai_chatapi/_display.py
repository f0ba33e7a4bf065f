"""Showing a streamed reply: text to stdout, a callback, and a live indicator on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from ._config import RuntimeConfig

__all__ = ["StreamDisplay"]

_REFRESH_SECONDS = 0.1


class _Progress:
    """Tokens so far and tokens/s on stderr; rich when installed, plain text otherwise.

    With ``live=False`` only the closing summary is written: live updates would overwrite
    text that streams to the same terminal.
    """

    def __init__(self, stream: TextIO, *, live: bool = True) -> None:
        self._stream = stream
        self._started = time.perf_counter()
        self._last = 0.0
        self._live = live
        self._shown = False
        self.tokens = 0
        self._status: Any = None
        self._spinner: Any = None
        if not live:
            return
        try:
            from rich.console import Console
            from rich.live import Live
            from rich.spinner import Spinner
        except ImportError:
            return
        self._spinner = Spinner("dots", text="streaming…")
        # rich's default would route the caller's own prints on sys.stdout to stderr.
        self._status = Live(
            self._spinner,
            console=Console(file=stream),
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._status.start()

    def update(self) -> None:
        self.tokens += 1
        if not self._live:
            return
        now = time.perf_counter()
        if now - self._last < _REFRESH_SECONDS:
            return
        self._last = now
        self._show(now)

    def _line(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        return f"{self.tokens} tokens, {self.tokens / elapsed:.1f} tokens/s"

    def _show(self, now: float) -> None:
        if self._status is not None:
            self._spinner.update(text=f"streaming… {self._line(now)}")
        else:
            self._shown = _write(self._stream, f"\r[openai_chatapi] {self._line(now)}")

    def close(self, completed: bool = True) -> None:
        now = time.perf_counter()
        if self._status is not None:
            self._status.stop()
        prefix = "\r" if self._shown else ""
        # A failed, cancelled or abandoned stream is not "done".
        outcome = "done" if completed else "stopped"
        _write(self._stream, f"{prefix}[openai_chatapi] {outcome}: {self._line(now)}\n")


def _write(stream: TextIO, text: str) -> bool:
    """Write and flush ``text``; characters the stream cannot encode (an ASCII or Latin-1
    terminal, ``PYTHONIOENCODING=ascii``) are replaced. False when the stream is unusable
    (closed, a broken pipe): the display never fails the call."""
    try:
        try:
            stream.write(text)
        except UnicodeEncodeError:
            encoding = getattr(stream, "encoding", None) or "ascii"
            stream.write(text.encode(encoding, errors="replace").decode(encoding))
        stream.flush()
    except (OSError, ValueError, LookupError, UnicodeError):
        return False
    return True


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class StreamDisplay:
    """Where streamed text pieces go besides the caller: stdout, a callback, a progress line.

    ``with StreamDisplay.of(runtime, to_stdout) as display:`` closes it when the block ends,
    as "done" only when the block ran to its end (not on an error, Ctrl-C or a stream left).
    """

    def __init__(
        self,
        *,
        to_stdout: bool,
        callback: Callable[[str], None] | None,
        progress: bool,
    ) -> None:
        self._stdout: TextIO | None = sys.stdout if to_stdout else None
        self._callback = callback
        self._progress: _Progress | None = None
        if progress:
            shared = to_stdout and _is_terminal(sys.stdout) and _is_terminal(sys.stderr)
            self._progress = _Progress(sys.stderr, live=not shared)
        self._wrote = False
        self.active = bool(to_stdout or callback or progress)

    @classmethod
    def of(cls, runtime: RuntimeConfig, to_stdout: bool) -> StreamDisplay:
        """The display a stream of ``runtime`` gets (``display_stream`` is ``to_stdout``)."""
        return cls(
            to_stdout=to_stdout,
            callback=runtime.stream_chunk_callback,
            progress=runtime.stream_enable_progress,
        )

    def __enter__(self) -> StreamDisplay:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        self.close(completed=exc_type is None)

    def write(self, text: str) -> None:
        out = self._stdout
        if out is not None:
            if _write(out, text):
                self._wrote = True
            else:
                self._stdout = None
        if self._callback is not None:
            self._callback(text)
        if self._progress is not None:
            self._progress.update()

    def close(self, completed: bool = True) -> None:
        """End the display; ``completed=False`` for a stream that failed or was left early."""
        if self._stdout is not None and self._wrote:
            _write(self._stdout, "\n")
        if self._progress is not None:
            self._progress.close(completed)
            self._progress = None
