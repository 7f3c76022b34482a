"""Unit tests for the built-in JSON-Schema validator, keyword by keyword."""

from __future__ import annotations

from typing import Any

import pytest

from power_loop.errors import ConfigError
from power_loop.tools import compile_schema, validate_tool_args


def problems(schema: Any, instance: Any) -> list[str]:
    return compile_schema(schema)(instance)


def valid(schema: Any, instance: Any) -> bool:
    return not problems(schema, instance)


# -- type --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("type_name", "good", "bad"),
    [
        ("null", [None], [0, False, "", []]),
        ("boolean", [True, False], [0, 1, "true", None]),
        ("integer", [0, -3, 1.0, 2**70], [1.5, True, "1", None]),
        ("number", [0, 1.5, -2, 1e30], [True, False, "1", None]),
        ("string", ["", "x"], [1, None, ["x"]]),
        ("array", [[], [1, "a"]], [{}, "[]", (1,)]),
        ("object", [{}, {"a": 1}], [[], "{}", None]),
    ],
)
def test_type(type_name: str, good: list[Any], bad: list[Any]) -> None:
    for value in good:
        assert valid({"type": type_name}, value), value
    for value in bad:
        assert not valid({"type": type_name}, value), value


def test_type_union_and_message() -> None:
    schema = {"type": ["string", "null"]}
    assert valid(schema, None) and valid(schema, "x")
    assert problems(schema, 3) == ["$: expected string or null, got integer"]


def test_type_mismatch_reports_only_the_type() -> None:
    assert problems({"type": "string", "minLength": 3, "enum": ["abc"]}, 5) == [
        "$: expected string, got integer"
    ]


def test_nested_paths_are_json_paths() -> None:
    schema = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": {"type": "string"}}},
            }
        },
    }
    assert problems(schema, {"items": [{"name": "a"}, {}, {"name": 3}]}) == [
        "$.items[2].name: expected string, got integer"
    ]
    assert problems({"properties": {"a b": {"type": "string"}}}, {"a b": 1}) == [
        '$["a b"]: expected string, got integer'
    ]


# -- objects -----------------------------------------------------------------------------------
def test_required() -> None:
    schema = {"type": "object", "required": ["path", "content"]}
    assert problems(schema, {"path": "x"}) == ['$: missing required property "content"']
    assert valid(schema, {"path": "x", "content": ""})
    assert valid({"required": ["a"]}, "not an object")  # object keywords ignore other types


def test_additional_properties_false_lists_allowed_names() -> None:
    schema = {"type": "object", "properties": {"a": {}, "b": {}}, "additionalProperties": False}
    assert valid(schema, {"a": 1})
    assert problems(schema, {"a": 1, "zz": 2}) == ['$: unexpected property "zz" (allowed: "a", "b")']


def test_additional_properties_schema_and_pattern_properties() -> None:
    schema = {
        "properties": {"name": {"type": "string"}},
        "patternProperties": {"^x_": {"type": "integer"}},
        "additionalProperties": {"type": "boolean"},
    }
    assert valid(schema, {"name": "n", "x_1": 3, "other": True})
    assert problems(schema, {"x_1": "3"}) == ["$.x_1: expected integer, got string"]
    assert problems(schema, {"other": 1}) == ["$.other: expected boolean, got integer"]


def test_min_max_properties() -> None:
    assert problems({"minProperties": 1}, {}) == ["$: expected at least 1 property, got 0"]
    assert problems({"maxProperties": 1}, {"a": 1, "b": 2}) == ["$: expected at most 1 property, got 2"]


# -- enum / const ------------------------------------------------------------------------------
def test_enum_uses_json_equality() -> None:
    schema = {"enum": ["a", 1, None, [1, 2], {"k": True}]}
    for ok in ("a", 1, 1.0, None, [1, 2], {"k": True}):
        assert valid(schema, ok), ok
    for bad in (True, "1", [2, 1], {"k": 1}, 2):
        assert not valid(schema, bad), bad
    assert problems({"enum": ["read", "write"]}, "exec") == ['$: must be one of "read", "write"; got "exec"']


