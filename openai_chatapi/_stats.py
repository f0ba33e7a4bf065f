"""Usage and latency statistics for one agent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Stats", "StreamTiming"]


@dataclass(slots=True)
class StreamTiming:
    """Timing of one streamed call."""

    time_to_first_token: float | None
    duration: float
    chunks: int
    completion_tokens: int

    @property
    def tokens_per_second(self) -> float | None:
        if self.duration <= 0 or not self.completion_tokens:
            return None
        return self.completion_tokens / self.duration


@dataclass
class Stats:
    """Counters behind ``ChatAgent.get_stats()``; every HTTP request sent is one request
    (a retry or a free resend is one more; the outcome of a call counts once)."""

    # what to capture: RuntimeConfig's switches (their defaults are there)
    capture_token_usage: bool
    capture_latency: bool
    # calls and requests
    requests: int = 0
    successes: int = 0
    failures: int = 0
    cancelled: int = 0
    retries: int = 0
    # tokens
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    # tools and structured output
    tool_calls: int = 0
    tool_rounds: int = 0
    tool_successes: int = 0
    tool_failures: int = 0
    output_retries: int = 0
    # latency
    total_latency: float = 0.0
    last_latency: float | None = None
    # streams
    streams: int = 0
    stream_chunks: int = 0
    stream_duration: float = 0.0
    stream_completion_tokens: int = 0
    # time to first token
    last_time_to_first_token: float | None = None
    _ttft_total: float = field(default=0.0, repr=False)
    _ttft_count: int = field(default=0, repr=False)
    last_stream: StreamTiming | None = None

    def record_retry(self) -> None:
        """One more HTTP request of the current call (a retry or a free resend)."""
        self.retries += 1
        self.requests += 1

    def record_failure(self) -> None:
        self.requests += 1
        self.failures += 1

    def record_cancelled(self) -> None:
        """A sent exchange that was cancelled or abandoned (it counts as a request)."""
        self.requests += 1
        self.cancelled += 1

    def record_success(self, latency: float, usage: Any) -> None:
        """Count one successful exchange; ``usage`` is a usage model or None."""
        self.requests += 1
        self.successes += 1
        if self.capture_latency:
            self.total_latency += latency
            self.last_latency = latency
        if self.capture_token_usage and usage is not None:
            self.prompt_tokens += usage.prompt_tokens or 0
            self.completion_tokens += usage.completion_tokens or 0
            total = usage.total_tokens
            if total is None:
                total = (usage.prompt_tokens or 0) + (usage.completion_tokens or 0)
            self.total_tokens += total
            details = usage.completion_tokens_details
            if details is not None:
                self.reasoning_tokens += getattr(details, "reasoning_tokens", None) or 0
            prompt_details = usage.prompt_tokens_details
            if prompt_details is not None:
                self.cached_tokens += getattr(prompt_details, "cached_tokens", None) or 0

    def record_tool_calls(self, count: int) -> None:
        """The model asked for ``count`` tool calls."""
        self.tool_calls += count

    def record_tool_round(self, *, succeeded: int = 0, failed: int = 0) -> None:
        """One round of tool calls ran: so many succeeded, so many failed."""
        self.tool_rounds += 1
        self.tool_successes += succeeded
        self.tool_failures += failed

    def record_output_retry(self) -> None:
        """A structured answer failed validation and is asked for again."""
        self.output_retries += 1

    def record_stream(self, timing: StreamTiming) -> None:
        self.streams += 1
        self.stream_chunks += timing.chunks
        self.last_stream = timing
        if not self.capture_latency:
            return
        self.stream_duration += timing.duration
        self.stream_completion_tokens += timing.completion_tokens
        if timing.time_to_first_token is not None:
            self.last_time_to_first_token = timing.time_to_first_token
            self._ttft_total += timing.time_to_first_token
            self._ttft_count += 1

    def as_dict(self) -> dict[str, Any]:
        done = self.successes
        last = self.last_stream
        stream_tps = (
            self.stream_completion_tokens / self.stream_duration
            if self.stream_duration > 0 and self.stream_completion_tokens
            else None
        )
        return {
            "requests": self.requests,
            "successes": self.successes,
            "failures": self.failures,
            "cancelled": self.cancelled,
            "retries": self.retries,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cached_tokens": self.cached_tokens,
            "tool_calls": self.tool_calls,
            "tool_rounds": self.tool_rounds,
            "tool_successes": self.tool_successes,
            "tool_failures": self.tool_failures,
            "output_retries": self.output_retries,
            "total_latency": self.total_latency,
            "average_latency": self.total_latency / done if done and self.capture_latency else None,
            "last_latency": self.last_latency,
            "streams": self.streams,
            "stream_chunks": self.stream_chunks,
            "stream_duration": self.stream_duration,
            "stream_tokens_per_second": stream_tps,
            "average_time_to_first_token": (
                self._ttft_total / self._ttft_count if self._ttft_count else None
            ),
            "last_time_to_first_token": self.last_time_to_first_token,
            "last_stream": None
            if last is None
            else {
                "time_to_first_token": last.time_to_first_token,
                "duration": last.duration,
                "chunks": last.chunks,
                "completion_tokens": last.completion_tokens,
                "tokens_per_second": last.tokens_per_second,
            },
        }

    def reset(self) -> None:
        fresh = Stats(self.capture_token_usage, self.capture_latency)
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))
