"""JSON form of types and the JSON Schema of values."""

from __future__ import annotations

import json

import pytest

from typesys import BYTES, NominalType, from_json, json_schema, parse, to_json


def test_json_form_is_plain_data_and_self_contained() -> None:
    t = parse("{name: String, tags?: List[String]} | Null")
    data = to_json(t)
    assert json.loads(json.dumps(data)) == data
    assert data["kind"] == "union"
    image = NominalType("Image", BYTES)
    assert to_json(image) == {
        "kind": "nominal",
        "name": "Image",
        "parent": {"kind": "primitive", "name": "Bytes"},
    }
    assert from_json(to_json(image)) == image


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "list"}, "lacks the key 'item'"),
        ({"kind": "wat"}, "unknown kind 'wat'"),
        ({"kind": "primitive", "name": "Integer"}, "not a primitive"),
        ({"kind": "tuple", "items": "x"}, "must be a list"),
        ({"kind": "union", "members": []}, "needs members"),
        ([1], "must be an object"),
        ({"kind": "dict", "key": {"kind": "primitive", "name": "String"}, "value": 3}, "$.value"),
    ],
)
def test_malformed_json_names_the_bad_part(data: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        from_json(data)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "schema"),
    [
        ("Int", {"type": "integer"}),
        ("Float", {"type": "number"}),
        ("Any", {}),
        ("Bytes", {"type": "string", "contentEncoding": "base64"}),
        ("List[String]", {"type": "array", "items": {"type": "string"}}),
        ("Int | Null", {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        (
            "{name: String, age?: Int}",
            {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name"],
            },
        ),
        (
            "Tuple[Int, String]",
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "items": False,
                "minItems": 2,
            },
        ),
        ("Dict[String, Bool]", {"type": "object", "additionalProperties": {"type": "boolean"}}),
        ("NDArray[float64, 2]", {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}),
    ],
)
def test_json_schema(text: str, schema: dict[str, object]) -> None:
    out = json_schema(parse(text))
    assert out.pop("x-rayweave-type") == text
    assert out == schema


def test_table_schema_is_rows_and_nominal_keeps_name() -> None:
    out = json_schema(parse("Table[x: Float]"))
    assert out["type"] == "array" and out["items"]["properties"] == {"x": {"type": "number"}}
    assert json_schema(NominalType("Image", BYTES))["title"] == "Image"


def test_schemas_validate_values_with_a_real_validator() -> None:
    import jsonschema

    schema = json_schema(parse("List[{name: String, score?: Float | Null}]"))
    jsonschema.validate([{"name": "a", "score": 1.5}, {"name": "b"}], schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{"score": 1.5}], schema)