def test_const() -> None:
    assert valid({"const": 0}, 0.0)
    assert not valid({"const": 0}, False)
    assert problems({"const": "x"}, "y") == ['$: must be exactly "x"; got "y"']


# -- numbers -----------------------------------------------------------------------------------
def test_numeric_bounds() -> None:
    assert problems({"minimum": 1}, 0) == ["$: must be >= 1, got 0"]
    assert problems({"maximum": 1}, 2) == ["$: must be <= 1, got 2"]
    assert problems({"exclusiveMinimum": 1}, 1) == ["$: must be > 1, got 1"]
    assert problems({"exclusiveMaximum": 1}, 1.0) == ["$: must be < 1, got 1"]
    assert valid({"minimum": 1, "maximum": 1}, 1)
    assert valid({"minimum": 5}, "a string is not a number")
    assert valid({"minimum": 5}, True)  # booleans are not numbers


def test_draft4_boolean_exclusive_bounds() -> None:
    assert not valid({"minimum": 0, "exclusiveMinimum": True}, 0)
    assert valid({"minimum": 0, "exclusiveMinimum": False}, 0)
    assert not valid({"maximum": 3, "exclusiveMaximum": True}, 3)


def test_multiple_of() -> None:
    assert valid({"multipleOf": 3}, 9)
    assert problems({"multipleOf": 3}, 10) == ["$: must be a multiple of 3, got 10"]
    assert valid({"multipleOf": 0.5}, 2.5)
    assert not valid({"multipleOf": 0.5}, 2.25)
    # 1e308 / 0.5 overflows floats; the exact fallback still answers (1e308 is an integer)
    assert valid({"multipleOf": 0.5}, 1e308)
    assert not valid({"multipleOf": 0.5}, 3.25)


# -- strings -----------------------------------------------------------------------------------
def test_string_length_counts_code_points() -> None:
    assert valid({"maxLength": 2}, "é😀")  # two code points, more UTF-16 units / bytes
    assert problems({"minLength": 3}, "ab") == ["$: must be at least 3 characters long, got 2"]
    assert problems({"maxLength": 1}, "ab") == ["$: must be at most 1 character long, got 2"]


def test_pattern_is_a_search_not_a_full_match() -> None:
    assert valid({"pattern": "b"}, "abc")
    assert not valid({"pattern": "^b"}, "abc")
    assert problems({"pattern": "^[a-z]+$"}, "A") == ["$: must match the pattern '^[a-z]+$'; got \"A\""]


# -- arrays ------------------------------------------------------------------------------------
def test_items_and_counts() -> None:
    schema = {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2}
    assert valid(schema, [1, 2])
    assert problems(schema, []) == ["$: expected at least 1 item, got 0"]
    assert problems(schema, [1, "x", 3]) == [
        "$: expected at most 2 items, got 3",
        "$[1]: expected integer, got string",
    ]


def test_prefix_items_with_closed_tail() -> None:
    schema = {"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False}
    assert valid(schema, ["a", 1])
    assert valid(schema, ["a"])
    assert problems(schema, ["a", 1, None]) == ["$: expected at most 2 items, got 3"]
    assert problems(schema, [1]) == ["$[0]: expected string, got integer"]


def test_legacy_tuple_items() -> None:
    schema = {"items": [{"type": "string"}], "additionalItems": {"type": "integer"}}
    assert valid(schema, ["a", 1, 2])
    assert not valid(schema, ["a", "b"])


def test_unique_items() -> None:
    assert valid({"uniqueItems": True}, [1, True, "1", [1], {"a": 1}])
    assert problems({"uniqueItems": True}, [1, 2, 1.0]) == [
        "$: items must be unique, but [0] and [2] are equal"
    ]
    assert not valid({"uniqueItems": True}, [{"a": [1]}, {"a": [1.0]}])


# -- combinators -------------------------------------------------------------------------------
def test_any_of_reports_each_alternative() -> None:
    schema = {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0}]}
    assert valid(schema, "x") and valid(schema, 3)
    [message] = problems(schema, -1)
    assert message.startswith("$: does not match any allowed alternative")
    assert "expected string, got integer" in message and "must be >= 0" in message


