"""Schemas derived from signatures, docstrings and types; argument and output validation."""

from __future__ import annotations

import dataclasses
import enum
import re
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, Optional

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from openai_chatapi._errors import APIResponseError, ConfigurationError, ToolExecutionError
from openai_chatapi._json_schema import drop_null_defaults
from openai_chatapi._output_schema import (
    json_schema_for_type,
    parse_structured,
    response_format_for,
)
from openai_chatapi.tools import derive_function_schema, parse_docstring

# --------------------------------------------------------------------------- gallery types


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Address(BaseModel):
    """A postal address."""

    street: str
    city: str
    zip_code: str | None = None
    country: str = "NL"


class Person(BaseModel):
    name: Annotated[str, Field(description="Full name", min_length=1)]
    address: Address
    tags: list[str] = []


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0


class Filters(TypedDict):
    text: str
    limit: int


class TreeNode(BaseModel):
    label: str
    children: list[TreeNode] = []


ADDRESS = {
    "description": "A postal address.",
    "type": "object",
    "properties": {
        "street": {"type": "string"},
        "city": {"type": "string"},
        "zip_code": {"type": ["string", "null"], "default": None},
        "country": {"type": "string", "default": "NL"},
    },
    "required": ["street", "city"],
}
# Strict mode: every field required, the optional ones nullable, no defaults, nothing extra.
STRICT_ADDRESS = {
    **ADDRESS,
    "properties": {
        **ADDRESS["properties"],
        "zip_code": {"type": ["string", "null"]},
        "country": {"type": ["string", "null"]},
    },
    "required": ["street", "city", "zip_code", "country"],
    "additionalProperties": False,
}


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


# --------------------------------------------------------------------------- gallery functions


def no_params() -> str:
    """Return the time."""
    return ""


def primitives(text: str, count: int, ratio: float, flag: bool) -> None:
    pass


def optionals(a: Optional[int], b: str | None = None, c: int = 3) -> None:  # noqa: UP045
    pass


def literals(mode: Literal["fast", "slow"], one: Literal["only"] = "only") -> None:
    pass


def enums(unit: Unit, priority: Priority = Priority.LOW) -> None:
    pass


def containers(
    items: list[int], pair: tuple[int, str], rest: tuple[float, ...], scores: dict[str, float]
) -> None:
    pass


def sets(ids: set[int]) -> None:
    pass


def nested_model(person: Person) -> None:
    pass


def dataclass_param(point: Point) -> None:
    pass


def typed_dict_param(filters: Filters) -> None:
    pass


def annotated_fields(
    days: Annotated[int, Field(description="How many days", ge=1, le=14)] = 3,
    query: Annotated[str, Field(max_length=20)] = "",
) -> None:
    pass


def recursive(tree: TreeNode) -> None:
    pass


def any_param(payload: Any) -> None:
    pass


def odd_names(json: str, model_config: int, title: str, _private: bool = False) -> None:
    pass


def list_of_models(addresses: list[Address]) -> None:
    pass


