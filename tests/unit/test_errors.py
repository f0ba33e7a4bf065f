"""HTTP failures map to the most specific exception, with details (respx-mocked)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from openai_chatapi import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ChatAgent,
    ChatAPIException,
    ConfigurationError,
    InternalServerError,
    ModelConfig,
    ModelNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RuntimeConfig,
    TokenLimitError,
)

from ..support.fakes import API_KEY, BASE_URL, completion


def _err(message: str, type_: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


STATUS_CASES: list[tuple[int, dict[str, Any], type[Exception]]] = [
    (400, _err("bad temperature", "invalid_request_error"), BadRequestError),
    (422, _err("unprocessable"), BadRequestError),
    (
        401,
        _err("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
        AuthenticationError,
    ),
    (403, _err("not allowed", "permission_error"), PermissionDeniedError),
    (404, _err("no such route"), NotFoundError),
    (
        404,
        _err("The model `gpt-9` does not exist", "invalid_request_error", "model_not_found"),
        ModelNotFoundError,
    ),
    (
        400,
        _err(
            "This model's maximum context length is 8192 tokens",
            "invalid_request_error",
            "context_length_exceeded",
        ),
        TokenLimitError,
    ),
    (400, _err("too long", None, "string_above_max_length"), TokenLimitError),
    (429, _err("Rate limit reached", "requests", "rate_limit_exceeded"), RateLimitError),
    (500, _err("The server had an error", "server_error"), InternalServerError),
    (502, _err("bad gateway"), InternalServerError),
    (503, _err("overloaded"), InternalServerError),
    (504, _err("timeout upstream"), InternalServerError),
    (409, _err("conflict"), APIStatusError),
]


@pytest.mark.parametrize(("status", "body", "expected"), STATUS_CASES)
@respx.mock(base_url=BASE_URL)
async def test_status_maps_to_exception(
    respx_mock: respx.MockRouter, status: int, body: dict[str, Any], expected: type[Exception]
) -> None:
    respx_mock.post("/chat/completions").respond(
        status, json=body, headers={"x-request-id": "req_123"}
    )
    async with ChatAgent(
        ModelConfig(api_base_url=BASE_URL, api_key=API_KEY), RuntimeConfig(enable_logging=False)
    ) as agent:
        with pytest.raises(expected) as info:
            await agent.chat("hi")
    exc = info.value
    assert type(exc) is expected
    assert isinstance(exc, ChatAPIException)
    assert exc.details["status_code"] == status
    assert exc.details["request_id"] == "req_123"
    assert exc.details["error_code"] == body["error"]["code"]
    assert exc.details["error_type"] == body["error"]["type"]
    assert body["error"]["message"] in exc.message
    assert agent.history == ()


@respx.mock(base_url=BASE_URL)
async def test_model_not_found_error_code_without_404(respx_mock: respx.MockRouter) -> None:
    respx_mock.post("/chat/completions").respond(
        400, json=_err("unknown model", "invalid_request_error", "model_not_found")
    )
    async with ChatAgent(
        ModelConfig(api_base_url=BASE_URL), RuntimeConfig(enable_logging=False)
    ) as a:
        with pytest.raises(ModelNotFoundError):
            await a.chat("hi")


@respx.mock(base_url=BASE_URL)
async def test_a_big_error_page_is_described_by_its_whole_size(
    respx_mock: respx.MockRouter,
) -> None:
    # Only its first 64 KiB are read: the message gave that as the page's size.
    page = b"<html>" + b"x" * 100_000 + b"</html>"

    class Chunked(httpx.AsyncByteStream):  # no Content-Length
        def __init__(self, *pieces: bytes) -> None:
            self.pieces = pieces

        async def __aiter__(self) -> AsyncIterator[bytes]:
            for piece in self.pieces:
                yield piece

    route = respx_mock.post("/chat/completions")
    route.side_effect = [
        httpx.Response(502, content=page, headers={"content-type": "text/html"}),
        httpx.Response(502, stream=Chunked(page[:50_000], page[50_000:])),
        httpx.Response(502, stream=Chunked(b"<html>short</html>")),
    ]
    async with ChatAgent(
        ModelConfig(api_base_url=BASE_URL), RuntimeConfig(enable_logging=False)
    ) as a:
        for size in (f"{len(page)} bytes", "more than 65536 bytes", "18 bytes"):
            with pytest.raises(InternalServerError) as info:
                await a.chat("hi")
            assert f"non-JSON error page ({size})" in info.value.message


@respx.mock(base_url=BASE_URL)
async def test_non_json_error_page_and_plain_detail(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post("/chat/completions")
    route.side_effect = [
        httpx.Response(502, text="<html><body>Bad Gateway</body></html>"),
        httpx.Response(401, json={"detail": "Invalid API key"}),
        httpx.Response(500, text="Internal Server Error"),
    ]
    async with ChatAgent(
        ModelConfig(api_base_url=BASE_URL), RuntimeConfig(enable_logging=False)
    ) as a:
        with pytest.raises(InternalServerError) as info:
            await a.chat("hi")
        assert "non-JSON error page" in info.value.message
        with pytest.raises(AuthenticationError) as auth:
            await a.chat("hi")
        assert "Invalid API key" in auth.value.message
        with pytest.raises(InternalServerError) as plain:
            await a.chat("hi")
        assert "Internal Server Error" in plain.value.message


@respx.mock(base_url=BASE_URL)
async def test_long_errors_are_truncated(respx_mock: respx.MockRouter) -> None:
    respx_mock.post("/chat/completions").respond(400, json=_err("x" * 5000))
    rt = RuntimeConfig(enable_logging=False, max_error_length=100)
    async with ChatAgent(ModelConfig(api_base_url=BASE_URL), rt) as agent:
        with pytest.raises(BadRequestError) as info:
            await agent.chat("hi")
    assert len(info.value.message) < 200
    assert "more characters" in info.value.message
    rt_full = RuntimeConfig(enable_logging=False, truncate_long_errors=False)
    async with ChatAgent(ModelConfig(api_base_url=BASE_URL), rt_full) as agent:
        with pytest.raises(BadRequestError) as info:
            await agent.chat("hi")
    assert "x" * 5000 in info.value.message


@respx.mock(base_url=BASE_URL)
async def test_invalid_success_bodies_raise_api_response_error(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.post("/chat/completions")
    route.side_effect = [
        httpx.Response(200, text="{not json"),
        httpx.Response(200, json={**completion("x"), "choices": []}),
        httpx.Response(200, json={"choices": "nope"}),
    ]
    async with ChatAgent(
        ModelConfig(api_base_url=BASE_URL), RuntimeConfig(enable_logging=False)
    ) as a:
        for _ in range(3):
            with pytest.raises(APIResponseError) as info:
                await a.chat("hi")
            assert type(info.value) is APIResponseError
        assert a.history == ()


async def test_connection_refused_is_api_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = ModelConfig(api_base_url=f"http://127.0.0.1:{port}/v1")
    async with ChatAgent(cfg, RuntimeConfig(enable_logging=False)) as agent:
        with pytest.raises(APIConnectionError) as info:
            await agent.chat("hi")
    assert info.value.details["error"] == "ConnectError"
    assert agent.get_stats()["failures"] == 1


@respx.mock(base_url=BASE_URL)
async def test_timeout_is_api_timeout_error(respx_mock: respx.MockRouter) -> None:
    respx_mock.post("/chat/completions").mock(side_effect=httpx.ReadTimeout("slow"))
    async with ChatAgent(
        ModelConfig(api_base_url=BASE_URL), RuntimeConfig(enable_logging=False)
    ) as a:
        with pytest.raises(APITimeoutError) as info:
            await a.chat("hi")
    assert isinstance(info.value, APIConnectionError)
    assert a.history == ()


async def test_using_a_closed_agent_is_a_clear_error() -> None:
    agent = ChatAgent(ModelConfig(api_base_url=BASE_URL), RuntimeConfig(enable_logging=False))
    await agent.aclose()  # a never-opened agent opens on first use; a closed one refuses
    with pytest.raises(ConfigurationError) as info:
        await agent.chat("hi")
    assert "closed" in info.value.message and "async with" in info.value.message


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (500, InternalServerError),
        ("400", BadRequestError),
        (429, RateLimitError),
        ("invalid_request_error", APIResponseError),
    ],
)
def test_in_stream_error_with_numeric_code_maps_like_a_status(
    code: Any, expected: type[Exception]
) -> None:
    from openai_chatapi._errors import error_from_payload

    exc = error_from_payload({"error": {"message": "boom", "code": code}})
    assert type(exc) is expected
    assert exc.details["status_code"] is None


def test_typed_attributes_are_none_when_absent_and_never_of_the_wrong_type() -> None:
    from openai_chatapi import APIConnectionError, ChatAPIException

    bare = APIConnectionError("refused", {"error": "ConnectError"})
    assert (bare.status_code, bare.request_id, bare.body, bare.error_type, bare.code) == (
        None,
        None,
        None,
        None,
        None,
    )
    odd = ChatAPIException("x", {"status_code": True, "request_id": 5, "error_code": ["c"]})
    assert (odd.status_code, odd.request_id, odd.code) == (None, None, None)
    assert odd.details == {"status_code": True, "request_id": 5, "error_code": ["c"]}


def test_typed_attributes_of_a_payload_error_mirror_its_details() -> None:
    from openai_chatapi._errors import error_from_payload

    payload = {"error": {"message": "slow down", "type": "requests", "code": "rate_limit"}}
    error = error_from_payload(payload, status=429, request_id="req-1", body="{...}")
    assert error.status_code == 429
    assert error.request_id == "req-1"
    assert error.error_type == "requests"
    assert error.code == "rate_limit"
    assert error.body == "{...}"
    assert error.details["error_code"] == "rate_limit"  # the seed's dict is unchanged
