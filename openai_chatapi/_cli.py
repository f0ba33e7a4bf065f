"""The ``openai-chatapi`` command line: one-shot chat, an interactive session, model listing.

With no endpoint configured (no ``--base-url``/``OPENAI_BASE_URL`` and no API key) it starts
the embedded local model and says so on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import sys
import traceback
from collections.abc import AsyncIterator, Sequence
from typing import Any, NoReturn, TextIO

from ._agent import ChatAgent
from ._cli_session import interactive, one_line
from ._config import ModelConfig, RuntimeConfig
from ._errors import ChatAPIException, ConfigurationError, NotFoundError
from ._redact import redact_url
from ._version import __version__

__all__ = ["build_parser", "main"]


class _UsageError(ConfigurationError):
    """A flag's value was refused: reported like argparse's own errors (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (no usage block) for scripts and humans."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _number(low: float, high: float | None = None) -> Any:
    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= (high if high is not None else float("inf")):
            bound = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    return convert


def _integer(low: int) -> Any:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {text}")
        return value

    return convert


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="openai-chatapi",
        description="Chat with any OpenAI-compatible API (or the embedded local model).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def endpoint_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--base-url", help="API base URL (env OPENAI_BASE_URL)")
        p.add_argument("--api-key", help="API key (env OPENAI_API_KEY)")
        p.add_argument("--model", help="model name (env OPENAI_MODEL)")
        p.add_argument(
            "--timeout", type=_number(0.001), default=120.0, help="seconds (default 120)"
        )
        p.add_argument("--max-retries", type=_integer(0), default=2, help="retries (default 2)")
        p.add_argument("--debug", action="store_true", help="log HTTP traffic, show tracebacks")

    chat = sub.add_parser("chat", help="one turn with PROMPT, or an interactive session")
    chat.add_argument("prompt", nargs="?", help="the message; omit for an interactive session")
    endpoint_flags(chat)
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("--temperature", type=_number(0.0, 2.0), help="0 to 2")
    chat.add_argument("--max-tokens", type=_integer(1), help="reply length limit")
    chat.add_argument("--image", action="append", default=[], help="attach an image (repeat)")
    chat.add_argument("--video", action="append", default=[], help="attach a video (repeat)")
    chat.add_argument(
        "--audio", action="append", default=[], help="attach WAV or MP3 audio (repeat)"
    )
    chat.add_argument("--file", action="append", default=[], help="attach a PDF (repeat)")
    chat.add_argument("--no-stream", action="store_true", help="wait for the whole reply")
    chat.add_argument("--json", action="store_true", help="print the full typed response")
    chat.add_argument("--tools", help="register @tool functions: module:function,...")

    models = sub.add_parser("models", help="list the models the server offers")
    endpoint_flags(models)
    return parser


def _load_tools(spec: str) -> list[Any]:
    tools: list[Any] = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        module_name, sep, attribute = item.partition(":")
        if not sep or not module_name or not attribute:
            raise _UsageError(f"--tools expects module:function, got {item!r}", {"field": "tools"})
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # the user's module may fail in any way while importing
            raise _UsageError(
                f"--tools: cannot import module {module_name!r}: {type(exc).__name__}: {exc}",
                {"field": "tools"},
            ) from exc
        try:
            tools.append(getattr(module, attribute))
        except AttributeError:
            raise _UsageError(
                f"--tools: module {module_name!r} has no attribute {attribute!r}",
                {"field": "tools"},
            ) from None
    return tools


def _with_usage_errors(build: Any, *args: Any) -> ModelConfig:
    # A value given on the command line or in the environment was refused: a usage error.
    try:
        config: ModelConfig = build(*args)
    except ConfigurationError as exc:
        raise _UsageError(exc.message, exc.details) from None
    return config


