"""Taking messages out of the window: state changes, compactions (folds) and pruning.

Message states only move forward (active → compacted_out → dropped); a change that would leave a
tool call and its result split between active and inactive is refused (see ``_history``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple
from typing import TYPE_CHECKING

from ..errors import ConfigError, HistoryInvariantError
from ._append import Appender
from ._append_request import AppendRequest
from ._attachments import AttachmentRepository
from ._core import StoreContext, now_ms
from ._history import check_active_window
from ._port import Row, Transaction
from ._rows import CompactionRow, MessageState, NewMessage, decode_json, decode_pending

if TYPE_CHECKING:
    from ._append import Appender
    from ._port import Row, Transaction

__all__ = ["CompactionRepository"]

_STATE_ORDER = {MessageState.ACTIVE: 0, MessageState.COMPACTED_OUT: 1, MessageState.DROPPED: 2}
_COMPACTION_COLS = "session_id, compact_seq, note_seq, from_seq, to_seq, before_tokens, after_tokens, round_index, created_at"


class CompactionRepository:
    """Message states and the ``compactions`` table; a fold's note is appended through the appender."""

    __slots__ = ("_appender", "_ctx")

    def __init__(self, ctx: StoreContext, appender: Appender) -> None:
        self._ctx = ctx
        self._appender = appender

    async def set_message_state(self, session_id: str, seqs: Sequence[int], state: MessageState | str) -> int:
        try:
            target = MessageState(state)
        except ValueError:
            choices = ", ".join(m.value for m in MessageState)
            raise ConfigError(f"unknown message state {state!r}; expected one of {choices}") from None
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in seqs):
            raise ConfigError("seqs must be ints")
        wanted = sorted(set(seqs))

        async def unit(tx: Transaction) -> int:
            st = await self._ctx.lock_state(tx, session_id)
            return await self._move_states(tx, session_id, st, wanted, target)

        return await self._ctx.db.transact(unit)

    async def _current_states(self, tx: Transaction, sid: str, seqs: list[int]) -> dict[int, MessageState]:
        msgs = self._ctx.t["messages"]
        current: dict[int, MessageState] = {}
        for i in range(0, len(seqs), 500):
            chunk = seqs[i : i + 500]
            for r in await tx.fetchall(
                f"SELECT seq, state FROM {msgs} WHERE session_id = ? AND seq IN ({', '.join('?' * len(chunk))})",
                (sid, *chunk),
            ):
                current[int(r["seq"])] = MessageState(r["state"])
        return current

    async def _check_leaving(self, tx: Transaction, sid: str, st: Row, leaving_active: set[int]) -> None:
        """Refuse if the window left once ``leaving_active`` goes would split a call from its result."""
        rows = await tx.fetchall(
            f"SELECT seq, role, tool_calls_json, tool_call_id FROM {self._ctx.t['messages']} "
            "WHERE session_id = ? AND state = 'active' ORDER BY seq",
            (sid,),
        )
        window = [
            {
                "seq": r["seq"],
                "role": r["role"],
                "tool_call_id": r["tool_call_id"],
                "tool_calls": decode_json(
                    r["tool_calls_json"], "messages", f"session_id={sid}, seq={r['seq']}"
                ),
            }
            for r in rows
            if int(r["seq"]) not in leaving_active
        ]
        text = st["pending_json"]
        pending = decode_pending(text, sid)
        if pending and pending.get("assistant_seq") in leaving_active:
            raise HistoryInvariantError(
                f"message #{pending['assistant_seq']} awaits tool results and must stay active"
            )
        check_active_window(window, pending)

    async def _move_states(
        self, tx: Transaction, sid: str, st: Row, seqs: list[int], target: MessageState
    ) -> int:
        if not seqs:
            return 0
        current = await self._current_states(tx, sid, seqs)
        missing = [s for s in seqs if s not in current]
        if missing:
            raise HistoryInvariantError(f"session {sid} has no message(s) with seq {missing[:10]}")
        backwards = [s for s in seqs if _STATE_ORDER[current[s]] > _STATE_ORDER[target]]
        if backwards:
            raise HistoryInvariantError(
                f"message states only move forward; cannot set {backwards[:10]} back to {target.value}"
            )
        moving = [s for s in seqs if current[s] is not target]
        if not moving:
            return 0
        leaving_active = {s for s in moving if current[s] is MessageState.ACTIVE}
        if leaving_active:
            await self._check_leaving(tx, sid, st, leaving_active)
        await tx.executemany(
            f"UPDATE {self._ctx.t['messages']} SET state = ? WHERE session_id = ? AND seq = ?",
            [(target.value, sid, s) for s in moving],
        )
        return len(moving)

    async def record(
        self,
        session_id: str,
        *,
        from_seq: int,
        to_seq: int,
        note: NewMessage,
        before_tokens: int | None,
        after_tokens: int | None,
        also_seqs: Sequence[int],
    ) -> CompactionRow:
        ctx = self._ctx
        t = ctx.t
        request = AppendRequest(session_id, [note])
        extra = {int(s) for s in also_seqs}

        async def unit(tx: Transaction) -> CompactionRow:
            st = await ctx.lock_state(tx, session_id)
            rows = await tx.fetchall(
                f"SELECT seq FROM {t['messages']} WHERE session_id = ? AND state = 'active' "
                "AND seq >= ? AND seq <= ? ORDER BY seq",
                (session_id, from_seq, to_seq),
            )
            seqs = sorted({int(r["seq"]) for r in rows} | extra)
            await self._move_states(tx, session_id, st, seqs, MessageState.COMPACTED_OUT)
            res, _ = await self._appender.append_locked(tx, request, st)
            compact_seq = await ctx.next_id(tx, "compactions", "compact_seq", session_id)
            row = CompactionRow(
                session_id,
                compact_seq,
                res.first_seq,
                from_seq,
                to_seq,
                before_tokens,
                after_tokens,
                note.round_index,
                now_ms(),
            )
            await tx.execute(
                f"INSERT INTO {t['compactions']} ({_COMPACTION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                astuple(row),  # the fields in _COMPACTION_COLS order
            )
            await tx.execute(
                f"UPDATE {t['session_state']} SET last_compact_seq = ? "
                "WHERE session_id = ? AND last_compact_seq < ?",
                (to_seq, session_id, to_seq),
            )
            return row

        ctx.known.pop(session_id, None)  # rare: the next append reads the row again
        return await ctx.db.transact(unit)

    async def list_compactions(self, session_id: str) -> list[CompactionRow]:
        rows = await self._ctx.db.fetchall(
            f"SELECT {_COMPACTION_COLS} FROM {self._ctx.t['compactions']} WHERE session_id = ? "
            "ORDER BY compact_seq",
            (session_id,),
        )
        return [CompactionRow(**r) for r in rows]

    async def prune(self, session_id: str, *, keep_recent: int, older_than_ms: int | None = None) -> int:
        ctx = self._ctx
        msgs = ctx.t["messages"]

        async def unit(tx: Transaction) -> int:
            await ctx.lock_state(tx, session_id)
            rows = await tx.fetchall(
                f"SELECT seq, created_at FROM {msgs} WHERE session_id = ? AND state <> 'active' ORDER BY seq DESC",
                (session_id,),
            )
            doomed = [
                (session_id, int(r["seq"]))
                for r in rows[max(keep_recent, 0) :]
                if older_than_ms is None or int(r["created_at"]) < older_than_ms
            ]
            if doomed:
                await tx.executemany(f"DELETE FROM {msgs} WHERE session_id = ? AND seq = ?", doomed)
                await AttachmentRepository(ctx).prune_unreferenced(tx, session_id)
            return len(doomed)

        return await ctx.db.transact(unit)
