"""``MediaSettings`` and ``RuntimeConfig`` share one definition of the media fields: the
same defaults, the same validation and the same error for a bad value; and the media
machinery stays unloaded until it is used."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import pytest

from openai_chatapi import ConfigurationError, RuntimeConfig, _config, _parts
from openai_chatapi.media import ImageDetail, MediaSettings, VideoMode

BAD_VALUES = [
    ("image_detail", "ultra"),
    ("image_max_side", 10),
    ("image_max_side", True),
    ("image_max_bytes", 100),
    ("max_media_bytes", 0),
    ("video_mode", "sometimes"),
    ("video_frames", 0),
    ("video_fps", -1),
    ("video_fps", float("nan")),
    ("video_max_frames", 1.5),
    ("video_frame_max_side", 8),
    ("images_only_hosts", "api.openai.com"),
    ("images_only_hosts", ("api.openai.com", 3)),
]


def _error(factory: Any, name: str, value: Any) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        factory(**{name: value})
    return info.value


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_a_bad_media_value_gets_one_error_from_both(name: str, value: Any) -> None:
    from_settings = _error(MediaSettings, name, value)
    from_config = _error(RuntimeConfig, name, value)
    assert str(from_settings) == str(from_config)
    assert from_settings.details == from_config.details
    assert from_settings.details["field"] == name


def test_the_fields_and_defaults_are_runtime_configs() -> None:
    config = {f.name: f for f in dataclasses.fields(RuntimeConfig)}
    for setting in dataclasses.fields(MediaSettings):
        assert setting.name in config
        assert setting.type == config[setting.name].type
        assert setting.default == config[setting.name].default
    defaults = MediaSettings.from_config(RuntimeConfig())
    assert defaults == MediaSettings()


def test_host_lists_are_normalised_for_matching() -> None:
    settings = MediaSettings(images_only_hosts=[" Images.Example.COM "])  # type: ignore[arg-type]
    assert settings.images_only_hosts == ("images.example.com",)


def test_the_literal_aliases_are_defined_once() -> None:
    assert VideoMode is _config.VideoMode
    assert ImageDetail is _parts.ImageDetail


def test_importing_the_package_loads_no_media_machinery() -> None:
    code = (
        "import sys, openai_chatapi\n"
        "loaded = [m for m in sys.modules if m.startswith('openai_chatapi.media')"
        " or m.split('.')[0] in ('PIL', 'av')]\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
