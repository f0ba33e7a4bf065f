"""Configuration: defaults of the reference, validation as a table, key handling."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from openai_chatapi import ChatConfig, ConfigurationError, ModelConfig, RuntimeConfig

from ..support.fakes import API_KEY


def test_reference_defaults() -> None:
    cfg = ModelConfig()
    assert (cfg.api_base_url, cfg.model, cfg.temperature, cfg.top_p) == (
        "https://api.openai.com/v1",
        "gpt-4o",
        0.7,
        1.0,
    )
    assert cfg.api_key is None
    assert (cfg.max_tokens, cfg.max_completion_tokens, cfg.n, cfg.stop, cfg.stream) == (
        None,
        None,
        1,
        None,
        False,
    )
    assert (cfg.frequency_penalty, cfg.presence_penalty) == (0.0, 0.0)
    assert (cfg.logprobs, cfg.top_logprobs, cfg.seed, cfg.user, cfg.reasoning_effort) == (
        None,
        None,
        None,
        None,
        None,
    )
    rt = RuntimeConfig()
    assert (rt.enable_logging, rt.log_level, rt.log_http_requests, rt.log_http_responses) == (
        True,
        "INFO",
        False,
        False,
    )
    assert (rt.enable_debug, rt.capture_token_usage, rt.capture_latency) == (False, True, True)
    assert (rt.timeout, rt.verify_ssl, rt.max_retries, rt.retry_delay) == (60, True, 0, 1.0)
    assert (rt.stream_chunk_callback, rt.stream_enable_progress) == (None, False)
    assert (rt.strict_parsing, rt.truncate_long_errors, rt.max_error_length) == (False, True, 500)


def test_chat_config_is_the_old_name_of_model_config() -> None:
    assert ChatConfig is ModelConfig
    assert isinstance(ChatConfig(model="m"), ModelConfig)


INVALID_MODEL: list[tuple[str, Any]] = [
    ("temperature", 2.5),
    ("temperature", -0.1),
    ("temperature", "hot"),
    ("top_p", 1.5),
    ("top_p", -0.01),
    ("frequency_penalty", 2.1),
    ("presence_penalty", -2.5),
    ("n", 0),
    ("n", 1.5),
    ("max_tokens", 0),
    ("max_tokens", -5),
    ("max_completion_tokens", 0),
    ("top_logprobs", 21),
    ("top_logprobs", -1),
    ("reasoning_effort", "extreme"),
    ("api_base_url", "ftp://example.com/v1"),
    ("api_base_url", "localhost:8080"),
    ("api_base_url", ""),
    ("stop", 5),
    ("stop", ["ok", 3]),
    ("model", ""),
    ("logprobs", "yes"),
]


@pytest.mark.parametrize(("field", "value"), INVALID_MODEL)
def test_invalid_model_config_names_field_and_value(field: str, value: Any) -> None:
    kwargs: dict[str, Any] = {field: value}
    if field == "top_logprobs":
        kwargs["logprobs"] = True
    with pytest.raises(ConfigurationError) as info:
        ModelConfig(**kwargs)
    assert info.value.details["field"] == field
    assert info.value.details["value"] == value
    assert field in str(info.value)


def test_top_logprobs_requires_logprobs() -> None:
    with pytest.raises(ConfigurationError) as info:
        ModelConfig(top_logprobs=3)
    assert info.value.details == {"field": "top_logprobs", "value": 3}
    assert ModelConfig(logprobs=True, top_logprobs=3).top_logprobs == 3


INVALID_RUNTIME: list[tuple[str, Any]] = [
    ("timeout", 0),
    ("timeout", -1),
    ("timeout", float("inf")),  # accepted before: a stalled server then held a call forever
    ("max_retries", -1),
    ("retry_delay", -0.5),
    ("log_level", "LOUD"),
    ("max_error_length", 0),
    ("stream_chunk_callback", "print"),
    ("max_tool_rounds", 0),
    ("tool_errors", "ignore"),
    ("video_mode", "gif"),
    ("image_detail", "ultra"),
    ("verify_ssl", "no"),
]


@pytest.mark.parametrize(("field", "value"), INVALID_RUNTIME)
def test_invalid_runtime_config_names_field_and_value(field: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        RuntimeConfig(**{field: value})
    assert info.value.details == {"field": field, "value": value}


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [*((RuntimeConfig, f, v) for f, v in INVALID_RUNTIME), (RuntimeConfig, "timeout", "x")]
    + [(ModelConfig, f, v) for f, v in INVALID_MODEL if f != "top_logprobs"],
)
def test_a_field_set_after_creation_is_checked_there_and_a_bad_value_not_kept(
    cls: Any, field: str, value: Any
) -> None:
    # It used to be accepted and fail at the next call, a negative timeout as if the network
    # had timed out (APITimeoutError), a text one as a connection failure.
    config = cls()
    before = dataclasses.asdict(config)
    with pytest.raises(ConfigurationError) as info:
        setattr(config, field, value)
    assert info.value.details == {"field": field, "value": value}
    assert dataclasses.asdict(config) == before


def test_a_good_value_set_after_creation_is_normalised_and_an_unknown_name_refused() -> None:
    runtime = RuntimeConfig()
    runtime.log_level = "debug"
    runtime.timeout = 5
    assert (runtime.log_level, runtime.timeout) == ("DEBUG", 5)
    with pytest.raises(ConfigurationError, match="did you mean 'timeout'"):
        runtime.timout = 1  # type: ignore[attr-defined]
    assert not hasattr(runtime, "timout")
    with pytest.raises(ConfigurationError, match="cannot be deleted"):
        del runtime.timeout  # the class default came back: `del cfg.model` sent "gpt-4o"
    assert runtime.timeout == 5
    config = ModelConfig(api_key="sk-first-000000")
    config.api_key = "sk-second-000000\n"  # as read from a file
    assert config.api_key == "sk-second-000000"
    copied = copy.deepcopy(config)
    with pytest.raises(ConfigurationError):
        copied.temperature = 9
    assert dataclasses.replace(config, temperature=0.1).temperature == 0.1


def test_log_level_is_case_insensitive() -> None:
    assert RuntimeConfig(log_level="debug").log_level == "DEBUG"


def test_api_key_falls_back_to_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    assert ModelConfig().api_key == API_KEY
    assert ModelConfig(api_key="sk-explicit").api_key == "sk-explicit"
    monkeypatch.delenv("OPENAI_API_KEY")
    assert ModelConfig().api_key is None


def test_repr_and_str_never_show_the_key() -> None:
    cfg = ModelConfig(api_key=API_KEY)
    assert API_KEY not in repr(cfg)
    assert API_KEY not in str(cfg)
    assert "gpt-4o" in repr(cfg)


def test_overrides_are_validated_and_unknown_names_refused() -> None:
    cfg = ModelConfig(temperature=0.3)
    assert cfg.with_overrides({"temperature": 1.2}).temperature == 1.2
    assert cfg.temperature == 0.3
    with pytest.raises(ConfigurationError) as info:
        cfg.with_overrides({"temprature": 1.0})
    assert info.value.details["field"] == "temprature"
    with pytest.raises(ConfigurationError) as info:
        cfg.with_overrides({"temperature": 3})
    assert info.value.details == {"field": "temperature", "value": 3}


def test_call_options_list_every_request_field_of_model_config_with_its_type() -> None:
    """``CallOptions`` and ``ModelConfig`` write the same 14 fields: they must agree."""
    import dataclasses
    from typing import get_type_hints

    from openai_chatapi import CallOptions
    from openai_chatapi._config import REQUEST_FIELDS

    config_types = get_type_hints(ModelConfig)
    option_types = get_type_hints(CallOptions)
    connection = {"api_base_url", "api_key", "stream"}  # per agent, not per call
    fields = [f.name for f in dataclasses.fields(ModelConfig) if f.name not in connection]
    assert list(option_types) == fields == list(REQUEST_FIELDS)
    for name in fields:
        assert option_types[name] == config_types[name], name


def test_every_request_field_is_a_parameter_the_request_builder_sends() -> None:
    from openai_chatapi._config import REQUEST_FIELDS
    from openai_chatapi._generated import ChatCompletionRequest
    from openai_chatapi._request import RequestOptions, build_payload

    known = {f.alias or name for name, f in ChatCompletionRequest.model_fields.items()}
    assert set(REQUEST_FIELDS) <= known
    config = ModelConfig(
        api_key="k",
        model="m",
        temperature=0.5,
        top_p=0.5,
        max_tokens=5,
        max_completion_tokens=6,
        frequency_penalty=0.5,
        presence_penalty=0.5,
        n=2,
        stop=["x"],
        logprobs=True,
        top_logprobs=2,
        seed=3,
        user="u",
        reasoning_effort="low",
    )
    payload = build_payload(config, [{"role": "user", "content": "hi"}], RequestOptions())
    assert set(REQUEST_FIELDS) <= set(payload)


@pytest.mark.parametrize(
    ("cls", "name", "near"),
    [
        (ModelConfig, "max_token", "max_tokens"),
        (RuntimeConfig, "timout", "timeout"),
        (RuntimeConfig, "bogus", None),
    ],
)
def test_an_unknown_field_is_a_configuration_error_naming_it(
    cls: Any, name: str, near: str | None
) -> None:
    # It used to be the generated __init__'s TypeError, outside the ChatAPIException family.
    with pytest.raises(ConfigurationError) as info:
        cls(**{name: 1})
    assert info.value.details == {"field": name}
    assert repr(name) in str(info.value)
    assert (
        (f"did you mean {near!r}" in str(info.value))
        if near
        else "did you mean" not in str(info.value)
    )
