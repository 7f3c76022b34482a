"""The tool-call log: what became of each side-effecting tool call, for effect-aware recovery.

The loop records a call ``started`` (durably, before its handler runs) and ``finished`` with its
output (after). After a crash, recovery reads the log of the calls still pending: a finished call's
output is reused, a started-but-unfinished one is never re-run blindly (a ``tool.reconcile`` hook
decides). Rows are keyed by (session, tool call id) and carry the seq of the assistant row that made
the call, so a provider reusing an id in a later send never matches an older record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._core import StoreContext, now_ms, storable_text
from ._port import Transaction

__all__ = ["ToolCallMethods", "ToolCallRecord", "ToolCallRepository", "aborted_text", "logged_states"]

_COLS = "session_id, tool_call_id, assistant_seq, tool_name, status, output, started_at, finished_at"


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """One logged tool call: ``status`` is ``"started"`` or ``"finished"`` (then ``output`` is set)."""

    session_id: str
    tool_call_id: str
    assistant_seq: int
    tool_name: str | None
    status: str
    output: str | None
    started_at: int
    finished_at: int | None


def aborted_text(reason: str, logged: str | None) -> str:
    """What an aborted call is answered: ``<aborted: reason>`` — and, for a side-effecting call the log
    shows ``started`` or ``finished``, that its effect may have happened (the model must not assume
    that nothing was done, and repeat it)."""
    if logged == "finished":
        return f"<aborted: {reason}; the call had already run, so its effect has happened>"
    if logged == "started":
        return f"<aborted: {reason}; the call had started, so its effect may have happened>"
    return f"<aborted: {reason}>"


async def logged_states(tx: Transaction, table: str, session_id: str, assistant_seq: int) -> dict[str, str]:
    """``{tool_call_id: status}`` of the logged calls of the assistant row at ``assistant_seq``."""
    rows = await tx.fetchall(
        f"SELECT tool_call_id, status FROM {table} WHERE session_id = ? AND assistant_seq = ?",
        (session_id, assistant_seq),
    )
    return {str(r["tool_call_id"]): str(r["status"]) for r in rows}


class ToolCallRepository:
    """The ``tool_call_log`` table (written through the dialect's upsert: same SQL on every backend)."""

    __slots__ = ("_ctx", "_sql_finish", "_sql_list", "_sql_start")

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        table = ctx.t["tool_call_log"]
        # A restarted call (same id, e.g. re-run on recovery) starts afresh.
        self._sql_start = ctx.db.dialect.upsert(
            table,
            ("session_id", "tool_call_id"),
            ("assistant_seq", "tool_name", "status", "output", "started_at", "finished_at"),
        )
        self._sql_finish = (
            f"UPDATE {table} SET status = 'finished', output = ?, finished_at = ? "
            "WHERE session_id = ? AND tool_call_id = ?"
        )
        self._sql_list = f"SELECT {_COLS} FROM {table} WHERE session_id = ? ORDER BY started_at, tool_call_id"

    async def started(self, session_id: str, calls: Sequence[tuple[str, str]], *, assistant_seq: int) -> None:
        """``calls`` (``(tool_call_id, tool_name)`` pairs) are about to run: one transaction."""
        now = now_ms()
        # Ids and names come from the model: NUL and lone surrogates become U+FFFD, as in every text column.
        rows = [
            (session_id, storable_text(cid), assistant_seq, storable_text(name), "started", None, now, None)
            for cid, name in calls
        ]

        async def unit(tx: Transaction) -> None:
            await tx.executemany(self._sql_start, rows)

        await self._ctx.db.transact(unit)

    async def finished(self, session_id: str, tool_call_id: str, output: str) -> None:
        params = (storable_text(output), now_ms(), session_id, storable_text(tool_call_id))
        await self._ctx.db.execute(self._sql_finish, params)

    async def list(self, session_id: str) -> list[ToolCallRecord]:
        rows = await self._ctx.db.fetchall(self._sql_list, (session_id,))
        return [
            ToolCallRecord(
                str(r["session_id"]),
                str(r["tool_call_id"]),
                int(r["assistant_seq"]),
                None if r["tool_name"] is None else str(r["tool_name"]),
                str(r["status"]),
                None if r["output"] is None else str(r["output"]),
                int(r["started_at"]),
                None if r["finished_at"] is None else int(r["finished_at"]),
            )
            for r in rows
        ]


class ToolCallMethods:
    """The :class:`~power_loop.store.SessionStore` methods of the tool-call log (effect-aware recovery)."""

    _tool_calls: ToolCallRepository

    async def record_tool_calls_started(
        self, session_id: str, calls: Sequence[tuple[str, str]], *, assistant_seq: int
    ) -> None:
        """Log that side-effecting calls (``(tool_call_id, tool_name)`` pairs of the assistant row at
        ``assistant_seq``) are about to run: one transaction, durable before any of them does."""
        await self._tool_calls.started(session_id, calls, assistant_seq=assistant_seq)

    async def record_tool_call_finished(self, session_id: str, tool_call_id: str, output: str) -> None:
        """Log a logged call's output once its handler returned."""
        await self._tool_calls.finished(session_id, tool_call_id, output)

    async def get_tool_call_records(self, session_id: str) -> list[ToolCallRecord]:
        """The session's tool-call log (effect-aware recovery reads the records of pending calls)."""
        return await self._tool_calls.list(session_id)
