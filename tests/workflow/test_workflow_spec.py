"""The workflow grammar: strict keys, every problem at once with its JSON path, round trips."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_loop.errors import PowerLoopError, SpecValidationError
from power_loop.workflow import (
    AgentNode,
    ForeachNode,
    LoopNode,
    SequenceNode,
    WorkflowRunError,
    WorkflowSpec,
    WorkflowSpecError,
    create_workflow,
    validate_spec,
)


def leaf(node_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": "agent", "id": node_id, "spec": {"name": node_id, "system_prompt": "be brief"}, **extra}


RESEARCH = {
    "name": "research",
    "input": "renewable energy",
    "root": {
        "type": "sequence",
        "steps": [
            {
                "type": "foreach",
                "id": "research",
                "as": "topic",
                "items": ["solar", "wind", "hydro"],
                "body": leaf("researcher", input="Research {{topic}} for a report on {{input}}."),
            },
            leaf("writer", input="Write the report on {{input}}.", inputs_from=["research"]),
        ],
    },
}


def test_valid_spec_parses_and_round_trips() -> None:
    spec = WorkflowSpec.from_json(json.dumps(RESEARCH))
    assert spec.name == "research" and spec.input == "renewable energy"
    assert isinstance(spec.root, SequenceNode)
    foreach, writer = spec.root.steps
    assert isinstance(foreach, ForeachNode) and foreach.items == ("solar", "wind", "hydro")
    assert isinstance(writer, AgentNode) and writer.inputs_from == ("research",)
    assert WorkflowSpec.from_json(spec.to_dict()) == spec
    assert validate_spec(RESEARCH) == []


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    bad = {
        "name": "",
        "extra": 1,
        "budget": {"max_tokens": 0, "stop_at_remaining_pct": 120},
        "root": {
            "type": "sequence",
            "steps": [
                leaf("a", colour="red"),
                leaf("a"),
                {"type": "agent", "spec": {"name": "x", "system_prompt": "y", "max_rounds": 0}},
                {"type": "foreach", "as": "t", "items": [1], "items_from": "a", "body": leaf("b")},
                {"type": "parallel", "branches": [], "on_error": "explode"},
                {"type": "branch", "on": "nowhere", "cases": {"x": leaf("c")}},
                {
                    "type": "loop",
                    "id": "l",
                    "body": leaf("d"),
                    "until": {"ref": "d.ok"},
                    "max_iterations": 11,
                },
                {"type": "teleport"},
                leaf("e", inputs_from=["b"], output_schema={"name": "s"}, retry={"max_attempts": 0}),
            ],
        },
    }
    with pytest.raises(WorkflowSpecError) as err:
        WorkflowSpec.from_json(bad)
    exc = err.value
    assert isinstance(exc, SpecValidationError) and isinstance(exc, PowerLoopError)
    assert exc.code == "spec.invalid"
    paths = {p.path for p in exc.problems}
    steps = "$.root.steps"
    expected = {
        "$.name",
        "$.extra",
        "$.budget.max_tokens",
        "$.budget.stop_at_remaining_pct",
        f"{steps}[0].colour",
        f"{steps}[1].id",  # duplicate
        f"{steps}[2].id",  # missing
        f"{steps}[2].spec.max_rounds",
        f"{steps}[3]",  # items and items_from
        f"{steps}[4].branches",
        f"{steps}[4].on_error",
        f"{steps}[5].on",  # unknown reference
        f"{steps}[6].until.ref",  # d has no output_schema
        f"{steps}[6].max_iterations",
        f"{steps}[7].type",
        f"{steps}[8].inputs_from[0]",  # b lives inside a foreach body
        f"{steps}[8].output_schema.schema",
        f"{steps}[8].retry.max_attempts",
    }
    assert expected <= paths, expected - paths
    assert all(str(p).startswith("$") for p in exc.problems)
    assert str(exc).count("\n  - ") == len(exc.problems)


def test_references_inside_one_foreach_item_and_payload_keys() -> None:
    spec = {
        "name": "nested",
        "root": {
            "type": "sequence",
            "steps": [
                leaf("plan", output_schema={"name": "plan", "schema": {"type": "object"}}),
                {
                    "type": "foreach",
                    "as": "topic",
                    "items_from": "plan.topics",
                    "body": {
                        "type": "sequence",
                        "steps": [leaf("draft"), leaf("review", inputs_from=["draft"])],
                    },
                },
            ],
        },
    }
    assert validate_spec(spec) == []
    spec["root"]["steps"][0].pop("output_schema")  # type: ignore[index]
    [problem] = validate_spec(spec)
    assert problem.path == "$.root.steps[1].items_from" and "output_schema" in problem.message


def test_loop_node_parses() -> None:
    spec = WorkflowSpec.from_json(
        {
            "name": "refine",
            "root": {
                "type": "loop",
                "id": "refine",
                "body": leaf("critic", output_schema={"name": "v", "schema": {"type": "object"}}),
                "until": {"ref": "critic.done", "op": "eq", "value": True},
                "max_iterations": 4,
            },
        }
    )
    assert isinstance(spec.root, LoopNode) and spec.root.max_iterations == 4
    assert WorkflowSpec.from_json(spec.to_dict()) == spec


def test_invalid_json_text_and_wrong_root_type() -> None:
    [problem] = validate_spec("{not json")
    assert problem.path == "$" and "JSON" in problem.message
    assert [p.path for p in validate_spec([1, 2])] == ["$"]


def test_create_workflow_raises_with_every_problem() -> None:
    with pytest.raises(WorkflowSpecError) as err:
        create_workflow({"name": "x"}, parent_loop=None)  # type: ignore[arg-type]
    assert [p.path for p in err.value.problems] == ["$.root"]
    assert WorkflowRunError.code == "workflow.run_failed"


_scalar = (
    st.none() | st.booleans() | st.integers(-2, 12) | st.sampled_from(["", "a", "b", "a.k", "{{input}}"])
)
_ids = st.sampled_from(["a", "b", "c", "1x", ""]) | _scalar
_refs = st.sampled_from(["a", "b", "a.k", "b.items", "zz"]) | _scalar
_base_node = st.fixed_dictionaries(
    {"type": st.sampled_from(["agent", "sequence", "parallel", "foreach", "branch", "loop", "nope"])},
    optional={
        "id": _ids,
        "spec": st.sampled_from([{"name": "n", "system_prompt": "p"}, {"name": 1}, {"x": 1}, "s"]),
        "as": _ids,
        "items": st.lists(_scalar, max_size=3) | _scalar,
        "items_from": _refs,
        "on": _refs,
        "inputs_from": st.lists(_refs, max_size=2) | _scalar,
        "output_schema": st.sampled_from([{"name": "s", "schema": {}}, {"name": ""}, 3]),
        "until": st.fixed_dictionaries({"ref": _refs}, optional={"op": _scalar | st.just("truthy")}),
        "retry": st.fixed_dictionaries({}, optional={"max_attempts": _scalar, "backoff_s": _scalar}),
        "max_concurrency": _scalar,
        "x": _scalar,
    },
)
_nodes = st.recursive(
    _base_node,
    lambda inner: st.builds(
        lambda node, key, value: {**node, key: value},
        _base_node,
        st.sampled_from(["steps", "branches", "body", "cases", "default"]),
        inner | st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["x", "y"]), inner, max_size=2),
    ),
    max_leaves=8,
)
_specs = _scalar | st.fixed_dictionaries(
    {"name": st.just("wf") | _scalar, "root": _nodes},
    optional={
        "budget": st.fixed_dictionaries({}, optional={"max_tokens": _scalar}),
        "input": _scalar,
        "y": _scalar,
    },
)


@settings(max_examples=200, deadline=None)
@given(_specs)
def test_random_specs_never_crash_the_validator(data: Any) -> None:
    problems = validate_spec(data)
    assert all(p.path.startswith("$") and p.message for p in problems)
    if problems:
        with pytest.raises(WorkflowSpecError) as err:
            WorkflowSpec.from_json(data)
        assert list(err.value.problems) == problems
    else:
        spec = WorkflowSpec.from_json(data)
        assert WorkflowSpec.from_json(spec.to_dict()) == spec