GALLERY: list[tuple[Callable[..., Any], dict[str, Any]]] = [
    (no_params, obj({})),
    (
        primitives,
        obj(
            {
                "text": {"type": "string"},
                "count": {"type": "integer"},
                "ratio": {"type": "number"},
                "flag": {"type": "boolean"},
            },
            ["text", "count", "ratio", "flag"],
        ),
    ),
    (
        optionals,
        obj(
            {
                "a": {"type": ["integer", "null"]},
                "b": {"type": ["string", "null"], "default": None},
                "c": {"type": "integer", "default": 3},
            },
            ["a"],
        ),
    ),
    (
        literals,
        obj(
            {
                "mode": {"type": "string", "enum": ["fast", "slow"]},
                "one": {"type": "string", "enum": ["only"], "default": "only"},
            },
            ["mode"],
        ),
    ),
    (
        enums,
        obj(
            {
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "priority": {"type": "integer", "enum": [1, 2], "default": 1},
            },
            ["unit"],
        ),
    ),
    (
        containers,
        obj(
            {
                "items": {"type": "array", "items": {"type": "integer"}},
                "pair": {
                    "type": "array",
                    "prefixItems": [{"type": "integer"}, {"type": "string"}],
                    "minItems": 2,
                    "maxItems": 2,
                },
                "rest": {"type": "array", "items": {"type": "number"}},
                "scores": {"type": "object", "additionalProperties": {"type": "number"}},
            },
            ["items", "pair", "rest", "scores"],
        ),
    ),
    (
        sets,
        obj(
            {"ids": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}},
            ["ids"],
        ),
    ),
    (
        nested_model,
        obj(
            {
                "person": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "description": "Full name", "minLength": 1},
                        "address": ADDRESS,
                        "tags": {"type": "array", "items": {"type": "string"}, "default": []},
                    },
                    "required": ["name", "address"],
                }
            },
            ["person"],
        ),
    ),
    (
        dataclass_param,
        obj(
            {
                "point": {
                    "type": "object",
                    "properties": {
                        "x": {"type": "number"},
                        "y": {"type": "number", "default": 0.0},
                    },
                    "required": ["x"],
                }
            },
            ["point"],
        ),
    ),
    (
        typed_dict_param,
        obj(
            {
                "filters": {
                    "type": "object",
                    "properties": {"text": {"type": "string"}, "limit": {"type": "integer"}},
                    "required": ["text", "limit"],
                }
            },
            ["filters"],
        ),
    ),
    (
        annotated_fields,
        obj(
            {
                "days": {
                    "type": "integer",
                    "description": "How many days",
                    "minimum": 1,
                    "maximum": 14,
                    "default": 3,
                },
                "query": {"type": "string", "maxLength": 20, "default": ""},
            }
        ),
    ),
    (
        recursive,
        {
            **obj({"tree": {"$ref": "#/$defs/TreeNode"}}, ["tree"]),
            "$defs": {
                "TreeNode": {
                    "type": "object",
                    "properties": {
                        "label": {"type": "string"},
                        "children": {
                            "type": "array",
                            "items": {"$ref": "#/$defs/TreeNode"},
                            "default": [],
                        },
                    },
                    "required": ["label"],
                }
            },
        },
    ),
    (any_param, obj({"payload": {}}, ["payload"])),
    (
        odd_names,
        obj(
            {
                "json": {"type": "string"},
                "model_config": {"type": "integer"},
                "title": {"type": "string"},
                "_private": {"type": "boolean", "default": False},
            },
            ["json", "model_config", "title"],
        ),
    ),
    (
        list_of_models,
        obj({"addresses": {"type": "array", "items": ADDRESS}}, ["addresses"]),
    ),
]


def _without_dataclass_extras(schema: Any) -> Any:
    """Dataclass and TypedDict schemas carry additionalProperties depending on pydantic version."""
    if isinstance(schema, dict):
        return {
            k: _without_dataclass_extras(v)
            for k, v in schema.items()
            if not (k == "additionalProperties" and v is False and "properties" in schema)
        }
    if isinstance(schema, list):
        return [_without_dataclass_extras(v) for v in schema]
    return schema


@pytest.mark.parametrize(("func", "expected"), GALLERY, ids=[f.__name__ for f, _ in GALLERY])
def test_gallery_schema(func: Callable[..., Any], expected: dict[str, Any]) -> None:
    schema = derive_function_schema(func)
    assert schema.name == func.__name__
    assert schema.strict is False
    assert schema.parameters["additionalProperties"] is False
    assert _without_dataclass_extras(schema.parameters) == _without_dataclass_extras(expected)


def test_gallery_has_at_least_fifteen_signatures() -> None:
    assert len(GALLERY) >= 15


STRICT_IMPOSSIBLE = {containers, any_param}  # free-form dict / Any: covered by a test below


