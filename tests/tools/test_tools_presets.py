"""Built-in presets, create_default_tool_registry, and the session tools through a real loop."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from power_loop import StatefulAgentLoop
from power_loop.context import CONTEXT_TOOL_NAMES, register_reserved_tools
from power_loop.errors import ConfigError
from power_loop.events import AgentEvent, AgentEventType
from power_loop.testing import ScriptedLLM
from power_loop.tools import (
    CORE_TOOL_NAMES,
    EXPLORE_TOOL_NAMES,
    FULL_TOOL_NAMES,
    SESSION_TOOL_NAMES,
    TOOL_PRESETS,
    ToolRegistry,
    create_default_tool_registry,
    execute_tool_call,
    register_session_tools,
)


def _call(name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": json.dumps(args or {})}}


def _built(**kwargs: Any) -> ToolRegistry:
    """A preset registry with the context's note/recall places filled, as a loop fills them."""
    registry = create_default_tool_registry(**kwargs)
    register_reserved_tools(registry)
    assert registry.reserved() == []
    return registry


# -- presets and selection ----------------------------------------------------------------------------


def test_preset_contents() -> None:
    assert TOOL_PRESETS == {"core": CORE_TOOL_NAMES, "explore": EXPLORE_TOOL_NAMES, "full": FULL_TOOL_NAMES}
    assert CORE_TOOL_NAMES == (
        "bash",
        "read_file",
        "write_file",
        "edit_file",
        "apply_patch",
        "glob",
        "grep",
        "request_user_input",
    )
    assert EXPLORE_TOOL_NAMES == ("bash", "read_file", "glob", "grep", "request_user_input")
    assert set(CORE_TOOL_NAMES) <= set(FULL_TOOL_NAMES) and set(EXPLORE_TOOL_NAMES) <= set(FULL_TOOL_NAMES)
    assert len(set(FULL_TOOL_NAMES)) == len(FULL_TOOL_NAMES) == 20
    for name in ("todo", "current_time", "schedule_wakeup", "note_add", "recall_send", "recall_compacted"):
        assert name in FULL_TOOL_NAMES


@pytest.mark.parametrize("preset", sorted(TOOL_PRESETS))
def test_each_preset_builds_in_order(preset: str, tmp_path: Path) -> None:
    registry = _built(preset=preset, workspace_dir=tmp_path)
    assert registry.names() == list(TOOL_PRESETS[preset])


def test_default_is_everything(tmp_path: Path) -> None:
    assert _built(workspace_dir=tmp_path).names() == list(FULL_TOOL_NAMES)


def test_context_tools_are_reserved_in_place_and_filled_by_the_context_layer(tmp_path: Path) -> None:
    registry = create_default_tool_registry(workspace_dir=tmp_path)
    assert registry.names() == [n for n in FULL_TOOL_NAMES if n not in CONTEXT_TOOL_NAMES]
    assert registry.reserved() == [n for n in FULL_TOOL_NAMES if n in CONTEXT_TOOL_NAMES]
    assert "note_add" not in registry and registry.get("note_add") is None
    assert [t["function"]["name"] for t in registry.to_openai_tools()] == registry.names()
    reserved = registry.reserved()
    assert register_reserved_tools(registry) == reserved
    assert registry.names() == list(FULL_TOOL_NAMES) and registry.reserved() == []
    assert register_reserved_tools(registry) == []  # idempotent


async def test_a_loop_fills_the_reserved_tools_of_its_registry_and_of_a_per_send_one(tmp_path: Path) -> None:
    llm = ScriptedLLM(default=ScriptedLLM.text("ok"))
    names = ["todo", "note_add", "current_time", "recall_send"]
    registry = create_default_tool_registry(include=names)
    async with StatefulAgentLoop(llm=llm, dsn=str(tmp_path / "x.db"), tool_registry=registry) as loop:
        assert loop.tool_registry is registry and registry.names() == names
        sid = await loop.new_session()
        await loop.send("hi", sid)
        assert [t["function"]["name"] for t in llm.last_request.tools or []] == names
        per_send = create_default_tool_registry(include=["recall_compacted", "current_time"])
        await loop.send("again", sid, tools=per_send)
        assert [t["function"]["name"] for t in llm.last_request.tools or []] == [
            "recall_compacted",
            "current_time",
        ]


def test_include_wins_over_preset_and_exclude_applies_last(tmp_path: Path) -> None:
    registry = create_default_tool_registry(
        preset="core",
        include=["todo", "read_file", "current_time"],
        exclude=["read_file"],
        workspace_dir=tmp_path,
    )
    assert registry.names() == ["todo", "current_time"]
    registry = create_default_tool_registry(
        preset="explore", exclude=["bash", "grep"], workspace_dir=tmp_path
    )
    assert registry.names() == ["read_file", "glob", "request_user_input"]


