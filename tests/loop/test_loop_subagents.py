"""Sub-agents driven through a real loop (SQLite file, PostgreSQL, MySQL): spawn_agent, depth limit,
lifecycles, events, and a blackboard shared by a parent and its child."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from power_loop import AgentEventType, ToolDefinition, ToolRegistry
from power_loop.agents import (
    AgentSpec,
    StoreBlackboard,
    register_blackboard_tools,
    register_spawn_agent,
    run_agent_spec,
)
from power_loop.errors import AgentSpecError
from power_loop.llm import LLMRequest
from power_loop.loop import AgentLoopConfig
from power_loop.testing import ScriptedLLM, ScriptedTurn
from power_loop.tools import ToolRuntimeContext, get_tool_runtime_context, use_tool_runtime_context

SUBAGENT_EVENTS = (
    AgentEventType.SUBAGENT_TASK_START,
    AgentEventType.SUBAGENT_TEXT,
    AgentEventType.SUBAGENT_LIMIT,
    AgentEventType.SUBAGENT_COMPLETED,
)


def _last(request: LLMRequest) -> dict[str, Any]:
    return request.messages[-1]


def _tool_names(request: LLMRequest) -> set[str]:
    return {t["function"]["name"] for t in request.tools or []}


def _registry() -> ToolRegistry:
    registry = ToolRegistry()
    registry.register(
        ToolDefinition(
            "echo",
            "Echo text.",
            required_params=("text",),
            input_schema={"type": "object", "properties": {"text": {"type": "string"}}},
        ),
        lambda text: f"echo:{text}",
    )
    registry.register(ToolDefinition("secret", "Parent-only tool."), lambda: "classified")
    register_spawn_agent(registry)
    return registry


async def test_spawn_agent_runs_child_with_its_prompt_and_tool_subset(make_loop):
    def responder(request: LLMRequest) -> ScriptedTurn:
        system = request.system_prompt or ""
        last = _last(request)
        if system.startswith("PARENT"):
            if last["role"] == "tool":
                return ScriptedLLM.text(f"parent got [{last['content']}]")
            return ScriptedLLM.tool_call(
                "spawn_agent", {"task": "say hi", "system_prompt": "CHILD: be brief", "tools": ["echo"]}
            )
        assert system.startswith("CHILD: be brief")
        if last["role"] == "tool":
            return ScriptedLLM.text(f"child done ({last['content']})")
        return ScriptedLLM.tool_call("echo", {"text": "hi"})

    llm = ScriptedLLM(responder=responder)
    loop = make_loop(llm=llm, tool_registry=_registry(), config=AgentLoopConfig(system_prompt="PARENT"))
    sid = await loop.new_session()
    result = await loop.send("delegate please", sid)

    assert result.status == "completed"
    assert result.final_text == "parent got [child done (echo:hi)]"
    child_requests = [r for r in llm.requests if (r.system_prompt or "").startswith("CHILD")]
    assert len(child_requests) == 2
    assert _tool_names(child_requests[0]) == {"echo"}
    assert [(m["role"], m["content"]) for m in child_requests[0].messages] == [("user", "say hi")]
    parent_requests = [r for r in llm.requests if (r.system_prompt or "").startswith("PARENT")]
    assert _tool_names(parent_requests[0]) == {"echo", "secret", "spawn_agent", "run_agent"}
    store = await loop.ensure_store()
    assert await store.list_children(sid) == []  # spawn_agent children are ephemeral: gone once done


async def test_depth_limit_rejects_without_creating_a_session(make_loop):
    def responder(request: LLMRequest) -> ScriptedTurn:
        system = request.system_prompt or ""
        last = _last(request)
        if last["role"] == "tool":
            return ScriptedLLM.text(f"{system.split(':')[0]} saw <{last['content']}>")
        if system.startswith("PARENT"):
            return ScriptedLLM.tool_call("spawn_agent", {"task": "level 1", "system_prompt": "CHILD: go"})
        if system.startswith("CHILD"):
            return ScriptedLLM.tool_call(
                "spawn_agent", {"task": "level 2", "system_prompt": "GRANDCHILD: go"}
            )
        raise AssertionError("the grandchild must never run")

    loop = make_loop(
        llm=ScriptedLLM(responder=responder),
        tool_registry=_registry(),
        config=AgentLoopConfig(system_prompt="PARENT"),
        max_spawn_depth=1,
    )
    sid = await loop.new_session()
    seen_sessions: list[int] = []

    def count(event: Any) -> None:
        seen_sessions.append(event.data.depth)

    loop.event_bus.subscribe(AgentEventType.SUBAGENT_TASK_START, count)
    result = await loop.send("go", sid)

    assert result.status == "completed"
    assert "[sub-agent status=rejected]" in result.final_text
    assert "max_spawn_depth=1" in result.final_text
    assert seen_sessions == [1, 2]
    store = await loop.ensure_store()
    assert [s.session_id for s in await store.list_sessions()] == [sid]


def _delegating_loop(make_loop, *, child_rounds_forever: bool = False, **loop_kwargs: Any):
    """A parent whose ``delegate`` tool runs ``run_agent_spec`` with the given lifecycle."""
    outcomes: list[dict[str, Any]] = []
    registry = _registry()

    async def delegate(lifecycle: str, max_rounds: int = 4) -> str:
        ctx = get_tool_runtime_context(required=True)
        spec = AgentSpec(
            name="worker",
            system_prompt="CHILD",
            tools=["echo"],
            max_rounds=max_rounds,
            lifecycle=lifecycle,
            metadata={"team": "a"},
        )
        outcome = await run_agent_spec(spec, "work", parent_loop=ctx.loop, spawn_tool_call_id="call_x")
        outcomes.append(outcome)
        return json.dumps({k: outcome[k] for k in ("status", "final_text")})

    registry.register(
        ToolDefinition(
            "delegate",
            "Run a worker.",
            required_params=("lifecycle",),
            input_schema={
                "type": "object",
                "properties": {"lifecycle": {"type": "string"}, "max_rounds": {"type": "integer"}},
            },
        ),
        delegate,
    )
    script: dict[str, Any] = {"args": {"lifecycle": "ephemeral"}}

    def responder(request: LLMRequest) -> ScriptedTurn:
        system = request.system_prompt or ""
        last = _last(request)
        if system.startswith("PARENT"):
            if last["role"] == "tool":
                return ScriptedLLM.text("parent done")
            return ScriptedLLM.tool_call("delegate", script["args"])
        if child_rounds_forever or last["role"] != "tool":
            return ScriptedLLM.tool_call("echo", {"text": "again"})
        return ScriptedLLM.text("worker finished")

    loop = make_loop(
        llm=ScriptedLLM(responder=responder),
        tool_registry=registry,
        config=AgentLoopConfig(system_prompt="PARENT"),
        **loop_kwargs,
    )
    return loop, outcomes, script


@pytest.mark.parametrize("lifecycle", ["ephemeral", "linked", "detached"])
async def test_lifecycles_decide_which_child_rows_survive(make_loop, lifecycle):
    loop, outcomes, script = _delegating_loop(make_loop)
    script["args"] = {"lifecycle": lifecycle}
    sid = await loop.new_session()
    assert (await loop.send("go", sid)).status == "completed"
    (outcome,) = outcomes
    assert outcome["status"] == "completed" and outcome["final_text"] == "worker finished"
    assert outcome["depth"] == 1 and outcome["rounds"] == 2
    store = await loop.ensure_store()
    children = await store.list_children(sid)
    if lifecycle == "ephemeral":
        assert outcome["session_id"] is None and children == []
        return
    (child,) = children
    assert child.session_id == outcome["session_id"]
    assert child.lifecycle.value == lifecycle and child.spawn_depth == 1
    assert child.spawn_tool_call_id == "call_x"
    assert child.metadata == {"team": "a", "spec_name": "worker"}
    assert child.system_prompt == "CHILD"

    await loop.close_session(sid)
    survivor = await store.get_session(child.session_id)
    if lifecycle == "linked":
        assert survivor is None
    else:
        assert survivor is not None and survivor.parent_session_id is None


async def test_ephemeral_child_that_hits_its_round_limit_is_kept(make_loop):
    loop, outcomes, script = _delegating_loop(make_loop, child_rounds_forever=True)
    script["args"] = {"lifecycle": "ephemeral", "max_rounds": 2}
    sid = await loop.new_session()
    await loop.send("go", sid)
    (outcome,) = outcomes
    assert outcome["status"] == "hit_round_limit"
    store = await loop.ensure_store()
    assert [c.session_id for c in await store.list_children(sid)] == [outcome["session_id"]]


@pytest.mark.parametrize(
    "forever, expected",
    [
        (False, ["subagent_task_start", "subagent_text", "subagent_completed"]),
        (True, ["subagent_task_start", "subagent_limit", "subagent_completed"]),
    ],
)
async def test_subagent_events_in_order_on_the_parent_session(make_loop, forever, expected):
    loop, outcomes, script = _delegating_loop(make_loop, child_rounds_forever=forever)
    script["args"] = {"lifecycle": "linked", "max_rounds": 2}
    events: list[Any] = []
    for kind in SUBAGENT_EVENTS:
        loop.event_bus.subscribe(kind, events.append)
    sid = await loop.new_session()
    await loop.send("go", sid)
    assert [e.type.value for e in events] == expected
    assert {e.source for e in events} == {"subagent"}
    assert {e.session_id for e in events} == {sid}
    child_sid = outcomes[0]["session_id"]
    assert {e.data.sub_session_id for e in events} == {child_sid}
    assert events[-1].data.status == outcomes[0]["status"]
    if forever:
        assert events[1].data.max_rounds == 2
    else:
        assert events[1].data.final_text == "worker finished"


async def test_invalid_specs_and_failing_children(make_loop):
    def responder(request: LLMRequest) -> ScriptedTurn:
        if (request.system_prompt or "").startswith("CHILD"):
            return ScriptedLLM.error(RuntimeError("provider down"))
        if _last(request)["role"] == "tool":
            return ScriptedLLM.text(str(_last(request)["content"]))
        return ScriptedLLM.tool_call(
            "spawn_agent", {"task": "t", "system_prompt": "CHILD", "tools": ["nope"]}
        )

    loop = make_loop(
        llm=ScriptedLLM(responder=responder),
        tool_registry=_registry(),
        config=AgentLoopConfig(system_prompt="PARENT"),
    )
    sid = await loop.new_session()
    result = await loop.send("go", sid)
    assert result.final_text.startswith("Error: invalid AgentSpec")
    assert "nope" in result.final_text

    store = await loop.ensure_store()
    with use_tool_runtime_context(ToolRuntimeContext(session_id=sid, store=store, loop=loop)):
        with pytest.raises(AgentSpecError):
            await run_agent_spec(
                {"name": "x", "system_prompt": "CHILD", "tool": ["echo"]}, "t", parent_loop=loop
            )
        failed = await run_agent_spec(
            '{"name": "x", "system_prompt": "CHILD", "lifecycle": "ephemeral"}', "t", parent_loop=loop
        )
    assert failed["status"] == "failed" and "provider down" in failed["final_text"]
    kept = await store.get_session(failed["session_id"])
    assert kept is not None and kept.parent_session_id == sid  # not completed: kept for inspection


async def test_spawn_agent_outside_a_loop_returns_an_error_string():
    registry = ToolRegistry()
    register_spawn_agent(registry)
    out = await registry.invoke_async("spawn_agent", {"task": "x"})
    assert isinstance(out, str) and out.startswith("Error:")


async def test_parent_and_child_share_one_board(make_loop):
    def responder(request: LLMRequest) -> ScriptedTurn:
        system = request.system_prompt or ""
        last = _last(request)
        tool_turns = sum(1 for m in request.messages if m["role"] == "tool")
        if system.startswith("PARENT"):
            steps = [
                ScriptedLLM.tool_call(
                    "board_post", {"text": "plan the work", "kind": "task", "status": "open"}
                ),
                ScriptedLLM.tool_call(
                    "spawn_agent",
                    {
                        "task": "do #1",
                        "system_prompt": "CHILD",
                        "tools": ["board_read", "board_post", "board_update"],
                    },
                ),
                ScriptedLLM.tool_call("board_read", {}),
            ]
            return steps[tool_turns] if tool_turns < len(steps) else ScriptedLLM.text(str(last["content"]))
        steps = [
            ScriptedLLM.tool_call("board_update", {"entry_id": 1, "status": "done"}),
            ScriptedLLM.tool_call("board_post", {"text": "finished #1"}),
        ]
        return steps[tool_turns] if tool_turns < len(steps) else ScriptedLLM.text("ok")

    registry = _registry()
    loop = make_loop(
        llm=ScriptedLLM(responder=responder),
        tool_registry=registry,
        config=AgentLoopConfig(system_prompt="PARENT"),
    )
    store = await loop.ensure_store()
    board = StoreBlackboard(store)
    register_blackboard_tools(registry, board, "team-1")
    sid = await loop.new_session()
    result = await loop.send("go", sid)

    entries = await board.read("team-1")
    assert [(e.id, e.kind, e.status, e.text) for e in entries] == [
        (1, "task", "done", "plan the work"),
        (2, "note", None, "finished #1"),
    ]
    assert entries[0].author == sid
    assert entries[1].author not in (None, sid)  # the child's (now deleted) session id
    assert "#1 [task·done]" in result.final_text and "#2 [note]" in result.final_text


async def test_cancelling_the_parent_mid_delegation_still_closes_the_event_bracket(make_loop):
    started = asyncio.Event()
    registry = _registry()

    async def block() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    registry.register(ToolDefinition("block", "Blocks forever."), block)

    def responder(request: LLMRequest) -> ScriptedTurn:
        if (request.system_prompt or "").startswith("CHILD"):
            return ScriptedLLM.tool_call("block", {})
        return ScriptedLLM.tool_call(
            "spawn_agent", {"task": "t", "system_prompt": "CHILD", "tools": ["block"]}
        )

    loop = make_loop(
        llm=ScriptedLLM(responder=responder),
        tool_registry=registry,
        config=AgentLoopConfig(system_prompt="PARENT"),
    )
    events: list[Any] = []
    for kind in SUBAGENT_EVENTS:
        loop.event_bus.subscribe(kind, events.append)
    sid = await loop.new_session()
    task = asyncio.create_task(loop.send("go", sid))
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [e.type.value for e in events] == ["subagent_task_start", "subagent_completed"]
    assert events[-1].data.status == "cancelled"
    store = await loop.ensure_store()
    (child,) = await store.list_children(sid)  # not completed: the ephemeral child is kept
    assert child.session_id == events[-1].data.sub_session_id


async def test_each_tool_call_sees_its_own_id_and_spawned_children_record_it(make_loop):
    seen: dict[str, str | None] = {}

    async def who(text: str) -> str:
        ctx = get_tool_runtime_context(required=True)
        seen[text] = ctx.tool_call_id
        return text

    registry = _registry()
    registry.register(
        ToolDefinition(
            "who",
            "Report the call id.",
            input_schema={"type": "object", "properties": {"text": {"type": "string"}}},
        ),
        who,
    )

    def responder(request: LLMRequest) -> ScriptedTurn:
        system = request.system_prompt or ""
        if system.startswith("PARENT"):
            if _last(request)["role"] == "tool":
                return ScriptedLLM.text("parent done")
            return ScriptedLLM.tool_calls(
                [
                    ("who", {"text": "a"}),
                    ("who", {"text": "b"}),
                    ("spawn_agent", {"task": "loop", "max_rounds": 1}),
                ]
            )
        return ScriptedLLM.tool_call("echo", {"text": "again"})  # the child never finishes: it is kept

    loop = make_loop(
        llm=ScriptedLLM(responder=responder),
        tool_registry=registry,
        config=AgentLoopConfig(system_prompt="PARENT"),
    )
    sid = await loop.new_session()
    await loop.send("go", sid)
    messages = await loop.get_messages(sid)
    calls = {c["function"]["name"] + c["function"]["arguments"]: c["id"] for c in messages[1]["tool_calls"]}
    assert seen == {"a": calls['who{"text": "a"}'], "b": calls['who{"text": "b"}']}
    (child,) = await (await loop.ensure_store()).list_children(sid)
    spawn_id = next(c["id"] for c in messages[1]["tool_calls"] if c["function"]["name"] == "spawn_agent")
    assert child.spawn_tool_call_id == spawn_id
