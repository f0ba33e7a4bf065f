"""The retry policy: one budget per call, the backoff, and what is retryable.

Every retry path of one model call draws on the same ``Retries`` budget: the transport's
retries before the response headers, its retries of a body lost while being read, and the
agent's retries of a stream that failed before its first event. So a call is sent at most
``max_retries + 1`` times, plus one free resend when a reused keep-alive connection turned
out to be dead (the server had closed it while it sat in the pool: the request was never
answered, so sending it again at once is safe and is not the server's failure).
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from ._errors import APIConnectionError, ChatAPIException

__all__ = ["RETRYABLE_EXCEPTIONS", "RETRY_STATUSES", "Retries", "RetryPolicy"]

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
RETRYABLE_EXCEPTIONS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)
# A reused connection that "died before any response" fails in one of these ways.
_DEAD_CONNECTION: tuple[type[Exception], ...] = (
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)

Sleep = Callable[[float], Awaitable[None]]
if TYPE_CHECKING:
    Log = logging.Logger | logging.LoggerAdapter[logging.Logger]


@dataclass(slots=True, kw_only=True)
class RetryPolicy:
    """How an agent retries: the budget, the backoff and what is retryable.

    Each decision is one small method that logs it (at DEBUG; a retry itself at WARNING).
    """

    max_retries: int
    retry_delay: float
    max_delay: float
    sleep: Sleep
    log: Log
    on_retry: Callable[[], None] | None = None

    def start(self) -> Retries:
        """A fresh budget for one call."""
        return Retries(self)

    def should_retry_status(self, status: int) -> bool:
        """Whether an HTTP error status is worth another attempt."""
        retry = status in RETRY_STATUSES
        if not retry:
            self.log.debug("HTTP %d is not retryable", status)
        return retry

    @staticmethod
    def retryable_error(exc: ChatAPIException) -> bool:
        """Whether one of our exceptions is of a retryable kind."""
        if getattr(exc, "retryable", True) is False:  # e.g. the local server process has exited
            return False
        return isinstance(exc, APIConnectionError) or exc.status_code in RETRY_STATUSES

    @staticmethod
    def parse_retry_after(headers: Mapping[str, str]) -> float | None:
        """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After``
        (seconds or an HTTP date); None when it asked nothing readable."""
        value = headers.get("retry-after-ms")
        if value:
            try:
                return max(0.0, float(value) / 1000.0)
            except ValueError:
                pass
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        return max(0.0, when.timestamp() - time.time())

    def retry_timeout(self, retry: int, headers: Mapping[str, str] | None) -> float:
        """The wait before retry number ``retry`` (0-based): the server's ``Retry-After``
        when it sent one, else exponential backoff with jitter; capped by ``max_delay``."""
        if headers is not None:
            asked = self.parse_retry_after(headers)
            if asked is not None:
                if asked > self.max_delay:
                    self.log.debug("Retry-After %.2fs capped to %.2fs", asked, self.max_delay)
                return min(asked, self.max_delay)
        base = self.retry_delay * (2**retry)
        # Full jitter in [0.5, 1.0] of the backoff keeps concurrent clients apart.
        return float(min(self.max_delay, base * (0.5 + random.random() / 2)))


class Retries:
    """The retry budget of one call, shared by every retry path of that call."""

    __slots__ = ("_free_used", "_policy", "used")

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self.used = 0
        self._free_used = False

    @property
    def policy(self) -> RetryPolicy:
        return self._policy

    @property
    def exhausted(self) -> bool:
        return self.used >= self._policy.max_retries

    def should_retry(self, why: str, *, retryable: bool = True) -> bool:
        """Whether to retry after ``why`` failed: it is ``retryable`` and budget is left."""
        if not retryable:
            return False
        if self.exhausted:
            if self._policy.max_retries:
                self._policy.log.debug("not retrying after %s: all %d retries used", why, self.used)
            return False
        return True

    def free_resend(self, exc: BaseException, *, reused: bool) -> bool:
        """Whether ``exc`` (raised before any response) earns the one free resend of a call:
        only a keep-alive connection taken from the pool that turned out to be dead."""
        if self._free_used or not reused or not isinstance(exc, _DEAD_CONNECTION):
            return False
        self._free_used = True
        policy = self._policy
        if policy.on_retry is not None:
            policy.on_retry()
        policy.log.info("resending at once: the reused connection was closed by the server")
        return True

    async def backoff(self, why: str, headers: Mapping[str, str] | None = None) -> None:
        """Use one retry of the budget: count it, log it, and sleep the backoff."""
        policy = self._policy
        delay = policy.retry_timeout(self.used, headers)
        self.used += 1
        policy.log.warning("retrying after %s in %.2fs (retry %d)", why, delay, self.used)
        if policy.on_retry is not None:
            policy.on_retry()
        await policy.sleep(delay)
