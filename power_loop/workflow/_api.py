"""The host API: `create_workflow` / `Workflow`, `resume_run`, `list_workflows`, `get_workflow`.

Every run is journaled (see ``_journal``) under the session that owns it: the ``parent_session_id``
given, or — without one — the run's own driver session, which is then a root session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, overload

from ..events import AgentEvent, AgentEventType, WorkflowEventPayload
from ..llm import CancellationToken
from ..loop import StatefulAgentLoop
from ..store import SessionKind, SessionStore
from ._engine import Sleep, WorkflowEngine
from ._errors import WorkflowRunError
from ._journal import CANCEL_KEY, WAKE_KEY, Journal, JournalState, load_journal, new_run_id, require_journal
from ._leaf import Executor
from ._results import AgentResult, SharedBudget, WorkflowResult
from ._spec import WorkflowSpec, parse_spec

__all__ = [
    "Workflow",
    "WorkflowRunHandle",
    "cancel_workflow",
    "create_workflow",
    "get_workflow",
    "list_workflows",
    "rehydrate",
    "resume_detached",
    "resume_run",
    "run_detached",
]

SpecInput = str | bytes | Mapping[str, Any] | WorkflowSpec
log = logging.getLogger("power_loop.workflow")
# Detached runs: asyncio keeps only weak references to tasks, so a run whose handle was dropped
# would be collected mid-flight; these strong references last until each run ends.
_RUNNING: set[asyncio.Future[WorkflowResult]] = set()


def _background(run: Coroutine[Any, Any, WorkflowResult]) -> asyncio.Future[WorkflowResult]:
    task = asyncio.ensure_future(run)
    _RUNNING.add(task)
    task.add_done_callback(_ended)
    return task


def _ended(task: asyncio.Future[WorkflowResult]) -> None:
    _RUNNING.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("detached workflow run failed", exc_info=task.exception())


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
        self._started = False

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the run to stop: no new leaf starts and running leaves stop at their next check."""
        self._stop.cancel(reason)

    async def run(self) -> WorkflowResult:
        """Run to a terminal status and return the result (``result.run_id`` names the journal).

        A `Workflow` runs once; `resume_run` finishes an interrupted run, `create_workflow` makes another.
        """
        return await _drive(self._options(), self.spec, state=None, detached=False)

    @overload
    async def start(
        self, *, detached: Literal[False] = False, eager_wake: bool = False
    ) -> WorkflowResult: ...

    @overload
    async def start(self, *, detached: Literal[True], eager_wake: bool = False) -> WorkflowRunHandle: ...

    async def start(
        self, *, detached: bool = False, eager_wake: bool = False
    ) -> WorkflowResult | WorkflowRunHandle:
        """:meth:`run`, or with ``detached=True`` run in the background and return a
        `WorkflowRunHandle` at once; when the run ends the parent session is woken once through a
        durable timer (note ``workflow:run:<run_id> <status>``) — or, with ``eager_wake``, at once
        through ``follow_up`` (into its running send, or as a new send). Detached runs need
        ``parent_session_id``.
        """
        if not detached:
            return await self.run()
        if self.parent_session_id is None:
            raise WorkflowRunError("a detached workflow run needs parent_session_id (the session to wake)")
        options = replace(self._options(), eager_wake=eager_wake)
        task = _background(_drive(options, self.spec, state=None, detached=True))
        return WorkflowRunHandle(self.run_id, self.parent_session_id, task, self._stop)

    def _options(self) -> _RunOptions:
        if self._started:
            raise WorkflowRunError(
                f"workflow run {self.run_id} was already started; use resume_run to finish it"
            )
        self._started = True
        return _RunOptions(
            self.parent_loop,
            self.parent_session_id,
            self.run_id,
            self.executor,
            self.budget,
            self._stop,
            self.sleep,
        )


@dataclass(frozen=True)
class WorkflowRunHandle:
    """A detached run: ``await handle.wait()`` for its result, ``cancel()`` to stop it (cooperative;
    from another process use `cancel_workflow` with the run id)."""

    run_id: str
    parent_session_id: str
    task: asyncio.Future[WorkflowResult]
    _stop: CancellationToken

    @property
    def done(self) -> bool:
        """True once the run has ended."""
        return self.task.done()

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the run cooperatively (no new leaf starts; running leaves stop at their next check)."""
        self._stop.cancel(reason)

    async def wait(self) -> WorkflowResult:
        """The run's `WorkflowResult` (waiting does not cancel it if the waiter is cancelled)."""
        return await asyncio.shield(self.task)


@dataclass(frozen=True)
class _RunOptions:
    loop: StatefulAgentLoop
    owner_sid: str | None
    run_id: str
    executor: Executor | None
    budget: SharedBudget | None
    stop: CancellationToken
    sleep: Sleep | None
    eager_wake: bool = False


async def run_detached(workflow: Workflow, *, eager_wake: bool = False) -> WorkflowRunHandle:
    """``workflow.start(detached=True, eager_wake=...)``: the published call shape."""
    return await workflow.start(detached=True, eager_wake=eager_wake)


