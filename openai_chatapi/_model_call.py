"""One model exchange: a request sent, its answer parsed (or its stream read), its statistics.

The turn runner asks this module for each model turn; nothing here knows about the history,
tools or output modes. Retries of a stream that failed before its first event draw on the
call's one ``Retries`` budget (the transport's policy decides what is retryable).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING
from urllib.parse import quote

from ._accumulator import StreamAccumulator
from ._errors import ChatAPIException, ConfigurationError, ModelNotFoundError, NotFoundError
from ._events import FinishEvent, StreamEvent
from ._parsing import parse_completion, parse_model, parse_model_list
from ._stats import Stats, StreamTiming
from ._streaming import read_stream

if TYPE_CHECKING:
    import httpx

    from . import _generated as gen
    from ._config import ModelConfig, RuntimeConfig
    from ._model_list import ModelList
    from ._transport import Body, Sleep

__all__ = ["ModelCalls", "model_path"]


# What a model id may keep unescaped in a path segment (RFC 3986 pchar): Ollama's "llama3:8b".
_SEGMENT_SAFE = ":@!$&'()*+,;=-._~"


def model_path(model_id: str) -> str:
    """``model_id`` as the path under ``models/``: each ``/``-separated segment percent-encoded
    (ids such as ``meta-llama/Llama-3`` keep their slash; ``?``, ``#`` and ``%`` are escaped),
    so an id can never reach another path or a query of the server."""
    segments = model_id.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise ConfigurationError(
            f"model_id {model_id!r} has an empty, '.' or '..' path segment",
            {"field": "model_id"},
        )
    return "/".join(quote(segment, safe=_SEGMENT_SAFE) for segment in segments)


class ModelCalls:
    """The exchanges of one agent with the server, counted in its ``Stats``."""

    __slots__ = ("_runtime", "_stats", "transport")

    def __init__(
        self,
        model_config: ModelConfig,
        runtime: RuntimeConfig,
        stats: Stats,
        http_transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        # The network stack (httpx) loads with the first agent, not with the package.
        from ._transport import Transport

        self._runtime = runtime
        self._stats = stats
        self.transport = Transport(
            model_config,
            runtime,
            http_transport=http_transport,
            sleep=sleep or asyncio.sleep,
            on_retry=stats.record_retry,
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """What the agent must never show (its key, its URL's credentials, their forms)."""
        return self.transport.secrets

    async def list_models(self) -> ModelList:
        raw = await self.transport.request("GET", "models")
        return parse_model_list(raw, strict=self._runtime.strict_parsing)

    async def retrieve_model(self, model_id: str) -> gen.Model:
        """One model by id; a missing model raises ``ModelNotFoundError``."""
        from . import _generated as gen

        try:
            raw = await self.transport.request("GET", f"models/{model_path(model_id)}")
            return parse_model(gen.Model, raw, strict=self._runtime.strict_parsing, what="model")
        except NotFoundError as exc:
            if not isinstance(exc, ModelNotFoundError):
                raise ModelNotFoundError(f"model not found: {model_id}", exc.details) from None
            raise

    async def complete(self, body: Body) -> gen.ChatCompletion:
        """One non-streamed model turn."""
        started = time.perf_counter()
        try:
            raw = await self.transport.request("POST", "chat/completions", body)
            completion = parse_completion(
                raw, strict=self._runtime.strict_parsing, scrub=self.transport.secrets
            )
        except ChatAPIException:
            self._stats.record_failure()
            raise
        except BaseException:  # cancelled: the request was sent all the same
            self._stats.record_cancelled()
            raise
        self._stats.record_success(time.perf_counter() - started, completion.usage)
        return completion

    async def stream(self, body: Body, choices: int = 1) -> AsyncGenerator[list[StreamEvent], None]:
        """One streamed model turn in batches; failures before the first event are retried.

        The last batch is ``[FinishEvent]`` with the merged, validated completion.
        """
        runtime = self._runtime
        retries = self.transport.retries()  # one budget for every retry of this model call
        while True:
            accumulator = StreamAccumulator()
            started = time.perf_counter()
            first: float | None = None
            connected = False
            try:
                async with (
                    self.transport.stream("chat/completions", body, retries) as chunks,
                    aclosing(
                        read_stream(
                            chunks,
                            accumulator,
                            strict=runtime.strict_parsing,
                            content_type=chunks.content_type,
                            choices=choices,
                            usage=runtime.stream_include_usage,
                            timeout=float(runtime.timeout),
                            sent_at=chunks.sent_at,
                        )
                    ) as batches,
                ):
                    connected = True
                    async for batch in batches:
                        if first is None:
                            first = time.perf_counter() - started
                        yield batch
                # Inside the try: a merged reply that does not validate is a failure like any.
                completion = accumulator.result()
            except ChatAPIException as exc:
                # Failures before the headers were already retried by the transport.
                retry = connected and first is None and not retries.exhausted
                if retry and retries.policy.retryable_error(exc):
                    try:
                        await retries.backoff(type(exc).__name__)
                    except BaseException:
                        self._stats.record_cancelled()
                        raise
                    continue
                self._stats.record_failure()
                raise
            except BaseException:  # cancelled, or abandoned (closed at a yield)
                self._stats.record_cancelled()
                raise
            break
        duration = time.perf_counter() - started
        usage = completion.usage
        self._stats.record_success(duration, usage)
        tokens = (usage.completion_tokens if usage is not None else None) or accumulator.chunks
        self._stats.record_stream(StreamTiming(first, duration, accumulator.chunks, tokens))
        yield [FinishEvent(accumulator.finish_reason, completion)]
