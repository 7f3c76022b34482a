"""Runtime projectors: transient per-round messages, rebuilt from the store, never persisted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from loop_helpers import check_history

from power_loop import (
    AgentEventBus,
    AgentEventType,
    AgentLoopConfig,
    BackgroundRuntimeProjector,
    ConfigError,
    ProjectionContext,
    RuntimeMessage,
    RuntimeProjector,
    TodoRuntimeProjector,
    create_default_tool_registry,
    default_runtime_projectors,
)
from power_loop.testing import ScriptedLLM


def _todo_registry():
    return create_default_tool_registry(include=["todo"])


async def test_todo_list_is_shown_every_round_and_never_stored(make_loop) -> None:
    items = [{"id": "1", "text": "read the spec", "status": "in_progress"}]
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call("todo", {"items": items}),
            ScriptedLLM.text("working on it"),
            ScriptedLLM.text("second send"),
        ]
    )
    loop = make_loop(llm=llm, tool_registry=_todo_registry())
    sid = await loop.new_session()
    await loop.send("plan", session_id=sid)
    first, second = llm.requests[0].messages, llm.requests[1].messages
    assert not any(m.get("name") == "runtime_todo_state" for m in first)  # nothing planned yet
    shown = second[-1]
    assert shown["role"] == "user" and shown["name"] == "runtime_todo_state"
    assert shown["content"].startswith("<current_todos>") and "read the spec" in shown["content"]
    await loop.send("next", session_id=sid)
    assert llm.requests[2].messages[-1]["name"] == "runtime_todo_state"  # again, rebuilt from the store
    stored = await loop.get_messages(sid)
    assert not any(m.get("name") == "runtime_todo_state" for m in stored)
    check_history(stored)


class _Clock:
    async def project(self, *, store: Any, session_id: str, round_index: int, context: ProjectionContext):
        return [RuntimeMessage(f"round {round_index}, tools {list(context.tool_names)}", name="clock")]


class _Broken:
    async def project(self, **_: Any):
        raise RuntimeError("projector down")


async def test_custom_projectors_run_in_order_and_a_failure_is_reported_not_fatal(make_loop) -> None:
    bus = AgentEventBus()
    logs: list[Any] = []
    bus.subscribe(AgentEventType.SYSTEM_LOG, lambda e: logs.append(e.data))
    llm = ScriptedLLM([ScriptedLLM.text("ok")])
    config = AgentLoopConfig(runtime_projectors=(_Broken(), _Clock()))
    loop = make_loop(llm=llm, config=config, event_bus=bus)
    sid = await loop.new_session()
    result = await loop.send("hi", session_id=sid)
    assert result.status == "completed"
    assert llm.requests[0].messages[-1] == {"role": "user", "content": "round 0, tools []", "name": "clock"}
    assert [(p.level, "projector down" in p.message) for p in logs] == [("error", True)]
    assert isinstance(_Clock(), RuntimeProjector)


async def test_no_projectors_means_the_history_alone(make_loop) -> None:
    llm = ScriptedLLM([ScriptedLLM.text("ok")])
    loop = make_loop(llm=llm, config=AgentLoopConfig(runtime_projectors=()))
    sid = await loop.new_session()
    await loop.send("hi", session_id=sid)
    assert llm.requests[0].messages == [{"role": "user", "content": "hi"}]


def test_defaults_and_validation() -> None:
    todo, background = default_runtime_projectors()
    assert isinstance(todo, TodoRuntimeProjector) and todo.state_key == "todo"
    assert isinstance(background, BackgroundRuntimeProjector) and background.mark_seen
    assert isinstance(AgentLoopConfig().runtime_projectors[0], TodoRuntimeProjector)
    assert AgentLoopConfig(runtime_projectors=[_Clock()]).runtime_projectors.__class__ is tuple
    for bad in (None, [object()], "x"):
        with pytest.raises(ConfigError):
            AgentLoopConfig(runtime_projectors=bad)  # type: ignore[arg-type]


async def test_a_finished_background_task_is_announced_once(make_loop, tmp_path) -> None:
    from power_loop.tools import ToolRegistry, register_background_tools

    registry = ToolRegistry()
    register_background_tools(registry, tmp_path, output_dir=tmp_path / "out")
    command = "while [ ! -f go ]; do sleep 0.1; done; echo finished-ok"
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call("background_run", {"command": command}),
            ScriptedLLM.text("started"),
            ScriptedLLM.text("saw it"),
            ScriptedLLM.text("nothing new"),
        ]
    )
    loop = make_loop(llm=llm, tool_registry=registry)
    sid = await loop.new_session()
    await loop.send("build it", session_id=sid)
    assert not any(m.get("name") == "runtime_background_updates" for m in llm.requests[1].messages)
    [task] = await loop.store.list_background_tasks(sid)
    (tmp_path / "go").write_text("")
    for _ in range(300):  # bounded poll (up to ~60 s)
        task = await loop.store.get_background_task(sid, task.task_id)
        if task.finished:
            break
        await asyncio.sleep(0.2)
    assert task.status == "completed"
    await loop.send("and now?", session_id=sid)
    shown = llm.requests[2].messages[-1]
    assert shown["name"] == "runtime_background_updates" and "finished-ok" in shown["content"]
    assert f'id="{task.task_id}" status="completed"' in shown["content"]
    await loop.send("anything else?", session_id=sid)
    assert not any(m.get("name") == "runtime_background_updates" for m in llm.requests[3].messages)
    stored = await loop.get_messages(sid)
    assert not any(m.get("name") == "runtime_background_updates" for m in stored)  # never persisted
    check_history(stored)
