"""Generate ``openai_chatapi/_generated.py`` from ``schema/chat_completions.schema.json``.

The schema describes the wire format once. Before generating, this script derives two
variants of every response-side definition (everything reachable from the response roots):

* the unprefixed, *lenient* model: every field optional and nullable, enum/const values
  widened to plain strings, required lists defaulting to ``[]``; unknown fields are kept.
  This is what the client returns, so that servers which omit or null fields still parse.
* a ``Strict``-prefixed twin that keeps the schema as written (required fields, enums).

Request-side definitions are generated exactly as written. datamodel-code-generator runs once,
with pinned options, on the combined schema; its output is formatted with ruff and headed
with a do-not-edit line, so a run is byte-for-byte reproducible.

Usage::

    python scripts/generate_models.py            # rewrite the module
    python scripts/generate_models.py --check    # exit 1 if the committed module is stale
    python scripts/generate_models.py --output PATH [--schema PATH]
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "schema" / "chat_completions.schema.json"
OUTPUT_PATH = ROOT / "openai_chatapi" / "_generated.py"

# The output depends on these versions; CI should install exactly these.
PINNED_GENERATOR_VERSION = "0.89.0"

RESPONSE_ROOTS = ("ChatCompletion", "ChatCompletionChunk", "Model", "ModelList", "ErrorResponse")
STRICT_PREFIX = "Strict"
DEFS_PREFIX = "#/$defs/"

GENERATOR_OPTIONS = (
    "--input-file-type=jsonschema",
    "--output-model-type=pydantic_v2.BaseModel",
    "--target-python-version=3.10",
    "--target-pydantic-version=2",
    "--enum-field-as-literal=all",
    "--use-union-operator",
    "--use-standard-collections",
    "--use-annotated",
    "--field-constraints",
    "--use-type-alias",
    "--use-default",
    "--extra-fields=allow",
    "--use-generic-base-class",
    "--use-schema-description",
    "--use-double-quotes",
    "--disable-timestamp",
    "--skip-root-model",
    "--collapse-root-models",
    "--keep-model-order",
    "--no-formatters",
    "--disable-warnings",
)

HEADER = (
    "# generated from schema/chat_completions.schema.json by scripts/generate_models.py"
    " — do not edit\n"
    "# Regenerate with `python scripts/generate_models.py`; CI runs it with --check.\n"
    '"""Pydantic models of the chat-completions wire format (generated; see the schema).\n'
    "\n"
    "Request models are exact. Response models are lenient (every field optional, unknown\n"
    "fields kept); each has a ``Strict``-prefixed twin enforcing what OpenAI marks required.\n"
    '"""\n'
)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(DEFS_PREFIX):
                yield value[len(DEFS_PREFIX) :]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def response_defs(defs: dict[str, Any]) -> list[str]:
    """Names of the definitions reachable from the response roots, in schema order."""
    seen: set[str] = set()
    todo = list(RESPONSE_ROOTS)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_refs(defs[name]))
    return [name for name in defs if name in seen]


def _rewrite_refs(node: Any, renamed: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(DEFS_PREFIX):
                target = value[len(DEFS_PREFIX) :]
                out[key] = DEFS_PREFIX + renamed.get(target, target)
            else:
                out[key] = _rewrite_refs(value, renamed)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, renamed) for item in node]
    return node


def _widen(node: Any) -> Any:
    """Drop enum/const so a lenient model accepts values servers invent (e.g. finish_reason)."""
    if isinstance(node, dict):
        return {k: _widen(v) for k, v in node.items() if k not in ("enum", "const")}
    if isinstance(node, list):
        return [_widen(item) for item in node]
    return node


def _is_nullable(prop: dict[str, Any]) -> bool:
    kind = prop.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(_is_nullable(v) for v in prop.get("anyOf", []) + prop.get("oneOf", []))


def _lenient_property(prop: dict[str, Any], required: bool) -> dict[str, Any]:
    prop = _widen(prop)
    if required and prop.get("type") == "array":
        # Keep `resp.choices[0]` / `models.data` usable without a None check.
        return {**prop, "default": []}
    if _is_nullable(prop):
        return prop
    description = prop.pop("description", None)
    wrapped: dict[str, Any] = {"anyOf": [prop, {"type": "null"}]}
    if description is not None:
        wrapped["description"] = description
    return wrapped


def _lenient(definition: dict[str, Any]) -> dict[str, Any]:
    required = set(definition.get("required", ()))
    out = {k: v for k, v in definition.items() if k not in ("required", "properties")}
    out["properties"] = {
        name: _lenient_property(copy.deepcopy(prop), name in required)
        for name, prop in definition.get("properties", {}).items()
    }
    # Lists with a [] default stay "required" so the field type is not Optional;
    # --use-default turns them into `list[X] = []`.
    keep = [name for name, prop in out["properties"].items() if "default" in prop]
    if keep:
        out["required"] = keep
    return out


