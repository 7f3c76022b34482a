"""register_mcp_tools, name sanitising, schema loosening and result rendering (in-process fake source)."""

from __future__ import annotations

import logging
from typing import Any

import mcp.types as mt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_loop.contrib.mcp import (
    MCPToolSource,
    McpToolSpec,
    mcp_tool_name,
    normalise_input_schema,
    register_mcp_tools,
    render_tool_content,
)
from power_loop.errors import ConfigError, MCPToolError
from power_loop.tools import ToolRegistry, compile_schema, execute_tool_call
from power_loop.tools._definition import TOOL_NAME_PATTERN


class FakeSource:
    """An in-memory MCPToolSource recording every call."""

    def __init__(self, specs: list[McpToolSpec]) -> None:
        self.specs = specs
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def list_tools(self) -> list[McpToolSpec]:
        return list(self.specs)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        self.calls.append((name, arguments))
        if name == "boom":
            raise MCPToolError("fake", name, "it exploded")
        return f"{name}:{sorted(arguments.items())}"


def _call(name: str, arguments: str) -> dict[str, Any]:
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}


ADD = McpToolSpec(
    "add",
    "Add.",
    {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
)


def test_fake_source_satisfies_the_protocol() -> None:
    assert isinstance(FakeSource([]), MCPToolSource)


async def test_registers_with_prefix_and_forwards_under_the_remote_name() -> None:
    source = FakeSource([ADD, McpToolSpec("fs.read file", "Read.")])
    registry = ToolRegistry()
    names = await register_mcp_tools(registry, source, prefix="srv.")
    assert names == ["srv_add", "srv_fs_read_file"]
    assert registry.names() == names
    definition = registry.get("srv_add").definition  # type: ignore[union-attr]
    assert definition.description == "Add."
    assert definition.parameters_schema()["required"] == ["a", "b"]
    assert definition.required_params == ("a", "b")

    outcome = await execute_tool_call(registry, _call("srv_fs_read_file", "{}"))
    assert not outcome.failed
    assert outcome.output == "fs.read file:[]"
    assert source.calls == [("fs.read file", {})]


async def test_schema_required_is_enforced_before_the_server_is_called() -> None:
    source = FakeSource([ADD])
    registry = ToolRegistry()
    await register_mcp_tools(registry, source)
    outcome = await execute_tool_call(registry, _call("add", '{"a": 1}'))
    assert outcome.failed and "b" in outcome.output
    assert source.calls == []
    outcome = await execute_tool_call(registry, _call("add", '{"a": 1, "b": 2}'))
    assert outcome.output == "add:[('a', 1), ('b', 2)]"


async def test_a_parameter_named_arguments_still_reaches_the_server() -> None:
    spec = McpToolSpec("run", "", {"type": "object", "properties": {"arguments": {"type": "string"}}})
    source = FakeSource([spec])
    registry = ToolRegistry()
    await register_mcp_tools(registry, source)
    outcome = await execute_tool_call(registry, _call("run", '{"arguments": "-v"}'))
    assert not outcome.failed
    assert source.calls == [("run", {"arguments": "-v"})]


async def test_tool_errors_become_failed_results_for_the_model() -> None:
    registry = ToolRegistry()
    await register_mcp_tools(registry, FakeSource([McpToolSpec("boom")]))
    outcome = await execute_tool_call(registry, _call("boom", "{}"))
    assert outcome.failed
    assert isinstance(outcome.error, MCPToolError)
    assert "it exploded" in outcome.output


async def test_names_that_sanitise_to_the_same_string_are_made_unique() -> None:
    registry = ToolRegistry()
    long = "x" * 80
    source = FakeSource(
        [
            McpToolSpec("a.b"),
            McpToolSpec("a_b"),
            McpToolSpec("a b"),
            McpToolSpec(long),
            McpToolSpec(long + "y"),
        ]
    )
    names = await register_mcp_tools(registry, source)
    assert names == ["a_b", "a_b_2", "a_b_3", "x" * 64, "x" * 62 + "_2"]
    assert all(TOOL_NAME_PATTERN.match(n) for n in names)
    await execute_tool_call(registry, _call("a_b_3", "{}"))
    assert source.calls == [("a b", {})]


async def test_a_clash_with_an_existing_tool_registers_nothing() -> None:
    registry = ToolRegistry()
    await register_mcp_tools(registry, FakeSource([McpToolSpec("other")]))
    with pytest.raises(ConfigError, match="already registered: other"):
        await register_mcp_tools(registry, FakeSource([McpToolSpec("fresh"), McpToolSpec("other")]))
    assert registry.names() == ["other"]
    names = await register_mcp_tools(
        registry, FakeSource([McpToolSpec("fresh"), McpToolSpec("other", "new")]), overwrite=True
    )
    assert names == ["fresh", "other"]
    assert registry.get("other").definition.description == "new"  # type: ignore[union-attr]


async def test_a_loose_schema_is_registered_permissively_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loose = McpToolSpec(
        "echo",
        "Echo.",
        {
            "type": "object",
            "properties": {
                "text": {"type": "frobnicate", "description": "what to say"},
                "n": {"type": "integer"},
                "pat": {"type": "string", "pattern": "("},
            },
            "required": ["text"],
        },
    )
    registry = ToolRegistry()
    with caplog.at_level(logging.WARNING, logger="power_loop.contrib.mcp"):
        assert await register_mcp_tools(registry, FakeSource([loose, ADD])) == ["echo", "add"]
    assert "'echo'" in caplog.text and "frobnicate" in caplog.text
    assert registry.get("echo").definition.input_schema == {  # type: ignore[union-attr]
        "type": "object",
        "properties": {"text": {"description": "what to say"}, "n": {"type": "integer"}, "pat": {}},
        "required": ["text"],
    }
    assert (await execute_tool_call(registry, _call("echo", '{"n": 1}'))).failed  # required still enforced
    assert (await execute_tool_call(registry, _call("echo", '{"text": 1, "n": "x"}'))).failed  # n still typed
    assert not (await execute_tool_call(registry, _call("echo", '{"text": [1]}'))).failed


@pytest.mark.parametrize(
    ("schema", "expected", "problem"),
    [
        ({}, {"type": "object"}, None),
        (
            {"properties": {"a": {"type": "string"}}},
            {"properties": {"a": {"type": "string"}}, "type": "object"},
            None,
        ),
        ({"type": "string"}, {"type": "object", "properties": {}}, "must have type 'object'"),
        ("nope", {"type": "object", "properties": {}}, "not a JSON object"),
        (
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {"type": "bogus"}}},
            {"type": "object", "properties": {"a": {}}},
            "bogus",
        ),
    ],
)
def test_normalise_input_schema_cases(schema: Any, expected: dict[str, Any], problem: str | None) -> None:
    result, found = normalise_input_schema(schema)
    assert result == expected
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.sampled_from(["object", "string", "integer", "frobnicate", "(", "#/$defs/x"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["type", "properties", "required", "items", "pattern", "$ref", "$defs", "enum", "x", "a"]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(_json)
def test_normalised_schemas_always_compile_and_describe_an_object(schema: Any) -> None:
    result, problem = normalise_input_schema(schema)
    compile_schema(result)  # never raises
    assert result["type"] == "object"
    if problem is None:
        assert isinstance(schema, dict)
        assert {k: v for k, v in result.items() if k != "type"} == {
            k: v for k, v in schema.items() if k != "type"
        }


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=100), st.text(max_size=10))
def test_mcp_tool_name_is_always_provider_legal(name: str, prefix: str) -> None:
    local = mcp_tool_name(name, prefix)
    assert TOOL_NAME_PATTERN.match(local)
    if TOOL_NAME_PATTERN.match(prefix + name):
        assert local == prefix + name


def test_render_tool_content_covers_every_block_kind() -> None:
    blocks = [
        mt.TextContent(text="one"),
        mt.TextContent(text="two"),
        mt.AudioContent(data="AAAA", mime_type="audio/wav"),
        mt.ResourceLink(name="notes", uri="file:///notes.txt"),
        mt.EmbeddedResource(resource=mt.TextResourceContents(uri="file:///a.txt", text="hello")),
        mt.EmbeddedResource(
            resource=mt.BlobResourceContents(uri="file:///b.bin", blob="AAAAAA", mime_type="application/zip")
        ),
    ]
    assert render_tool_content(blocks) == (
        "one\ntwo\n[audio: audio/wav, 4 base64 chars]\n[resource link: notes <file:///notes.txt>]\n"
        "[resource file:///a.txt]\nhello\n[resource file:///b.bin: application/zip, 6 base64 chars]"
    )
    assert render_tool_content([], {"answer": 42}) == '{"answer": 42}'
    assert render_tool_content([]) == ""
