"""Structured output: spec → response_format, parsing (fences, prose, trailing commas), validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_loop.errors import ConfigError, PowerLoopError, StructuredOutputError
from power_loop.llm import LLMResponse
from power_loop.structured import (
    StructuredOutputSpec,
    extract_json_object,
    parse_structured,
    schema_from_response_format,
    structured_result,
)

SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["title"],
    "additionalProperties": False,
}


def test_spec_to_openai_response_format() -> None:
    spec = StructuredOutputSpec(name="article", schema=SCHEMA, description="An article")
    assert spec.to_openai_response_format() == {
        "type": "json_schema",
        "json_schema": {"name": "article", "schema": SCHEMA, "strict": True, "description": "An article"},
    }
    loose = StructuredOutputSpec(name="a", schema=SCHEMA, strict=False)
    assert "strict" not in loose.to_openai_response_format()["json_schema"]


def test_examples_are_sent_in_the_description() -> None:
    examples = [{"title": "Hello", "tags": ["a"]}, {"title": "Ünïcode"}]
    spec = StructuredOutputSpec(name="article", schema=SCHEMA, description="An article", examples=examples)
    description = spec.to_openai_response_format()["json_schema"]["description"]
    assert description == (
        "An article\n\nExamples of valid answers, one per line:\n"
        '{"tags": ["a"], "title": "Hello"}\n{"title": "Ünïcode"}'
    )
    bare = StructuredOutputSpec(name="a", schema=SCHEMA, examples=[{"title": "x"}])
    assert bare.full_description() == 'Examples of valid answers, one per line:\n{"title": "x"}'
    # What a provider adapter reads back from the request carries the examples too.
    back = schema_from_response_format(spec.to_openai_response_format())
    assert back is not None and back.full_description() == description


def test_spec_rejects_bad_names_and_schemas() -> None:
    with pytest.raises(ConfigError):
        StructuredOutputSpec(name="has space", schema=SCHEMA)
    with pytest.raises(ConfigError):
        StructuredOutputSpec(name="x", schema={"type": "object", "properties": {"a": {"minimum": "zero"}}})


def test_from_any_and_response_format_round_trip() -> None:
    spec = StructuredOutputSpec(name="article", schema=SCHEMA)
    assert StructuredOutputSpec.from_any(spec) is spec
    assert StructuredOutputSpec.from_any(spec.to_openai_response_format()) == spec
    bare = StructuredOutputSpec.from_any(SCHEMA)
    assert bare.name == "output" and bare.schema == SCHEMA
    assert schema_from_response_format({"type": "text"}) is None
    assert schema_from_response_format(None) is None
    obj = schema_from_response_format({"type": "json_object"})
    assert obj is not None and obj.schema == {"type": "object"}


@pytest.mark.parametrize(
    "text",
    [
        '{"title": "x"}',
        '```json\n{"title": "x"}\n```',
        '```\n{"title": "x"}\n```',
        'Here you go: {"title": "x"} — enjoy!',
        '{"title": "x",}',
        'prefix {"title": "x", } suffix',
    ],
)
def test_extract_forgives_common_wrapping(text: str) -> None:
    assert extract_json_object(text) == {"title": "x"}


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "no_json"),
        ("no json here", "no_json"),
        ('{"title": ', "invalid_json"),
        ("[1, 2]", "not_object"),
        ('"just a string"', "not_object"),
    ],
)
def test_extract_failures_have_reasons(text: str, reason: str) -> None:
    with pytest.raises(StructuredOutputError) as info:
        extract_json_object(text)
    assert info.value.reason == reason
    assert info.value.code == "structured_output.invalid"
    assert isinstance(info.value, PowerLoopError)


def test_parse_structured_validates_against_the_schema() -> None:
    response = LLMResponse(raw_text='{"title": "ok", "tags": ["a"]}')
    assert parse_structured(response, schema=SCHEMA) == {"title": "ok", "tags": ["a"]}
    with pytest.raises(StructuredOutputError) as missing:
        parse_structured('{"tags": []}', schema=SCHEMA)
    assert missing.value.reason == "missing_required:title"
    with pytest.raises(StructuredOutputError) as mismatch:
        parse_structured('{"title": 3, "extra": true}', schema=SCHEMA)
    assert mismatch.value.reason == "schema_mismatch"
    assert "$.title" in mismatch.value.detail and "extra" in mismatch.value.detail


def test_raw_text_is_truncated_to_1000_characters() -> None:
    text = "x" * 5000
    with pytest.raises(StructuredOutputError) as info:
        parse_structured(text)
    assert len(info.value.raw_text) == 1000 and info.value.raw_text == text[:1000]


def test_structured_result_is_the_non_raising_form() -> None:
    spec = StructuredOutputSpec(name="a", schema=SCHEMA)
    assert structured_result('{"title": "t"}', spec) == ({"title": "t"}, None)
    data, error = structured_result("nope", spec)
    assert data == {} and error is not None and error.startswith("no_json")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(
    obj=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    prose=st.sampled_from(["", "Answer: ", "```json\n"]),
)
def test_any_object_survives_wrapping(obj: dict[str, Any], prose: str) -> None:
    body = json.dumps(obj)
    text = prose + body + ("\n```" if prose.startswith("```") else "")
    assert extract_json_object(text) == obj
