"""The only module that sends an agent's requests over the network.

``Transport`` owns one ``httpx.AsyncClient``: base URL, auth, timeouts, TLS, pool limits,
retries with backoff (honouring ``Retry-After``), logging with redaction, and the mapping of
HTTP failures to the exception tree. Tests swap the httpx transport, never this module.

A request goes down one layer per concern: :meth:`Transport.request` /
:meth:`Transport.stream` (the network boundary: :meth:`Transport._boundary` maps every
failure to our exceptions and scrubs secrets from whatever leaves) → :meth:`Transport._send`
(the retry loop, deciding with the call's ``Retries``) → :meth:`Transport._attempt` (one
exchange, bounded as a whole) and :meth:`Transport._status_error` (an error status as an
exception). A stream's body is read inside the same boundary.

One other place sends HTTP, not for an agent: the local server's supervisor
(``local/_supervisor.py``) polls ``GET /v1/models`` of the server it started, before any agent
exists and from blocking code too; a failed poll there means "not up yet", nothing to map.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Protocol

import httpx

from ._config import ModelConfig, RuntimeConfig
from ._error_hints import content_hint, endpoint_hint, is_request_validation_error
from ._errors import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    ChatAPIException,
    ConfigurationError,
    error_from_response,
    truncate,
)
from ._exchange import (
    AttemptTimeout,
    ConnectionTracer,
    StreamBody,
    body_chunks,
    body_size,
    drain_and_close,
    exchange,
    local_server_transport,
    read_capped,
    within,
)
from ._logging import PACKAGE_LOGGER, HttpLog, agent_log
from ._redact import agent_secrets, redact_text, redact_url, scrub_exception
from ._retry import RETRYABLE_EXCEPTIONS, Retries, RetryPolicy
from ._urls import split_query, with_query, without_userinfo
from ._version import __version__

__all__ = ["SentBody", "StreamBody", "Transport", "logger"]

logger = PACKAGE_LOGGER  # the package logger (every agent's records go to its handlers)

USER_AGENT = f"openai_chatapi/{__version__} (python httpx)"
_ERROR_BODY_CAP = 64 * 1024


class SentBody(Protocol):
    """A request body that may be streamed (media) and can be sent again on retry."""

    @property
    def content_length(self) -> int: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...


Body = bytes | SentBody
Sleep = Callable[[float], Awaitable[None]]


def _leaf(exc: BaseException) -> BaseException:
    """The first real failure inside an exception group (anyio's task groups make them)."""
    while isinstance(getattr(exc, "exceptions", None), tuple) and exc.exceptions:  # type: ignore[attr-defined]
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    return exc


def _connection_error(
    exc: BaseException, method: str, url: str, *, reading: bool = False
) -> APIConnectionError:
    """The exception for a network failure ``exc`` (``reading``: of a stream's body)."""
    exc = _leaf(exc)
    kind = type(exc).__name__
    url = redact_url(url)
    if reading:
        cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
        what = "timed out" if cls is APITimeoutError else "interrupted"
        return cls(f"stream {what} ({kind}): {url}", {"error": kind})
    details = {"method": method, "url": url, "error": kind}
    if isinstance(exc, AttemptTimeout):
        details["phase"] = "attempt"
        return APITimeoutError(
            f"request timed out: no complete response within timeout={exc.seconds:g}s "
            f"(the whole attempt is bounded): {method} {url}",
            details,
        )
    if isinstance(exc, httpx.TimeoutException):
        details["phase"] = "connect" if isinstance(exc, httpx.ConnectTimeout) else "read"
        return APITimeoutError(f"request timed out ({kind}): {method} {url}", details)
    return APIConnectionError(f"connection failed ({kind}: {exc}): {method} {url}", details)


class Transport:
    """HTTP access for one agent: one pooled client, retries, redacted logging, error mapping."""

    def __init__(
        self,
        model_config: ModelConfig,
        runtime: RuntimeConfig,
        *,
        http_transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        on_retry: Callable[[], None] | None = None,
    ) -> None:
        self._model_config = model_config
        self._runtime = runtime
        self._http_transport = http_transport
        self.log = agent_log(runtime)
        """This agent's logger (its level, the package logger's handlers)."""
        self._http_log = HttpLog(self.log, runtime)
        self.retry_policy = RetryPolicy(
            max_retries=runtime.max_retries,
            retry_delay=runtime.retry_delay,
            max_delay=runtime.max_retry_delay,
            sleep=sleep,
            on_retry=on_retry,
            log=self.log,
        )
        self._client: httpx.AsyncClient | None = None
        self._closed = False  # aclose() was called: no lazy reopening (``async with`` may)
        self._drains: set[asyncio.Task[None]] = set()  # stream ends read for reuse
        self._urls: dict[str, httpx.URL] = {}
        self._base_query = ""
        self._secrets: tuple[str, ...] = ()
        self._register_secrets()
        self._max_error_length = runtime.max_error_length if runtime.truncate_long_errors else None
        self._timeout = float(runtime.timeout)

    def _register_secrets(self) -> None:
        config = self._model_config
        self._secrets = agent_secrets(config.api_key, config.api_base_url)

    @property
    def base_url(self) -> str:
        return self._model_config.api_base_url

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings that must never be logged or shown (the API key)."""
        return self._secrets

    @property
    def is_open(self) -> bool:
        return self._client is not None and not self._client.is_closed

    async def open(self) -> None:
        self._closed = False
        self._open()

    def _open(self) -> None:
        """Create the client (no I/O: connections are made by the first requests)."""
        if self.is_open:
            return
        # Fields changed after construction were not checked: check them before connecting.
        self._model_config.validate()
        self._register_secrets()
        runtime = self._runtime
        if not runtime.verify_ssl:
            self.log.warning(
                "TLS certificate verification is disabled (verify_ssl=False) for %s",
                redact_url(self.base_url),
            )
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self._model_config.api_key:
            headers["Authorization"] = f"Bearer {self._model_config.api_key}"
        limits = httpx.Limits(
            max_connections=runtime.max_connections,
            max_keepalive_connections=runtime.max_keepalive_connections,
        )
        # A query in api_base_url (Azure's ?api-version=...) goes at the end of every request
        # URL, after the endpoint's path, not in the middle of it.
        root, self._base_query = split_query(self.base_url)
        # httpx would send the URL's user:password as Basic auth in place of the key.
        if self._model_config.api_key and (bare := without_userinfo(root)) is not None:
            root = bare
            self.log.warning(
                "api_base_url carries credentials (user:password@) and api_key is set: "
                "the key is sent (Authorization: Bearer), the URL's credentials are not"
            )
        self._urls.clear()
        self._client = httpx.AsyncClient(
            base_url=root.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(float(runtime.timeout)),
            verify=runtime.verify_ssl,
            limits=limits,
            # The embedded local model server, when it is the target, names its own crash.
            transport=self._http_transport or local_server_transport(self.base_url, limits),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        for task in list(self._drains):
            task.cancel()
        await self.settled()
        client, self._client = self._client, None
        self._closed = True
        if client is not None:
            await client.aclose()

    def _require_client(self) -> httpx.AsyncClient:
        """The client; an agent never opened opens on its first request (``aclose()`` still
        closes it), one closed by ``aclose()`` refuses (``async with`` reopens it)."""
        if self._closed:
            raise ConfigurationError(
                "this agent was closed (aclose() or the end of its 'async with' block); "
                "open it again with 'async with agent:' or create a new one",
                {"url": redact_url(self.base_url), "closed": True},
            )
        if not self.is_open:
            self._open()
        client = self._client
        assert client is not None
        return client

    def _build(self, method: str, path: str, body: Body | None, stream: bool) -> httpx.Request:
        client = self._require_client()
        headers: dict[str, str] = {}
        content: bytes | AsyncIterable[bytes] | None = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            if not isinstance(body, bytes):
                headers["Content-Length"] = str(body.content_length)
            content = body
        if stream:
            headers["Accept"] = "text/event-stream"
        return client.build_request(method, self._url(path), content=content, headers=headers)

    def _url(self, path: str) -> httpx.URL:
        """The absolute URL of ``path``, parsed once (URL parsing is a large share of httpx's
        per-request cost)."""
        url = self._urls.get(path)
        if url is None:
            # Same result as httpx's own merge: the base URL ends with "/", path is relative.
            url = httpx.URL(
                with_query(
                    str(self._require_client().base_url) + path.lstrip("/"), self._base_query
                )
            )
            if len(self._urls) < 64:  # fixed endpoints; model ids may vary without bound
                self._urls[path] = url
        return url

    def _shown_url(self, path: str) -> str:
        """The URL of ``path`` as error messages show it (never raises)."""
        root, query = split_query(self.base_url)
        url = with_query(f"{root.rstrip('/')}/{path.lstrip('/')}", query)
        try:
            return str(httpx.URL(url))
        except Exception:  # the URL itself may be what failed
            return url

    # ------------------------------------------------------------------ the send chain
    @contextmanager
    def _boundary(
        self, method: str, path: str, *, reading: bool = False, caller: bool = False
    ) -> Iterator[None]:
        """The network boundary: every failure leaves it as one of our exceptions, scrubbed.

        Our exceptions pass with secrets scrubbed from their message, args and details. Any
        other failure becomes ``APIConnectionError`` / ``APITimeoutError`` (a protocol error,
        an invalid URL or header, an OS error, an exception group from the network stack;
        ``reading``: a stream's body failing as it arrives). Inside ``caller`` code other
        than ours runs too (the block of a stream), so there only httpx's failures are mapped.
        """
        try:
            yield
        except ChatAPIException as exc:
            scrub_exception(exc, self._secrets)
            raise
        except Exception as exc:
            if caller and not isinstance(exc, httpx.HTTPError):
                raise
            error = _connection_error(exc, method, self._shown_url(path), reading=reading)
            for failure in (error, exc):  # exc stays as the context reporters may walk
                scrub_exception(failure, self._secrets)
            raise error from None

    async def _send(
        self, method: str, path: str, body: Body | None, stream: bool, retries: Retries
    ) -> httpx.Response:
        """Send with retries; return a 2xx response (its body already read unless ``stream``)."""
        attempt = 0
        while True:
            request = self._build(method, path, body, stream)
            tracer = ConnectionTracer()
            request.extensions["trace"] = tracer
            if self._http_log.requests:
                self._http_log.request(request, body, attempt, self._secrets)
            attempt += 1
            try:
                response = await self._attempt(request, stream)
            except RETRYABLE_EXCEPTIONS as exc:  # mapped by the boundary when not retried
                if not tracer.answered and retries.free_resend(exc, reused=tracer.reused):
                    # The keep-alive race: a pooled connection the server had closed answered
                    # nothing. The request was not answered; send it again at once.
                    continue
                if not retries.should_retry(type(exc).__name__):
                    raise
                await retries.backoff(type(exc).__name__)
                continue
            status = response.status_code
            if status < 300:
                return response
            error, invalid = await self._status_error(response, body)
            retryable = not invalid and retries.policy.should_retry_status(status)
            if not retries.should_retry(f"HTTP {status}", retryable=retryable):
                raise error
            await retries.backoff(f"HTTP {status}", response.headers)

    async def _attempt(self, request: httpx.Request, stream: bool) -> httpx.Response:
        """One exchange. ``timeout`` bounds it as a whole (a stream: until its headers), not
        only each read: a server trickling bytes cannot hold a call open."""
        return await within(self._timeout, exchange(self._require_client(), request, stream))

    async def _status_error(
        self, response: httpx.Response, sent: Body | None
    ) -> tuple[ChatAPIException, bool]:
        """The exception for an error status (its body read, capped, then closed), and
        whether it is a request-validation answer (deterministic, so never retried: llama.cpp
        sends it as a 500)."""
        try:
            body = await read_capped(response, _ERROR_BODY_CAP)
        except RETRYABLE_EXCEPTIONS as exc:
            request = response.request
            return _connection_error(exc, request.method, str(request.url)), False
        finally:
            await response.aclose()
        if self._http_log.responses:
            self._http_log.response(response, body, 0.0, self._secrets)
        error = error_from_response(
            response.status_code,
            body,
            request_id=response.headers.get("x-request-id"),
            max_length=self._max_error_length,
            scrub=self._secrets,
            size=body_size(response, len(body), _ERROR_BODY_CAP),
        )
        if 300 <= response.status_code < 400:
            error = self._redirect_error(response, error)
        error = endpoint_hint(error, self.base_url, self._secrets)
        invalid = is_request_validation_error(error)
        if invalid:
            error = content_hint(error, sent, self._secrets)
        return error, invalid

    def _redirect_error(self, response: httpx.Response, error: APIResponseError) -> APIStatusError:
        """A 3xx names where it points and the likely mistake in ``api_base_url``."""
        status = response.status_code
        sent = response.request.url
        location = response.headers.get("location")
        if not location:
            where, hint = "without a Location", "check api_base_url"
        else:
            target = sent.join(location)
            where = f"to {redact_url(str(target))}"
            if sent.scheme == "http" and target.scheme == "https":
                hint = "the server wants https: use https:// in api_base_url"
            elif "/v1" in target.path and "/v1" not in sent.path:
                hint = "api_base_url probably lacks /v1"
            else:
                hint = "set api_base_url to the address the server redirects to"
        message = redact_text(
            f"HTTP {status}: the server redirects {where} (redirects are not followed: {hint})",
            self._secrets,
        )
        details = {**error.details, "location": redact_url(location) if location else None}
        return APIStatusError(truncate(message, self._max_error_length), details)

    # ------------------------------------------------------------------ the API
    def retries(self) -> Retries:
        """A fresh retry budget for one call (shared by every retry path of that call)."""
        return self.retry_policy.start()

    async def request(self, method: str, path: str, body: Body | None = None) -> bytes:
        """Send a request (retrying as configured) and return the successful body."""
        started = time.perf_counter()
        with self._boundary(method, path):
            response = await self._send(method, path, body, False, self.retries())
        data = response.content  # read (and retried) by _send
        await response.aclose()
        if self._http_log.responses:
            elapsed = time.perf_counter() - started
            self._http_log.response(response, data, elapsed, self._secrets)
        return data

    @asynccontextmanager
    async def stream(
        self, path: str, body: Body, retries: Retries | None = None
    ) -> AsyncIterator[StreamBody]:
        """POST and yield the body of the open streaming response as it arrives.

        The response is closed when the block exits. Failures before the response headers
        are retried; nothing is retried afterwards. The body is read, and the block runs,
        inside the network boundary: a failure while reading raises ``APIConnectionError`` /
        ``APITimeoutError``, and whatever the block raises leaves scrubbed. When the block
        exits normally, what the reader left unread (the end of the body after ``[DONE]``)
        is read briefly by a background task, so that the connection goes back to the pool
        instead of being closed; the block itself exits at once.
        """
        with self._boundary("POST", path):
            response = await self._send("POST", path, body, True, retries or self.retries())
        chunks = body_chunks(response, self._boundary("POST", path, reading=True))
        handed_off = False
        try:
            if self._http_log.responses:
                self._http_log.response(response, None, 0.0, self._secrets)
            content_type = response.headers.get("content-type", "none")
            tracer = response.request.extensions.get("trace")
            sent_at = tracer.sent_at if isinstance(tracer, ConnectionTracer) else time.monotonic()
            with self._boundary("POST", path, caller=True):
                yield StreamBody(chunks, content_type, sent_at)
            if not response.is_closed:
                # Never delays the caller: the reply is complete, the rest is for reuse.
                task = asyncio.get_running_loop().create_task(drain_and_close(chunks, response))
                self._drains.add(task)
                task.add_done_callback(self._drains.discard)
                handed_off = True
        finally:
            if not handed_off:
                # Closed here, not by the garbage collector (which would leave a pending task).
                await chunks.aclose()
                await response.aclose()

    async def settled(self) -> None:
        """Wait until every stream end drained in the background is read or closed."""
        while self._drains:
            await asyncio.wait(set(self._drains))