async def rehydrate(
    store: SessionStore, parent_sid: str, run_id: str
) -> tuple[WorkflowSpec, dict[str, AgentResult], JournalState]:
    """What `resume_run` starts from: the run's spec, the completed steps it replays (by step key) and
    the journal. Raises `WorkflowRunError` for an unknown run."""
    state = await require_journal(store, parent_sid, run_id)
    return parse_spec(state.body["spec"]), state.completed_steps(), state


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
    options = _RunOptions(loop, parent_sid, run_id, executor, budget, CancellationToken(), sleep)
    return await _drive(options, spec, state=state, detached=bool(state.body.get("detached")))


async def resume_detached(
    loop: StatefulAgentLoop,
    parent_sid: str,
    run_id: str,
    *,
    executor: Executor | None = None,
    budget: SharedBudget | None = None,
    sleep: Sleep | None = None,
    eager_wake: bool = False,
) -> WorkflowRunHandle:
    """`resume_run` in the background: returns a `WorkflowRunHandle` at once; when the run ends the
    parent is woken through a timer, or ``follow_up`` with ``eager_wake`` (once, even if the run had
    been started detached and woke before)."""
    store = await loop.ensure_store()
    spec, _, state = await rehydrate(store, parent_sid, run_id)
    stop = CancellationToken()
    options = _RunOptions(loop, parent_sid, run_id, executor, budget, stop, sleep, eager_wake)
    task = _background(_drive(options, spec, state=state, detached=True))
    return WorkflowRunHandle(run_id, parent_sid, task, stop)


async def cancel_workflow(
    loop: StatefulAgentLoop, parent_sid: str, run_id: str, *, reason: str = "cancelled"
) -> bool:
    """Ask run ``run_id`` to stop, from any process: it is recorded in the journal and the run stops
    before its next leaf starts. False when the run is unknown or already finished."""
    store = await loop.ensure_store()
    state = await load_journal(store, parent_sid, run_id)
    if state is None or state.status != "running":
        return False
    await store.claim_workflow_record(
        parent_sid, run_id, CANCEL_KEY, status="requested", body={"reason": reason}
    )
    return True


async def _open_run(
    store: SessionStore, spec: WorkflowSpec, owner_sid: str | None, run_id: str, detached: bool
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
    body = {
        "workflow": spec.name,
        "spec": spec.to_dict(),
        "driver_sid": driver,
        "created_at_ms": now,
        "detached": detached,
    }
    journal = Journal(store, owner_sid, run_id, body)
    await journal.write_run("running", attempts=1)
    return driver, journal


async def _drive(
    options: _RunOptions, spec: WorkflowSpec, *, state: JournalState | None, detached: bool
) -> WorkflowResult:
    loop, run_id = options.loop, options.run_id
    store = await loop.ensure_store()
    replay: dict[str, AgentResult] = {}
    if state is None:
        driver, journal = await _open_run(store, spec, options.owner_sid, run_id, detached)
    else:
        assert options.owner_sid is not None
        driver = str(state.body["driver_sid"])
        journal = Journal(store, options.owner_sid, run_id, state.body)
        await journal.write_run("running", attempts=int(state.body.get("attempts") or 1) + 1)
        replay = state.completed_steps()
    owner = journal.owner_sid
    budget = options.budget
    if budget is None and spec.budget is not None:
        budget = SharedBudget(spec.budget.max_tokens, stop_at_remaining_pct=spec.budget.stop_at_remaining_pct)
    resumed = state is not None
    started = WorkflowEventPayload(run_id=run_id, workflow=spec.name, status="running", resumed=resumed)
    await _publish(loop, AgentEventType.WORKFLOW_STARTED, started, owner)

    async def cancel_requested() -> bool:
        return await store.get_workflow_record(owner, run_id, CANCEL_KEY) is not None

    engine = WorkflowEngine(
        loop,
        run_id=run_id,
        driver_sid=driver,
        journal=journal,
        executor=options.executor,
        budget=budget,
        stop=options.stop,
        replay=replay,
        sleep=options.sleep,
        event_session_id=owner,
        cancel_check=cancel_requested,
    )
    result = await engine.run(spec)
    result.parent_session_id = owner
    await journal.finish(result)
    error = "; ".join(result.errors) or None
    ended = WorkflowEventPayload(run_id, spec.name, result.status, dict(result.usage), error, resumed)
    await _publish(loop, AgentEventType.WORKFLOW_COMPLETED, ended, owner)
    if detached:
        await _wake(loop, store, owner, run_id, result.status, eager=options.eager_wake)
    return result


async def _wake(
    loop: StatefulAgentLoop, store: SessionStore, owner: str, run_id: str, status: str, *, eager: bool
) -> None:
    """Wake the owner of a detached run once: whoever claims the ``@wake`` row arms the timer (or,
    ``eager``, delivers the note at once as a follow-up)."""
    note = f"workflow:run:{run_id} {status}"
    if await store.claim_workflow_record(owner, run_id, WAKE_KEY, status="scheduled", body={"note": note}):
        if eager:
            await loop.follow_up(note, owner)
        else:
            await loop.schedule_timer(owner, delay_s=0, note=note)


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
        "detached": bool(state.body.get("detached")),
        "woke": state.woke,
        "cancel_requested": state.cancel_requested,
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
