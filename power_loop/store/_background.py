"""Background tasks: one row per process started by the ``background_run`` tool.

A row is written when the process starts (``running``) and replaced when it ends (``completed``,
``failed(<rc>)``, ``timeout``, ``error``, ``killed``, ``lost``). ``pid``, ``host`` and ``deadline_at``
(epoch ms) let any later reader tell a task whose process vanished from one still running.
``last_seen_at`` records the ``updated_at`` the session was last shown, so every finish is delivered
once: a row is *unseen* while ``updated_at > last_seen_at``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import SessionNotFoundError
from ._core import StoreContext, check_ints, check_session_id, now_ms, storable_text
from ._port import Transaction

__all__ = ["BackgroundTaskMethods", "BackgroundTaskRepository", "BackgroundTaskRow"]

_COLS = (
    "session_id, task_id, command, status, return_code, output_tail, output_path, pid, host, deadline_at, "
    "last_seen_at, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class BackgroundTaskRow:
    """One background task; ``*_at`` are epoch ms, ``pid``/``host`` where its process ran."""

    session_id: str
    task_id: str
    command: str
    status: str
    return_code: int | None
    output_tail: str | None
    output_path: str | None
    last_seen_at: int
    created_at: int
    updated_at: int
    pid: int | None = None
    host: str | None = None
    deadline_at: int | None = None

    @property
    def finished(self) -> bool:
        """Whether the task has ended (any status but ``running``)."""
        return self.status != "running"


def _row(r: Mapping[str, Any]) -> BackgroundTaskRow:
    def opt(name: str) -> int | None:
        return None if r[name] is None else int(r[name])

    return BackgroundTaskRow(
        session_id=r["session_id"],
        task_id=r["task_id"],
        command=r["command"],
        status=r["status"],
        return_code=opt("return_code"),
        output_tail=r["output_tail"],
        output_path=r["output_path"],
        last_seen_at=int(r["last_seen_at"]),
        created_at=int(r["created_at"]),
        updated_at=int(r["updated_at"]),
        pid=opt("pid"),
        host=r["host"],
        deadline_at=opt("deadline_at"),
    )


class BackgroundTaskRepository:
    """The ``background_tasks`` table."""

    __slots__ = ("_ctx", "_sql_put", "_table")

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        self._table = table = ctx.t["background_tasks"]
        # Where the process runs is fixed when the task starts; a status update keeps it.
        self._sql_put = ctx.db.dialect.upsert(
            table,
            ("session_id", "task_id"),
            ("command", "status", "return_code", "output_tail", "output_path", "updated_at"),
            insert_only_cols=("pid", "host", "deadline_at", "last_seen_at", "created_at"),
        )

    async def upsert(
        self,
        session_id: str,
        *,
        task_id: str,
        command: str,
        status: str,
        return_code: int | None = None,
        output_tail: str | None = None,
        output_path: str | None = None,
        pid: int | None = None,
        host: str | None = None,
        deadline_at: int | None = None,
    ) -> None:
        check_ints(return_code=return_code, pid=pid, deadline_at=deadline_at)
        ctx = self._ctx

        async def unit(tx: Transaction) -> None:
            if (
                await tx.fetchone(
                    f"SELECT 1 AS x FROM {ctx.t['sessions']} WHERE session_id = ?", (session_id,)
                )
                is None
            ):
                raise SessionNotFoundError(session_id)
            # Strictly increasing per row, so an update made in the same millisecond as the row was
            # marked seen is still unseen.
            old = await tx.fetchone(
                f"SELECT updated_at FROM {self._table} WHERE session_id = ? AND task_id = ?",
                (session_id, task_id),
            )
            now = now_ms() if old is None else max(now_ms(), int(old["updated_at"]) + 1)
            await tx.execute(
                self._sql_put,
                (
                    session_id,
                    task_id,
                    storable_text(command),
                    status,
                    return_code,
                    storable_text(output_tail),
                    output_path,
                    now,
                    pid,
                    host,
                    deadline_at,
                    0,
                    now,
                ),
            )

        await ctx.db.transact(unit)

    async def get(self, session_id: str, task_id: str) -> BackgroundTaskRow | None:
        row = await self._ctx.db.fetchone(
            f"SELECT {_COLS} FROM {self._table} WHERE session_id = ? AND task_id = ?", (session_id, task_id)
        )
        return None if row is None else _row(row)

    async def list_tasks(self, session_id: str, *, unseen_only: bool = False) -> list[BackgroundTaskRow]:
        where = " AND updated_at > last_seen_at" if unseen_only else ""
        rows = await self._ctx.db.fetchall(
            f"SELECT {_COLS} FROM {self._table} WHERE session_id = ?{where} ORDER BY created_at, task_id",
            (session_id,),
        )
        return [_row(r) for r in rows]

    async def mark_seen(self, session_id: str, task_ids: Sequence[str]) -> int:
        sql = (
            f"UPDATE {self._table} SET last_seen_at = updated_at "
            "WHERE session_id = ? AND task_id = ? AND last_seen_at < updated_at"
        )

        async def unit(tx: Transaction) -> int:
            return sum([await tx.execute(sql, (session_id, task_id)) for task_id in dict.fromkeys(task_ids)])

        return await self._ctx.db.transact(unit) if task_ids else 0


class BackgroundTaskMethods:
    """The :class:`~power_loop.store.SessionStore` methods of background tasks (the ``background_run`` tool)."""

    _background: BackgroundTaskRepository

    async def upsert_background_task(
        self,
        session_id: str,
        *,
        task_id: str,
        command: str,
        status: str,
        return_code: int | None = None,
        output_tail: str | None = None,
        output_path: str | None = None,
        pid: int | None = None,
        host: str | None = None,
        deadline_at: int | None = None,
    ) -> None:
        """Insert or update a task's row. ``pid``, ``host`` and ``deadline_at`` are kept from the first
        write; every write makes the row *unseen* again (``SessionNotFoundError`` for an unknown session)."""
        check_session_id(session_id)
        await self._background.upsert(
            session_id,
            task_id=task_id,
            command=command,
            status=status,
            return_code=return_code,
            output_tail=output_tail,
            output_path=output_path,
            pid=pid,
            host=host,
            deadline_at=deadline_at,
        )

    async def get_background_task(self, session_id: str, task_id: str) -> BackgroundTaskRow | None:
        """One task, or None."""
        check_session_id(session_id)
        return await self._background.get(session_id, task_id)

    async def list_background_tasks(self, session_id: str) -> list[BackgroundTaskRow]:
        """Every task of the session, oldest first."""
        check_session_id(session_id)
        return await self._background.list_tasks(session_id)

    async def list_unseen_background_updates(self, session_id: str) -> list[BackgroundTaskRow]:
        """Tasks changed since the session was last shown them (``updated_at > last_seen_at``)."""
        check_session_id(session_id)
        return await self._background.list_tasks(session_id, unseen_only=True)

    async def mark_background_seen(self, session_id: str, task_ids: Sequence[str]) -> int:
        """Mark the tasks' current state as shown; returns how many rows changed."""
        check_session_id(session_id)
        return await self._background.mark_seen(session_id, list(task_ids))