@pytest.mark.parametrize("strict", [False, True], ids=["loose", "strict"])
@pytest.mark.parametrize("func", [f for f, _ in GALLERY], ids=[f.__name__ for f, _ in GALLERY])
def test_gallery_snapshot(func: Callable[..., Any], strict: bool, snapshot: Any) -> None:
    if strict and func in STRICT_IMPOSSIBLE:
        pytest.skip("strict mode cannot express this signature")
    schema = derive_function_schema(func, strict=strict)
    assert {
        "name": schema.name,
        "description": schema.description,
        "parameters": schema.parameters,
    } == snapshot


def _schema_keywords(node: Any) -> set[str]:
    """Every keyword used by a schema node or its sub-schemas (property names excluded)."""
    if isinstance(node, list):
        return set().union(*(_schema_keywords(item) for item in node))
    if not isinstance(node, dict):
        return set()
    found = set(node)
    for key, value in node.items():
        if key in ("properties", "$defs"):
            found |= set().union(*(_schema_keywords(sub) for sub in value.values()))
        elif key != "required":
            found |= _schema_keywords(value)
    return found


def test_no_title_noise_anywhere() -> None:
    for func, _ in GALLERY:
        for strict in (False, True):
            if func in (containers, any_param) and strict:
                continue
            params = derive_function_schema(func, strict=strict).parameters
            assert "title" not in _schema_keywords(params)


# --------------------------------------------------------------------------- strict mode


def weather(
    city: str,
    unit: Unit = Unit.CELSIUS,
    days: Annotated[int, Field(ge=1, le=14)] = 1,
    note: str | None = None,
    address: Address | None = None,
) -> None:
    """Get the weather."""


def test_strict_schema_requires_everything_and_makes_optionals_nullable() -> None:
    schema = derive_function_schema(weather, strict=True)
    assert schema.strict is True
    assert schema.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {
                "anyOf": [
                    {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    {"type": "null"},
                ]
            },
            "days": {"type": ["integer", "null"], "minimum": 1, "maximum": 14},
            "note": {"type": ["string", "null"]},
            "address": {"anyOf": [STRICT_ADDRESS, {"type": "null"}]},
        },
        "required": ["city", "unit", "days", "note", "address"],
        "additionalProperties": False,
    }


def test_strict_nested_objects_and_recursive_defs() -> None:
    params = derive_function_schema(recursive, strict=True).parameters
    assert params["$defs"]["TreeNode"] == {
        "type": "object",
        "properties": {
            "label": {"type": "string"},
            "children": {
                "anyOf": [
                    {"type": "array", "items": {"$ref": "#/$defs/TreeNode"}},
                    {"type": "null"},
                ]
            },
        },
        "required": ["label", "children"],
        "additionalProperties": False,
    }
    person = derive_function_schema(nested_model, strict=True).parameters["properties"]["person"]
    assert person["required"] == ["name", "address", "tags"]
    assert person["properties"]["address"] == STRICT_ADDRESS


def test_strict_moves_unsupported_constraints_into_description() -> None:
    params = derive_function_schema(annotated_fields, strict=True).parameters
    assert params["properties"]["query"] == {
        "type": ["string", "null"],
        "description": "(maxLength: 20)",
    }
    ids = derive_function_schema(sets, strict=True).parameters["properties"]["ids"]
    assert ids == {
        "type": "array",
        "items": {"type": "integer"},
        "description": "(uniqueItems: true)",
    }


def test_strict_fixed_tuple_becomes_bounded_array() -> None:
    def pairs(pair: tuple[int, str]) -> None:
        pass

    params = derive_function_schema(pairs, strict=True).parameters
    assert params["properties"]["pair"] == {
        "type": "array",
        "items": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "minItems": 2,
        "maxItems": 2,
    }


@pytest.mark.parametrize(("func", "param"), [(containers, "scores"), (any_param, "payload")])
def test_strict_rejects_what_strict_mode_cannot_express(
    func: Callable[..., Any], param: str
) -> None:
    derive_function_schema(func)  # fine without strict
    with pytest.raises(ConfigurationError, match=f"parameter '{param}' of function"):
        derive_function_schema(func, strict=True)


