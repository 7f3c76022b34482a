from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from power_loop.errors import CancellationRequested, ConfigError
from power_loop.tools import (
    HumanInputRequired,
    ToolDefinition,
    ToolHandlerResult,
    ToolOutcome,
    ToolRegistry,
    execute_tool_call,
    register_request_user_input,
)

WRITE = ToolDefinition(
    name="write_note",
    description="Write a note.",
    input_schema={
        "type": "object",
        "properties": {"title": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["title"],
    },
)


def call(name: str, arguments: Any, call_id: str = "call_1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


class Spy:
    """A handler that records every call, so tests can prove it was (not) called."""

    def __init__(self, result: Any = "ok") -> None:
        self.calls: list[dict[str, Any]] = []
        self.result = result

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.result


@pytest.fixture
def spy() -> Spy:
    return Spy()


@pytest.fixture
def registry(spy: Spy) -> ToolRegistry:
    reg = ToolRegistry()
    reg.register(WRITE, spy)
    return reg


async def test_success_with_json_string_arguments(registry: ToolRegistry, spy: Spy) -> None:
    outcome = await execute_tool_call(registry, call("write_note", '{"title": "t", "tags": ["a"]}'))
    assert outcome == ToolOutcome("call_1", "write_note", {"title": "t", "tags": ["a"]}, "ok", False, None)
    assert spy.calls == [{"title": "t", "tags": ["a"]}]
    assert outcome.to_message() == {
        "role": "tool",
        "tool_call_id": "call_1",
        "name": "write_note",
        "content": "ok",
    }


async def test_dict_arguments_pass_through(registry: ToolRegistry, spy: Spy) -> None:
    outcome = await execute_tool_call(registry, call("write_note", {"title": "t"}))
    assert not outcome.failed and spy.calls == [{"title": "t"}]


async def test_empty_or_missing_arguments_mean_no_arguments() -> None:
    reg = ToolRegistry()
    reg.register(ToolDefinition(name="now", description="Now."), lambda: "12:00")
    for arguments in ("", None, "  "):
        outcome = await execute_tool_call(reg, call("now", arguments))
        assert (outcome.output, outcome.failed, outcome.args) == ("12:00", False, {})


async def test_bad_json_is_a_failed_outcome_and_handler_not_called(registry: ToolRegistry, spy: Spy) -> None:
    outcome = await execute_tool_call(registry, call("write_note", '{"title": "unterminated'))
    assert outcome.failed and outcome.error is None
    assert "not valid JSON" in outcome.output and "line 1 column" in outcome.output
    assert "valid JSON object" in outcome.output
    assert spy.calls == []


@pytest.mark.parametrize(
    ("arguments", "kind"), [("[1, 2]", "array"), ('"text"', "string"), ("3", "integer"), ("null", "null")]
)
async def test_non_object_json_is_rejected(
    registry: ToolRegistry, spy: Spy, arguments: str, kind: str
) -> None:
    outcome = await execute_tool_call(registry, call("write_note", arguments))
    assert outcome.failed and f"must be a JSON object ({{...}}), got {kind}" in outcome.output
    assert spy.calls == []


async def test_non_string_non_dict_arguments_rejected(registry: ToolRegistry, spy: Spy) -> None:
    outcome = await execute_tool_call(registry, call("write_note", 42))
    assert outcome.failed and "must be a JSON object" in outcome.output and spy.calls == []


async def test_unknown_tool_lists_available_names(registry: ToolRegistry) -> None:
    outcome = await execute_tool_call(registry, call("delete_everything", "{}"))
    assert outcome.failed and outcome.name == "delete_everything"
    assert (
        "unknown tool 'delete_everything'" in outcome.output
        and "Available tools: write_note" in outcome.output
    )


async def test_unknown_tool_list_is_truncated() -> None:
    reg = ToolRegistry()
    for i in range(45):
        reg.register(ToolDefinition(name=f"t{i}", description=""), lambda: None)
    outcome = await execute_tool_call(reg, call("nope", "{}"))
    assert "t29" in outcome.output and "t30," not in outcome.output and "(and 15 more)" in outcome.output
    empty = await execute_tool_call(ToolRegistry(), call("nope", "{}"))
    assert "no tools are available" in empty.output


async def test_missing_required_argument(registry: ToolRegistry, spy: Spy) -> None:
    outcome = await execute_tool_call(registry, call("write_note", '{"tags": []}'))
    assert outcome.failed and '$: missing required property "title"' in outcome.output
    assert outcome.args == {"tags": []}
    assert spy.calls == []


async def test_wrong_type_lists_every_problem(registry: ToolRegistry, spy: Spy) -> None:
    outcome = await execute_tool_call(registry, call("write_note", '{"title": 5, "tags": ["a", 2]}'))
    assert outcome.failed
    assert "- $.title: expected string, got integer" in outcome.output
    assert "- $.tags[1]: expected string, got integer" in outcome.output
    assert "call the tool again" in outcome.output
    assert spy.calls == []


async def test_handler_exception_becomes_failed_outcome_with_error_kept() -> None:
    boom = KeyError("missing-key")

    def explode(**_: Any) -> str:
        raise boom

    reg = ToolRegistry()
    reg.register(WRITE, explode)
    outcome = await execute_tool_call(reg, call("write_note", '{"title": "t"}'))
    assert outcome.failed and outcome.error is boom
    assert outcome.output == "Error: KeyError: 'missing-key'"


async def test_async_handler_exception_also_captured() -> None:
    async def explode(title: str) -> str:
        raise ValueError("nope")

    reg = ToolRegistry()
    reg.register(WRITE, explode)
    outcome = await execute_tool_call(reg, call("write_note", '{"title": "t"}'))
    assert outcome.output == "Error: ValueError: nope" and isinstance(outcome.error, ValueError)


@pytest.mark.parametrize(
    ("result", "output", "failed"),
    [
        ("plain", "plain", False),
        (ToolHandlerResult(ok=True, content="wrapped", data={"x": 1}), "wrapped", False),
        (ToolHandlerResult(ok=False, content="could not"), "could not", True),
        ({"ü": [1, 2]}, '{"ü": [1, 2]}', False),
        (None, "null", False),
        ({"when": complex(1, 2)}, '{"when": "(1+2j)"}', False),
    ],
)
async def test_result_normalisation(result: Any, output: str, failed: bool) -> None:
    reg = ToolRegistry()
    reg.register(WRITE, Spy(result))
    outcome = await execute_tool_call(reg, call("write_note", '{"title": "t"}'))
    assert (outcome.output, outcome.failed, outcome.error) == (output, failed, None)


async def test_circular_result_does_not_crash() -> None:
    loop_list: list[Any] = []
    loop_list.append(loop_list)
    reg = ToolRegistry()
    reg.register(WRITE, Spy(loop_list))
    outcome = await execute_tool_call(reg, call("write_note", '{"title": "t"}'))
    assert outcome.output == "[[...]]" and not outcome.failed


async def test_oversize_result_is_cut_to_the_limit() -> None:
    reg = ToolRegistry()
    reg.register(WRITE, Spy("x" * 1000))
    outcome = await execute_tool_call(reg, call("write_note", '{"title": "t"}'), max_result_chars=200)
    assert len(outcome.output) == 200
    assert outcome.output.endswith("\n... (truncated, 1000 total chars)")
    assert outcome.output.startswith("x" * 100)
    exact = await execute_tool_call(reg, call("write_note", '{"title": "t"}'), max_result_chars=1000)
    assert exact.output == "x" * 1000


async def test_default_limit_is_50000() -> None:
    reg = ToolRegistry()
    reg.register(WRITE, Spy("y" * 60_000))
    outcome = await execute_tool_call(reg, call("write_note", '{"title": "t"}'))
    assert len(outcome.output) == 50_000 and "(truncated, 60000 total chars)" in outcome.output


async def test_oversize_error_message_is_cut_too() -> None:
    def explode(**_: Any) -> str:
        raise RuntimeError("z" * 5000)

    reg = ToolRegistry()
    reg.register(WRITE, explode)
    outcome = await execute_tool_call(reg, call("write_note", '{"title": "t"}'), max_result_chars=100)
    assert len(outcome.output) == 100 and outcome.failed


async def test_too_small_limit_is_a_config_error(registry: ToolRegistry) -> None:
    with pytest.raises(ConfigError):
        await execute_tool_call(registry, call("write_note", "{}"), max_result_chars=10)


async def test_cancellation_propagates() -> None:
    started = asyncio.Event()

    async def hang(title: str) -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    reg = ToolRegistry()
    reg.register(WRITE, hang)
    task = asyncio.create_task(execute_tool_call(reg, call("write_note", '{"title": "t"}')))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelled_error_raised_by_handler_propagates() -> None:
    async def cancelled(title: str) -> str:
        raise asyncio.CancelledError

    reg = ToolRegistry()
    reg.register(WRITE, cancelled)
    with pytest.raises(asyncio.CancelledError):
        await execute_tool_call(reg, call("write_note", '{"title": "t"}'))


async def test_cancellation_requested_propagates() -> None:
    def stop(**_: Any) -> str:
        raise CancellationRequested("user pressed stop")

    reg = ToolRegistry()
    reg.register(WRITE, stop)
    with pytest.raises(CancellationRequested, match="user pressed stop"):
        await execute_tool_call(reg, call("write_note", '{"title": "t"}'))


async def test_human_input_request_propagates() -> None:
    reg = ToolRegistry()
    register_request_user_input(reg)
    with pytest.raises(HumanInputRequired) as info:
        await execute_tool_call(
            reg, call("request_user_input", json.dumps({"prompt": "Proceed?", "kind": "confirm"}))
        )
    assert info.value.prompt == "Proceed?" and info.value.kind == "confirm"


async def test_human_input_from_sync_handler_in_thread_propagates() -> None:
    def ask(**_: Any) -> str:
        raise HumanInputRequired(prompt="Which one?")

    reg = ToolRegistry()
    reg.register(WRITE, ask)
    with pytest.raises(HumanInputRequired):
        await execute_tool_call(reg, call("write_note", '{"title": "t"}'))


async def test_malformed_tool_call_shape() -> None:
    reg = ToolRegistry()
    outcome = await execute_tool_call(reg, {"id": "c9"})
    assert outcome.failed and outcome.tool_call_id == "c9" and outcome.name == ""
