"""The interactive session of ``openai-chatapi chat``: lines in, streamed replies out.

Lines come from stdin through a daemon thread (``_LineReader``); a line starting with ``/``
is a command (``/system``, ``/clear``, ``/image``, ``/stats``, ``/save``, ``/load``,
``/exit``), anything else is a message whose reply streams through ``_Renderer`` (Markdown
via rich on a terminal, plain text otherwise) and is cancelled by Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ._errors import ChatAPIException, ConfigurationError

if TYPE_CHECKING:
    from ._agent import ChatAgent

__all__ = ["interactive", "one_line"]

_HELP = """\
commands in the interactive session:
  /system [TEXT] set (or show) the system prompt /clear       forget the conversation
  /image PATH    attach an image to the next message
  /stats         show usage statistics          /save FILE    save the conversation
  /load FILE     load a saved conversation      /exit         leave (also Ctrl-D)
Ctrl-C cancels the reply being streamed; the conversation stays as it was."""


class _Renderer:
    """Shows a streamed reply: Markdown via rich on a terminal, plain text otherwise."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._live: Any = None
        self._markdown: Any = None
        self._text = ""
        if out.isatty():
            try:
                from rich.console import Console
                from rich.live import Live
                from rich.markdown import Markdown
            except ImportError:
                return
            self._markdown = Markdown
            self._live = Live(
                console=Console(file=out),
                refresh_per_second=8,
                redirect_stdout=False,
                redirect_stderr=False,
            )

    def __enter__(self) -> _Renderer:
        if self._live is not None:
            self._live.start()
        return self

    def write(self, piece: str) -> None:
        self._text += piece
        if self._live is not None:
            self._live.update(self._markdown(self._text))
        else:
            self._out.write(piece)
            self._out.flush()

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
        elif self._text:
            self._out.write("\n")
            self._out.flush()


class _LineReader:
    """Lines typed or piped on stdin, read by a daemon thread.

    A blocked ``readline`` in asyncio's executor would keep the process alive after Ctrl-C
    (the executor is joined at exit); a daemon thread is simply abandoned.
    """

    def __init__(self, stream: TextIO) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._stream = stream
        try:
            fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None  # not a real file (e.g. a StringIO): read it through Python
        target = self._pump_fd if fd is not None else self._pump_text
        args = (fd,) if fd is not None else ()
        threading.Thread(target=target, args=args, name="openai-chatapi-stdin", daemon=True).start()

    def _put(self, line: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            self._loop.call_soon_threadsafe(self._queue.put_nowait, line)

    def _pump_fd(self, fd: int) -> None:
        # Raw reads: no buffered-reader lock left held by an abandoned thread at exit.
        pending = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                self._put(line.decode("utf-8", errors="replace"))
        if pending:
            self._put(pending.decode("utf-8", errors="replace"))
        self._put(None)

    def _pump_text(self) -> None:
        while True:
            try:
                line = self._stream.readline()
            except (OSError, ValueError):
                line = ""
            if not line:
                break
            self._put(line.rstrip("\n"))
        self._put(None)

    async def readline(self) -> str | None:
        """The next line without its line end; None at end of input."""
        return await self._queue.get()


async def _cancellable_reply(agent: ChatAgent, text: str, images: list[str], out: TextIO) -> bool:
    """Stream one reply; Ctrl-C cancels it. Returns False when cancelled."""
    loop = asyncio.get_running_loop()

    async def reply() -> None:
        with _Renderer(out) as renderer:
            async for piece in agent.chat_stream(
                text, image_paths=images or None, display_stream=False
            ):
                renderer.write(piece)

    task = asyncio.ensure_future(reply())
    installed = False
    # asyncio.run's own handler (Ctrl-C cancels the main task, which then cleans up):
    # remove_signal_handler would leave Python's default one, raising KeyboardInterrupt
    # anywhere in the loop, so it is put back afterwards.
    previous = signal.getsignal(signal.SIGINT)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, task.cancel)
        installed = True
    try:
        await task
        return True
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
        out.write("\n[cancelled: the conversation is unchanged]\n")
        out.flush()
        return False
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)
            if previous is not None:
                signal.signal(signal.SIGINT, previous)


# The prompt's loop never sleeps longer than this (seconds); see ``interactive``.
_TICK = 0.1


async def _tick() -> None:
    while True:  # noqa: ASYNC110 (waiting is not the point: waking the loop is)
        await asyncio.sleep(_TICK)


async def interactive(agent: ChatAgent, out: TextIO, err: TextIO) -> None:
    # A Ctrl-C whose C-level handler runs on another thread (the stdin reader's: the kernel
    # may pick any thread) sets Python's flag but wakes nothing, and at the prompt the loop
    # would sleep in select() for good: ticking keeps its sleeps short, so asyncio.run's
    # handler runs (within _TICK) and the session ends with code 130 as for any Ctrl-C.
    ticker = asyncio.ensure_future(_tick())
    try:
        await _session(agent, out, err)
    finally:
        ticker.cancel()


async def _session(agent: ChatAgent, out: TextIO, err: TextIO) -> None:
    interactive = sys.stdin.isatty()
    if interactive:
        print(_HELP, file=err)
    reader = _LineReader(sys.stdin)
    images: list[str] = []
    while True:
        if interactive:
            out.write("you> ")
            out.flush()
        line = await reader.readline()
        if line is None:
            break
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            command, _, rest = line.partition(" ")
            rest = rest.strip()
            if command in ("/exit", "/quit"):
                break
            try:
                _command(agent, command, rest, images, out)
            except ChatAPIException as exc:
                _report(exc, err)
            continue
        try:
            if await _cancellable_reply(agent, line, images, out):
                images.clear()
        except ChatAPIException as exc:
            _report(exc, err)


def _report(exc: ChatAPIException, err: TextIO) -> None:
    """One line on stderr for a failure inside the session, which goes on."""
    print(f"error: {one_line(exc)}", file=err, flush=True)


def _command(agent: ChatAgent, command: str, rest: str, images: list[str], out: TextIO) -> None:
    if command == "/system":
        if not rest:  # show it; an empty prompt is never what "/system" alone means
            current = agent.system_prompt
            out.write(f"[system prompt: {current}]\n" if current else "[no system prompt]\n")
        else:
            agent.set_system_prompt(rest)
            out.write("[system prompt set]\n")
    elif command == "/clear":
        agent.clear_history()
        images.clear()
        out.write("[conversation cleared]\n")
    elif command == "/stats":
        stats = agent.get_stats()
        keys = (
            "requests",
            "successes",
            "failures",
            "retries",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "average_latency",
        )
        out.write(json.dumps({k: stats[k] for k in keys}, indent=2) + "\n")
    elif command == "/save":
        _need(rest, command)
        agent.save_history(rest)
        out.write(f"[saved {len(agent.history)} messages to {rest}]\n")
    elif command == "/load":
        _need(rest, command)
        agent.load_history(rest)
        out.write(f"[loaded {len(agent.history)} messages from {rest}]\n")
    elif command == "/image":
        _need(rest, command)
        from .media import prepare_media

        prepare_media(image_paths=rest)  # validate now: a bad file is reported at once
        images.append(str(Path(rest).expanduser()))
        out.write(f"[image attached to the next message: {rest}]\n")
    else:
        raise ConfigurationError(
            f"unknown command {command!r}; commands: /system /clear /image /stats /save "
            "/load /exit",
            {"command": command},
        )
    out.flush()


def _need(value: str, command: str) -> None:
    if not value:
        raise ConfigurationError(f"{command} needs an argument", {"command": command})


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (server messages may span lines)."""
    return " ".join(str(exc).split())