def test_discriminated_unions_are_plain_any_of_and_keep_null_defaults() -> None:
    params = derive_function_schema(adopt, strict=True).parameters
    pet = params["properties"]["pet"]
    assert "discriminator" not in pet
    assert [branch["properties"]["kind"] for branch in pet["anyOf"]] == [
        {"type": "string", "enum": ["cat"]},
        {"type": "string", "enum": ["dog"]},
    ]
    assert "discriminator" not in derive_function_schema(adopt).parameters["properties"]["pet"]
    kwargs = derive_function_schema(adopt, strict=True).validate_arguments(
        {"pet": {"kind": "dog", "good": None}}
    )
    assert kwargs == {"pet": Dog(kind="dog", good=True)}


def test_strict_null_means_default() -> None:
    schema = derive_function_schema(weather, strict=True)
    kwargs = schema.validate_arguments(
        '{"city": "Oslo", "unit": null, "days": null, "note": null, "address": null}'
    )
    # unit/days reject None, so null means "use the function's default"; note/address accept it.
    assert kwargs == {"city": "Oslo", "note": None, "address": None}


def test_null_defaults_are_dropped_from_a_copy() -> None:
    # The executor reports the arguments as sent, so validation must not edit them.
    data = {"pet": {"kind": "dog", "good": None}}
    assert derive_function_schema(adopt, strict=True).check(data) == {"pet": Dog(kind="dog")}
    assert data == {"pet": {"kind": "dog", "good": None}}
    loose = json_schema_for_type(Dog)
    assert drop_null_defaults(data["pet"], loose, {}) == {"kind": "dog"}
    assert data["pet"] == {"kind": "dog", "good": None}
    as_sent = {"kind": "dog", "good": False}
    assert drop_null_defaults(as_sent, loose, {}) is as_sent  # nothing dropped, nothing copied


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = 9


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool = True


def adopt(pet: Annotated[Cat | Dog, Field(discriminator="kind")]) -> None:
    pass


# --------------------------------------------------------------------------- docstrings


def google_style(city: str, days: int = 1) -> None:
    """Forecast for a city.

    Uses the national weather service.

    Args:
        city (str): Name of the city,
            in English.
        days: Number of days.

    Returns:
        The forecast.
    """


def numpy_style(city: str, days: int = 1) -> None:
    """Forecast for a city.

    Parameters
    ----------
    city : str
        Name of the city,
        in English.
    days : int, optional
        Number of days.

    Returns
    -------
    str
        The forecast.
    """


def rest_style(city: str, days: int = 1) -> None:
    """Forecast for a city.

    :param str city: Name of the city,
        in English.
    :param days: Number of days.
    :type days: int
    :returns: The forecast.
    """


@pytest.mark.parametrize("func", [google_style, numpy_style, rest_style])
def test_docstring_styles(func: Callable[..., Any]) -> None:
    schema = derive_function_schema(func)
    expected_description = "Forecast for a city."
    if func is google_style:
        expected_description += "\n\nUses the national weather service."
    assert schema.description == expected_description
    assert schema.parameters == obj(
        {
            "city": {"type": "string", "description": "Name of the city, in English."},
            "days": {"type": "integer", "description": "Number of days.", "default": 1},
        },
        ["city"],
    )


def test_parse_docstring_multiple_numpy_names_and_star_args() -> None:
    doc = parse_docstring(
        """Sum.

        Parameters
        ----------
        a, b : int
            Terms.
        """
    )
    assert doc == parse_docstring("Sum.\n\n:param a: Terms.\n:param b: Terms.")
    assert doc.params == {"a": "Terms.", "b": "Terms."}
    assert parse_docstring(None).description == ""
    assert parse_docstring("Just a summary.\nSecond line.").description == (
        "Just a summary.\nSecond line."
    )


def test_annotated_description_wins_over_docstring_and_overrides_apply() -> None:
    def f(days: Annotated[int, Field(description="from Field")]) -> None:
        """Summary.

        Args:
            days: from docstring
        """

    schema = derive_function_schema(f, name="renamed", description="Custom.")
    assert schema.name == "renamed"
    assert schema.description == "Custom."
    assert schema.parameters["properties"]["days"]["description"] == "from Field"


# --------------------------------------------------------------------------- decoration errors


