"""Detached runs: a background run wakes its parent exactly once, and is cancellable by run id."""

from __future__ import annotations

import asyncio

import pytest
from wf_helpers import last_user, leaf, research_reply, research_spec

from power_loop.llm import LLMRequest
from power_loop.loop import StatefulAgentLoop, TimerRunner
from power_loop.testing import ScriptedLLM, ScriptedTurn
from power_loop.workflow import (
    WorkflowRunError,
    WorkflowSpec,
    cancel_workflow,
    create_workflow,
    list_workflows,
    rehydrate,
    replayable_node_ids,
    resume_detached,
    resume_run,
    run_detached,
)


def _reply(request: LLMRequest) -> ScriptedTurn:
    if "workflow:run:" in last_user(request):
        return ScriptedLLM.text("noted")
    return research_reply(request)


async def _wake_messages(loop: StatefulAgentLoop, sid: str, run_id: str) -> list[str]:
    rows = await (await loop.ensure_store()).load_all_messages(sid)
    return [str(r.content) for r in rows if r.role == "user" and f"workflow:run:{run_id}" in str(r.content)]


async def test_detached_run_wakes_the_parent_exactly_once(loop_dsn_and_prefix: tuple[str, str]) -> None:
    dsn, prefix = loop_dsn_and_prefix
    llm = ScriptedLLM(responder=_reply)
    async with (
        StatefulAgentLoop(llm=llm, dsn=dsn, table_prefix=prefix) as loop,
        StatefulAgentLoop(llm=llm, dsn=dsn, table_prefix=prefix) as other,
    ):
        parent = await loop.new_session()
        workflow = create_workflow(
            research_spec(["solar", "wind"]), parent_loop=loop, parent_session_id=parent
        )
        handle = await workflow.start(detached=True)
        assert handle.run_id == workflow.run_id
        result = await handle.wait()
        assert result.status == "completed" and handle.done
        [timer] = await loop.list_timers(parent)
        assert timer.note == f"workflow:run:{handle.run_id} completed"

        # two timer runners (as two processes would) race for the wake: one delivers it
        runners = [TimerRunner(loop), TimerRunner(other)]
        fired = await asyncio.gather(*(r.scan_once() for r in runners))
        assert sum(fired) == 1
        assert len(await _wake_messages(loop, parent, handle.run_id)) == 1

        # resuming the finished detached run replays it and does not wake the parent again
        again = await resume_run(other, parent, handle.run_id)
        assert again.status == "completed"
        assert await loop.list_timers(parent) == []  # no second wake armed
        assert sum(await asyncio.gather(*(r.scan_once() for r in runners))) == 0
        assert len(await _wake_messages(loop, parent, handle.run_id)) == 1
        [run] = await list_workflows(loop, parent)
        assert run["detached"] and run["woke"]


