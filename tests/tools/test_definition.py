from __future__ import annotations

import dataclasses

import pytest

from power_loop.errors import ConfigError
from power_loop.tools import ToolDefinition, ToolHandlerResult


def test_defaults_and_openai_shape() -> None:
    d = ToolDefinition(name="ping", description="Ping.")
    assert d.input_schema == {"type": "object", "properties": {}}
    assert d.required_params == ()
    assert d.to_openai_tool() == {
        "type": "function",
        "function": {
            "name": "ping",
            "description": "Ping.",
            "parameters": {"type": "object", "properties": {}},
        },
    }


def test_required_params_are_merged_without_mutating_the_schema() -> None:
    schema = {"type": "object", "properties": {"a": {}, "b": {}}, "required": ["a"]}
    d = ToolDefinition(name="t", description="", input_schema=schema, required_params=("b", "a"))
    assert d.to_openai_tool()["function"]["parameters"]["required"] == ["a", "b"]
    assert schema["required"] == ["a"]


def test_list_required_params_become_a_tuple() -> None:
    d = ToolDefinition(name="t", description="", required_params=["x"])  # type: ignore[arg-type]
    assert d.required_params == ("x",)


def test_frozen_and_project_not_compared() -> None:
    a = ToolDefinition(name="t", description="d", project=lambda args, result: "x")
    b = ToolDefinition(name="t", description="d")
    assert a == b
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "u"  # type: ignore[misc]


@pytest.mark.parametrize("name", ["", "has space", "dot.name", "x" * 65, "é", None])
def test_invalid_names_rejected(name: object) -> None:
    with pytest.raises(ConfigError, match="invalid tool name"):
        ToolDefinition(name=name, description="d")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["a", "read_file", "mcp-server_tool", "X" * 64])
def test_valid_names_accepted(name: str) -> None:
    assert ToolDefinition(name=name, description="").name == name


def test_bad_schema_and_params_types_rejected() -> None:
    with pytest.raises(ConfigError, match="input_schema"):
        ToolDefinition(name="t", description="", input_schema=[])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="required_params"):
        ToolDefinition(name="t", description="", required_params="path")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="description"):
        ToolDefinition(name="t", description=None)  # type: ignore[arg-type]


def test_handler_result_defaults() -> None:
    r = ToolHandlerResult(ok=True, content="done")
    assert r.data == {}
    assert ToolHandlerResult(ok=True, content="x").data is not r.data
