"""AgentSpec validation and (de)serialisation."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_loop.agents import AgentSpec
from power_loop.errors import AgentSpecError, PowerLoopError, SpecValidationError


def test_defaults_match_the_published_interface():
    spec = AgentSpec(name="w", system_prompt="You work.")
    assert (spec.tools, spec.max_rounds, spec.max_tokens, spec.temperature) == (None, 8, 4000, 0.0)
    assert (spec.model, spec.output_schema, spec.lifecycle, spec.metadata) == (None, None, "ephemeral", {})


def test_spec_is_frozen_and_copies_its_lists():
    tools = ["a"]
    spec = AgentSpec(name="w", system_prompt="p", tools=tools)
    tools.append("b")
    assert spec.tools == ["a"]
    with pytest.raises(AttributeError):
        spec.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"max_rounds": 0}, "max_rounds"),
        ({"max_rounds": 51}, "max_rounds"),
        ({"max_rounds": True}, "max_rounds"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"lifecycle": "forever"}, "lifecycle"),
        ({"tools": "echo"}, "tools"),
        ({"tools": ["ok", ""]}, "tools"),
        ({"name": " "}, "name"),
        ({"system_prompt": ""}, "system_prompt"),
        ({"output_schema": "x"}, "output_schema"),
        ({"model": ""}, "model"),
        ({"metadata": []}, "metadata"),
    ],
)
def test_invalid_values_raise_agent_spec_error_naming_the_field(changes, field):
    data = {"name": "w", "system_prompt": "p", **changes}
    with pytest.raises(AgentSpecError) as info:
        AgentSpec.from_dict(data)
    assert info.value.field == field
    assert isinstance(info.value, SpecValidationError) and isinstance(info.value, PowerLoopError)
    assert info.value.code == "agent_spec.invalid" and SpecValidationError.code == "spec.invalid"


def test_unknown_and_missing_keys_are_rejected():
    with pytest.raises(AgentSpecError, match=r"unknown key.*promt"):
        AgentSpec.from_dict({"name": "w", "system_prompt": "p", "promt": "typo"})
    with pytest.raises(AgentSpecError, match="system_prompt: is required"):
        AgentSpec.from_dict({"name": "w"})
    with pytest.raises(AgentSpecError, match="must be an object"):
        AgentSpec.from_dict(["name"])  # type: ignore[arg-type]
    with pytest.raises(AgentSpecError, match="not valid JSON"):
        AgentSpec.from_json("{name")
    with pytest.raises(AgentSpecError, match="must be an object"):
        AgentSpec.from_json("[1]")


def test_coerce_accepts_spec_dict_and_json():
    spec = AgentSpec(name="w", system_prompt="p", tools=["a"], lifecycle="linked")
    assert AgentSpec.coerce(spec) is spec
    assert AgentSpec.coerce(spec.to_dict()) == spec
    assert AgentSpec.coerce(json.dumps(spec.to_dict())) == spec


names = st.text(min_size=1, max_size=12).filter(lambda s: s.strip() != "")


@settings(max_examples=60, deadline=None)
@given(
    name=names,
    prompt=names,
    tools=st.none() | st.lists(names, max_size=4),
    max_rounds=st.integers(1, 50),
    max_tokens=st.integers(1, 100_000),
    temperature=st.floats(0, 2, allow_nan=False),
    lifecycle=st.sampled_from(["ephemeral", "linked", "detached"]),
    metadata=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
)
def test_json_round_trip(name, prompt, tools, max_rounds, max_tokens, temperature, lifecycle, metadata):
    spec = AgentSpec(
        name=name,
        system_prompt=prompt,
        tools=tools,
        max_rounds=max_rounds,
        max_tokens=max_tokens,
        temperature=temperature,
        lifecycle=lifecycle,
        metadata=metadata,
    )
    assert AgentSpec.from_json(json.dumps(spec.to_dict())) == spec
