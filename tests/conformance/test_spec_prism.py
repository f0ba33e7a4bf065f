"""The official OpenAI spec as a judge: every payload scenario is sent through the real client
to Prism mocking ``../shared/upstream/openai-openapi.yaml`` (rewritten into OpenAPI 3.1 form)
and must be accepted; the errors Prism produces from the spec map to the right exceptions;
and where our schema and the spec disagree, ``scripts/check_schema.py`` and Prism agree.

Needs Prism (``PRISM_BIN``, or ``npm install --prefix .ci/node @stoplight/prism-cli@5.16.0``)
and the spec file; skips with the reason when either is absent.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest

from openai_chatapi import (
    AuthenticationError,
    BadRequestError,
    ChatAgent,
    ChatAPIException,
    ChatCompletion,
    ChatMessage,
    ConfigurationError,
    InternalServerError,
    ModelConfig,
    ModelList,
    RateLimitError,
    RuntimeConfig,
)
from openai_chatapi._errors import APIResponseError, APIStatusError

from ..support.fakes import SleepRecorder
from ..support.payload_scenarios import SCENARIOS, PayloadScenario, model_config, send
from ..support.prism_support import (
    PrismError,
    PrismServer,
    RecordingTransport,
    find_prism,
    write_spec,
)
from ..support.repo_scripts import REPO

pytestmark = pytest.mark.spec

OUR_SCHEMA = REPO / "schema" / "chat_completions.schema.json"
API_KEY = "sk-prism-0123456789abcdef"
# Prism parses the 3 MB spec before it listens: about a minute on a busy machine.
READY_TIMEOUT = 300.0
# Prism validates a streamed request, then cannot mock an event stream from a schema.
NO_SSE = "NO_COMPLEX_OBJECT_TEXT"

INVALID_BODIES: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown role",
        {"model": "gpt-4o", "messages": [{"role": "robot", "content": "hi"}]},
        "messages.0",
    ),
    (
        "temperature as text",
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"},
        "temperature",
    ),
    (
        "temperature above 2",
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "temperature": 2.5},
        "temperature",
    ),
    ("no messages", {"model": "gpt-4o"}, "messages"),
    (
        "input_audio of an unknown format",
        {
            "model": "gpt-4o",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_audio", "input_audio": {"data": "AA", "format": "ogg"}}
                    ],
                }
            ],
        },
        "messages.0",
    ),
    (
        "file part without its file",
        {"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "file"}]}]},
        "messages.0",
    ),
]


def _post(url: str, body: Any, **headers: str) -> httpx.Response:
    headers.setdefault("Authorization", f"Bearer {API_KEY}")
    return httpx.post(f"{url}/chat/completions", json=body, headers=headers, timeout=30)


@pytest.fixture(scope="session")
def prism(
    upstream: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrismServer]:
    """Prism mocking the 3.1 rewrite of the spec, proven to reject an invalid body first."""
    binary = find_prism()
    if binary is None:
        pytest.skip(
            "Prism not found: set PRISM_BIN or run "
            "`npm install --prefix .ci/node @stoplight/prism-cli@5.16.0`"
        )
    directory = tmp_path_factory.mktemp("prism")
    spec, counts = write_spec(upstream, directory)
    assert counts.nullable > 0, "the spec no longer uses 'nullable': revisit the rewrite"
    server = PrismServer(binary, spec, directory / "prism.log")
    try:
        server.start(READY_TIMEOUT)
    except PrismError as exc:
        pytest.fail(f"Prism did not start: {exc}")
    try:
        # Without this proof every later "accepted" would mean nothing.
        _, body, _ = INVALID_BODIES[0]
        answer = _post(server.url, body)
        if answer.status_code != 422:
            pytest.fail(
                f"Prism accepted an invalid body (HTTP {answer.status_code}): it is not "
                f"validating requests, so nothing it accepts proves anything.\n{server.log_tail()}"
            )
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- the judge works


@pytest.mark.parametrize(
    ("why", "body", "where"), INVALID_BODIES, ids=[i[0] for i in INVALID_BODIES]
)
def test_prism_rejects_invalid_bodies(
    prism: PrismServer, why: str, body: dict[str, Any], where: str
) -> None:
    answer = _post(prism.url, body)
    assert answer.status_code == 422, why
    # Prism names the offending property in the location, or for a missing one the message.
    found = [f"{'.'.join(v['location'])}: {v['message']}" for v in answer.json()["validation"]]
    assert any(where in line for line in found), found


def test_prism_accepts_null_where_the_spec_says_nullable(prism: PrismServer) -> None:
    # The rewrite must keep null legal where OpenAI allows it, not only make validation strict.
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": None,
        "stop": None,
    }
    assert _post(prism.url, body).status_code == 200


# --------------------------------------------------------------------------- every scenario


async def _run(
    scenario: PayloadScenario, url: str, *, strict: bool
) -> tuple[RecordingTransport, Any, ChatAPIException | None]:
    transport = RecordingTransport()
    config = model_config(scenario, api_base_url=url, api_key=API_KEY, model="gpt-4o-mini")
    runtime = RuntimeConfig(enable_logging=False, strict_parsing=strict, **scenario.runtime)
    result: Any = None
    error: ChatAPIException | None = None
    async with ChatAgent(config, runtime, http_transport=transport) as agent:
        try:
            result = await send(agent, scenario)
        except ChatAPIException as exc:
            error = exc
    return transport, result, error


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_scenario_payload_is_accepted_by_the_spec(
    prism: PrismServer, scenario: PayloadScenario
) -> None:
    transport, result, error = await _run(scenario, prism.url, strict=True)
    assert len(transport.exchanges) == 1
    sent = transport.exchanges[0]
    assert sent.status != 422, (
        "the official spec rejects this payload:\n  "
        + "\n  ".join(sent.problems)
        + f"\nbody: {sent.request_body[:2000]!r}"
    )
    if scenario.streams:
        # Accepted: Prism got past request validation, then cannot serialise a stream.
        assert sent.status == 500 and NO_SSE in sent.body.decode(), sent.body[:300]
        assert isinstance(error, InternalServerError)
        return
    assert sent.status == 200, sent.body[:300]
    # The mocked answer is generated from the spec: our lenient and strict models take it.
    completion = ChatCompletion.model_validate_json(sent.body)
    assert completion.choices
    if scenario.structured:
        # The mock's text is not the requested object: only the structured parse may fail.
        assert error is None or (
            type(error) is APIResponseError and "status_code" not in error.details
        ), error
    else:
        assert error is None, repr(error)
        assert isinstance(result, str)


async def test_every_message_kind_of_the_spec_is_sent_as_the_spec_wants(
    prism: PrismServer,
) -> None:
    """The spec's own message variants (test_wire_messages builds them from its schemas),
    each read into ChatMessage and sent by the client, are accepted by the same spec."""
    from ..integration.test_wire_messages import _spec_messages

    config = ModelConfig(api_base_url=prism.url, api_key=API_KEY, model="gpt-4o-mini")
    runtime = RuntimeConfig(enable_logging=False)
    transport = RecordingTransport()
    messages = _spec_messages()
    async with ChatAgent(config, runtime, http_transport=transport) as agent:
        for message in messages:
            agent.replace_history([ChatMessage(**message)])
            await agent.chat("next", add_to_history=False, auto_execute_tools=False)
    assert len(transport.exchanges) == len(messages)
    for message, sent in zip(messages, transport.exchanges, strict=True):
        assert sent.status == 200, f"{message['role']}: {sent.problems}"


# --------------------------------------------------------------------------- spec errors


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_spec_429_maps_to_rate_limit_error(prism: PrismServer, stream: bool) -> None:
    headers = {"Prefer": "code=429"}
    if stream:
        # Prism serialises the JSON 429 for the Accept header, and cannot as an event stream;
        # real servers send JSON errors whatever the Accept says.
        headers["Accept"] = "text/event-stream, application/json"
    transport = RecordingTransport(headers=headers)
    sleeps = SleepRecorder()
    config = ModelConfig(api_base_url=prism.url, api_key=API_KEY, model="gpt-4o", stream=stream)
    runtime = RuntimeConfig(enable_logging=False, max_retries=1, retry_delay=5.0)
    async with ChatAgent(config, runtime, http_transport=transport, sleep=sleeps) as agent:
        with pytest.raises(RateLimitError) as info:
            await agent.chat("hi")
    assert info.value.status_code == 429
    assert info.value.details["error_type"] is not None
    # The spec's 429 carries Retry-After; the one retry waited exactly that long.
    retry_after = float(transport.exchanges[0].headers["retry-after"])
    assert [e.status for e in transport.exchanges] == [429, 429]
    assert sleeps.delays == [retry_after]
    assert agent.history == ()


async def test_spec_security_401_maps_to_authentication_error(prism: PrismServer) -> None:
    # No key: the spec's bearer security requirement is not met and Prism answers 401.
    transport = RecordingTransport()
    config = ModelConfig(api_base_url=prism.url, api_key=None, model="gpt-4o")
    async with ChatAgent(
        config, RuntimeConfig(enable_logging=False), http_transport=transport
    ) as agent:
        with pytest.raises(AuthenticationError) as info:
            await agent.chat("hi")
    assert info.value.status_code == 401
    assert "authorization" not in transport.exchanges[0].headers


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
async def test_list_models_parses_the_spec_mock(prism: PrismServer, strict: bool) -> None:
    config = ModelConfig(api_base_url=prism.url, api_key=API_KEY)
    runtime = RuntimeConfig(enable_logging=False, strict_parsing=strict)
    async with ChatAgent(config, runtime, http_transport=RecordingTransport()) as agent:
        models = await agent.list_models()
    assert isinstance(models, ModelList)
    assert models.data and all(m.id for m in models.data)


# --------------------------------------------------------------------------- two judges agree


def _unmark_video_extension(defs: dict[str, Any]) -> None:
    for name in ("VideoUrlPart", "VideoUrl"):
        del defs[name]["x-extension"]


def _widen_temperature(defs: dict[str, Any]) -> None:
    defs["ChatCompletionRequest"]["properties"]["temperature"]["maximum"] = 3


async def _send_video(url: str) -> tuple[int, ChatAPIException | None]:
    transport = RecordingTransport()
    config = ModelConfig(api_base_url=url, api_key=API_KEY, model="gpt-4o")
    runtime = RuntimeConfig(enable_logging=False, video_mode="native")
    error: ChatAPIException | None = None
    async with ChatAgent(config, runtime, http_transport=transport) as agent:
        try:
            await agent.chat("What happens?", video_paths=["https://example.com/clip.mp4"])
        except ChatAPIException as exc:
            error = exc
    return transport.exchanges[0].status, error


async def _send_hot_temperature(url: str) -> tuple[int, ChatAPIException | None]:
    # Our client refuses the value before sending; the spec judge gets it raw.
    with pytest.raises(ConfigurationError):
        ModelConfig(api_base_url=url, temperature=2.5)
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "temperature": 2.5}
    return _post(url, body).status_code, None


PROBES: list[tuple[str, Callable[[dict[str, Any]], None], str, str, Any]] = [
    (
        "video_url part (our x-extension)",
        _unmark_video_extension,
        "<VideoUrlPart>.type",
        "enum values missing upstream",
        _send_video,
    ),
    (
        "temperature above 2",
        _widen_temperature,
        "ChatCompletionRequest.temperature",
        "maximum above upstream",
        _send_hot_temperature,
    ),
]


@pytest.mark.parametrize(
    ("probe", "mutate", "where", "problem", "sender"), PROBES, ids=[p[0] for p in PROBES]
)
async def test_check_schema_and_prism_agree_where_the_spec_disagrees(
    prism: PrismServer,
    check_schema: ModuleType,
    upstream: dict[str, Any],
    probe: str,
    mutate: Callable[[dict[str, Any]], None],
    where: str,
    problem: str,
    sender: Callable[[str], Any],
) -> None:
    """Something the official spec does not allow: check_schema flags it once our schema
    claims it as standard, and Prism rejects a payload that uses it."""
    ours = json.loads(OUR_SCHEMA.read_text(encoding="utf-8"))
    assert check_schema.check(ours, upstream).mismatches == []
    claimed = copy.deepcopy(ours)
    mutate(claimed["$defs"])
    flagged = check_schema.check(claimed, upstream).mismatches
    assert any(where in m.where and problem in m.problem for m in flagged), (
        check_schema.format_table(flagged)
    )
    status, error = await sender(prism.url)
    assert status == 422, probe
    if error is not None:
        assert isinstance(error, BadRequestError) and isinstance(error, APIStatusError)
        assert error.status_code == 422
