"""Assertion helpers of the test kit, on a real loop run with a scripted model."""

from __future__ import annotations

from pathlib import Path

import pytest

from power_loop import StatefulAgentLoop, ToolRegistry
from power_loop.events import AgentEventType
from power_loop.testing import (
    EventRecorder,
    ScriptedLLM,
    assert_events_in_order,
    assert_tool_called,
    assert_tool_not_called,
    find_tool_calls,
)


async def _run(tmp_path: Path) -> tuple[list[dict], EventRecorder]:
    tools = ToolRegistry()

    @tools.tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_calls([("add", {"a": 2, "b": 3}), ("add", {"a": 1, "b": 1})]),
            ScriptedLLM.raw_arguments("add", "{not json"),
            "done",
        ]
    )
    async with StatefulAgentLoop(llm=llm, dsn=str(tmp_path / "a.db"), tool_registry=tools) as loop:
        with EventRecorder(loop.event_bus) as recorder:
            sid = await loop.new_session()
            await loop.send("add things", sid)
        return await loop.get_messages(sid), recorder


async def test_tool_call_helpers(tmp_path: Path) -> None:
    messages, _ = await _run(tmp_path)
    calls = find_tool_calls(messages)
    assert [c.arguments for c in calls[:2]] == [{"a": 2, "b": 3}, {"a": 1, "b": 1}]
    assert calls[0].result == "5" and calls[2].arguments == {"__raw__": "{not json"}
    assert assert_tool_called(messages, "add", {"a": 1}).result == "2"
    assert_tool_called(messages, "add", times=3)
    assert_tool_not_called(messages, "subtract")
    with pytest.raises(AssertionError, match=r"expected a call to add\(\{'a': 9\}\)"):
        assert_tool_called(messages, "add", {"a": 9})
    with pytest.raises(AssertionError, match="1 time"):
        assert_tool_called(messages, "add", times=1)
    with pytest.raises(AssertionError, match="add was called 3 time"):
        assert_tool_not_called(messages, "add")


async def test_event_helpers(tmp_path: Path) -> None:
    _, recorder = await _run(tmp_path)
    assert len(recorder.of(AgentEventType.TOOL_CALL_STARTED)) == 3
    assert recorder.types().count("tool_call_started") == 3
    assert_events_in_order(recorder, ["round_started", AgentEventType.TOOL_CALL_STARTED, "session_ended"])
    assert_events_in_order(recorder.events, [])
    with pytest.raises(AssertionError, match="then no 'round_started'"):
        assert_events_in_order(recorder, ["session_ended", "round_started"])
    count = len(recorder.events)
    recorder.close()  # closing twice is harmless, and nothing more is recorded
    assert len(recorder.events) == count
