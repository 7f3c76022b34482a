"""Running workflows on every backend: the README research workflow, the journal, resume, events."""

from __future__ import annotations

from wf_helpers import research_llm, research_spec

from power_loop.events import AgentEvent, AgentEventType
from power_loop.loop import StatefulAgentLoop
from power_loop.workflow import (
    create_workflow,
    get_workflow,
    leaf_session_id,
    list_workflows,
    resume_run,
)

TOPICS = ["solar", "wind", "hydro"]
EXPECTED_REPORT = "REPORT: notes on hydro; notes on solar; notes on wind"


async def test_readme_research_workflow_end_to_end(loop_dsn_and_prefix: tuple[str, str]) -> None:
    dsn, prefix = loop_dsn_and_prefix
    llm = research_llm()
    events: list[AgentEvent] = []
    async with StatefulAgentLoop(llm=llm, dsn=dsn, table_prefix=prefix) as loop:
        for kind in (
            AgentEventType.WORKFLOW_STARTED,
            AgentEventType.WORKFLOW_COMPLETED,
            AgentEventType.WORKFLOW_STEP_STARTED,
            AgentEventType.WORKFLOW_STEP_COMPLETED,
        ):
            loop.event_bus.subscribe(kind, events.append)
        parent = await loop.new_session()
        wf = create_workflow(research_spec(TOPICS), parent_loop=loop, parent_session_id=parent)
        result = await wf.run()

        assert result.status == "completed" and result.ok, result.errors
        assert result.run_id == wf.run_id and result.parent_session_id == parent
        assert result.final is not None and result.final.text == EXPECTED_REPORT
        assert [result.results[f"researcher:{i}"].text for i in range(3)] == [f"notes on {t}" for t in TOPICS]
        aggregate = result.results["research"]
        assert aggregate.payload == {"items": [f"notes on {t}" for t in TOPICS]}
        assert len(llm.requests) == 4
        # {{var}} templating in input and in the spec's system_prompt; inputs_from appended as context
        assert {r.system_prompt for r in llm.requests[:3]} == {f"You research {t}." for t in TOPICS}
        writer_input = llm.requests[3].messages[-1]["content"]
        assert writer_input.startswith("Write the report on renewable energy.\n\n--- context ---\n")
        assert result.usage["total_tokens"] == 4 * 15  # ScriptedLLM reports 10 + 5 tokens per call

        # the journal has every step, committed
        store = await loop.ensure_store()
        rows = {r.step_key: r for r in await store.list_workflow_records(parent, wf.run_id)}
        assert set(rows) == {"@run", "researcher:0", "researcher:1", "researcher:2", "writer"}
        assert all(r.status == "completed" for r in rows.values())
        assert rows["writer"].body["text"] == EXPECTED_REPORT
        # each leaf's session carries its idempotency key and hangs under the run's driver session
        sid = rows["researcher:1"].body["session_id"]
        assert sid == leaf_session_id(f"{wf.run_id}:researcher:1")
        row = await store.get_session(sid)
        assert row is not None and row.metadata["idempotency_key"] == f"{wf.run_id}:researcher:1"
        assert row.parent_session_id == rows["@run"].body["driver_sid"]

        [listed] = await list_workflows(loop, parent)
        assert listed["run_id"] == wf.run_id and listed["status"] == "completed"
        detail = await get_workflow(loop, parent, wf.run_id, detail=True)
        assert detail is not None and detail["result"]["final"]["text"] == EXPECTED_REPORT
        assert {s["step_key"] for s in detail["detail"]} == set(rows) - {"@run"}
        assert all(s["session_stats"]["sends"] == 1 for s in detail["detail"])

        # resuming a finished run replays everything: no model call
        again = await resume_run(loop, parent, wf.run_id)
        assert len(llm.requests) == 4
        assert again.final is not None and again.final.text == EXPECTED_REPORT
        assert all(r.replayed for k, r in again.results.items() if k != "research")

        # a leaf that finished but whose journal row was lost (crash between the two) is adopted
        # from its session, not re-run: the idempotency key finds it
        await store.put_workflow_record(parent, wf.run_id, "researcher:1", status="running", body={})
        third = await resume_run(loop, parent, wf.run_id)
        assert len(llm.requests) == 4
        adopted = third.results["researcher:1"]
        assert adopted.text == "notes on wind" and not adopted.replayed and adopted.session_id == sid
        assert len(await store.list_children(rows["@run"].body["driver_sid"])) == 4

    kinds = [e.type for e in events]
    assert kinds.count(AgentEventType.WORKFLOW_STARTED) == 3
    assert kinds.count(AgentEventType.WORKFLOW_STEP_STARTED) == 5  # 4 leaves + the adopted one
    finished = [e for e in events if e.type is AgentEventType.WORKFLOW_COMPLETED]
    assert [e.payload["status"] for e in finished] == ["completed"] * 3
    assert all(e.session_id == parent and e.payload["run_id"] == wf.run_id for e in events)
