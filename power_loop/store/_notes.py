"""Notes: short per-session texts (optionally pinned) an agent keeps across folds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._core import StoreContext, now_ms, storable_text
from ._port import Transaction
from ._rows import NoteRow

if TYPE_CHECKING:
    from ._port import Transaction

__all__ = ["NoteRepository"]

_NOTE_COLS = "session_id, note_id, content, pinned, created_at, updated_at"


def _note(r: Mapping[str, Any]) -> NoteRow:
    return NoteRow(
        r["session_id"], int(r["note_id"]), r["content"], bool(r["pinned"]), r["created_at"], r["updated_at"]
    )


class NoteRepository:
    """The ``notes`` table; note ids count per session (allocated with the state row locked)."""

    __slots__ = ("_ctx", "_table")

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        self._table = ctx.t["notes"]

    async def add(self, session_id: str, content: str, *, pinned: bool) -> NoteRow:
        ctx = self._ctx
        content = storable_text(content)

        async def unit(tx: Transaction) -> NoteRow:
            await ctx.lock_state(tx, session_id)
            note_id = await ctx.next_id(tx, "notes", "note_id", session_id)
            now = now_ms()
            await tx.execute(
                f"INSERT INTO {self._table} ({_NOTE_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, note_id, content, int(pinned), now, now),
            )
            return NoteRow(session_id, note_id, content, pinned, now, now)

        return await ctx.db.transact(unit)

    async def update(
        self, session_id: str, note_id: int, *, content: str | None, pinned: bool | None
    ) -> bool:
        count = await self._ctx.db.execute(
            f"UPDATE {self._table} SET content = COALESCE(?, content), pinned = COALESCE(?, pinned), "
            "updated_at = ? WHERE session_id = ? AND note_id = ?",
            (storable_text(content), None if pinned is None else int(pinned), now_ms(), session_id, note_id),
        )
        return count > 0

    async def delete(self, session_id: str, note_id: int) -> bool:
        count = await self._ctx.db.execute(
            f"DELETE FROM {self._table} WHERE session_id = ? AND note_id = ?", (session_id, note_id)
        )
        return count > 0

    async def list_notes(self, session_id: str) -> list[NoteRow]:
        rows = await self._ctx.db.fetchall(
            f"SELECT {_NOTE_COLS} FROM {self._table} WHERE session_id = ? ORDER BY note_id", (session_id,)
        )
        return [_note(r) for r in rows]

    async def count(self, session_id: str) -> int:
        row = await self._ctx.db.fetchone(
            f"SELECT COUNT(*) AS n FROM {self._table} WHERE session_id = ?", (session_id,)
        )
        return 0 if row is None else int(row["n"])
