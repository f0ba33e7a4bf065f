"""The only module that touches the network.

``Transport`` owns one ``httpx.AsyncClient``: base URL, auth, timeouts, TLS, pool limits,
retries with backoff (honouring ``Retry-After``), logging with redaction, and the mapping of
HTTP failures to the exception tree. Tests swap the httpx transport, never this module.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
)
from contextlib import aclosing, asynccontextmanager, contextmanager, suppress
from typing import Protocol, TypeVar, cast

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
from ._local_watch import watched_transport
from ._redact import (
    elide_base64,
    guard_library_logs,
    redact_headers,
    redact_text,
    redact_url,
    scrub_exception,
    url_secrets,
)
from ._retry import RETRYABLE_EXCEPTIONS, Retries, RetryPolicy
from ._version import __version__

__all__ = ["SentBody", "Transport", "logger"]

logger = logging.getLogger("openai_chatapi")
logger.addHandler(logging.NullHandler())

USER_AGENT = f"openai_chatapi/{__version__} (python httpx)"
_ERROR_BODY_CAP = 64 * 1024
# After [DONE], the end of a streamed body is read for this long at most (then the
# connection is closed instead of reused).
_DRAIN_SECONDS = 0.5
_DRAIN_BYTES = 64 * 1024


class SentBody(Protocol):
    """A request body that may be streamed (media) and can be sent again on retry."""

    @property
    def content_length(self) -> int: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...


T = TypeVar("T")
Body = bytes | SentBody
Sleep = Callable[[float], Awaitable[None]]


def _split_query(url: str) -> tuple[str, str]:
    """``api_base_url`` without its ``?query``, and the query (``""`` when none)."""
    root, _, query = url.partition("?")
    return root, query


def _with_query(url: str, query: str) -> str:
    """``url`` with the base URL's ``query`` appended (after any query of its own)."""
    if not query:
        return url
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _leaf(exc: BaseException) -> BaseException:
    """The first real failure inside an exception group (anyio's task groups make them)."""
    while isinstance(getattr(exc, "exceptions", None), tuple) and exc.exceptions:  # type: ignore[attr-defined]
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    return exc