async def test_detached_needs_a_parent_session(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with StatefulAgentLoop(llm=ScriptedLLM(), dsn=str(tmp_path / "wf.db")) as loop:
        with pytest.raises(WorkflowRunError, match="parent_session_id"):
            await create_workflow(research_spec(["x"]), parent_loop=loop).start(detached=True)


async def test_cancel_by_run_id_from_another_loop(loop_dsn_and_prefix: tuple[str, str]) -> None:
    dsn, prefix = loop_dsn_and_prefix
    entered, gate = asyncio.Event(), asyncio.Event()

    async def reply(request: LLMRequest) -> ScriptedTurn:
        if "workflow:run:" in last_user(request):
            return ScriptedLLM.text("noted")
        entered.set()
        await gate.wait()
        return ScriptedLLM.text("done")

    spec = {"name": "two", "root": {"type": "sequence", "steps": [leaf("a", "p"), leaf("b", "p")]}}
    async with (
        StatefulAgentLoop(llm=ScriptedLLM(responder=reply), dsn=dsn, table_prefix=prefix) as loop,
        StatefulAgentLoop(llm=ScriptedLLM(), dsn=dsn, table_prefix=prefix) as other,
    ):
        parent = await loop.new_session()
        handle = await create_workflow(spec, parent_loop=loop, parent_session_id=parent).start(detached=True)
        await entered.wait()
        assert await cancel_workflow(other, parent, handle.run_id, reason="operator")
        gate.set()
        result = await handle.wait()
        assert result.status == "cancelled"
        assert result.results["a"].ok and result.results["b"].status == "cancelled"
        assert not await cancel_workflow(other, parent, handle.run_id)  # finished: nothing to cancel
        [timer] = await loop.list_timers(parent)
        assert timer.note == f"workflow:run:{handle.run_id} cancelled"
        [run] = await list_workflows(other, parent)
        assert run["status"] == "cancelled" and run["cancel_requested"]


async def test_a_detached_run_that_died_is_resumed_in_the_background(
    loop_dsn_and_prefix: tuple[str, str],
) -> None:
    dsn, prefix = loop_dsn_and_prefix
    entered = asyncio.Event()

    async def stuck(request: LLMRequest) -> ScriptedTurn:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    spec = {
        "name": "two",
        "root": {
            "type": "sequence",
            "steps": [leaf("a", "You research a."), leaf("b", "You write reports.")],
        },
    }
    async with (
        StatefulAgentLoop(llm=ScriptedLLM(responder=stuck), dsn=dsn, table_prefix=prefix) as loop,
        StatefulAgentLoop(llm=ScriptedLLM(responder=_reply), dsn=dsn, table_prefix=prefix) as other,
    ):
        parent = await loop.new_session()
        handle = await create_workflow(spec, parent_loop=loop, parent_session_id=parent).start(detached=True)
        await entered.wait()
        handle.task.cancel()  # the process running it "dies": the journal still says running
        with pytest.raises(asyncio.CancelledError):
            await handle.task
        [run] = await list_workflows(other, parent)
        assert run["status"] == "running" and not run["woke"]
        assert await loop.list_timers(parent) == []

        again = await resume_detached(other, parent, handle.run_id)
        result = await again.wait()
        assert result.status == "completed" and result.final is not None
        [timer] = await other.list_timers(parent)
        assert timer.note == f"workflow:run:{handle.run_id} completed"


async def test_eager_wake_delivers_the_note_at_once_and_arms_no_timer(
    loop_dsn_and_prefix: tuple[str, str],
) -> None:
    dsn, prefix = loop_dsn_and_prefix
    async with StatefulAgentLoop(llm=ScriptedLLM(responder=_reply), dsn=dsn, table_prefix=prefix) as loop:
        parent = await loop.new_session()
        workflow = create_workflow(research_spec(["solar"]), parent_loop=loop, parent_session_id=parent)
        handle = await run_detached(workflow, eager_wake=True)  # the published call shape
        assert (await handle.wait()).status == "completed"
        assert await loop.list_timers(parent) == []
        assert await _wake_messages(loop, parent, handle.run_id) == [
            f"workflow:run:{handle.run_id} completed"
        ]
        # resumed detached with eager_wake: the run already woke its parent, so nothing is delivered again
        again = await resume_detached(loop, parent, handle.run_id, eager_wake=True)
        assert (await again.wait()).status == "completed"
        assert len(await _wake_messages(loop, parent, handle.run_id)) == 1


async def test_rehydrate_returns_the_spec_the_replay_and_the_journal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with StatefulAgentLoop(llm=ScriptedLLM(responder=_reply), dsn=str(tmp_path / "wf.db")) as loop:
        parent = await loop.new_session()
        spec = research_spec(["solar", "wind"])
        result = await create_workflow(spec, parent_loop=loop, parent_session_id=parent).run()
        store = await loop.ensure_store()
        parsed, replay, journal = await rehydrate(store, parent, result.run_id)
        assert parsed == WorkflowSpec.from_json(spec) and journal.status == "completed"
        assert replay and all(step.replayed for step in replay.values())
        assert set(journal.steps) == set(replay)
        assert {key.split(":")[0] for key in replay} <= replayable_node_ids(parsed)
        with pytest.raises(WorkflowRunError):
            await rehydrate(store, parent, "no-such-run")


def test_replayable_node_ids_are_every_agent_leaf_at_any_depth() -> None:
    def agent(node_id: str) -> dict[str, object]:
        return {"type": "agent", "id": node_id, "spec": {"name": node_id, "system_prompt": "Work."}}

    spec = WorkflowSpec.from_json(
        {
            "name": "nested",
            "root": {
                "type": "sequence",
                "steps": [
                    agent("plan"),
                    {"type": "foreach", "items": ["a", "b"], "as": "x", "body": agent("research")},
                    {
                        "type": "branch",
                        "on": "plan",
                        "cases": {"go": agent("write")},
                        "default": agent("stop"),
                    },
                    {"type": "parallel", "branches": [agent("left"), agent("right")]},
                ],
            },
        }
    )
    assert replayable_node_ids(spec) == {"plan", "research", "write", "stop", "left", "right"}