class Plain:
    pass


def _needs(annotation: Any) -> Callable[..., Any]:
    def func(value: Any) -> None:
        pass

    func.__annotations__ = {"value": annotation}
    return func


@pytest.mark.parametrize("annotation", [Plain, Callable[[int], int], typing.IO[str]])
def test_unexpressible_types_name_parameter_and_function(annotation: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        derive_function_schema(_needs(annotation))
    assert "parameter 'value' of function 'func'" in info.value.message
    assert info.value.details["parameter"] == "value"


def test_signature_problems_raise_configuration_error() -> None:
    def star(*items: int) -> None:
        pass

    def double_star(**options: str) -> None:
        pass

    def positional(x: int, /) -> None:
        pass

    def missing(city, days: int) -> None:  # type: ignore[no-untyped-def]
        pass

    def field_default(x: int = Field(3)) -> None:
        pass

    cases: list[tuple[Callable[..., Any], str]] = [
        (star, "*items"),
        (double_star, "**options"),
        (positional, "positional-only"),
        (missing, "'city' of function 'missing' has no type annotation"),
        (field_default, "Annotated"),
    ]
    for func, text in cases:
        with pytest.raises(ConfigurationError, match=re.escape(text)):
            derive_function_schema(func)


def test_unresolvable_annotation_names_parameter() -> None:
    def f(city: str, item: LocalOnly) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    with pytest.raises(ConfigurationError, match="parameter 'item'"):
        derive_function_schema(f)

    def g(city: str) -> LocalOnly:  # type: ignore[name-defined]  # noqa: F821
        raise NotImplementedError

    # Only parameters matter: an unresolvable return annotation is ignored.
    assert derive_function_schema(g).parameters["required"] == ["city"]


def test_invalid_tool_name() -> None:
    with pytest.raises(ConfigurationError, match="name"):
        derive_function_schema(lambda: None)
    with pytest.raises(ConfigurationError, match="name"):
        derive_function_schema(no_params, name="has space")


def test_self_and_cls_are_skipped() -> None:
    class Service:
        def lookup(self, key: str) -> str:
            return key

        @classmethod
        def build(cls, size: int) -> None:
            pass

    assert derive_function_schema(Service.lookup).parameters == obj(
        {"key": {"type": "string"}}, ["key"]
    )
    # Bound methods already hide their first parameter.
    assert derive_function_schema(Service.build).parameters == obj(
        {"size": {"type": "integer"}}, ["size"]
    )
    assert derive_function_schema(Service().lookup).parameters["required"] == ["key"]


# --------------------------------------------------------------------------- argument validation


def test_validate_arguments_converts_to_python_values() -> None:
    def book(
        person: Person, unit: Unit, point: Point, when: tuple[int, str], ids: set[int]
    ) -> None:
        pass

    kwargs = derive_function_schema(book).validate_arguments(
        {
            "person": {"name": "Ada", "address": {"street": "Main", "city": "Delft"}},
            "unit": "fahrenheit",
            "point": {"x": 1},
            "when": [1, "x"],
            "ids": [1, 1, 2],
        }
    )
    assert kwargs == {
        "person": Person(name="Ada", address=Address(street="Main", city="Delft")),
        "unit": Unit.FAHRENHEIT,
        "point": Point(x=1.0),
        "when": (1, "x"),
        "ids": {1, 2},
    }


def test_omitted_parameters_are_left_to_function_defaults() -> None:
    schema = derive_function_schema(optionals)
    assert schema.validate_arguments('{"a": null}') == {"a": None}
    assert schema.validate_arguments('{"a": 1, "c": null}') == {"a": 1}
    assert schema.validate_arguments({"a": 1, "b": "x", "c": 5}) == {"a": 1, "b": "x", "c": 5}


def test_odd_parameter_names_round_trip() -> None:
    kwargs = derive_function_schema(odd_names).validate_arguments(
        '{"json": "j", "model_config": 1, "title": "t", "_private": true}'
    )
    assert kwargs == {"json": "j", "model_config": 1, "title": "t", "_private": True}


def test_empty_arguments_text_means_no_arguments() -> None:
    assert derive_function_schema(no_params).validate_arguments("  ") == {}


@pytest.mark.parametrize(
    ("raw", "kind", "fragments"),
    [
        ('{"city": "Oslo"', "invalid_json", ["not valid JSON"]),
        ("[1, 2]", "invalid_arguments", ["must be a JSON object"]),
        ("{}", "invalid_arguments", ["city: missing required value"]),
        ('{"city": "Oslo", "days": 99}', "invalid_arguments", ["days:", "less than or equal"]),
        ('{"city": "Oslo", "unit": "kelvin"}', "invalid_arguments", ["unit:", "kelvin"]),
        ('{"city": "Oslo", "colour": "red"}', "invalid_arguments", ["colour: unexpected"]),
    ],
)
def test_bad_arguments_raise_tool_execution_error(
    raw: str, kind: str, fragments: list[str]
) -> None:
    with pytest.raises(ToolExecutionError) as info:
        derive_function_schema(weather).validate_arguments(raw)
    details = info.value.details
    assert details["tool"] == "weather"
    assert details["kind"] == kind
    for fragment in fragments:
        assert fragment in details["error"]
    assert info.value.message == details["error"]


def test_bad_values_are_quoted_only_truncated() -> None:
    secret = "x" * 500
    with pytest.raises(ToolExecutionError) as info:
        derive_function_schema(primitives).validate_arguments(
            {"text": "a", "count": secret, "ratio": 1, "flag": True}
        )
    assert secret not in info.value.message
    assert "xxxx" in info.value.message


# --------------------------------------------------------------------------- structured output


class Answer(BaseModel):
    """The final answer."""

    text: str
    confidence: Annotated[float, Field(ge=0, le=1)]
    sources: list[str] = []


def test_json_schema_for_type() -> None:
    assert json_schema_for_type(Answer) == {
        "description": "The final answer.",
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "sources": {"type": "array", "items": {"type": "string"}, "default": []},
        },
        "required": ["text", "confidence"],
    }
    assert json_schema_for_type(Answer, strict=True)["required"] == [
        "text",
        "confidence",
        "sources",
    ]


