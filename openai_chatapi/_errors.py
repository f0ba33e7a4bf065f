"""The exception tree: every error this package raises is a ``ChatAPIException``.

::

    ChatAPIException
    ├── ConfigurationError          invalid configuration or call arguments
    ├── APIConnectionError          the server could not be reached
    │   └── APITimeoutError         connect/read/write/pool timeout
    ├── APIResponseError            the response was an error or could not be parsed
    │   └── APIStatusError          the server answered with an HTTP error status
    │       ├── BadRequestError         400 (and 422)
    │       │   └── TokenLimitError     context length / token limit exceeded
    │       ├── AuthenticationError     401
    │       ├── PermissionDeniedError   403
    │       ├── NotFoundError           404
    │       │   └── ModelNotFoundError  404 on a model, or error code model_not_found
    │       ├── RateLimitError          429
    │       └── InternalServerError     >= 500
    ├── ToolExecutionError          a tool failed (details: tool, error, arguments)
    └── MediaProcessingError        an image or video could not be processed
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Generic, TypeVar, overload

from ._redact import known_secrets, redact_text

__all__ = [
    "BODY_LIMIT",
    "APIConnectionError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ChatAPIException",
    "ConfigurationError",
    "InternalServerError",
    "MediaProcessingError",
    "ModelNotFoundError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "TokenLimitError",
    "ToolExecutionError",
    "body_excerpt",
    "error_from_payload",
    "error_from_response",
    "truncate",
]

T = TypeVar("T")
BODY_LIMIT = 2000
"""How much of a server's body an exception keeps (``details["body"]``)."""


class _Detail(Generic[T]):
    """A typed, read-only view of one ``details`` entry: None when absent or of another type."""

    __slots__ = ("_key", "_kind")

    def __init__(self, key: str, kind: type[T]) -> None:
        self._key = key
        self._kind = kind

    @overload
    def __get__(self, owner: None, kind: type[Any]) -> _Detail[T]: ...
    @overload
    def __get__(self, owner: ChatAPIException, kind: type[Any]) -> T | None: ...
    def __get__(self, owner: ChatAPIException | None, kind: type[Any]) -> T | _Detail[T] | None:
        if owner is None:
            return self
        value = owner.details.get(self._key)
        return value if isinstance(value, self._kind) and not isinstance(value, bool) else None

    def __set__(self, owner: ChatAPIException, value: object) -> None:
        raise AttributeError(f"read-only: a view of details[{self._key!r}]")


class ChatAPIException(Exception):
    """Base of every exception raised by ``openai_chatapi``.

    ``message`` is a one-line human description; ``details`` is a dict of facts
    (status code, request id, field names, ...) for programs to inspect. The typed
    attributes ``status_code``, ``request_id``, ``body``, ``error_type`` and ``code`` are
    views of ``details`` (None when absent), so they are scrubbed of secrets with it.
    """

    def __init__(self, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    status_code = _Detail("status_code", int)
    """The HTTP status of the server's answer (``details["status_code"]``)."""
    request_id = _Detail("request_id", str)
    """The server's ``x-request-id`` for the failed request (``details["request_id"]``)."""
    body = _Detail("body", str)
    """The start of the server's body, ``BODY_LIMIT`` characters at most (``details["body"]``)."""
    error_type = _Detail("error_type", str)
    """The error object's ``type``: ``invalid_request_error``, ... (``details["error_type"]``)."""
    code = _Detail("error_code", str)
    """The error object's ``code``, such as ``model_not_found`` (``details["error_code"]``)."""

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, details={self.details!r})"


class ConfigurationError(ChatAPIException):
    """A configuration value or call argument failed validation."""


class APIConnectionError(ChatAPIException):
    """The API could not be reached (refused, reset, DNS, TLS, or protocol failure)."""


class APITimeoutError(APIConnectionError):
    """The request timed out (connect, read, write, or waiting for a pooled connection)."""


class APIResponseError(ChatAPIException):
    """The API answered with an error, or its answer could not be parsed."""


class APIStatusError(APIResponseError):
    """The API answered with an HTTP error status; ``status_code`` holds it."""


class BadRequestError(APIStatusError):
    """400 / 422: the server refused the request as invalid."""


class TokenLimitError(BadRequestError):
    """A token limit was exceeded (context length, max tokens, ...)."""


class AuthenticationError(APIStatusError):
    """401: missing or wrong API key."""


class PermissionDeniedError(APIStatusError):
    """403: the key is valid but may not do this."""


class NotFoundError(APIStatusError):
    """404: the path or resource does not exist."""


class ModelNotFoundError(NotFoundError):
    """The requested model does not exist (404 on a model, or code ``model_not_found``)."""


class RateLimitError(APIStatusError):
    """429: too many requests or quota exhausted."""


class InternalServerError(APIStatusError):
    """5xx: the server failed."""


class ToolExecutionError(ChatAPIException):
    """A tool could not be run; ``details`` has ``tool``, ``error`` and ``arguments``."""


