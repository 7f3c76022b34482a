"""Engine semantics on SQLite: retry with back-off, on_error, budgets, cancellation, branch, loop."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from wf_helpers import last_user, leaf

from power_loop.contrib.jsonl_sink import attach_jsonl_sink
from power_loop.llm import LLMRequest
from power_loop.loop import StatefulAgentLoop
from power_loop.testing import ScriptedLLM, ScriptedTurn
from power_loop.workflow import (
    SharedBudget,
    WorkflowResult,
    WorkflowRunError,
    WorkflowSpec,
    cancel_workflow,
    create_workflow,
    get_workflow,
    in_workflow,
    list_workflows,
    resume_run,
)


def _spec(root: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"name": "t", "root": root, **top}


async def _run(tmp_path: Path, llm: ScriptedLLM, spec: dict[str, Any], **kw: Any) -> WorkflowResult:
    async with StatefulAgentLoop(llm=llm, dsn=str(tmp_path / "wf.db")) as loop:
        return await create_workflow(spec, parent_loop=loop, **kw).run()


async def test_retry_backs_off_through_the_injected_sleep(tmp_path: Path) -> None:
    failures = {"n": 0}

    def reply(request: LLMRequest) -> ScriptedTurn:
        if failures["n"] < 2:
            failures["n"] += 1
            return ScriptedLLM.error(RuntimeError("boom"))
        return ScriptedLLM.text("finally")

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    retry = {"max_attempts": 3, "backoff_s": 2, "multiplier": 3}
    result = await _run(
        tmp_path, ScriptedLLM(responder=reply), _spec(leaf("a", "p", retry=retry)), sleep=sleep
    )
    assert result.status == "completed", result.errors
    assert result.results["a"].attempts == 3 and result.results["a"].text == "finally"
    assert slept == [2.0, 6.0]


async def test_retry_exhausted_fails_the_run(tmp_path: Path) -> None:
    llm = ScriptedLLM(default=ScriptedLLM.error(RuntimeError("down")))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    spec = _spec(
        {
            "type": "sequence",
            "steps": [leaf("a", "p", retry={"max_attempts": 2, "backoff_s": 0.5}), leaf("b", "p")],
        }
    )
    result = await _run(tmp_path, llm, spec, sleep=sleep)
    assert result.status == "failed" and not result.ok
    assert "b" not in result.results  # a failed leaf halts its sequence
    assert slept == [0.5] and result.results["a"].attempts == 2
    assert result.errors and result.errors[0].startswith("a:")


def _by_topic(request: LLMRequest) -> ScriptedTurn:
    text = last_user(request)
    if "bad" in text:
        return ScriptedLLM.error(RuntimeError("bad item"))
    return ScriptedLLM.text(f"ok {text}")


async def test_foreach_on_error_continue_keeps_going(tmp_path: Path) -> None:
    body = leaf("w", "p", input="{{x}}")
    fan = {
        "type": "foreach",
        "id": "all",
        "as": "x",
        "items": ["a", "bad", "c"],
        "on_error": "continue",
        "body": body,
    }
    spec = _spec({"type": "sequence", "steps": [fan, leaf("sum", "p", input="sum", inputs_from=["all"])]})
    result = await _run(tmp_path, ScriptedLLM(responder=_by_topic), spec)
    assert result.status == "completed" and not result.ok
    assert [result.results[f"w:{i}"].status for i in range(3)] == ["completed", "failed", "completed"]
    assert result.results["all"].payload == {"items": ["ok a", "ok c"]}
    assert len(result.errors) == 1 and result.errors[0].startswith("w:1")
    # the step after the foreach reads the items that succeeded
    assert result.final is not None and result.final.text == "ok sum\n\n--- context ---\nok a\n\nok c"


async def test_parallel_halt_fails_the_run(tmp_path: Path) -> None:
    spec = _spec(
        {
            "type": "parallel",
            "branches": [leaf("a", "p", input="bad"), leaf("b", "p", input="fine")],
            "max_concurrency": 1,
        }
    )
    result = await _run(tmp_path, ScriptedLLM(responder=_by_topic), spec)
    assert result.status == "failed"
    assert "b" not in result.results  # the sibling never started


async def test_budget_stops_new_leaves(tmp_path: Path) -> None:
    spec = _spec(
        {"type": "sequence", "steps": [leaf("a", "p"), leaf("b", "p"), leaf("c", "p")]},
        budget={"max_tokens": 20},
    )
    result = await _run(tmp_path, ScriptedLLM(default="x"), spec)  # 15 tokens per call
    assert result.status == "budget_exceeded"
    assert [k for k, r in result.results.items() if r.ok] == ["a", "b"]
    four = _spec({"type": "sequence", "steps": [leaf(n, "p") for n in "abcd"]})
    shared = SharedBudget(100, stop_at_remaining_pct=60)
    result = await _run(tmp_path, ScriptedLLM(default="x"), four, budget=shared)
    # after a, b, c: 45 spent, 55% left < 60%: d never starts
    assert shared.spent == 45 and result.status == "budget_exceeded"
    assert result.results["d"].status == "budget_exceeded"


async def test_cancel_stops_the_run(tmp_path: Path) -> None:
    entered, gate = asyncio.Event(), asyncio.Event()

    async def reply(request: LLMRequest) -> ScriptedTurn:
        entered.set()
        await gate.wait()
        return ScriptedLLM.text("done")

    spec = _spec({"type": "sequence", "steps": [leaf("a", "p"), leaf("b", "p")]})
    async with StatefulAgentLoop(llm=ScriptedLLM(responder=reply), dsn=str(tmp_path / "wf.db")) as loop:
        wf = create_workflow(spec, parent_loop=loop)
        task = asyncio.ensure_future(wf.run())
        await entered.wait()
        wf.cancel("user stop")
        gate.set()
        result = await task
    assert result.status == "cancelled"
    assert "b" not in result.results


async def test_branch_on_payload_and_items_from(tmp_path: Path) -> None:
    schema = {
        "name": "plan",
        "schema": {"type": "object", "properties": {"kind": {"type": "string"}, "topics": {"type": "array"}}},
    }

    def reply(request: LLMRequest) -> ScriptedTurn:
        if request.system_prompt == "plan":
            return ScriptedLLM.json({"kind": "deep", "topics": ["x", "y"]})
        return ScriptedLLM.text(f"{request.system_prompt}:{last_user(request)}")

    spec = _spec(
        {
            "type": "sequence",
            "steps": [
                leaf("plan", "plan", output_schema=schema),
                {
                    "type": "branch",
                    "on": "plan.kind",
                    "cases": {
                        "deep": {
                            "type": "foreach",
                            "id": "dig",
                            "as": "t",
                            "items_from": "plan.topics",
                            "body": leaf("digger", "dig", input="{{t}}"),
                        },
                        "shallow": leaf("skim", "skim"),
                    },
                },
                leaf("sum", "sum", input="{{plan.kind}} {{dig}}"),
            ],
        }
    )
    result = await _run(tmp_path, ScriptedLLM(responder=reply), spec)
    assert result.status == "completed", result.errors
    assert result.results["plan"].payload == {"kind": "deep", "topics": ["x", "y"]}
    assert [result.results[f"digger:{i}"].text for i in (0, 1)] == ["dig:x", "dig:y"]
    assert "skim" not in result.results
    assert result.final is not None and result.final.text == "sum:deep dig:x\n\ndig:y"


async def test_loop_until_condition(tmp_path: Path) -> None:
    schema = {"name": "v", "schema": {"type": "object"}}
    calls = {"n": 0}

    def reply(request: LLMRequest) -> ScriptedTurn:
        calls["n"] += 1
        return ScriptedLLM.json({"done": calls["n"] >= 2, "round": last_user(request)})

    body = leaf("critic", "critic", input="round {{iteration}}", output_schema=schema)
    spec = _spec(
        {
            "type": "loop",
            "id": "refine",
            "body": body,
            "until": {"ref": "critic.done", "op": "eq", "value": True},
        }
    )
    result = await _run(tmp_path, ScriptedLLM(responder=reply), spec)
    assert result.status == "completed" and calls["n"] == 2
    assert result.results["critic:2"].payload == {"done": True, "round": "round 2"}
    spec["root"]["max_iterations"] = 1
    calls["n"] = 0
    failed = await _run(tmp_path, ScriptedLLM(responder=reply), spec)
    assert failed.status == "failed" and "condition not met" in failed.errors[0]


async def test_unresolved_reference_fails_cleanly(tmp_path: Path) -> None:
    schema = {"name": "s", "schema": {"type": "object"}}
    spec = _spec(
        {
            "type": "sequence",
            "steps": [
                leaf("a", "a", output_schema=schema),
                {"type": "branch", "on": "a.key", "cases": {"x": leaf("b", "b")}},
            ],
        }
    )
    result = await _run(tmp_path, ScriptedLLM(default=ScriptedLLM.json({"other": 1})), spec)
    assert result.status == "failed" and "has no completed result" in result.errors[0]


async def test_a_leaf_whitelisting_an_unknown_tool_fails(tmp_path: Path) -> None:
    spec = _spec({"type": "agent", "id": "a", "spec": {"name": "a", "system_prompt": "p", "tools": ["nope"]}})
    llm = ScriptedLLM(default="x")
    result = await _run(tmp_path, llm, spec)
    assert result.status == "failed" and "nope" in (result.results["a"].error or "")
    assert llm.requests == []


async def test_observability_sinks_show_workflow_events(tmp_path: Path) -> None:
    spec = _spec({"type": "sequence", "steps": [leaf("a", "p"), leaf("b", "p")]})
    path = tmp_path / "events.jsonl"
    async with StatefulAgentLoop(llm=ScriptedLLM(default="x"), dsn=str(tmp_path / "wf.db")) as loop:
        sink = attach_jsonl_sink(loop.event_bus, path)
        result = await create_workflow(spec, parent_loop=loop).run()
        sink.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    types = [line["type"] for line in lines]
    assert types.count("workflow_step_completed") == 2
    done = next(line for line in lines if line["type"] == "workflow_completed")
    assert done["payload"]["run_id"] == result.run_id and done["payload"]["status"] == "completed"


async def test_a_workflow_runs_once(tmp_path: Path) -> None:
    async with StatefulAgentLoop(llm=ScriptedLLM(default="x"), dsn=str(tmp_path / "wf.db")) as loop:
        workflow = create_workflow(_spec(leaf("a", "p")), parent_loop=loop)
        assert (await workflow.run()).ok
        with pytest.raises(WorkflowRunError, match="resume_run"):
            await workflow.run()


async def test_continue_on_error_leaf_does_not_stop_the_sequence(tmp_path: Path) -> None:
    steps = [leaf("a", "p", input="bad", continue_on_error=True), leaf("b", "p", input="fine")]
    result = await _run(
        tmp_path, ScriptedLLM(responder=_by_topic), _spec({"type": "sequence", "steps": steps})
    )
    assert result.status == "completed" and not result.ok
    assert result.results["a"].status == "failed" and result.results["b"].text == "ok fine"
    assert len(result.errors) == 1


async def test_unknown_runs_and_in_workflow(tmp_path: Path) -> None:
    seen: list[bool] = []

    def reply(request: LLMRequest) -> ScriptedTurn:
        seen.append(in_workflow())
        return ScriptedLLM.text("x")

    async with StatefulAgentLoop(llm=ScriptedLLM(responder=reply), dsn=str(tmp_path / "wf.db")) as loop:
        sid = await loop.new_session()
        assert await get_workflow(loop, sid, "nope") is None
        assert await list_workflows(loop, sid) == []
        assert not await cancel_workflow(loop, sid, "nope")
        with pytest.raises(WorkflowRunError, match="no workflow run"):
            await resume_run(loop, sid, "nope")
        assert not in_workflow()
        await create_workflow(_spec(leaf("a", "p")), parent_loop=loop).run()
    assert seen == [True]  # the leaf's model call ran inside the workflow


async def test_a_leaf_too_deep_for_max_spawn_depth_fails_cleanly(tmp_path: Path) -> None:
    async with StatefulAgentLoop(
        llm=ScriptedLLM(default="x"), dsn=str(tmp_path / "wf.db"), max_spawn_depth=1
    ) as loop:
        parent = await loop.new_session()  # depth 0; the driver is at 1, so a leaf would be at 2
        result = await create_workflow(
            _spec(leaf("a", "p")), parent_loop=loop, parent_session_id=parent
        ).run()
    assert result.status == "failed" and "max_spawn_depth" in (result.results["a"].error or "")


async def test_a_system_prompt_rendering_to_nothing_fails_the_run(tmp_path: Path) -> None:
    spec = _spec(leaf("a", "{{input}}"), input=" ")
    llm = ScriptedLLM(default="x")
    result = await _run(tmp_path, llm, spec)
    assert result.status == "failed" and "rendered system_prompt" in result.errors[0]
    assert llm.requests == []


async def test_timeout_stops_the_run_on_the_injected_clock(tmp_path: Path) -> None:
    entered, gate, fire = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def reply(request: LLMRequest) -> ScriptedTurn:
        entered.set()
        await gate.wait()
        return ScriptedLLM.text("done")

    async def sleep(seconds: float) -> None:
        assert seconds == 30  # the watchdog: it "elapses" when the test says so
        await fire.wait()

    spec = _spec({"type": "sequence", "steps": [leaf("a", "p"), leaf("b", "p")]}, timeout_s=30)
    assert WorkflowSpec.from_json(spec).timeout_s == 30.0
    async with StatefulAgentLoop(llm=ScriptedLLM(responder=reply), dsn=str(tmp_path / "wf.db")) as loop:
        task = asyncio.ensure_future(create_workflow(spec, parent_loop=loop, sleep=sleep).run())
        await entered.wait()
        fire.set()
        await asyncio.sleep(0)
        gate.set()
        result = await task
    assert result.status == "failed" and result.errors == ["the workflow timed out after 30s"]
    assert result.results["a"].ok and "b" not in result.results