def test_session_only_selection_needs_no_workspace() -> None:
    registry = _built(include=["todo", "current_time", "note_add", "recall_send"])
    assert registry.names() == ["todo", "current_time", "note_add", "recall_send"]
    registry = create_default_tool_registry(
        preset="full",
        exclude=[
            "bash",
            "read_file",
            "write_file",
            "edit_file",
            "apply_patch",
            "glob",
            "grep",
            "background_run",
        ],
    )
    assert "bash" not in registry and "todo" in registry and "check_background" in registry


@pytest.mark.parametrize(
    "kwargs",
    [
        {"preset": "nope"},
        {"include": ["read_file", "teleport"]},
        {"exclude": ["teleport"]},
        {"include": "bash"},
    ],
)
def test_unknown_names_are_config_errors(kwargs: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        create_default_tool_registry(workspace_dir=tmp_path, **kwargs)


def test_workspace_tools_without_workspace_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"workspace_dir=.*no fallback"):
        create_default_tool_registry(preset="explore")
    with pytest.raises(ConfigError, match="bash"):
        create_default_tool_registry(include=["bash"])


def test_missing_workspace_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        create_default_tool_registry(preset="core", workspace_dir=tmp_path / "missing")


async def test_file_tools_are_confined_and_bash_runs_there(tmp_path: Path) -> None:
    registry = create_default_tool_registry(preset="core", workspace_dir=tmp_path)
    out = await execute_tool_call(registry, _call("write_file", {"path": "a.txt", "content": "hello"}))
    assert not out.failed and (tmp_path / "a.txt").read_text() == "hello"
    out = await execute_tool_call(registry, _call("read_file", {"path": "../etc/passwd"}))
    assert out.failed
    out = await execute_tool_call(registry, _call("bash", {"command": "cat a.txt"}))
    assert out.output == "hello\n[exit code: 0]"


def test_register_session_tools_rejects_unknown() -> None:
    registry = ToolRegistry()
    assert register_session_tools(registry, include=["current_time"]) == ["current_time"]
    with pytest.raises(ConfigError):
        register_session_tools(registry, include=["nope"])
    assert set(SESSION_TOOL_NAMES) == {
        "todo",
        "schedule_wakeup",
        "list_wakeups",
        "cancel_wakeup",
        "current_time",
    }


# -- outside a loop run ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("todo", {"items": []}),
        ("schedule_wakeup", {"delay_seconds": 60, "note": "x"}),
        ("list_wakeups", {}),
        ("cancel_wakeup", {"timer_id": 1}),
    ],
)
async def test_session_tools_outside_a_run_are_error_results(name: str, args: dict[str, Any]) -> None:
    registry = create_default_tool_registry(include=[name])
    outcome = await execute_tool_call(registry, _call(name, args))
    assert outcome.failed
    assert "needs a session" in outcome.output


async def test_current_time_needs_no_session() -> None:
    registry = create_default_tool_registry(include=["current_time"])
    outcome = await execute_tool_call(registry, _call("current_time"))
    assert not outcome.failed
    assert re.match(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d .*\((Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day\)$", outcome.output
    )


# -- through a real StatefulAgentLoop ---------------------------------------------------------------------


async def _tool_outputs(loop: StatefulAgentLoop, sid: str) -> list[str]:
    return [m["content"] for m in await loop.get_messages(sid) if m["role"] == "tool"]


async def test_todo_is_stored_for_the_calling_session(tmp_path: Path) -> None:
    items = [
        {"id": "1", "text": "write tests", "status": "completed"},
        {"id": 2, "text": "implement", "status": "in_progress"},
        {"id": "3", "text": "docs", "status": "pending"},
    ]
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call("todo", {"items": items}),
            ScriptedLLM.text("planned"),
            ScriptedLLM.tool_call(
                "todo",
                {
                    "items": [
                        {"id": "a", "text": "x", "status": "in_progress"},
                        {"id": "b", "text": "y", "status": "in_progress"},
                    ]
                },
            ),
            ScriptedLLM.text("oops"),
        ]
    )
    events: list[AgentEvent] = []
    registry = create_default_tool_registry(include=["todo"])
    async with StatefulAgentLoop(llm=llm, dsn=str(tmp_path / "x.db"), tool_registry=registry) as loop:
        loop.event_bus.subscribe(AgentEventType.TODO_UPDATED, events.append)
        sid, other = await loop.new_session(), await loop.new_session()
        result = await loop.send("plan it", sid)
        assert result.status == "completed"
        store = await loop.ensure_store()
        stored = await store.get_runtime_state(sid, "todo")
        assert stored == [
            {"id": "1", "text": "write tests", "status": "completed"},
            {"id": "2", "text": "implement", "status": "in_progress"},
            {"id": "3", "text": "docs", "status": "pending"},
        ]
        assert await store.get_runtime_state(other, "todo") is None
        (rendered,) = await _tool_outputs(loop, sid)
        assert rendered.splitlines() == [
            "Todo list (1/3 completed):",
            "[x] 1: write tests",
            "[>] 2: implement",
            "[ ] 3: docs",
        ]

        await loop.send("again", other)  # two in_progress items: refused, nothing stored
        assert "at most one todo item may be in_progress" in (await _tool_outputs(loop, other))[0]
        assert await store.get_runtime_state(other, "todo") is None
    assert len(events) == 1 and events[0].session_id == sid
    assert events[0].data is not None and events[0].data.to_dict()["counts"] == {
        "pending": 1,
        "in_progress": 1,
        "completed": 1,
    }


