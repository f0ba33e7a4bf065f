"""Configuration: the model's behaviour (``ModelConfig``) and the client's (``RuntimeConfig``).

Both validate themselves on creation and raise ``ConfigurationError`` whose ``details`` name
the field and the offending value, before any request is sent.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, TypeVar, get_args
from urllib.parse import urlsplit

from ._errors import ConfigurationError
from ._parts import ImageDetail
from ._redact import REDACTED, redact_url

__all__ = [
    "REQUEST_FIELDS",
    "SAMPLING_FIELDS",
    "CallOptions",
    "ChatConfig",
    "ModelConfig",
    "ReasoningEffort",
    "RuntimeConfig",
    "VideoMode",
    "check_media_fields",
]

_LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"})
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
"""The ``reasoning_effort`` values the client accepts (checked at run time as well)."""
_REASONING_EFFORTS = frozenset(get_args(ReasoningEffort))


def _fail(name: str, value: Any, why: str) -> ConfigurationError:
    shown = REDACTED if name == "api_key" else value
    return ConfigurationError(f"invalid {name}={shown!r}: {why}", {"field": name, "value": shown})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_range(name: str, value: Any, low: float, high: float, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not _is_number(value) or math.isnan(value):
        raise _fail(name, value, "must be a number")
    if not low <= value <= high:
        raise _fail(name, value, f"must be between {low:g} and {high:g}")


def _check_int(name: str, value: Any, *, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(name, value, "must be an integer")
    if value < minimum:
        raise _fail(name, value, f"must be >= {minimum}")


def _check_optional_str(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise _fail(name, value, "must be a string or None")


def _check_bool(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, bool):
        raise _fail(name, value, "must be True or False")


_C = TypeVar("_C")


def _named_fields(cls: type[_C]) -> type[_C]:
    """A config class whose unknown keyword arguments raise ``ConfigurationError`` naming them
    (and the nearest field), not the ``TypeError`` of the generated ``__init__``, and whose
    fields are checked when set after creation too (``runtime.timeout = -5`` raises there and
    keeps the old value, rather than failing later as if the network had)."""
    init = cls.__init__
    names = tuple(item.name for item in dataclasses.fields(cls))  # type: ignore[arg-type]

    def unknown(name: str) -> ConfigurationError:
        near = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        return ConfigurationError(f"{cls.__name__} has no field {name!r}{hint}", {"field": name})

    @functools.wraps(init)
    def checked_init(self: Any, *args: Any, **kwargs: Any) -> None:
        for name in kwargs:
            if name not in names:
                raise unknown(name)
        if len(args) > len(names):
            raise ConfigurationError(
                f"{cls.__name__} takes at most {len(names)} positional fields, got {len(args)}",
                {"field": None},
            )
        init(self, *args, **kwargs)
        self.__dict__[_READY] = True

    def checked_setattr(self: Any, name: str, value: Any) -> None:
        state = self.__dict__
        if not state.get(_READY) or state.get(_CHECKING):  # creation, or validate() itself
            object.__setattr__(self, name, value)
            return
        if name not in names:
            raise unknown(name)
        before = {key: state[key] for key in names if key in state}
        object.__setattr__(self, name, value)
        state[_CHECKING] = True
        try:
            self.validate()
        except BaseException:
            state.update(before)  # the config stays as it was
            raise
        finally:
            state[_CHECKING] = False

    def refuse_delete(self: Any, name: str) -> None:  # its class default would come back
        raise ConfigurationError(
            f"{cls.__name__}.{name} cannot be deleted; set it to a value", {"field": name}
        )

    setattr(cls, "__init__", checked_init)  # noqa: B010
    setattr(cls, "__setattr__", checked_setattr)  # noqa: B010
    setattr(cls, "__delattr__", refuse_delete)  # noqa: B010
    return cls


_READY, _CHECKING = "_created", "_checking"  # instance flags kept out of the dataclass fields


@_named_fields
@dataclass
class ModelConfig:
    """How the model behaves: the endpoint, the model name and the sampling parameters.

    ``api_key`` falls back to the ``OPENAI_API_KEY`` environment variable; with no key
    at all no ``Authorization`` header is sent (local servers). The key never appears in
    ``repr()`` or ``str()``.
    """

    # API connection
    api_base_url: str = "https://api.openai.com/v1"
    api_key: str | None = field(default=None, repr=False)
    model: str = "gpt-4o"
    # sampling
    temperature: float = 0.7
    top_p: float = 1.0
    # length
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    # penalties
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    # other
    n: int = 1
    stop: str | list[str] | None = None
    stream: bool = False
    logprobs: bool | None = None
    top_logprobs: int | None = None
    seed: int | None = None
    user: str | None = None
    reasoning_effort: ReasoningEffort | None = None

    def __post_init__(self) -> None:
        if self.api_key is None:
            self.api_key = os.environ.get("OPENAI_API_KEY") or None
        self.validate()

    def validate(self) -> None:
        """Check every field; raise ``ConfigurationError`` naming the first bad one."""
        _check_url(self.api_base_url)
        key = self.api_key
        if key is not None:
            if not isinstance(key, str):
                raise _fail("api_key", key, "must be a non-empty string or None")
            # A key read from a file or an environment variable often ends with a newline.
            self.api_key = key = key.strip()
            if not key:
                raise _fail("api_key", key, "must be a non-empty string or None")
            bad = next((i for i, c in enumerate(key) if not " " <= c <= "~"), None)
            if bad is not None:
                raise _fail(
                    "api_key",
                    key,
                    f"contains a character that cannot be sent in an HTTP header (a control "
                    f"or non-ASCII character, such as a typographic quote) at position {bad}",
                )
        if not isinstance(self.model, str) or not self.model.strip():
            raise _fail("model", self.model, "must be a non-empty string")
        _check_range("temperature", self.temperature, 0.0, 2.0)
        _check_range("top_p", self.top_p, 0.0, 1.0)
        _check_int("max_tokens", self.max_tokens, minimum=1, optional=True)
        _check_int("max_completion_tokens", self.max_completion_tokens, minimum=1, optional=True)
        _check_range("frequency_penalty", self.frequency_penalty, -2.0, 2.0)
        _check_range("presence_penalty", self.presence_penalty, -2.0, 2.0)
        _check_int("n", self.n, minimum=1)
        stop = self.stop
        if (
            stop is not None
            and not isinstance(stop, str)
            and (not isinstance(stop, list) or not all(isinstance(s, str) for s in stop))
        ):
            raise _fail("stop", stop, "must be a string, a list of strings, or None")
        _check_bool("stream", self.stream)
        _check_bool("logprobs", self.logprobs, optional=True)
        _check_int("top_logprobs", self.top_logprobs, minimum=0, optional=True)
        if self.top_logprobs is not None:
            if self.top_logprobs > 20:
                raise _fail("top_logprobs", self.top_logprobs, "must be between 0 and 20")
            if not self.logprobs:
                raise _fail("top_logprobs", self.top_logprobs, "requires logprobs=True")
        _check_int("seed", self.seed, minimum=-(2**63), optional=True)
        _check_optional_str("user", self.user)
        effort = self.reasoning_effort
        if effort is not None and effort not in _REASONING_EFFORTS:
            raise _fail("reasoning_effort", effort, f"must be one of {sorted(_REASONING_EFFORTS)}")

    def with_overrides(self, overrides: dict[str, Any]) -> ModelConfig:
        """A validated copy with per-call ``overrides`` applied; unknown names are refused."""
        unknown = [key for key in overrides if key not in _OVERRIDABLE]
        if unknown:
            raise ConfigurationError(
                f"unknown call option(s): {', '.join(sorted(unknown))}",
                {"field": unknown[0], "unknown": sorted(unknown)},
            )
        return dataclasses.replace(self, **overrides)

    def __repr__(self) -> str:
        shown = []
        for item in dataclasses.fields(self):
            if item.repr:
                value = getattr(self, item.name)
                if item.name == "api_base_url" and isinstance(value, str):
                    value = redact_url(value)  # user:password@ and ?api_key= stay hidden
                shown.append(f"{item.name}={value!r}")
        return f"{type(self).__qualname__}({', '.join(shown)})"

    def __str__(self) -> str:
        return repr(self)


ChatConfig = ModelConfig
"""The pre-0.3 name of ``ModelConfig``, kept working."""


class CallOptions(TypedDict, total=False):
    """Per-call overrides of ``ModelConfig``'s request parameters (keyword arguments)."""

    model: str
    temperature: float
    top_p: float
    max_tokens: int | None
    max_completion_tokens: int | None
    frequency_penalty: float
    presence_penalty: float
    n: int
    stop: str | list[str] | None
    logprobs: bool | None
    top_logprobs: int | None
    seed: int | None
    user: str | None
    reasoning_effort: ReasoningEffort | None