def test_response_format_for_model() -> None:
    assert response_format_for(Answer) == {
        "type": "json_schema",
        "json_schema": {
            "name": "Answer",
            "strict": True,
            "schema": {
                "description": "The final answer.",
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    "sources": {
                        "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]
                    },
                },
                "required": ["text", "confidence", "sources"],
                "additionalProperties": False,
            },
        },
    }


def test_non_object_output_is_wrapped_and_unwrapped() -> None:
    fmt = response_format_for(list[Point], strict=False)
    assert fmt["json_schema"]["name"] == "response"
    assert fmt["json_schema"]["strict"] is False
    schema = fmt["json_schema"]["schema"]
    assert schema["required"] == ["result"]
    assert schema["properties"]["result"]["type"] == "array"
    assert parse_structured(list[Point], '{"result": [{"x": 1}, {"x": 2, "y": 3}]}') == [
        Point(1.0),
        Point(2.0, 3.0),
    ]


def test_parse_structured_success_and_strict_nulls() -> None:
    answer = parse_structured(Answer, '{"text": "42", "confidence": 0.9, "sources": null}')
    assert answer == Answer(text="42", confidence=0.9)
    fenced = '```json\n{"text": "a", "confidence": 1}\n```'
    assert parse_structured(Answer, fenced) == Answer(text="a", confidence=1)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"text": "a", "confidence": 7}', "confidence"),
        ('{"confidence": 0.5}', "text"),
        ("not json", "not valid JSON"),
    ],
)
def test_parse_structured_failure(text: str, fragment: str) -> None:
    with pytest.raises(APIResponseError) as info:
        parse_structured(Answer, text)
    assert fragment in info.value.message
    assert info.value.details["type"] == "Answer"
    assert isinstance(info.value.details["errors"], list)
    if fragment != "not valid JSON":
        assert info.value.details["errors"][0]["loc"] == (fragment,)
