"""Check the project schema against OpenAI's published OpenAPI description.

Usage::

    python scripts/check_schema.py PATH_TO_OPENAPI_YAML [--schema PATH]

Every property of ``schema/chat_completions.schema.json`` that is not marked
``"x-extension": true`` must exist upstream at the same place (request body of
``POST /chat/completions``, its JSON and event-stream responses, ``GET /models``,
``GET /models/{model}``, the error body), with a compatible type, enum values that are a
subset of upstream's, numeric bounds inside upstream's, and no field required that upstream
leaves optional. Prints a table of mismatches and exits 1 on any; exits 0 with a summary
when the schema conforms.

The upstream document is OpenAPI 3.1 but still uses the 3.0 ``nullable: true`` keyword;
it is read as "null is also allowed" wherever it appears, including beside ``$ref``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "schema" / "chat_completions.schema.json"

_CHAT = ("paths", "/chat/completions", "post")
_JSON_200 = ("responses", "200", "content", "application/json", "schema")
# Our root definition -> where the same object lives in the OpenAPI document.
ROOTS: dict[str, tuple[str, ...]] = {
    "ChatCompletionRequest": (*_CHAT, "requestBody", "content", "application/json", "schema"),
    "ChatCompletion": (*_CHAT, "responses", "200", "content", "application/json", "schema"),
    "ChatCompletionChunk": (*_CHAT, "responses", "200", "content", "text/event-stream", "schema"),
    "ModelList": ("paths", "/models", "get", *_JSON_200),
    "Model": ("paths", "/models/{model}", "get", *_JSON_200),
    "ErrorResponse": ("components", "schemas", "ErrorResponse"),
}

_ANNOTATIONS = ("minimum", "maximum", "minItems", "maxItems", "additionalProperties")


@dataclass
class Alt:
    """One concrete alternative of a schema: a single JSON type and its constraints."""

    type: str | None  # None: any type
    enum: list[Any] | None = None
    properties: dict[str, list[Any]] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    items: list[Any] = field(default_factory=list)
    bounds: dict[str, Any] = field(default_factory=dict)
    name: str | None = None  # definition the alternative came from, for messages


@dataclass
class Mismatch:
    where: str
    problem: str
    ours: str
    upstream: str


@dataclass
class Result:
    mismatches: list[Mismatch] = field(default_factory=list)
    checked: int = 0

    def add(self, other: Result) -> None:
        self.mismatches.extend(other.mismatches)
        self.checked += other.checked


class Document:
    """A JSON/OpenAPI document with local ``$ref`` resolution."""

    def __init__(self, data: dict[str, Any], *, ours: bool) -> None:
        self.data = data
        self.ours = ours

    def pointer(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref is supported: {ref}")
        node: Any = self.data
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def alternatives(self, node: Any, name: str | None = None) -> list[Alt]:
        """Flatten $ref / allOf / anyOf / oneOf / type lists / nullable into alternatives."""
        if not isinstance(node, dict):
            return [Alt(None)]
        if self.ours and node.get("x-extension") is True:
            return []  # extensions are allowed to differ from upstream
        out: list[Alt] = []
        if "$ref" in node:
            ref = node["$ref"]
            out = self.alternatives(self.pointer(ref), ref.rsplit("/", 1)[-1])
        elif "allOf" in node:
            out = [self._merge([a for part in node["allOf"] for a in self.alternatives(part)])]
        elif "anyOf" in node or "oneOf" in node:
            for sub in node.get("anyOf", []) + node.get("oneOf", []):
                out.extend(self.alternatives(sub, name))
        else:
            out = self._leaf(node, name)
        if node.get("nullable") is True and not any(a.type == "null" for a in out):
            out.append(Alt("null"))
        return out

    def _leaf(self, node: dict[str, Any], name: str | None) -> list[Alt]:
        enum = [node["const"]] if "const" in node else node.get("enum")
        kind = node.get("type")
        if kind is None and enum is not None:
            kind = sorted({_json_type(v) for v in enum})
        elif kind is None and "properties" in node:
            kind = "object"
        kinds: list[str | None] = list(kind) if isinstance(kind, list) else [kind]
        alts = []
        for k in kinds:
            alt = Alt(k, name=name)
            if enum is not None and k is not None:
                alt.enum = [
                    v
                    for v in enum
                    if _json_type(v) == k or (k == "number" and _json_type(v) == "integer")
                ]
            alt.properties = {p: [s] for p, s in node.get("properties", {}).items()}
            alt.required = set(node.get("required", ()))
            alt.items = [node["items"]] if "items" in node else []
            alt.bounds = {key: node[key] for key in _ANNOTATIONS if key in node}
            alts.append(alt)
        return alts

    @staticmethod
    def _merge(parts: Iterable[Alt]) -> Alt:
        merged = Alt("object")
        for part in parts:
            if part.type not in ("object", None):
                continue
            merged.name = merged.name or part.name
            for prop, schemas in part.properties.items():
                merged.properties.setdefault(prop, []).extend(schemas)
            merged.required |= part.required
        return merged


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _describe(alts: list[Alt]) -> str:
    parts = []
    for a in alts:
        text = a.type or "any"
        if a.name:
            text = f"{a.name}:{text}"
        if a.enum is not None:
            text += "{" + ",".join(map(str, a.enum)) + "}"
        parts.append(text)
    return " | ".join(parts) or "(nothing)"


def _type_fits(ours: str | None, theirs: str | None) -> bool:
    return theirs is None or ours == theirs or (ours == "integer" and theirs == "number")


class Checker:
    def __init__(self, ours: Document, upstream: Document) -> None:
        self.ours = ours
        self.upstream = upstream

    def compare(self, our_node: Any, their_nodes: list[Any], where: str) -> Result:
        """Compare one of our schemas with the upstream schema(s) at the same place."""
        result = Result()
        our_alts = self.ours.alternatives(our_node)
        their_alts = [a for n in their_nodes for a in self.upstream.alternatives(n)]
        for alt in our_alts:
            label = f"{where}<{alt.name}>" if alt.name and len(our_alts) > 1 else where
            candidates = [t for t in their_alts if _type_fits(alt.type, t.type)]
            if not candidates:
                result.mismatches.append(
                    Mismatch(
                        label, "type not allowed upstream", _describe([alt]), _describe(their_alts)
                    )
                )
                continue
            # Match a union member by its tag (role/type const) first, then by fewest problems.
            tagged = [c for c in candidates if self._tags_match(alt, c)] or candidates
            trials = [self._compare_alt(alt, cand, label) for cand in tagged]
            result.add(min(trials, key=lambda r: len(r.mismatches)))
        return result

    def _tags_match(self, ours: Alt, theirs: Alt) -> bool:
        for prop, (schema,) in ours.properties.items():
            if not isinstance(schema, dict) or "const" not in schema:
                continue
            values = [
                a.enum
                for n in theirs.properties.get(prop, [])
                for a in self.upstream.alternatives(n)
            ]
            if values and not any(v is not None and schema["const"] in v for v in values):
                return False
        return True

    def _compare_alt(self, ours: Alt, theirs: Alt, where: str) -> Result:
        result = Result()

        def bad(problem: str, our_text: str, their_text: str, at: str = where) -> None:
            result.mismatches.append(Mismatch(at, problem, our_text, their_text))

        if theirs.enum is not None:
            if ours.enum is None:
                bad(
                    "ours accepts any value, upstream an enum", ours.type or "any", str(theirs.enum)
                )
            elif extra := [v for v in ours.enum if v not in theirs.enum]:
                bad("enum values missing upstream", str(extra), str(theirs.enum))
        for key in ("minimum", "minItems"):
            if (
                key in ours.bounds
                and key in theirs.bounds
                and ours.bounds[key] < theirs.bounds[key]
            ):
                bad(f"{key} below upstream", str(ours.bounds[key]), str(theirs.bounds[key]))
        for key in ("maximum", "maxItems"):
            if (
                key in ours.bounds
                and key in theirs.bounds
                and ours.bounds[key] > theirs.bounds[key]
            ):
                bad(f"{key} above upstream", str(ours.bounds[key]), str(theirs.bounds[key]))
        if ours.type == "array" and ours.items:
            result.add(self.compare(ours.items[0], theirs.items or [{}], f"{where}[]"))
        if ours.type != "object":
            return result
        free_form = not theirs.properties
        if not free_form and (extra := sorted(ours.required - theirs.required)):
            bad("required here, optional upstream", str(extra), str(sorted(theirs.required)))
        for prop, (schema,) in ours.properties.items():
            if isinstance(schema, dict) and schema.get("x-extension") is True:
                continue
            at = f"{where}.{prop}"
            result.checked += 1
            if free_form:
                continue
            if prop not in theirs.properties:
                bad("property missing upstream", prop, "(absent)", at)
                continue
            result.add(self.compare(schema, theirs.properties[prop], at))
        return result


def _reachable(defs: dict[str, Any], roots: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            text = json.dumps(defs[name])
            todo.extend(n for n in defs if f'"#/$defs/{n}"' in text)
    return seen


def load_openapi(path: Path) -> dict[str, Any]:
    import yaml  # type: ignore[import-untyped,unused-ignore]

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("rb") as fh:
        data: dict[str, Any] = yaml.load(fh, Loader=loader)  # a safe loader: plain data only
    return data


def check(schema: dict[str, Any], openapi: dict[str, Any]) -> Result:
    """Compare ``schema`` (ours) with ``openapi`` (upstream); return mismatches and a count."""
    ours = Document(schema, ours=True)
    upstream = Document(openapi, ours=False)
    checker = Checker(ours, upstream)
    result = Result()
    defs: dict[str, Any] = schema["$defs"]
    for name, location in ROOTS.items():
        node: Any = openapi
        try:
            for key in location:
                node = node[key]
        except (KeyError, TypeError):
            result.mismatches.append(
                Mismatch(name, "upstream location not found", name, "/".join(location))
            )
            continue
        result.add(checker.compare({"$ref": f"#/$defs/{name}"}, [node], name))
    for name in sorted(set(defs) - _reachable(defs, ROOTS)):
        if defs[name].get("x-extension") is not True:
            result.mismatches.append(
                Mismatch(name, "definition not reachable from any checked root", name, "-")
            )
    return result


def _clip(text: str, limit: int = 72) -> str:
    # Keep the tail: the end of a path names the offending property.
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def format_table(rows: list[Mismatch]) -> str:
    header = Mismatch("where", "problem", "ours", "upstream")
    cells = [[r.where, r.problem, r.ours, r.upstream] for r in [header, *rows]]
    cells = [[_clip(text) for text in row] for row in cells]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]

    def line(c: list[str]) -> str:
        return " | ".join(text.ljust(w) for text, w in zip(c, widths, strict=True)).rstrip()

    sep = "-+-".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), sep, *(line(c) for c in cells[1:])])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check our schema against the OpenAI spec.")
    parser.add_argument("openapi", type=Path, help="path to openai-openapi.yaml")
    parser.add_argument("--schema", type=Path, default=SCHEMA_PATH)
    args = parser.parse_args(argv)
    schema = json.loads(args.schema.read_text(encoding="utf-8"))
    result = check(schema, load_openapi(args.openapi))
    version = schema.get("x-schema-version", "?")
    if result.mismatches:
        print(format_table(result.mismatches))
        print(f"\n{len(result.mismatches)} mismatch(es) in schema {version}", file=sys.stderr)
        return 1
    extensions = json.dumps(schema).count('"x-extension": true')
    print(
        f"schema {version} conforms: {result.checked} properties checked against upstream "
        f"({extensions} extension markers skipped)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
