"""The run journal: what a run is, and every leaf's outcome, committed as each one finishes.

Stored in the store's ``workflow_journal`` table under the session that owns the run: one run row
(spec, driver session, status, final result) and one row per leaf step. `resume_run` rebuilds a run
from it: completed steps are replayed, every other step runs again.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..store import SessionStore, WorkflowRecordRow
from ._errors import WorkflowRunError
from ._results import AgentResult, WorkflowResult

__all__ = [
    "CANCEL_KEY",
    "RUN_KEY",
    "WAKE_KEY",
    "Journal",
    "JournalState",
    "load_journal",
    "new_run_id",
    "require_journal",
]

RUN_KEY = "@run"
WAKE_KEY = "@wake"  # claimed once by whoever schedules a detached run's wake
CANCEL_KEY = "@cancel"  # written by `cancel_workflow`; the engine checks it before each leaf


def new_run_id() -> str:
    """A fresh run id (16 hex digits)."""
    return secrets.token_hex(8)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class JournalState:
    """A run as its journal has it: the run row's body and status, and each step's latest row."""

    run_id: str
    status: str
    body: dict[str, Any]
    steps: dict[str, WorkflowRecordRow] = field(default_factory=dict)
    created_at: int = 0
    updated_at: int = 0
    woke: bool = False
    cancel_requested: bool = False

    def completed_steps(self) -> dict[str, AgentResult]:
        """The steps a resumed run replays instead of running again (a hook's skip is a decision, kept)."""
        return {
            key: AgentResult.from_dict(row.body, replayed=True)
            for key, row in self.steps.items()
            if row.status in ("completed", "skipped")
        }


async def load_journal(store: SessionStore, owner_sid: str, run_id: str) -> JournalState | None:
    """The journal of run ``run_id`` owned by ``owner_sid``, or None when there is no such run."""
    rows = await store.list_workflow_records(owner_sid, run_id)
    head = next((r for r in rows if r.step_key == RUN_KEY), None)
    if head is None:
        return None
    steps = {r.step_key: r for r in rows if not r.step_key.startswith("@")}
    marks = {r.step_key for r in rows if r.step_key.startswith("@")}
    state = JournalState(run_id, head.status, dict(head.body), steps, head.created_at, head.updated_at)
    state.woke = WAKE_KEY in marks
    state.cancel_requested = CANCEL_KEY in marks
    return state


class Journal:
    """Writes one run's journal rows (each write is one committed upsert)."""

    def __init__(self, store: SessionStore, owner_sid: str, run_id: str, body: Mapping[str, Any]) -> None:
        self.store = store
        self.owner_sid = owner_sid
        self.run_id = run_id
        self.body: dict[str, Any] = dict(body)

    async def write_run(self, status: str, **changes: Any) -> None:
        """Replace the run row (``changes`` are merged into its body)."""
        self.body.update(changes, updated_at_ms=_now_ms())
        await self.store.put_workflow_record(
            self.owner_sid, self.run_id, RUN_KEY, status=status, body=self.body
        )

    async def step_started(self, key: str, node_id: str, session_id: str, attempt: int) -> None:
        """Record that a leaf attempt started (its session id included)."""
        body = {"node_id": node_id, "status": "running", "session_id": session_id, "attempts": attempt}
        await self.store.put_workflow_record(self.owner_sid, self.run_id, key, status="running", body=body)

    async def step_finished(self, key: str, result: AgentResult) -> None:
        """Record a leaf's outcome."""
        await self.store.put_workflow_record(
            self.owner_sid, self.run_id, key, status=result.status, body=result.to_dict()
        )

    async def finish(self, result: WorkflowResult) -> None:
        """Record the run's final status and result."""
        await self.write_run(
            result.status,
            finished_at_ms=_now_ms(),
            result=result.to_dict(),
            error="; ".join(result.errors) or None,
        )


async def require_journal(store: SessionStore, owner_sid: str, run_id: str) -> JournalState:
    """`load_journal`, raising `WorkflowRunError` for an unknown run."""
    state = await load_journal(store, owner_sid, run_id)
    if state is None:
        raise WorkflowRunError(f"no workflow run {run_id!r} under session {owner_sid!r}")
    return state