def _connection_error(exc: BaseException, method: str, url: str) -> APIConnectionError:
    kind = type(exc).__name__
    url = redact_url(url)
    details = {"method": method, "url": url, "error": kind}
    if isinstance(exc, _AttemptTimeout):
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
        self.retry_policy = RetryPolicy(
            max_retries=runtime.max_retries,
            retry_delay=runtime.retry_delay,
            max_delay=runtime.max_retry_delay,
            sleep=sleep,
            on_retry=on_retry,
            log=runtime.enable_logging,
        )
        self._client: httpx.AsyncClient | None = None
        self._closed = False  # aclose() was called: no lazy reopening (``async with`` may)
        self._drains: set[asyncio.Task[None]] = set()  # stream ends read for reuse
        self._urls: dict[str, httpx.URL] = {}
        self._base_query = ""
        key = model_config.api_key
        self._secrets: tuple[str, ...] = (
            *((key,) if key else ()),
            *url_secrets(model_config.api_base_url),
        )
        guard_library_logs(self._secrets)
        self._log_requests = runtime.enable_logging and (
            runtime.log_http_requests or runtime.enable_debug
        )
        self._log_responses = runtime.enable_logging and (
            runtime.log_http_responses or runtime.enable_debug
        )
        self._max_error_length = runtime.max_error_length if runtime.truncate_long_errors else None
        self._timeout = float(runtime.timeout)

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
        key = self._model_config.api_key
        self._secrets = (
            *((key,) if key else ()),
            *url_secrets(self._model_config.api_base_url),
        )
        guard_library_logs(self._secrets)
        runtime = self._runtime
        if not runtime.verify_ssl and runtime.enable_logging:
            logger.warning(
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
        root, self._base_query = _split_query(self.base_url)
        self._urls.clear()
        self._client = httpx.AsyncClient(
            base_url=root.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(float(runtime.timeout)),
            verify=runtime.verify_ssl,
            limits=limits,
            # The embedded local model server, when it is the target, names its own crash.
            transport=self._http_transport or watched_transport(self.base_url, limits),
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
            if isinstance(body, bytes):
                content = body
            else:
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
                _with_query(
                    str(self._require_client().base_url) + path.lstrip("/"), self._base_query
                )
            )
            if len(self._urls) < 64:  # fixed endpoints; model ids may vary without bound
                self._urls[path] = url
        return url

    def _log_request(self, request: httpx.Request, body: Body | None, attempt: int) -> None:
        if not self._log_requests:
            return
        logger.info(
            "HTTP request %s %s attempt=%d headers=%s body=%s",
            request.method,
            redact_url(str(request.url)),
            attempt + 1,
            redact_headers(request.headers, self._secrets),
            _body_preview(body, self._secrets),
        )

    def _log_response(self, response: httpx.Response, body: bytes | None, elapsed: float) -> None:
        if not self._log_responses:
            return
        text = "<stream>" if body is None else _response_preview(body, self._secrets)
        logger.info(
            "HTTP response %d %s in %.3fs headers=%s body=%s",
            response.status_code,
            redact_url(str(response.request.url)),
            elapsed,
            redact_headers(response.headers, self._secrets),
            text,
        )

    async def _error_for(self, response: httpx.Response) -> APIResponseError:
        body = await _read_capped(response, _ERROR_BODY_CAP)
        self._log_response(response, body, 0.0)
        error = error_from_response(
            response.status_code,
            body,
            request_id=response.headers.get("x-request-id"),
            max_length=self._max_error_length,
            scrub=self._secrets,
        )
        if 300 <= response.status_code < 400:
            error = self._redirect_error(response, error)
        return endpoint_hint(error, self.base_url, self._secrets)

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

    async def _send(
        self, method: str, path: str, body: Body | None, stream: bool, retries: Retries | None
    ) -> httpx.Response:
        """Send with retries; return a 2xx response (its body already read unless ``stream``)."""
        client = self._require_client()
        if retries is None:
            retries = self.retry_policy.start()
        policy = retries.policy
        attempt = 0
        while True:
            request = self._build(method, path, body, stream)
            tracer = _ConnectionTracer()
            request.extensions["trace"] = tracer
            self._log_request(request, body, attempt)
            attempt += 1
            try:
                # ``timeout`` bounds the attempt as a whole (a stream: until its headers), not
                # only each read: a server trickling bytes cannot hold a call open.
                response = await _within(self._timeout, _exchange(client, request, stream))
            except RETRYABLE_EXCEPTIONS as exc:
                if not tracer.answered and retries.free_resend(exc, reused=tracer.reused):
                    # The keep-alive race: a pooled connection the server had closed answered
                    # nothing. The request was not answered; send it again at once.
                    continue
                if retries.exhausted:
                    raise _connection_error(exc, method, str(request.url)) from None
                await retries.backoff(type(exc).__name__)
                continue
            if response.status_code < 300:
                return response
            error: ChatAPIException
            try:
                error = await self._error_for(response)
            except RETRYABLE_EXCEPTIONS as exc:
                error = _connection_error(exc, method, str(request.url))
            finally:
                await response.aclose()
            invalid = is_request_validation_error(error)  # deterministic (llama.cpp's 500)
            if invalid and isinstance(error, APIResponseError):
                error = content_hint(error, body, self._secrets)
            if retries.exhausted or invalid or not policy.retryable_status(response.status_code):
                raise error
            await retries.backoff(f"HTTP {response.status_code}", response.headers)

    @contextmanager
    def _network_errors(self, method: str, path: str) -> Iterator[None]:
        """The network boundary: every failure leaves it as one of our exceptions, scrubbed.

        Retryable httpx failures are mapped where they are retried (``_send``); this maps the
        rest (a protocol error, an invalid URL or header, an OS error, an exception group
        from the network stack) and scrubs secrets from whatever passes through.
        """
        try:
            yield
        except ChatAPIException as exc:
            scrub_exception(exc, self._secrets)
            raise
        except Exception as exc:
            root, query = _split_query(self.base_url)
            url = _with_query(f"{root.rstrip('/')}/{path.lstrip('/')}", query)
            error = _connection_error(_leaf(exc), method, url)
            scrub_exception(error, self._secrets)
            raise error from None

    def retries(self) -> Retries:
        """A fresh retry budget for one call (shared by every retry path of that call)."""
        return self.retry_policy.start()

    async def request(self, method: str, path: str, body: Body | None = None) -> bytes:
        """Send a request (retrying as configured) and return the successful body."""
        started = time.perf_counter()
        with self._network_errors(method, path):
            response = await self._send(method, path, body, False, None)
        data = response.content  # read (and retried) by _send
        await response.aclose()
        if self._log_responses:
            self._log_response(response, data, time.perf_counter() - started)
        return data

    @asynccontextmanager
    async def stream(
        self, path: str, body: Body, retries: Retries | None = None
    ) -> AsyncIterator[StreamBody]:
        """POST and yield the body of the open streaming response as it arrives.

        The response is closed when the block exits. Failures before the response headers
        are retried; nothing is retried afterwards. Network failures while reading raise
        ``APIConnectionError`` / ``APITimeoutError``. When the block exits normally, what the
        reader left unread (the end of the body after ``[DONE]``) is read briefly by a
        background task, so that the connection goes back to the pool instead of being
        closed; the block itself exits at once.
        """
        with self._network_errors("POST", path):
            response = await self._send("POST", path, body, True, retries)
        chunks = _body_chunks(response)
        handed_off = False
        try:
            if self._log_responses:
                self._log_response(response, None, 0.0)
            content_type = response.headers.get("content-type", "none")
            tracer = response.request.extensions.get("trace")
            sent_at = tracer.sent_at if isinstance(tracer, _ConnectionTracer) else time.monotonic()
            yield StreamBody(chunks, content_type, sent_at)
            if not response.is_closed:
                # Never delays the caller: the reply is complete, the rest is for reuse.
                task = asyncio.get_running_loop().create_task(_drain_and_close(chunks, response))
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


class _AttemptTimeout(httpx.TimeoutException):
    """One attempt took longer than ``timeout`` as a whole (retried like any timeout)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no complete response within {seconds:g}s")
        self.seconds = seconds


async def _exchange(
    client: httpx.AsyncClient, request: httpx.Request, stream: bool
) -> httpx.Response:
    """Send ``request``; unless streaming, read the whole body of a success."""
    response = await client.send(request, stream=True)
    if not stream and response.status_code < 300:
        # A connection lost mid-body is retried like one lost before the headers.
        await _read_or_close(response)
    return response


if sys.version_info >= (3, 11):

    async def _bounded(seconds: float, work: Awaitable[T]) -> T:
        """``await work``, raising ``TimeoutError`` after ``seconds``.

        Not ``asyncio.wait_for``: on Python 3.10/3.11 it returns the result of work that
        finished just as the caller was cancelled, so a cancelled task keeps running.
        ``asyncio.timeout`` runs the work in the calling task and never loses a cancellation.
        """
        async with asyncio.timeout(seconds):
            return await work

else:  # pragma: no cover

    async def _bounded(seconds: float, work: Awaitable[T]) -> T:
        """``await work``, raising ``asyncio.TimeoutError`` after ``seconds`` (see above);
        a cancellation of the caller always cancels the work and is re-raised."""
        task = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait({task}, timeout=seconds)
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.wait({task})
            raise
        if not done:
            task.cancel()
            await asyncio.wait({task})
            raise asyncio.TimeoutError
        return task.result()


async def _within(seconds: float, work: Awaitable[T]) -> T:
    try:
        return await _bounded(seconds, work)
    except asyncio.TimeoutError:  # the builtin TimeoutError on 3.11+
        raise _AttemptTimeout(seconds) from None


class StreamBody:
    """The body of an open streaming response, as it arrives, its content type and when
    its attempt was sent (the stream's first-event deadline counts from there)."""

    __slots__ = ("_chunks", "content_type", "sent_at")

    def __init__(self, chunks: AsyncIterator[bytes], content_type: str, sent_at: float) -> None:
        self._chunks = chunks
        self.content_type = content_type
        self.sent_at = sent_at

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks


class _ConnectionTracer:
    """httpcore's ``trace`` extension for one attempt: was a pooled connection reused?

    A new connection reports ``connection.connect_*`` events before the request is sent; a
    reused one goes straight to sending (``http11.*`` / ``http2.*``). A transport that reports
    nothing (a mock) counts as a new connection.
    """

    __slots__ = ("answered", "connected", "sent", "sent_at")

    def __init__(self) -> None:
        self.sent_at = time.monotonic()  # when this attempt started
        self.connected = False
        self.sent = False
        self.answered = False  # the response headers arrived

    async def __call__(self, name: str, info: dict[str, object]) -> None:
        if name.startswith("connection.connect_"):
            self.connected = True
        elif name.startswith(("http11.", "http2.")):
            self.sent = True
            if name.endswith("receive_response_headers.complete"):
                self.answered = True

    @property
    def reused(self) -> bool:
        return self.sent and not self.connected


async def _body_chunks(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """The response body as it arrives, with network failures mapped to our exceptions."""
    url = redact_url(str(response.request.url))
    try:
        async with aclosing(_generator(response.aiter_bytes())) as chunks:
            async for chunk in chunks:
                yield chunk
    except httpx.TimeoutException as exc:
        raise APITimeoutError(
            f"stream timed out ({type(exc).__name__}): {url}", {"error": type(exc).__name__}
        ) from None
    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise APIConnectionError(
            f"stream interrupted ({type(exc).__name__}): {url}", {"error": type(exc).__name__}
        ) from None


def _generator(chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """httpx's body iterators, typed as what they are (async generators, with ``aclose``)."""
    return cast("AsyncGenerator[bytes, None]", chunks)


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read the rest of a body whose reader stopped early, within a short bound.

    A body that does not end promptly (or fails) is left to be closed with its connection:
    the reply is already complete, so this must never turn it into an error.
    """

    async def rest() -> None:
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > _DRAIN_BYTES:
                return

    with suppress(asyncio.TimeoutError, ChatAPIException):
        await _bounded(_DRAIN_SECONDS, rest())  # a cancellation is never swallowed here


async def _drain_and_close(chunks: AsyncGenerator[bytes, None], response: httpx.Response) -> None:
    try:
        if not response.is_closed:
            await _drain(chunks)
    finally:
        await chunks.aclose()
        await response.aclose()


async def _read_or_close(response: httpx.Response) -> None:
    """Read the whole body; on failure close the response before re-raising."""
    try:
        await response.aread()
    except BaseException:
        await response.aclose()
        raise


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    """Read at most ``cap`` bytes of a body (error pages can be huge), then stop."""
    parts: list[bytes] = []
    size = 0
    async with aclosing(_generator(response.aiter_bytes())) as chunks:  # closed now, not by GC
        async for chunk in chunks:
            parts.append(chunk)
            size += len(chunk)
            if size >= cap:
                break
    return b"".join(parts)[:cap]


def _response_preview(data: bytes, secrets: tuple[str, ...], limit: int = 4000) -> str:
    # Redact and elide before cutting, so neither a secret nor base64 shows even in part.
    text = redact_text(data.decode("utf-8", errors="replace"), secrets)
    return _truncate_text(elide_base64(text), limit)


def _truncate_text(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} more characters]"


def _body_preview(body: Body | None, secrets: tuple[str, ...]) -> str:
    if body is None:
        return ""
    if isinstance(body, bytes):
        text = redact_text(body.decode("utf-8", errors="replace"), secrets)
        return _truncate_text(elide_base64(text), 8000)
    preview = getattr(body, "preview", None)  # request.MediaBody describes its media
    if callable(preview):
        return _truncate_text(elide_base64(redact_text(str(preview()), secrets)), 8000)
    return f"<streamed body, {body.content_length} bytes, media elided>"
