"""``workflow.step_start`` / ``workflow.step_end`` hooks, fired through the parent loop's hooks."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from wf_helpers import last_user, leaf

from power_loop.hooks import AgentHooks, HookDirective, HookPoint, WorkflowStepEndCtx, WorkflowStepStartCtx
from power_loop.llm import LLMRequest
from power_loop.loop import StatefulAgentLoop
from power_loop.testing import ScriptedLLM, ScriptedTurn
from power_loop.workflow import WorkflowResult, create_workflow, resume_run


def _echo(request: LLMRequest) -> ScriptedTurn:
    return ScriptedLLM.text(f"{request.system_prompt}:{last_user(request)}")


def _spec() -> dict[str, Any]:
    steps = [leaf("a", "A", input="one"), leaf("b", "B", input="two"), leaf("c", "C", input="{{a}}")]
    return {"name": "t", "root": {"type": "sequence", "steps": steps}}


async def _run(tmp_path: Path, hooks: AgentHooks) -> WorkflowResult:
    llm = ScriptedLLM(responder=_echo)
    async with StatefulAgentLoop(llm=llm, dsn=str(tmp_path / "wf.db"), hooks=hooks) as loop:
        return await create_workflow(_spec(), parent_loop=loop).run()


async def test_step_start_skips_a_step_or_rewrites_its_input(tmp_path: Path) -> None:
    seen: list[tuple[str, str, str]] = []

    def on_start(ctx: WorkflowStepStartCtx) -> HookDirective | None:
        seen.append((ctx.step, ctx.node_id, ctx.user_input))
        assert ctx.run_id and ctx.session_id and ctx.spec.name == ctx.node_id
        if ctx.node_id == "b":
            ctx.reason = "not today"
            return HookDirective.SKIP
        if ctx.node_id == "a":
            ctx.user_input = "rewritten"
        return None

    hooks = AgentHooks()
    hooks.register(HookPoint.WORKFLOW_STEP_START, on_start)
    result = await _run(tmp_path, hooks)
    assert result.status == "completed" and result.errors == []
    assert result.results["a"].text == "A:rewritten"
    assert result.results["b"].status == "skipped" and result.results["b"].error == "not today"
    assert result.results["b"].session_id is None  # no leaf session was made
    assert result.results["c"].text == "C:A:rewritten"
    assert [s[1] for s in seen] == ["a", "b", "c"]


async def test_step_end_observes_and_replaces_the_result(tmp_path: Path) -> None:
    ended: list[tuple[str, str]] = []

    def on_end(ctx: WorkflowStepEndCtx) -> None:
        ended.append((ctx.node_id, ctx.result.status))
        if ctx.node_id == "a":
            ctx.result = dataclasses.replace(ctx.result, text="redacted")

    hooks = AgentHooks()
    hooks.register(HookPoint.WORKFLOW_STEP_END, on_end)
    result = await _run(tmp_path, hooks)
    assert ended == [("a", "completed"), ("b", "completed"), ("c", "completed")]
    assert result.results["a"].text == "redacted"
    assert result.results["c"].text == "C:redacted"  # later steps read the replacement


async def test_a_skip_is_journaled_and_replayed_on_resume_without_hooks(tmp_path: Path) -> None:
    hooks = AgentHooks()
    hooks.register(HookPoint.WORKFLOW_STEP_START, lambda ctx: HookDirective.SKIP)
    first = await _run(tmp_path, hooks)
    assert {k: r.status for k, r in first.results.items()} == {"a": "skipped", "b": "skipped", "c": "skipped"}
    async with StatefulAgentLoop(llm=ScriptedLLM(responder=_echo), dsn=str(tmp_path / "wf.db")) as loop:
        again = await resume_run(loop, first.parent_session_id, first.run_id)
    assert all(r.replayed and r.status == "skipped" for r in again.results.values())


async def test_a_skipped_item_leaves_a_foreach_completed_without_it(tmp_path: Path) -> None:
    body = leaf("item", "I", input="{{x}}")
    spec = {
        "name": "t",
        "root": {"type": "foreach", "id": "all", "as": "x", "items": [1, 2, 3], "body": body},
    }
    hooks = AgentHooks()
    hooks.register(
        HookPoint.WORKFLOW_STEP_START, lambda ctx: HookDirective.SKIP if ctx.user_input == "2" else None
    )
    async with StatefulAgentLoop(
        llm=ScriptedLLM(responder=_echo), dsn=str(tmp_path / "wf.db"), hooks=hooks
    ) as loop:
        result = await create_workflow(spec, parent_loop=loop).run()
    assert result.status == "completed" and result.errors == []
    assert result.results["all"].status == "completed"
    assert result.results["all"].payload == {"items": ["I:1", "I:3"]}
