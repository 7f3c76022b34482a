"""Reading history: the active window (the send path's one query), whole histories, single messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._attachments import AttachmentRepository
from ._core import StoreContext, state_row
from ._port import Row, Transaction
from ._rows import MessageRow, MessageState, SessionRow, SessionStateRow, decode_enum, decode_json
from ._sessions import SessionRepository, session_row

if TYPE_CHECKING:
    from ._port import Row, Transaction

__all__ = ["MESSAGE_COLS", "MessageRepository", "message_row"]

MESSAGE_COLS = (
    "session_id, seq, role, name, content, content_json, tool_calls_json, tool_call_id, "
    "round_index, state, meta_json, send_index, created_at"
)


def message_row(r: Mapping[str, Any]) -> MessageRow:
    """Decode a ``messages`` row read with :data:`MESSAGE_COLS` (JSON columns only when present)."""
    content = r["content"]
    tc = r["tool_calls_json"]
    meta = r["meta_json"]
    if r["content_json"] or tc is not None or meta is not None:
        key = f"session_id={r['session_id']}, seq={r['seq']}"
        if r["content_json"]:
            content = decode_json(content, "messages", key)
        tc = decode_json(tc, "messages", key)
        meta = decode_json(meta, "messages", key)
    return MessageRow(
        r["session_id"],
        r["seq"],
        r["role"],
        r["name"],
        content,
        tc,
        r["tool_call_id"],
        r["round_index"],
        decode_enum(MessageState, r["state"], "messages", f"session_id={r['session_id']}, seq={r['seq']}"),
        meta if meta is not None else {},
        r["created_at"],
        r["send_index"],
    )


class MessageRepository:
    """Reads of ``messages`` and of the session's state row."""

    __slots__ = (
        "_attachments",
        "_ctx",
        "_sessions",
        "_sql_active",
        "_sql_active_after",
        "_sql_all",
        "_sql_by_seq",
        "_sql_send",
    )

    def __init__(self, ctx: StoreContext, sessions: SessionRepository) -> None:
        self._ctx = ctx
        self._sessions = sessions
        self._attachments = AttachmentRepository(ctx)
        msgs = ctx.t["messages"]
        self._sql_active = (
            f"SELECT {MESSAGE_COLS} FROM {msgs} WHERE session_id = ? AND state = 'active' ORDER BY seq"
        )
        self._sql_active_after = (
            f"SELECT {MESSAGE_COLS} FROM {msgs} WHERE session_id = ? AND state = 'active' "
            "AND seq > ? ORDER BY seq"
        )
        self._sql_all = f"SELECT {MESSAGE_COLS} FROM {msgs} WHERE session_id = ? ORDER BY seq"
        self._sql_send = (
            f"SELECT {MESSAGE_COLS} FROM {msgs} WHERE session_id = ? AND send_index = ? ORDER BY seq"
        )
        self._sql_by_seq = f"SELECT {MESSAGE_COLS} FROM {msgs} WHERE session_id = ? AND seq = ?"

    async def get_state(self, session_id: str) -> SessionStateRow | None:
        r = await self._ctx.db.fetchone(self._ctx.sql_get_state, (session_id,))
        return None if r is None else state_row(session_id, r)

    async def load_window(
        self, session_id: str
    ) -> tuple[SessionRow, SessionStateRow, list[MessageRow]] | None:
        ctx = self._ctx

        async def unit(tx: Transaction) -> tuple[Row, Row, list[Row]] | None:
            session = await self._sessions.fetch(tx, session_id)
            if session is None:
                return None
            state = await tx.fetchone(ctx.sql_get_state, (session_id,))
            rows = await tx.fetchall(self._sql_active, (session_id,))
            return (session, state, rows) if state is not None else None

        found = await ctx.db.transact(unit)
        if found is None:
            return None
        session, state, rows = found
        messages = await self._attachments.resolve([message_row(row) for row in rows])
        return session_row(session), state_row(session_id, state), messages

    async def load_active(self, session_id: str, *, after_seq: int | None) -> list[MessageRow]:
        if after_seq is None:
            rows = await self._ctx.db.fetchall(self._sql_active, (session_id,))
        else:
            rows = await self._ctx.db.fetchall(self._sql_active_after, (session_id, after_seq))
        return await self._attachments.resolve([message_row(r) for r in rows])

    async def load_all(self, session_id: str) -> list[MessageRow]:
        rows = await self._ctx.db.fetchall(self._sql_all, (session_id,))
        return await self._attachments.resolve([message_row(r) for r in rows])

    async def load_send(self, session_id: str, send_index: int) -> list[MessageRow]:
        rows = await self._ctx.db.fetchall(self._sql_send, (session_id, send_index))
        return await self._attachments.resolve([message_row(r) for r in rows])

    async def get(self, session_id: str, seq: int) -> MessageRow | None:
        row = await self._ctx.db.fetchone(self._sql_by_seq, (session_id, seq))
        if row is None:
            return None
        return (await self._attachments.resolve([message_row(row)]))[0]

    async def count(self, session_id: str) -> int:
        row = await self._ctx.db.fetchone(
            f"SELECT COUNT(*) AS n FROM {self._ctx.t['messages']} WHERE session_id = ?", (session_id,)
        )
        return 0 if row is None else int(row["n"])