REQUEST_FIELDS: tuple[str, ...] = tuple(CallOptions.__annotations__)
"""Every ``ModelConfig`` field that is a request parameter (all can be overridden per call)."""
SAMPLING_FIELDS: tuple[str, ...] = tuple(f for f in REQUEST_FIELDS if f != "model")
"""The request parameters besides ``model``: sampling, length, penalties and the like."""
_OVERRIDABLE = frozenset(REQUEST_FIELDS)

VideoMode = Literal["auto", "native", "frames"]
"""How videos are sent: ``native`` ``video_url`` parts, sampled ``frames``, or ``auto``."""
ToolErrorMode = Literal["feedback", "raise"]
OutputMode = Literal["auto", "native", "json", "tool"]


@_named_fields
@dataclass
class RuntimeConfig:
    """How the client behaves: logging, HTTP, retries, streaming, parsing, tools and media.

    ``timeout`` (seconds) bounds each attempt of a non-streamed call as a whole, and for a
    stream the wait for the first event and every silence between events (keep-alive
    comments count as signs of life); ``APITimeoutError.details["phase"]`` names which.
    """

    # logging
    enable_logging: bool = True
    log_level: str = "INFO"
    log_http_requests: bool = False
    log_http_responses: bool = False
    # monitoring
    enable_debug: bool = False
    capture_token_usage: bool = True
    capture_latency: bool = True
    # HTTP
    timeout: float = 60
    verify_ssl: bool = True
    max_retries: int = 0
    retry_delay: float = 1.0
    max_retry_delay: float = 60.0
    max_connections: int = 100
    max_keepalive_connections: int = 20
    # streaming
    stream_chunk_callback: Callable[[str], None] | None = None
    stream_enable_progress: bool = False
    stream_include_usage: bool = True
    # parsing
    strict_parsing: bool = False
    truncate_long_errors: bool = True
    max_error_length: int = 500
    # tools
    max_tool_rounds: int = 10
    tool_timeout: float | None = 60.0
    tool_errors: ToolErrorMode = "feedback"
    max_tool_failures: int = 3
    # structured output (response_format=SomeType)
    output_mode: OutputMode = "auto"
    max_output_retries: int = 1
    # media
    image_detail: ImageDetail | None = None
    image_max_side: int | None = None
    image_max_bytes: int | None = None
    max_media_bytes: int = 512 * 1024 * 1024
    video_mode: VideoMode = "auto"
    video_frames: int = 8
    video_fps: float | None = None
    video_max_frames: int = 32
    video_frame_max_side: int | None = 768
    images_only_hosts: tuple[str, ...] = ("api.openai.com",)
    keep_media_in_history: bool = True
    keep_media_bytes: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field; raise ``ConfigurationError`` naming the first bad one."""
        for name in (
            "enable_logging",
            "log_http_requests",
            "log_http_responses",
            "enable_debug",
            "capture_token_usage",
            "capture_latency",
            "verify_ssl",
            "stream_enable_progress",
            "stream_include_usage",
            "strict_parsing",
            "truncate_long_errors",
            "keep_media_in_history",
            "keep_media_bytes",
        ):
            _check_bool(name, getattr(self, name))
        level = self.log_level
        if not isinstance(level, str) or level.upper() not in _LOG_LEVELS:
            raise _fail("log_level", level, f"must be one of {sorted(_LOG_LEVELS)}")
        self.log_level = level.upper()
        _check_positive_number("timeout", self.timeout)
        if math.isinf(self.timeout):  # no bound at all: a stalled server would hold a call
            raise _fail("timeout", self.timeout, "must be a finite number of seconds")
        _check_int("max_retries", self.max_retries, minimum=0)
        _check_non_negative("retry_delay", self.retry_delay)
        _check_non_negative("max_retry_delay", self.max_retry_delay)
        _check_int("max_connections", self.max_connections, minimum=1)
        _check_int("max_keepalive_connections", self.max_keepalive_connections, minimum=0)
        if self.stream_chunk_callback is not None and not callable(self.stream_chunk_callback):
            raise _fail("stream_chunk_callback", self.stream_chunk_callback, "must be callable")
        _check_int("max_error_length", self.max_error_length, minimum=1)
        _check_int("max_tool_rounds", self.max_tool_rounds, minimum=1)
        if self.tool_timeout is not None:
            _check_positive_number("tool_timeout", self.tool_timeout)
        if self.tool_errors not in get_args(ToolErrorMode):
            raise _fail("tool_errors", self.tool_errors, "must be 'feedback' or 'raise'")
        _check_int("max_tool_failures", self.max_tool_failures, minimum=0)
        if self.output_mode not in get_args(OutputMode):
            raise _fail(
                "output_mode", self.output_mode, "must be 'auto', 'native', 'json' or 'tool'"
            )
        _check_int("max_output_retries", self.max_output_retries, minimum=0)
        self.images_only_hosts = check_media_fields(self)


def check_media_fields(settings: Any) -> tuple[str, ...]:
    """Check the media fields of ``settings`` (a ``RuntimeConfig`` or a ``MediaSettings``).

    The one validation of those fields; returns ``images_only_hosts`` as a tuple.
    """
    if settings.image_detail not in (None, "auto", "low", "high"):
        raise _fail("image_detail", settings.image_detail, "must be 'auto', 'low' or 'high'")
    _check_int("image_max_side", settings.image_max_side, minimum=16, optional=True)
    _check_int("image_max_bytes", settings.image_max_bytes, minimum=1024, optional=True)
    _check_int("max_media_bytes", settings.max_media_bytes, minimum=1)
    if settings.video_mode not in ("auto", "native", "frames"):
        raise _fail("video_mode", settings.video_mode, "must be 'auto', 'native' or 'frames'")
    _check_int("video_frames", settings.video_frames, minimum=1)
    if settings.video_fps is not None:
        _check_positive_number("video_fps", settings.video_fps)
    _check_int("video_max_frames", settings.video_max_frames, minimum=1)
    _check_int("video_frame_max_side", settings.video_frame_max_side, minimum=16, optional=True)
    hosts = settings.images_only_hosts
    if isinstance(hosts, list):
        hosts = tuple(hosts)
    if not isinstance(hosts, tuple) or not all(isinstance(h, str) for h in hosts):
        raise _fail("images_only_hosts", hosts, "must be a tuple of host names")
    return hosts


def _check_url(url: Any) -> None:
    """``api_base_url`` must be an absolute http(s) URL that httpx can send requests to."""
    if not isinstance(url, str) or not url:
        raise _fail("api_base_url", url, "must be a non-empty http(s) URL")
    shown = redact_url(url)
    if url != url.strip() or any(c.isspace() or not c.isprintable() for c in url):
        raise _fail("api_base_url", shown, "must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number in 0-65535
        host = parts.hostname
    except ValueError as exc:
        raise _fail("api_base_url", shown, f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise _fail("api_base_url", shown, "must be an http:// or https:// URL")
    if not host:
        raise _fail("api_base_url", shown, "has no host name (expected http(s)://host/...)")
    if port == 0:
        raise _fail("api_base_url", shown, "port must be between 1 and 65535")
    if parts.fragment:
        raise _fail("api_base_url", shown, "must not have a #fragment")


def _check_positive_number(name: str, value: Any) -> None:
    if not _is_number(value) or math.isnan(value) or value <= 0:
        raise _fail(name, value, "must be a positive number")


def _check_non_negative(name: str, value: Any) -> None:
    if not _is_number(value) or math.isnan(value) or value < 0:
        raise _fail(name, value, "must be a number >= 0")
