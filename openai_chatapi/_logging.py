"""Logging: each agent's records at that agent's own level, on the package logger's handlers.

Every record is logged on the ``"openai_chatapi"`` logger (handlers a user put there, or on
the root logger, receive all of them), but whether a record is made at all is decided by the
agent it belongs to: its ``log_level`` (``DEBUG`` with ``enable_debug``), nothing with
``enable_logging=False``. Creating an agent never changes another agent's logging. Records
carry ``record.agent``, the agent's number in this process.
"""

from __future__ import annotations

import itertools
import logging
import sys
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from ._errors import truncate
from ._redact import elide_base64, redact_headers, redact_text, redact_url

if TYPE_CHECKING:
    import httpx

    from ._config import RuntimeConfig

    _Adapter = logging.LoggerAdapter[logging.Logger]
else:
    _Adapter = logging.LoggerAdapter

__all__ = ["PACKAGE_LOGGER", "AgentLog", "HttpLog", "agent_log"]

PACKAGE_LOGGER = logging.getLogger("openai_chatapi")
PACKAGE_LOGGER.addHandler(logging.NullHandler())
_OFF = logging.CRITICAL + 1
_numbers = itertools.count(1)


class AgentLog(_Adapter):
    """One agent's view of the package logger, with the agent's own level."""

    def __init__(self, level: int, agent: int) -> None:
        super().__init__(PACKAGE_LOGGER, {"agent": agent})
        self.level = level

    def isEnabledFor(self, level: int) -> bool:
        return level >= self.level and self.logger.manager.disable < level

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        # Not LoggerAdapter.log: that asks the package logger's level again, which is not
        # this agent's (the package logger keeps whatever level its user gave it).
        if self.isEnabledFor(level):
            msg, kwargs = self.process(msg, kwargs)
            kwargs.setdefault("stacklevel", 2)  # the caller's line, not this method's
            self.logger._log(level, msg, args, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def agent_log(runtime: RuntimeConfig) -> AgentLog:
    """A logger for a new agent configured by ``runtime``.

    When logging is on and nothing is configured (no handler on the root logger or the
    package logger), a stderr handler is put on the package logger, once.
    """
    if not runtime.enable_logging:
        return AgentLog(_OFF, next(_numbers))
    level = logging.DEBUG if runtime.enable_debug else logging.getLevelName(runtime.log_level)
    if not logging.getLogger().handlers and not any(
        not isinstance(h, logging.NullHandler) for h in PACKAGE_LOGGER.handlers
    ):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        PACKAGE_LOGGER.addHandler(handler)
    return AgentLog(int(level), next(_numbers))


class HttpLog:
    """An agent's HTTP-logging switches and the redacted lines they write."""

    __slots__ = ("log", "requests", "responses")

    def __init__(self, log: AgentLog, runtime: RuntimeConfig) -> None:
        self.log = log
        on = runtime.enable_logging
        self.requests = on and (runtime.log_http_requests or runtime.enable_debug)
        self.responses = on and (runtime.log_http_responses or runtime.enable_debug)

    def request(
        self, request: httpx.Request, body: object, attempt: int, secrets: tuple[str, ...]
    ) -> None:
        self.log.info(
            "HTTP request %s %s attempt=%d headers=%s body=%s",
            request.method,
            redact_url(str(request.url)),
            attempt + 1,
            redact_headers(request.headers, secrets),
            _body_preview(body, secrets),
        )

    def response(
        self, response: httpx.Response, body: bytes | None, elapsed: float, secrets: tuple[str, ...]
    ) -> None:
        """``body`` None: a stream (its body is not logged)."""
        text = "<stream>" if body is None else _preview(body, secrets, 4000)
        self.log.info(
            "HTTP response %d %s in %.3fs headers=%s body=%s",
            response.status_code,
            redact_url(str(response.request.url)),
            elapsed,
            redact_headers(response.headers, secrets),
            text,
        )


def _preview(data: bytes | str, secrets: tuple[str, ...], limit: int) -> str:
    # Redact and elide before cutting, so neither a secret nor base64 shows even in part.
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    return truncate(elide_base64(redact_text(text, secrets)), limit)


def _body_preview(body: object, secrets: tuple[str, ...]) -> str:
    if body is None:
        return ""
    if isinstance(body, bytes):
        return _preview(body, secrets, 8000)
    preview = getattr(body, "preview", None)  # request.MediaBody describes its media
    if callable(preview):
        return _preview(str(preview()), secrets, 8000)
    return f"<streamed body, {getattr(body, 'content_length', '?')} bytes, media elided>"
