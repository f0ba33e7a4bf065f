"""Showing a streamed reply: text to stdout, a callback, and a live indicator on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["StreamDisplay"]

_REFRESH_SECONDS = 0.1


class _Progress:
    """Tokens so far and tokens/s on stderr; rich when installed, plain text otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._started = time.perf_counter()
        self._last = 0.0
        self.tokens = 0
        self._status: Any = None
        try:
            from rich.console import Console
        except ImportError:
            return
        self._status = Console(file=stream, force_terminal=None).status("streaming…")
        self._status.start()

    def update(self) -> None:
        self.tokens += 1
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
            self._status.update(f"streaming… {self._line(now)}")
        else:
            self._stream.write(f"\r[openai_chatapi] {self._line(now)}")
            self._stream.flush()

    def close(self) -> None:
        now = time.perf_counter()
        if self._status is not None:
            self._status.stop()
            self._stream.write(f"[openai_chatapi] done: {self._line(now)}\n")
        else:
            self._stream.write(f"\r[openai_chatapi] done: {self._line(now)}\n")
        self._stream.flush()


class StreamDisplay:
    """Where streamed text pieces go besides the caller: stdout, a callback, a progress line."""

    def __init__(
        self,
        *,
        to_stdout: bool,
        callback: Callable[[str], None] | None,
        progress: bool,
    ) -> None:
        self._stdout: TextIO | None = sys.stdout if to_stdout else None
        self._callback = callback
        self._progress = _Progress(sys.stderr) if progress else None
        self._wrote = False
        self.active = bool(to_stdout or callback or progress)

    def write(self, text: str) -> None:
        out = self._stdout
        if out is not None:
            out.write(text)
            out.flush()
            self._wrote = True
        if self._callback is not None:
            self._callback(text)
        if self._progress is not None:
            self._progress.update()

    def close(self) -> None:
        if self._stdout is not None and self._wrote:
            self._stdout.write("\n")
            self._stdout.flush()
        if self._progress is not None:
            self._progress.close()
            self._progress = None