async def test_wakeup_tools_arm_list_and_cancel_timers_of_the_session(tmp_path: Path) -> None:
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_calls(
                [
                    ("schedule_wakeup", {"delay_seconds": 3600, "note": "check the build"}),
                    ("schedule_wakeup", {"delay_seconds": 60, "note": "ping", "every_seconds": 300}),
                ]
            ),
            ScriptedLLM.text("scheduled"),
            ScriptedLLM.tool_call("list_wakeups"),
            ScriptedLLM.text("listed"),
            ScriptedLLM.tool_calls([("cancel_wakeup", {"timer_id": 1}), ("cancel_wakeup", {"timer_id": 1})]),
            ScriptedLLM.text("cancelled"),
        ]
    )
    registry = create_default_tool_registry(include=["schedule_wakeup", "list_wakeups", "cancel_wakeup"])
    async with StatefulAgentLoop(llm=llm, dsn=str(tmp_path / "x.db"), tool_registry=registry) as loop:
        sid, other = await loop.new_session(), await loop.new_session()
        await loop.send("remind me", sid)
        timers = await loop.list_timers(sid)
        assert [(t.timer_id, t.note, t.interval_s) for t in timers] == [
            (2, "ping", 300),
            (1, "check the build", None),
        ]
        assert await loop.list_timers(other) == []
        outputs = await _tool_outputs(loop, sid)
        assert outputs[0].startswith("Wake-up #1 scheduled for ") and outputs[0].endswith(
            "(in 3600s): check the build"
        )
        assert outputs[1].endswith("(in 60s, then every 300s): ping")

        await loop.send("what is armed?", sid)
        listing = (await _tool_outputs(loop, sid))[2].splitlines()
        assert re.fullmatch(r"#2 in \d+s \(every 300s, fired 0x\) \(armed\): ping", listing[0])
        assert re.fullmatch(r"#1 in \d+s \(armed\): check the build", listing[1])

        await loop.send("cancel the first", sid)
        outputs = await _tool_outputs(loop, sid)
        assert outputs[3] == "Cancelled wake-up #1."
        assert outputs[4] == "Error: no armed wake-up #1 in this session."
        assert [t.timer_id for t in await loop.list_timers(sid)] == [2]


async def test_wakeup_budget_and_bounds(tmp_path: Path) -> None:
    script: list[Any] = [
        ScriptedLLM.tool_call("schedule_wakeup", {"delay_seconds": 100 + i, "note": f"n{i}"})
        for i in range(11)
    ]
    script += [
        ScriptedLLM.tool_call("schedule_wakeup", {"delay_seconds": 4, "note": "too soon"}),
        ScriptedLLM.text("done"),
    ]
    registry = create_default_tool_registry(include=["schedule_wakeup"])
    async with StatefulAgentLoop(
        llm=ScriptedLLM(script), dsn=str(tmp_path / "x.db"), tool_registry=registry
    ) as loop:
        sid = await loop.new_session()
        await loop.send("go", sid)
        outputs = await _tool_outputs(loop, sid)
        assert len(await loop.list_timers(sid)) == 10
        assert outputs[10].startswith("Budget exceeded: this session already has 10 armed wake-ups")
        assert "delay_seconds" in outputs[11] and outputs[11].startswith("Error: invalid arguments")


def test_the_published_keywords_are_accepted(tmp_path: Path) -> None:
    # Every keyword of the published signature; none of these tools reads a home directory or a board.
    registry = create_default_tool_registry(
        preset="core",
        workspace_dir=tmp_path,
        home_dir=tmp_path,
        skills_dir=None,
        shell_backend=None,
        blackboard=None,
        blackboard_id="team",
        bind=True,
    )
    assert registry.names()[:2] == ["bash", "read_file"]
