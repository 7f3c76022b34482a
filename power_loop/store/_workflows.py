"""The workflow journal: one row per run (``step_key = "@run"``) and per finished or started step.

Rows belong to the session that owns the run (a workflow's parent session), so closing, exporting or
importing that session carries its journal along. Every write is one upsert: a step's row is replaced
whole when its status changes, so the journal never holds half a step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._core import StoreContext, dumps, now_ms
from ._rows import decode_json

__all__ = ["RUN_ROW_KEY", "WorkflowJournalMethods", "WorkflowJournalRepository", "WorkflowRecordRow"]

RUN_ROW_KEY = "@run"
"""The ``step_key`` of a run's own row (node ids never start with ``@``)."""

_COLS = "session_id, run_id, step_key, status, body_json, created_at, updated_at"


@dataclass(frozen=True, slots=True)
class WorkflowRecordRow:
    """One journal row: a run (``step_key == RUN_ROW_KEY``) or one of its steps, with a JSON ``body``."""

    session_id: str
    run_id: str
    step_key: str
    status: str
    body: dict[str, Any] = field(default_factory=dict)
    created_at: int = 0
    updated_at: int = 0


def _row(r: Mapping[str, Any]) -> WorkflowRecordRow:
    where = f"session_id={r['session_id']}, run_id={r['run_id']}, step={r['step_key']}"
    body = decode_json(r["body_json"], "workflow_journal", where) if r["body_json"] else {}
    return WorkflowRecordRow(
        r["session_id"],
        r["run_id"],
        r["step_key"],
        r["status"],
        dict(body) if isinstance(body, Mapping) else {},
        int(r["created_at"]),
        int(r["updated_at"]),
    )


class WorkflowJournalRepository:
    """The ``workflow_journal`` table."""

    __slots__ = ("_ctx", "_sql_claim", "_sql_put", "_table")

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        self._table = table = ctx.t["workflow_journal"]
        self._sql_put = ctx.db.dialect.upsert(
            table,
            ("session_id", "run_id", "step_key"),
            ("status", "body_json", "updated_at"),
            insert_only_cols=("created_at",),
        )
        self._sql_claim = ctx.db.dialect.insert_ignore(table, [c.strip() for c in _COLS.split(",")])

    async def put(
        self, session_id: str, run_id: str, step_key: str, status: str, body: Mapping[str, Any]
    ) -> None:
        now = now_ms()
        await self._ctx.db.execute(
            self._sql_put, (session_id, run_id, step_key, status, dumps(dict(body)), now, now)
        )

    async def claim(
        self, session_id: str, run_id: str, step_key: str, status: str, body: Mapping[str, Any]
    ) -> bool:
        now = now_ms()
        params = (session_id, run_id, step_key, status, dumps(dict(body)), now, now)
        return await self._ctx.db.execute(self._sql_claim, params) > 0

    async def get(self, session_id: str, run_id: str, step_key: str) -> WorkflowRecordRow | None:
        row = await self._ctx.db.fetchone(
            f"SELECT {_COLS} FROM {self._table} WHERE session_id = ? AND run_id = ? AND step_key = ?",
            (session_id, run_id, step_key),
        )
        return None if row is None else _row(row)

    async def records(self, session_id: str, run_id: str) -> list[WorkflowRecordRow]:
        rows = await self._ctx.db.fetchall(
            f"SELECT {_COLS} FROM {self._table} WHERE session_id = ? AND run_id = ? ORDER BY created_at, step_key",
            (session_id, run_id),
        )
        return [_row(r) for r in rows]

    async def runs(self, session_id: str) -> list[WorkflowRecordRow]:
        rows = await self._ctx.db.fetchall(
            f"SELECT {_COLS} FROM {self._table} WHERE session_id = ? AND step_key = ? ORDER BY created_at, run_id",
            (session_id, RUN_ROW_KEY),
        )
        return [_row(r) for r in rows]


class WorkflowJournalMethods:
    """The :class:`~power_loop.store.SessionStore` methods of the workflow journal (``power_loop.workflow``)."""

    _workflows: WorkflowJournalRepository

    async def put_workflow_record(
        self, session_id: str, run_id: str, step_key: str, *, status: str, body: Mapping[str, Any]
    ) -> None:
        """Write (insert or replace) one journal row of workflow run ``run_id`` owned by ``session_id``."""
        await self._workflows.put(session_id, run_id, step_key, status, body)

    async def claim_workflow_record(
        self, session_id: str, run_id: str, step_key: str, *, status: str, body: Mapping[str, Any]
    ) -> bool:
        """Insert the journal row only if it does not exist; True for the one caller that inserted it
        (an atomic claim: e.g. the single wake of a detached run, whatever the number of processes)."""
        return await self._workflows.claim(session_id, run_id, step_key, status, body)

    async def get_workflow_record(
        self, session_id: str, run_id: str, step_key: str
    ) -> WorkflowRecordRow | None:
        """One journal row, or None."""
        return await self._workflows.get(session_id, run_id, step_key)

    async def list_workflow_records(self, session_id: str, run_id: str) -> list[WorkflowRecordRow]:
        """Every journal row of one run: its run row (``step_key == "@run"``) and its steps."""
        return await self._workflows.records(session_id, run_id)

    async def list_workflow_runs(self, session_id: str) -> list[WorkflowRecordRow]:
        """The run rows of every workflow run owned by ``session_id``, oldest first."""
        return await self._workflows.runs(session_id)
