"""The inbox: user input carrying a caller-chosen id, stored once per session whatever retries it.

``send(message_id=)`` and ``deliver`` give each user message an id. The ``inbox`` table's primary key
``(session_id, item_id)`` is the dedupe: the row is inserted (insert-or-ignore) in the SAME transaction
as the user message it names (:meth:`InboxRepository.put_message`) or the follow-up it waits as
(:meth:`InboxRepository.enqueue`), so of two processes racing with one id exactly one stores it; the
other learns the id is known and gets the existing row. When the send that began with the message
ends, :meth:`InboxRepository.finish` records its outcome there, for a retry to return as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import SessionNotFoundError
from ._append_request import AppendRequest
from ._core import StoreContext, now_ms, storable_text

if TYPE_CHECKING:
    from ._append import Appender
    from ._follow_ups import FollowUpRepository
    from ._lease import LeaseToken
    from ._port import Row, Transaction
    from ._rows import AppendResult, NewMessage

__all__ = ["InboxRepository", "InboxRow"]

_COLS = "session_id, item_id, follow_up_id, send_index, message_seq, status, final_text, rounds, created_at"


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One id'd input of a session: the send it began (``send_index``, ``message_seq``) or the
    follow-up it waits as (``follow_up_id``), and once that send ended its outcome (``status``,
    ``final_text``, ``rounds``; ``status`` is None while the send runs or after it was interrupted)."""

    session_id: str
    item_id: str
    follow_up_id: int | None
    send_index: int | None
    message_seq: int | None
    status: str | None
    final_text: str | None
    rounds: int | None
    created_at: int


def _row(r: Row) -> InboxRow:
    def opt(key: str) -> int | None:
        return None if r[key] is None else int(r[key])

    return InboxRow(
        r["session_id"],
        r["item_id"],
        opt("follow_up_id"),
        opt("send_index"),
        opt("message_seq"),
        r["status"],
        r["final_text"],
        opt("rounds"),
        int(r["created_at"]),
    )


class InboxRepository:
    """The ``inbox`` table: ids stored once, with the outcome of the send each began."""

    __slots__ = ("_appender", "_ctx", "_follow_ups", "_sql_claim", "_sql_get")

    def __init__(self, ctx: StoreContext, appender: Appender, follow_ups: FollowUpRepository) -> None:
        self._ctx = ctx
        self._appender = appender
        self._follow_ups = follow_ups
        table = ctx.t["inbox"]
        self._sql_claim = ctx.db.dialect.insert_ignore(
            table, ("session_id", "item_id", "created_at", "updated_at")
        )
        self._sql_get = f"SELECT {_COLS} FROM {table} WHERE session_id = ? AND item_id = ?"

    async def get(self, session_id: str, item_id: str) -> InboxRow | None:
        """The row of ``item_id`` in the session's inbox, None when the id is unknown."""
        row = await self._ctx.db.fetchone(self._sql_get, (session_id, item_id))
        return None if row is None else _row(row)

    async def items(self, session_id: str) -> list[InboxRow]:
        """Every id'd input of the session, oldest first."""
        rows = await self._ctx.db.fetchall(
            f"SELECT {_COLS} FROM {self._ctx.t['inbox']} WHERE session_id = ? ORDER BY created_at, item_id",
            (session_id,),
        )
        return [_row(r) for r in rows]

    async def put_message(
        self, session_id: str, item_id: str, message: NewMessage, *, lease: LeaseToken | None = None
    ) -> AppendResult | InboxRow:
        """Begin a send with ``message`` unless ``item_id`` is known: the new send's `AppendResult`,
        else the existing row (nothing written). The id and the message commit together or not at all;
        a `HistoryInvariantError` (tool calls still pending) or `LeaseLostError` writes neither."""
        ctx = self._ctx

        async def unit(tx: Transaction) -> tuple[AppendResult, Any] | InboxRow:
            now = now_ms()
            if not await tx.execute(self._sql_claim, (session_id, item_id, now, now)):
                known = await tx.fetchone(self._sql_get, (session_id, item_id))
                assert known is not None  # inserted by a committed transaction: rows are never deleted
                return _row(known)
            request = AppendRequest(session_id, [message], True, lease=lease)
            result, after = await self._appender.append_locked(
                tx, request, await ctx.lock_state(tx, session_id)
            )
            await tx.execute(
                f"UPDATE {ctx.t['inbox']} SET send_index = ?, message_seq = ? WHERE session_id = ? AND item_id = ?",
                (result.send_index, result.first_seq, session_id, item_id),
            )
            return result, after

        try:
            outcome = await ctx.db.transact(unit)
        except BaseException:
            ctx.known.pop(session_id, None)
            raise
        if isinstance(outcome, InboxRow):
            return outcome
        result, after = outcome
        ctx.known.remember(session_id, after)
        return result

    async def enqueue(self, session_id: str, item_id: str, content: str) -> int | InboxRow:
        """Queue ``content`` as a follow-up unless ``item_id`` is known: the follow-up's item id, else
        the existing row (nothing written)."""
        ctx = self._ctx

        async def unit(tx: Transaction) -> int | InboxRow:
            now = now_ms()
            if not await tx.execute(self._sql_claim, (session_id, item_id, now, now)):
                known = await tx.fetchone(self._sql_get, (session_id, item_id))
                assert known is not None
                return _row(known)
            queued = await self._follow_ups.enqueue_in(tx, session_id, content)
            await tx.execute(
                f"UPDATE {ctx.t['inbox']} SET follow_up_id = ? WHERE session_id = ? AND item_id = ?",
                (queued, session_id, item_id),
            )
            return queued

        try:
            return await ctx.db.transact(unit)
        finally:
            ctx.known.pop(session_id, None)  # the follow-up counter changed

    async def finish(
        self, session_id: str, item_id: str, *, status: str, final_text: str, rounds: int
    ) -> None:
        """Record the outcome of the send ``item_id`` began (a retry of the id returns it)."""
        ctx = self._ctx
        if not await ctx.db.execute(
            f"UPDATE {ctx.t['inbox']} SET status = ?, final_text = ?, rounds = ?, updated_at = ? "
            "WHERE session_id = ? AND item_id = ?",
            (status, storable_text(final_text), rounds, now_ms(), session_id, item_id),
        ):
            raise SessionNotFoundError(session_id)
