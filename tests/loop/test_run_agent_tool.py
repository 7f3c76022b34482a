"""The published ``run_agent`` meta-tool (SQLite file, PostgreSQL, MySQL): a full AgentSpec, as an
object or a JSON string, run as a sub-agent; invalid specs answered with an error string."""

from __future__ import annotations

import json
from typing import Any

from power_loop import RUN_AGENT_DEFINITION, ToolRegistry
from power_loop.agents import register_spawn_agent
from power_loop.llm import LLMRequest
from power_loop.loop import AgentLoopConfig
from power_loop.testing import ScriptedLLM, ScriptedTurn


def _last(request: LLMRequest) -> dict[str, Any]:
    return request.messages[-1]


def test_definition_and_registration() -> None:
    assert RUN_AGENT_DEFINITION.name == "run_agent"
    assert RUN_AGENT_DEFINITION.required_params == ("spec", "input")
    both, spawn_only = ToolRegistry(), ToolRegistry()
    register_spawn_agent(both)
    register_spawn_agent(spawn_only, include_run_agent=False)
    assert both.names() == ["spawn_agent", "run_agent"] and spawn_only.names() == ["spawn_agent"]


async def test_run_agent_outside_a_loop_returns_an_error_string() -> None:
    registry = ToolRegistry()
    register_spawn_agent(registry)
    out = await registry.invoke_async(
        "run_agent", {"spec": {"name": "x", "system_prompt": "y"}, "input": "z"}
    )
    assert isinstance(out, str) and out.startswith("Error: run_agent can only run inside")


async def test_run_agent_runs_the_spec_as_object_or_json(make_loop) -> None:
    spec = {"name": "reviewer", "system_prompt": "CHILD: review", "tools": [], "max_rounds": 2}
    calls = iter([spec, json.dumps(spec)])

    def responder(request: LLMRequest) -> ScriptedTurn:
        system = request.system_prompt or ""
        last = _last(request)
        if system.startswith("CHILD"):
            return ScriptedLLM.text(f"reviewed: {last['content']}")
        if last["role"] == "tool":
            return ScriptedLLM.text(f"parent got [{last['content']}]")
        return ScriptedLLM.tool_call("run_agent", {"spec": next(calls), "input": "chapter 2"})

    registry = ToolRegistry()
    register_spawn_agent(registry)
    llm = ScriptedLLM(responder=responder)
    loop = make_loop(llm=llm, tool_registry=registry, config=AgentLoopConfig(system_prompt="PARENT"))
    sid = await loop.new_session()
    for _ in range(2):  # once with the spec as an object, once as a JSON string
        result = await loop.send("review it", sid)
        assert result.final_text == "parent got [reviewed: chapter 2]"
    child_requests = [r for r in llm.requests if (r.system_prompt or "").startswith("CHILD")]
    assert len(child_requests) == 2 and all(not r.tools for r in child_requests)


async def test_an_invalid_spec_is_an_error_result(make_loop) -> None:
    bad = iter([{"name": "x"}, {"name": "x", "system_prompt": "y", "bogus": 1}, "not json", "[1, 2]"])
    seen: list[str] = []

    def responder(request: LLMRequest) -> ScriptedTurn:
        last = _last(request)
        if last["role"] == "tool":
            seen.append(str(last["content"]))
            return ScriptedLLM.text("ok")
        return ScriptedLLM.tool_call("run_agent", {"spec": next(bad), "input": "go"})

    registry = ToolRegistry()
    register_spawn_agent(registry)
    loop = make_loop(llm=ScriptedLLM(responder=responder), tool_registry=registry)
    sid = await loop.new_session()
    for _ in range(4):
        await loop.send("try", sid)
    assert len(seen) == 4
    assert all(text.startswith("Error: invalid AgentSpec — ") for text in seen), seen
    store = await loop.ensure_store()
    assert await store.list_children(sid) == []
