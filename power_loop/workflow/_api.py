"""The host API: `create_workflow` / `Workflow`, `resume_run`, `list_workflows`, `get_workflow`.

Every run is journaled (see ``_journal``) under the session that owns it: the ``parent_session_id``
given, or — without one — the run's own driver session, which is then a root session.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..events import AgentEvent, AgentEventType, WorkflowEventPayload
from ..llm import CancellationToken
from ..loop import StatefulAgentLoop
from ..store import SessionKind, SessionStore
from ._engine import Sleep, WorkflowEngine
from ._journal import Journal, JournalState, load_journal, new_run_id, require_journal
from ._leaf import Executor
from ._results import AgentResult, SharedBudget, WorkflowResult
from ._spec import WorkflowSpec, parse_spec

__all__ = ["Workflow", "create_workflow", "get_workflow", "list_workflows", "resume_run"]

SpecInput = str | bytes | Mapping[str, Any] | WorkflowSpec


def create_workflow(
    spec_json: SpecInput,
    *,
    parent_loop: StatefulAgentLoop,
    executor: Executor | None = None,
    budget: SharedBudget | None = None,
    parent_session_id: str | None = None,
    sleep: Sleep | None = None,
) -> Workflow:
    """Validate ``spec_json`` (raising `WorkflowSpecError` with every problem) into a `Workflow`."""
    return Workflow(
        parse_spec(spec_json),
        parent_loop=parent_loop,
        executor=executor,
        budget=budget,
        parent_session_id=parent_session_id,
        sleep=sleep,
    )


class Workflow:
    """One runnable workflow. ``run()`` (or ``start()``) executes it once, journaled under a new
    ``run_id``; ``cancel()`` stops it cooperatively (running leaves finish their current round)."""

    def __init__(
        self,
        spec: WorkflowSpec,
        *,
        parent_loop: StatefulAgentLoop,
        executor: Executor | None = None,
        budget: SharedBudget | None = None,
        parent_session_id: str | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self.spec = spec
        self.parent_loop = parent_loop
        self.executor = executor
        self.budget = budget
        self.parent_session_id = parent_session_id
        self.sleep = sleep
        self.run_id: str = new_run_id()
        self._stop = CancellationToken()

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the run to stop: no new leaf starts and running leaves stop at their next check."""
        self._stop.cancel(reason)

    async def run(self) -> WorkflowResult:
        """Run to a terminal status and return the result (``result.run_id`` names the journal)."""
        return await _drive(
            self.parent_loop,
            self.spec,
            owner_sid=self.parent_session_id,
            run_id=self.run_id,
            state=None,
            executor=self.executor,
            budget=self.budget,
            stop=self._stop,
            sleep=self.sleep,
        )

    async def start(self) -> WorkflowResult:
        """The same as :meth:`run` (kept for the published ``start()`` spelling)."""
        return await self.run()


async def resume_run(
    loop: StatefulAgentLoop,
    parent_sid: str,
    run_id: str,
    *,
    executor: Executor | None = None,
    budget: SharedBudget | None = None,
    sleep: Sleep | None = None,
) -> WorkflowResult:
    """Finish run ``run_id`` (owned by ``parent_sid``) from its journal: completed steps — also
    single foreach items — are replayed, every other step runs again (under the same idempotency
    key, so no finished leaf is ever duplicated). Raises `WorkflowRunError` for an unknown run."""
    store = await loop.ensure_store()
    state = await require_journal(store, parent_sid, run_id)
    spec = parse_spec(state.body["spec"])
    return await _drive(
        loop,
        spec,
        owner_sid=parent_sid,
        run_id=run_id,
        state=state,
        executor=executor,
        budget=budget,
        stop=CancellationToken(),
        sleep=sleep,
    )


async def _open_run(
    store: SessionStore, spec: WorkflowSpec, owner_sid: str | None, run_id: str
) -> tuple[str, Journal]:
    meta = {"kind": "wf_driver", "workflow": spec.name, "workflow_run_id": run_id}
    if owner_sid is None:
        driver = await store.create_session(metadata=meta)
        owner_sid = driver
    else:
        driver = await store.create_session(
            parent_session_id=owner_sid, kind=SessionKind.SUBAGENT, lifecycle="linked", metadata=meta
        )
    now = time.time_ns() // 1_000_000
    body = {"workflow": spec.name, "spec": spec.to_dict(), "driver_sid": driver, "created_at_ms": now}
    journal = Journal(store, owner_sid, run_id, body)
    await journal.write_run("running", attempts=1)
    return driver, journal


