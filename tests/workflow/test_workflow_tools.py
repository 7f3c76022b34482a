"""The LLM-facing workflow tools: a model writes a wrong spec, reads the problems, fixes it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from power_loop.llm import LLMRequest
from power_loop.loop import StatefulAgentLoop, TimerRunner
from power_loop.testing import ScriptedLLM, ScriptedTurn
from power_loop.tools import ToolRegistry
from power_loop.workflow import WORKFLOW_TOOL_NAMES, list_workflows, register_workflow_tools

GOOD = {
    "name": "delegate",
    "root": {
        "type": "agent",
        "id": "helper",
        "spec": {"name": "helper", "system_prompt": "You help with {{input}}.", "tools": ["create_workflow"]},
    },
}
BAD = {"name": "delegate", "root": {"type": "agent", "spec": {"name": "helper"}, "colour": "red"}}


def _tool_results(request: object) -> list[str]:
    return [str(m.get("content")) for m in request.messages if m.get("role") == "tool"]  # type: ignore[attr-defined]


async def test_model_fixes_its_spec_after_reading_the_problems(tmp_path: Path) -> None:
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call("validate_workflow", {"spec": BAD}),
            ScriptedLLM.tool_call("create_workflow", {"spec": BAD}),
            ScriptedLLM.tool_call("create_workflow", {"spec": GOOD, "input": "taxes"}),
            # the leaf tries to start a workflow of its own: refused
            ScriptedLLM.tool_call("create_workflow", {"spec": GOOD}),
            ScriptedLLM.text("helped with taxes"),
            ScriptedLLM.text("all done"),
        ]
    )
    registry = ToolRegistry()
    register_workflow_tools(registry)
    assert set(WORKFLOW_TOOL_NAMES) <= set(registry.names())
    async with StatefulAgentLoop(llm=llm, dsn=str(tmp_path / "wf.db"), tool_registry=registry) as loop:
        sid = await loop.new_session()
        result = await loop.send("Get help with taxes via a workflow.", sid)
        assert result.status == "completed" and result.final_text == "all done"
        validated, rejected = _tool_results(llm.requests[2])[:2]
        for text in (validated, rejected):
            assert text.startswith("Error: invalid workflow spec")
            assert "$.root.id" in text and "$.root.colour" in text and "$.root.spec.system_prompt" in text
        # the leaf ran with {{input}} rendered into its system prompt, and could not nest a workflow
        assert (llm.requests[3].system_prompt or "").startswith("You help with taxes.\n")
        [refusal] = _tool_results(llm.requests[4])
        assert "refused inside a running workflow" in refusal
        summary = _tool_results(llm.requests[5])[-1]
        assert "completed" in summary and "helped with taxes" in summary
        [run] = await list_workflows(loop, sid)
        assert run["status"] == "completed" and run["steps"] == {"helper": "completed"}

        # workflow_status through the tool as well
        llm.push(ScriptedLLM.tool_call("workflow_status", {"run_id": run["run_id"], "detail": True}), "ok")
        await loop.send("status?", sid)
        status = json.loads(_tool_results(llm.requests[-1])[-1])
        assert status["status"] == "completed" and status["detail"][0]["text"] == "helped with taxes"


async def test_model_starts_a_detached_workflow(tmp_path: Path) -> None:
    def reply(request: LLMRequest) -> ScriptedTurn:
        if (request.system_prompt or "").startswith("You help"):
            return ScriptedLLM.text("helped")
        last = request.messages[-1]
        if last.get("role") == "tool":
            return ScriptedLLM.text("started it")
        if "workflow:run:" in str(last.get("content")):
            return ScriptedLLM.text("the workflow finished")
        return ScriptedLLM.tool_call("create_workflow", {"spec": GOOD, "input": "taxes", "detached": True})

    registry = ToolRegistry()
    register_workflow_tools(registry)
    async with StatefulAgentLoop(
        llm=ScriptedLLM(responder=reply), dsn=str(tmp_path / "wf.db"), tool_registry=registry
    ) as loop:
        sid = await loop.new_session()
        result = await loop.send("Start a workflow in the background.", sid)
        assert result.final_text == "started it"
        [run] = await list_workflows(loop, sid)
        assert run["detached"]
        for _ in range(600):  # the background run finishes on this event loop
            if (await list_workflows(loop, sid))[0]["status"] != "running":
                break
            await asyncio.sleep(0.05)
        [run] = await list_workflows(loop, sid)
        assert run["status"] == "completed" and run["woke"]
        assert await TimerRunner(loop).scan_once() == 1
        messages = await loop.get_messages(sid)
        assert messages[-1]["content"] == "the workflow finished"


async def test_a_leaf_naming_a_missing_tool_is_a_spec_problem(tmp_path: Path) -> None:
    spec = {
        "name": "x",
        "root": {
            "type": "sequence",
            "steps": [
                {
                    "type": "agent",
                    "id": "a",
                    "spec": {"name": "a", "system_prompt": "p", "tools": ["create_workflow", "teleport"]},
                }
            ],
        },
    }
    llm = ScriptedLLM([ScriptedLLM.tool_call("create_workflow", {"spec": spec}), ScriptedLLM.text("ok")])
    registry = ToolRegistry()
    register_workflow_tools(registry)
    async with StatefulAgentLoop(llm=llm, dsn=str(tmp_path / "wf.db"), tool_registry=registry) as loop:
        sid = await loop.new_session()
        await loop.send("go", sid)
        [answer] = _tool_results(llm.requests[1])
        assert "$.root.steps[0].spec.tools[1]: no tool named 'teleport'" in answer
        assert "tools[0]" not in answer
        assert await list_workflows(loop, sid) == []  # nothing ran
