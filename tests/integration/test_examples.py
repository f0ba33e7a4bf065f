"""Smoke test: every example under ``openai_chatapi/examples/`` runs to completion against the
real local model server (the session's llama.cpp server), as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from openai_chatapi import ModelConfig

pytestmark = pytest.mark.live

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "openai_chatapi" / "examples"
# Arguments that make an example finish by itself instead of serving forever.
ARGUMENTS = {"example_5_fastapi_sse": ["--self-test"]}
# Bounds a hang only; a busy machine makes the small model slow.
TIMEOUT = 600


def _examples() -> list[str]:
    return sorted(path.stem for path in EXAMPLES.glob("example_*.py"))


def test_examples_are_found() -> None:
    assert "example_1_basic_chat" in _examples()


@pytest.mark.parametrize("name", _examples())
def test_example_runs_against_the_local_model(
    name: str, live_model_config: ModelConfig, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(
        OPENAI_BASE_URL=live_model_config.api_base_url,
        OPENAI_API_KEY=live_model_config.api_key or "",
        OPENAI_MODEL=live_model_config.model,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
    )
    command = [sys.executable, "-m", f"openai_chatapi.examples.{name}", *ARGUMENTS.get(name, [])]

    result = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT
    )

    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    assert result.stdout.strip()


def test_examples_use_the_public_api_only() -> None:
    # Examples teach: what they import is what users may import (besides their own helper).
    for path in EXAMPLES.glob("*.py"):
        private = [
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.lstrip().startswith(("from openai_chatapi", "import openai_chatapi"))
            and "._" in line.split(" import ")[0].replace("openai_chatapi.examples._endpoint", "")
        ]
        assert private == [], f"{path.name}: {private}"
