"""Follow-ups: messages queued for a session's next round boundary, delivered exactly once.

Delivery is part of an append (``append_messages(consume_follow_ups=...)``, see ``_append``); the
session's state row counts the waiting ones so the send path learns of them without a query.

Each item has a ``kind``: ``"queue"`` waits for the running send's next round boundary, ``"steer"``
interrupts it at the next safe point. A send driven by another process learns of a steer by polling
`latest_steer` (one indexed read) while its model call or tool batch runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError, SessionNotFoundError
from ._core import StoreContext, check_session_id, now_ms, storable_text
from ._port import Transaction
from ._rows import FollowUpRow

if TYPE_CHECKING:
    from ._port import Transaction

__all__ = ["FOLLOW_UP_KINDS", "FollowUpMethods", "FollowUpRepository"]

#: What a queued item asks of the running send: wait for the round boundary, or interrupt it.
FOLLOW_UP_KINDS = ("queue", "steer")


class FollowUpRepository:
    """The ``follow_ups`` table and the state row's follow-up counters."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    async def enqueue(self, session_id: str, content: str, kind: str = "queue") -> int:
        if kind not in FOLLOW_UP_KINDS:
            raise ConfigError(f"follow-up kind must be one of {FOLLOW_UP_KINDS}, got {kind!r}")
        item_id = await self._ctx.db.transact(lambda tx: self.enqueue_in(tx, session_id, content, kind))
        self._ctx.known.pop(session_id, None)  # the next append reads the new count
        return item_id

    async def enqueue_in(self, tx: Transaction, session_id: str, content: str, kind: str = "queue") -> int:
        """Queue ``content`` inside the caller's transaction; returns the follow-up's item id."""
        ctx = self._ctx
        state = ctx.t["session_state"]
        if not await tx.execute(
            f"UPDATE {state} SET follow_up_seq = follow_up_seq + 1, "
            "follow_ups_waiting = follow_ups_waiting + 1, state_version = state_version + 1 "
            "WHERE session_id = ?",
            (session_id,),
        ):
            raise SessionNotFoundError(session_id)
        row = await tx.fetchone(f"SELECT follow_up_seq FROM {state} WHERE session_id = ?", (session_id,))
        assert row is not None
        item_id = int(row["follow_up_seq"])
        await tx.execute(
            f"INSERT INTO {ctx.t['follow_ups']} (session_id, item_id, content, created_at, kind) "
            "VALUES (?, ?, ?, ?, ?)",
            (session_id, item_id, storable_text(content), now_ms(), kind),
        )
        return item_id

    async def list_follow_ups(self, session_id: str) -> list[FollowUpRow]:
        rows = await self._ctx.db.fetchall(
            f"SELECT session_id, item_id, content, created_at, kind FROM {self._ctx.t['follow_ups']} "
            "WHERE session_id = ? ORDER BY item_id",
            (session_id,),
        )
        return [
            FollowUpRow(r["session_id"], int(r["item_id"]), r["content"], r["created_at"], str(r["kind"]))
            for r in rows
        ]

    async def latest_steer(self, session_id: str) -> int:
        """The item id of the newest steer still queued for the session (0: none)."""
        row = await self._ctx.db.fetchone(
            f"SELECT MAX(item_id) AS item_id FROM {self._ctx.t['follow_ups']} "
            "WHERE session_id = ? AND kind = ?",
            (session_id, "steer"),
        )
        return 0 if row is None or row["item_id"] is None else int(row["item_id"])


class FollowUpMethods:
    """The :class:`~power_loop.store.SessionStore` methods of the follow-up queue."""

    _follow_ups: FollowUpRepository

    async def enqueue_follow_up(self, session_id: str, content: str, *, kind: str = "queue") -> int:
        """Queue a message for the session's next round boundary (``kind="steer"``: its next safe point)."""
        check_session_id(session_id)
        return await self._follow_ups.enqueue(session_id, content, kind)

    async def latest_steer(self, session_id: str) -> int:
        """The item id of the newest steer still queued for the session (0: none)."""
        return await self._follow_ups.latest_steer(session_id)

    async def list_follow_ups(self, session_id: str) -> list[FollowUpRow]:
        """Queued follow-ups in arrival order (consume them via ``append_messages(consume_follow_ups=)``)."""
        check_session_id(session_id)
        return await self._follow_ups.list_follow_ups(session_id)