def build_combined_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema handed to the generator: request defs, lenient defs, strict twins."""
    defs: dict[str, Any] = schema["$defs"]
    response = response_defs(defs)
    strict_names = {name: STRICT_PREFIX + name for name in response}
    combined: dict[str, Any] = {}
    for name, definition in defs.items():
        combined[name] = _lenient(definition) if name in strict_names else definition
    for name in response:
        twin = _rewrite_refs(copy.deepcopy(defs[name]), strict_names)
        twin["description"] = (
            f"Strict twin of `{name}`: fields OpenAI marks required must be present. "
            + twin.get("description", "")
        ).strip()
        combined[strict_names[name]] = twin
    return {
        "$schema": schema.get("$schema", "https://json-schema.org/draft/2020-12/schema"),
        "$defs": combined,
    }


def _run_generator(schema: dict[str, Any]) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "chat_completions.schema.json"
        target = Path(tmp) / "models.py"
        source.write_text(json.dumps(schema, indent=2), encoding="utf-8")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "datamodel_code_generator",
                f"--input={source}",
                f"--output={target}",
                *GENERATOR_OPTIONS,
            ],
            check=True,
            cwd=tmp,
        )
        return target.read_text(encoding="utf-8")


def _ruff_format(code: str) -> str:
    # --isolated: the output must not depend on whichever ruff config is found nearby.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "format",
            "--isolated",
            "--line-length=100",
            "--target-version=py310",
            "--stdin-filename=_generated.py",
            "-",
        ],
        input=code,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


_GENERATED_BASE = (
    "class BaseModel(_BaseModel):\n    model_config = ConfigDict(\n        extra='allow',\n    )\n"
)
_OUR_BASE = (
    "class WireModel(_BaseModel):\n"
    '    """Base of every generated model: unknown fields kept, validators built on first use."""\n'
    "\n"
    "    # defer_build: importing the module must not pay for ~60 validators nobody uses yet.\n"
    '    model_config = ConfigDict(extra="allow", defer_build=True)\n'
)


def _use_our_base_class(code: str) -> str:
    """Rename the generator's shared base and make every validator build lazily."""
    if code.count(_GENERATED_BASE) != 1:
        raise SystemExit("generate_models: generator output changed shape (shared base class)")
    code = code.replace(_GENERATED_BASE, _OUR_BASE)
    return code.replace("(BaseModel):\n", "(WireModel):\n")


def _strip_generator_header(code: str) -> str:
    lines = code.splitlines(keepends=True)
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    return "".join(lines)


def render(schema_path: Path = SCHEMA_PATH) -> str:
    """Return the full text of the generated module for the schema at ``schema_path``."""
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    code = _strip_generator_header(_run_generator(build_combined_schema(schema)))
    code = _use_our_base_class(code)
    version = schema.get("x-schema-version", "unversioned")
    code += (
        f'\n\nSCHEMA_VERSION = "{version}"\n'
        '"""Version of the schema these models were generated from."""\n'
    )
    return _ruff_format(HEADER + "\n" + code)


def _warn_on_version_drift() -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("datamodel-code-generator")
    except PackageNotFoundError:
        sys.exit(
            "generate_models.py: datamodel-code-generator is not installed in this Python "
            f"({sys.executable}); install the dev extra: pip install -e '.[dev]'"
        )
    if installed != PINNED_GENERATOR_VERSION:
        warnings.warn(
            f"datamodel-code-generator {installed} is installed but the committed module was "
            f"made with {PINNED_GENERATOR_VERSION}; output may differ",
            stacklevel=2,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the module is stale")
    parser.add_argument("--schema", type=Path, default=SCHEMA_PATH)
    parser.add_argument("--output", type=Path, default=OUTPUT_PATH)
    args = parser.parse_args(argv)
    _warn_on_version_drift()
    fresh = render(args.schema)
    if not args.check:
        args.output.write_text(fresh, encoding="utf-8")
        print(f"wrote {args.output}")
        return 0
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    if current == fresh:
        print(f"{args.output} is up to date")
        return 0
    diff = list(
        difflib.unified_diff(
            current.splitlines(),
            fresh.splitlines(),
            fromfile=f"{args.output} (committed)",
            tofile=f"{args.output} (fresh)",
            lineterm="",
        )
    )
    changed = sum(1 for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))
    print(f"{args.output} is stale: {changed} changed lines; rerun scripts/generate_models.py")
    print("\n".join(diff[:60]))
    if len(diff) > 60:
        print(f"... ({len(diff) - 60} more diff lines)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