async def _drive(
    loop: StatefulAgentLoop,
    spec: WorkflowSpec,
    *,
    owner_sid: str | None,
    run_id: str,
    state: JournalState | None,
    executor: Executor | None,
    budget: SharedBudget | None,
    stop: CancellationToken,
    sleep: Sleep | None,
) -> WorkflowResult:
    store = await loop.ensure_store()
    replay: dict[str, AgentResult] = {}
    if state is None:
        driver, journal = await _open_run(store, spec, owner_sid, run_id)
    else:
        assert owner_sid is not None
        driver = str(state.body["driver_sid"])
        journal = Journal(store, owner_sid, run_id, state.body)
        await journal.write_run("running", attempts=int(state.body.get("attempts") or 1) + 1)
        replay = state.completed_steps()
    owner = journal.owner_sid
    if budget is None and spec.budget is not None:
        budget = SharedBudget(spec.budget.max_tokens, stop_at_remaining_pct=spec.budget.stop_at_remaining_pct)
    event = WorkflowEventPayload(
        run_id=run_id, workflow=spec.name, status="running", resumed=state is not None
    )
    await _publish(loop, AgentEventType.WORKFLOW_STARTED, event, owner)
    engine = WorkflowEngine(
        loop,
        run_id=run_id,
        driver_sid=driver,
        journal=journal,
        executor=executor,
        budget=budget,
        stop=stop,
        replay=replay,
        sleep=sleep,
        event_session_id=owner,
    )
    result = await engine.run(spec)
    result.parent_session_id = owner
    await journal.finish(result)
    event = WorkflowEventPayload(
        run_id=run_id,
        workflow=spec.name,
        status=result.status,
        usage=dict(result.usage),
        error="; ".join(result.errors) or None,
        resumed=state is not None,
    )
    await _publish(loop, AgentEventType.WORKFLOW_COMPLETED, event, owner)
    return result


async def _publish(
    loop: StatefulAgentLoop, kind: AgentEventType, data: WorkflowEventPayload, sid: str
) -> None:
    if loop.event_bus.wants(kind):
        await loop.event_bus.publish_async(AgentEvent(kind, data=data, session_id=sid, source="workflow"))


def _summary(state: JournalState) -> dict[str, Any]:
    return {
        "run_id": state.run_id,
        "workflow": state.body.get("workflow"),
        "status": state.status,
        "created_at_ms": state.body.get("created_at_ms", state.created_at),
        "finished_at_ms": state.body.get("finished_at_ms"),
        "steps": {key: row.status for key, row in state.steps.items()},
    }


async def list_workflows(loop: StatefulAgentLoop, parent_sid: str) -> list[dict[str, Any]]:
    """Every workflow run owned by ``parent_sid``, oldest first:
    ``{run_id, workflow, status, created_at_ms, finished_at_ms, steps: {step_key: status}}``."""
    store = await loop.ensure_store()
    out = []
    for row in await store.list_workflow_runs(parent_sid):
        state = await load_journal(store, parent_sid, row.run_id)
        if state is not None:
            out.append(_summary(state))
    return out


async def get_workflow(
    loop: StatefulAgentLoop, parent_sid: str, run_id: str, *, detail: bool = False
) -> dict[str, Any] | None:
    """One run's summary (None when unknown); ``detail=True`` adds each step's journal row and its
    session's ``session_stats`` (``sends``, ``rounds``, ``total_tokens``) plus the final result."""
    store = await loop.ensure_store()
    state = await load_journal(store, parent_sid, run_id)
    if state is None:
        return None
    out = _summary(state)
    if detail:
        steps = []
        for key, row in state.steps.items():
            step = {"step_key": key, **row.body, "status": row.status}
            sid = row.body.get("session_id")
            stats = await store.get_session_stats(sid) if isinstance(sid, str) else None
            if stats is not None:
                step["session_stats"] = {
                    "sends": stats.sends,
                    "rounds": stats.rounds,
                    "total_tokens": stats.total_tokens,
                }
            steps.append(step)
        out.update(detail=steps, result=state.body.get("result"), error=state.body.get("error"))
    return out