def test_one_of() -> None:
    schema = {"oneOf": [{"type": "integer"}, {"type": "number"}]}
    assert valid(schema, 1.5)
    assert problems(schema, 2) == ["$: must match exactly one alternative but matches #1 and #2"]
    assert "matches none" in problems(schema, "x")[0]


def test_all_of_and_not() -> None:
    schema = {"allOf": [{"type": "integer"}, {"minimum": 2}], "not": {"const": 3}}
    assert valid(schema, 2)
    assert problems(schema, 1) == ["$: must be >= 2, got 1"]
    assert problems(schema, 3) == ['$: must not match the schema {"const": 3}']


def test_boolean_schemas() -> None:
    assert valid(True, {"anything": [1]})
    assert problems(False, 1) == ["$: no value is allowed here"]
    assert problems({"properties": {"x": False}}, {"x": 1}) == ["$.x: no value is allowed here"]


def test_format_is_only_an_annotation_and_unknown_keywords_are_ignored() -> None:
    assert valid({"type": "string", "format": "email", "x-vendor": 1, "title": "t"}, "not an email")


# -- $ref --------------------------------------------------------------------------------------
def test_local_refs_including_recursion() -> None:
    schema = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            }
        },
        "$ref": "#/$defs/node",
    }
    assert valid(schema, {"kids": [{"kids": []}]})
    assert problems(schema, {"kids": [{"kids": [{"kids": 3}]}]}) == [
        "$.kids[0].kids[0].kids: expected array, got integer"
    ]
    legacy = {"definitions": {"n": {"type": "integer"}}, "properties": {"a": {"$ref": "#/definitions/n"}}}
    assert not valid(legacy, {"a": "x"})


def test_pathological_self_reference_reports_instead_of_crashing() -> None:
    assert problems({"$ref": "#"}, 1) == ["$: value is nested too deeply to validate"]


# -- malformed schemas are configuration errors ------------------------------------------------
@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"type": 7}, "'type'"),
        ({"type": "str"}, "'type'"),
        ({"type": []}, "'type'"),
        ({"pattern": "("}, "not a valid regular expression"),
        ({"patternProperties": {"[": {}}}, "not a valid regular expression"),
        ({"minLength": -1}, "'minLength'"),
        ({"maxItems": 1.5}, "'maxItems'"),
        ({"minimum": "0"}, "'minimum'"),
        ({"multipleOf": 0}, "'multipleOf'"),
        ({"enum": "abc"}, "'enum'"),
        ({"required": True}, "'required'"),
        ({"properties": []}, "'properties'"),
        ({"properties": {"a": 3}}, "#/properties/a"),
        ({"anyOf": []}, "'anyOf'"),
        ({"$ref": "#/$defs/missing"}, "does not resolve"),
        ({"$ref": "http://example.com/s.json"}, "only local"),
        ({"$defs": {"unused": {"type": "nope"}}}, "'type'"),
        ({"uniqueItems": "yes"}, "'uniqueItems'"),
        ("a string", "must be an object or a boolean"),
    ],
)
def test_malformed_schema_raises_config_error(schema: Any, fragment: str) -> None:
    with pytest.raises(ConfigError, match="invalid JSON Schema") as info:
        compile_schema(schema)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_validate_tool_args_function() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert validate_tool_args(schema, {"n": 1}) == []
    assert validate_tool_args(schema, {}) == ['$: missing required property "n"']


def test_compiled_validator_is_reusable() -> None:
    validator = compile_schema({"type": "object", "properties": {"a": {"type": "string"}}})
    assert validator({"a": 1}) == ["$.a: expected string, got integer"]
    assert validator({"a": "ok"}) == []
    assert validator({"a": 2}) == ["$.a: expected string, got integer"]