@contextlib.asynccontextmanager
async def _model_config(args: argparse.Namespace, err: TextIO) -> AsyncIterator[ModelConfig]:
    base_url = args.base_url or os.environ.get("OPENAI_BASE_URL")
    api_key = args.api_key or os.environ.get("OPENAI_API_KEY")
    model = args.model or os.environ.get("OPENAI_MODEL")
    overrides: dict[str, Any] = {}
    if getattr(args, "temperature", None) is not None:
        overrides["temperature"] = args.temperature
    if getattr(args, "max_tokens", None) is not None:
        overrides["max_tokens"] = args.max_tokens
    if base_url or api_key:
        fields: dict[str, Any] = {"api_key": api_key, **overrides}
        if base_url:
            fields["api_base_url"] = base_url
        if model:
            fields["model"] = model
        yield _with_usage_errors(lambda: ModelConfig(**fields))
        return
    from .local import LocalModelServer

    ignored = f" ({model!r} ignored: it names a model of a remote endpoint)" if model else ""
    print(
        "openai-chatapi: no endpoint configured (--base-url / OPENAI_BASE_URL): "
        f"using the embedded local model (SmolLM2-135M-Instruct){ignored}",
        file=err,
    )
    async with LocalModelServer() as config:
        yield _with_usage_errors(config.with_overrides, overrides) if overrides else config


def _runtime(args: argparse.Namespace) -> RuntimeConfig:
    return RuntimeConfig(
        enable_logging=bool(args.debug),
        log_level="DEBUG" if args.debug else "WARNING",
        log_http_requests=bool(args.debug),
        log_http_responses=bool(args.debug),
        timeout=args.timeout,
        max_retries=args.max_retries,
    )


async def _one_turn(agent: ChatAgent, args: argparse.Namespace, out: TextIO) -> None:
    media: dict[str, Any] = {
        "image_paths": args.image or None,
        "video_paths": args.video or None,
        "audio_paths": args.audio or None,
        "file_paths": args.file or None,
    }
    if args.no_stream or args.json:
        text = await agent.chat(args.prompt, **media)
        if args.json:
            assert agent.last_response is not None
            out.write(agent.last_response.model_dump_json(indent=2, exclude_none=True) + "\n")
        else:
            out.write(text + "\n")
        return
    wrote = False
    async for piece in agent.chat_stream(args.prompt, display_stream=False, **media):
        out.write(piece)
        out.flush()
        wrote = True
    if wrote:
        out.write("\n")


def _name_model(exc: NotFoundError, config: ModelConfig) -> NotFoundError:
    """A 404 on a chat request usually means an unknown model: make sure the message says
    which one (servers do not always)."""
    if config.model in exc.message:
        return exc
    message = f"{exc.message} (model {config.model!r} at {redact_url(config.api_base_url)})"
    return type(exc)(message, exc.details)


async def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    # Before connecting: a bad --tools spec must not wait for a local model to start.
    functions = _load_tools(args.tools) if getattr(args, "tools", None) else []
    async with _model_config(args, err) as config, ChatAgent(config, _runtime(args)) as agent:
        if args.command == "models":
            listing = await agent.list_models()
            for model in listing.data:
                out.write(f"{model.id}\n")
            return
        if functions:
            for function in functions:
                try:
                    agent.register_tool(function)
                except ConfigurationError as exc:
                    raise _UsageError(f"--tools: {exc.message}", exc.details) from exc
        if args.system:
            agent.set_system_prompt(args.system)
        try:
            if args.prompt is not None:
                await _one_turn(agent, args, out)
            else:
                await interactive(agent, out, err)
        except NotFoundError as exc:
            raise _name_model(exc, config) from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 error, 2 usage, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    out, err = sys.stdout, sys.stderr
    try:
        asyncio.run(_run(args, out, err))
    except _UsageError as exc:
        return _failed(args.debug, err, f"{exc} (see --help)", 2)
    except ChatAPIException as exc:
        return _failed(args.debug, err, one_line(exc), 1)
    except KeyboardInterrupt:
        print("\nopenai-chatapi: interrupted", file=err)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, like other command-line tools.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        return _failed(args.debug, err, f"{type(exc).__name__}: {exc}", 1)
    return 0


def _failed(debug: bool, err: TextIO, message: str, code: int) -> int:
    """Report the failure being handled on stderr (its traceback too with ``--debug``)."""
    if debug:
        traceback.print_exc(file=err)
    print(f"openai-chatapi: error: {message}", file=err)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
