"""The repository's ``scripts/`` loaded as modules, and the official spec they check against."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = REPO.parent / "shared" / "upstream" / "openai-openapi.yaml"


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` imported as the module ``name``."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


def load_upstream(check_schema: ModuleType) -> dict[str, Any]:
    """The official OpenAPI spec as ``check_schema`` reads it; skips the test without it."""
    if not UPSTREAM.is_file():
        pytest.skip(f"official OpenAPI spec not found at {UPSTREAM}")
    data: dict[str, Any] = check_schema.load_openapi(UPSTREAM)
    return data
