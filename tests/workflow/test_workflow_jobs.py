"""A running workflow is a job of its owner session: another loop (as another process would) lists it
and stops it with ``stop_job`` — the loop writes the journal mark the engine polls for."""

from __future__ import annotations

import asyncio

import pytest
from wf_helpers import leaf

from power_loop.llm import LLMRequest
from power_loop.loop import StatefulAgentLoop
from power_loop.loop._jobs import _WF_CANCEL_KEY, _WF_RUN_KEY
from power_loop.testing import ScriptedLLM, ScriptedTurn
from power_loop.workflow import _engine as workflow_engine
from power_loop.workflow import create_workflow
from power_loop.workflow._journal import CANCEL_KEY, RUN_KEY


def test_the_loop_writes_the_journal_keys_the_engine_reads() -> None:
    assert (_WF_RUN_KEY, _WF_CANCEL_KEY) == (RUN_KEY, CANCEL_KEY)


async def test_a_running_workflow_is_listed_and_stopped_from_another_loop(
    loop_dsn_and_prefix: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workflow_engine, "CANCEL_POLL_S", 0.01)
    entered = asyncio.Event()

    async def reply(request: LLMRequest) -> ScriptedTurn:
        entered.set()
        await asyncio.Event().wait()  # never answers: only the cancel ends this leaf
        return ScriptedLLM.text("never")

    dsn, prefix = loop_dsn_and_prefix
    spec = {"name": "triage", "root": {"type": "sequence", "steps": [leaf("a", "p"), leaf("b", "p")]}}
    async with (
        StatefulAgentLoop(llm=ScriptedLLM(responder=reply), dsn=dsn, table_prefix=prefix) as loop,
        StatefulAgentLoop(llm=ScriptedLLM(), dsn=dsn, table_prefix=prefix) as other,
    ):
        owner = await loop.new_session()
        wf = create_workflow(spec, parent_loop=loop, parent_session_id=owner)
        task = asyncio.ensure_future(wf.run())
        await entered.wait()
        (job,) = await other.list_jobs(owner)
        assert (job.id, job.kind, job.status, job.detail) == (
            f"wf:{wf.run_id}",
            "workflow",
            "running",
            "triage",
        )
        assert await other.stop_job(owner, job.id, reason="operator") is True
        result = await asyncio.wait_for(task, 30)
        assert result.status == "cancelled"
        assert await other.list_jobs(owner) == []
        assert await other.stop_job(owner, job.id) is False