class MediaProcessingError(ChatAPIException):
    """An image or video could not be read, recognised, converted or encoded."""


_TOKEN_LIMIT_CODES = frozenset(
    {
        "context_length_exceeded",
        "string_above_max_length",
        "max_tokens_exceeded",
        "token_limit_exceeded",
        "tokens_limit_reached",
        "context_window_exceeded",
    }
)
_TOKEN_LIMIT_PHRASES = (
    "context length",
    "context_length",
    "maximum context",
    "context window",
    "too many tokens",
    "token limit",
    "exceeds the limit",
)
_MODEL_NOT_FOUND_CODES = frozenset({"model_not_found", "model_not_available", "invalid_model"})


def truncate(text: str, limit: int | None) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut (the one truncation helper)."""
    if limit is None or limit <= 0 or len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def body_excerpt(raw: bytes | str) -> str:
    """The start of a server's body as exceptions keep it (``BODY_LIMIT`` characters)."""
    if isinstance(raw, bytes):
        return raw[:BODY_LIMIT].decode("utf-8", errors="replace")
    return raw[:BODY_LIMIT]


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _error_fields(payload: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """Pull (message, type, code, param) out of any of the error shapes servers use."""
    if not isinstance(payload, dict):
        return None, None, None, None
    err: Any = payload.get("error", payload)
    if isinstance(err, str):  # {"error": "message"} (some proxies, Ollama)
        return err, _as_text(payload.get("type")), _as_text(payload.get("code")), None
    if not isinstance(err, dict):
        return None, None, None, None
    message = err.get("message")
    if message is None:
        message = err.get("detail", payload.get("detail"))
    if message is not None and not isinstance(message, str):
        message = json.dumps(message, ensure_ascii=False, default=str)
    return (
        message,
        _as_text(err.get("type")),
        _as_text(err.get("code")),
        _as_text(err.get("param")),
    )


def _classify(status: int | None, code: str | None, message: str) -> type[APIResponseError]:
    lowered = message.lower()
    if code in _TOKEN_LIMIT_CODES or any(p in lowered for p in _TOKEN_LIMIT_PHRASES):
        return TokenLimitError
    if code in _MODEL_NOT_FOUND_CODES:
        return ModelNotFoundError
    if status is None:
        return APIResponseError
    if status in (400, 422):
        return BadRequestError
    if status == 401:
        return AuthenticationError
    if status == 403:
        return PermissionDeniedError
    if status == 404:
        return ModelNotFoundError if "model" in lowered else NotFoundError
    if status == 429:
        return RateLimitError
    if status >= 500:
        return InternalServerError
    return APIStatusError


def error_from_payload(
    payload: Any,
    *,
    status: int | None = None,
    request_id: str | None = None,
    body: str | None = None,
    max_length: int | None = None,
    scrub: tuple[str, ...] = (),
) -> APIResponseError:
    """Build the most specific exception for an error payload (a status reply or stream event).

    ``scrub`` lists secrets that must never appear in the message or details.
    """
    message, err_type, code, param = _error_fields(payload)
    if not message:
        message = (body or "").strip() or "no error message"
    secrets = known_secrets().union(scrub)
    message = redact_text(message, secrets)
    err_type, code, param = (
        None if value is None else redact_text(value, secrets) for value in (err_type, code, param)
    )
    if body is not None:
        body = redact_text(body, secrets)
    # In-stream errors carry no HTTP status; llama.cpp and vLLM put one in ``code``.
    effective = status
    if effective is None and code is not None and code.isdigit() and 400 <= int(code) < 600:
        effective = int(code)
    cls = _classify(effective, code, message)
    prefix = f"HTTP {status}: " if status is not None else "error from server: "
    details: dict[str, Any] = {
        "status_code": status,
        "request_id": request_id,
        "error_type": err_type,
        "error_code": code,
        "error_param": param,
        "body": truncate(body, BODY_LIMIT) if body is not None else None,
    }
    return cls(truncate(prefix + message, max_length), details)


def error_from_response(
    status: int,
    body: bytes,
    *,
    request_id: str | None = None,
    max_length: int | None = None,
    scrub: tuple[str, ...] = (),
    size: str | None = None,
) -> APIResponseError:
    """Map an HTTP error response (status and raw body) to the matching exception.

    ``size`` is how big the whole body is, when ``body`` is only its start (a capped read).
    """
    # Decode only a bounded prefix: a proxy may send megabytes of HTML.
    text = body[: BODY_LIMIT * 4].decode("utf-8", errors="replace")
    payload: Any = None
    if len(body) <= BODY_LIMIT * 4:
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            payload = None
    if payload is None:
        stripped = text.lstrip()[:200]
        if stripped.startswith("<"):
            shown = size or f"{len(body)} bytes"
            payload = {"error": {"message": f"non-JSON error page ({shown})"}}
    return error_from_payload(
        payload,
        status=status,
        request_id=request_id,
        body=text,
        max_length=max_length,
        scrub=scrub,
    )
