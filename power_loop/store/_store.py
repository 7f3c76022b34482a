"""`SessionStore`: the one persistence facade, written once against the storage port.

Every logical step is one transaction. The send hot path is :meth:`SessionStore.append_messages`
(one transaction = one thread hop on SQLite; see ``_append``) and
:meth:`SessionStore.load_active_messages` (one query). The tool-call history invariant is enforced
on every write (see ``_history``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError, HistoryInvariantError, SessionNotFoundError
from ._append import AppendMixin, prepare_message
from ._archive import ArchiveMixin
from ._aux import AuxMixin
from ._core import MESSAGE_COLS, SESSION_COLS, dumps, new_state_version, now_ms
from ._history import check_active_window, pending_ids
from ._port import Row, Transaction
from ._rows import (
    KEEP,
    CompactionRow,
    MessageRow,
    MessageState,
    NewMessage,
    SessionKind,
    SessionRow,
    SessionStateRow,
    SessionStatus,
    SubagentLifecycle,
    decode_json,
)
from ._schema import SCHEMA_TABLES

__all__ = ["SessionStore"]

_STATE_ORDER = {MessageState.ACTIVE: 0, MessageState.COMPACTED_OUT: 1, MessageState.DROPPED: 2}
_SESSION_TABLES = tuple(t.name for t in SCHEMA_TABLES if t.name not in ("sessions", "shared_state"))


def _check_session_id(session_id: Any) -> str:
    if not isinstance(session_id, str) or not session_id or len(session_id) > 255:
        raise ConfigError(
            f"session_id must be a non-empty string of at most 255 characters, got {session_id!r}"
        )
    return session_id


class SessionStore(AuxMixin, ArchiveMixin, AppendMixin):
    """Durable sessions, messages and per-session state over any :class:`Database`.

    Usually obtained from :func:`power_loop.store.open_store`; ``SessionStore(db, table_prefix=…)``
    wraps an already-open database whose schema is in place.
    """

    # -- sessions -------------------------------------------------------------------------------

    async def create_session(
        self,
        *,
        system_prompt: str | None = None,
        model: str | None = None,
        config: Mapping[str, Any] | None = None,
        parent_session_id: str | None = None,
        spawn_tool_call_id: str | None = None,
        kind: SessionKind | str = SessionKind.ROOT,
        lifecycle: SubagentLifecycle | str = SubagentLifecycle.EPHEMERAL,
        metadata: Mapping[str, Any] | None = None,
        session_id: str | None = None,
    ) -> str:
        """Create a session and return its id (``"sess_" + 24 hex`` unless given).

        With ``parent_session_id`` the session is a sub-agent one level deeper than its parent;
        deeper than ``max_spawn_depth`` raises :class:`ConfigError`.
        """
        sid = "sess_" + secrets.token_hex(12) if session_id is None else _check_session_id(session_id)
        kind_value = SessionKind(kind).value
        lifecycle_value = SubagentLifecycle(lifecycle).value
        config_json = dumps(dict(config)) if config else None
        metadata_json = dumps(dict(metadata)) if metadata else None
        t = self.t

        async def unit(tx: Transaction) -> str:
            depth = 0
            kind_now = kind_value
            if parent_session_id is not None:
                parent = await tx.fetchone(
                    f"SELECT spawn_depth FROM {t['sessions']} WHERE session_id = ?", (parent_session_id,)
                )
                if parent is None:
                    raise SessionNotFoundError(parent_session_id)
                depth = int(parent["spawn_depth"]) + 1
                kind_now = SessionKind.SUBAGENT.value
                if depth > self.max_spawn_depth:
                    raise ConfigError(f"spawn depth {depth} exceeds max_spawn_depth={self.max_spawn_depth}")
            if session_id is not None and await tx.fetchone(
                f"SELECT 1 AS present FROM {t['sessions']} WHERE session_id = ?", (sid,)
            ):
                raise ConfigError(f"session {sid} already exists")
            now = now_ms()
            await tx.execute(
                f"INSERT INTO {t['sessions']} ({SESSION_COLS}) VALUES ({', '.join('?' * 13)})",
                (
                    sid,
                    now,
                    now,
                    system_prompt,
                    model,
                    config_json,
                    SessionStatus.ACTIVE.value,
                    kind_now,
                    parent_session_id,
                    spawn_tool_call_id,
                    depth,
                    lifecycle_value,
                    metadata_json,
                ),
            )
            await tx.execute(
                f"INSERT INTO {t['session_state']} (session_id, updated_at, state_version) VALUES (?, ?, ?)",
                (sid, now, new_state_version()),
            )
            await tx.execute(
                f"INSERT INTO {t['session_stats']} (session_id, updated_at) VALUES (?, ?)", (sid, now)
            )
            return sid

        return await self._db.transact(unit)

    async def get_session(self, session_id: str) -> SessionRow | None:
        row = await self._db.fetchone(self._sql_get_session, (session_id,))
        return None if row is None else self._session_row(row)

    async def list_sessions(self, *, limit: int = 100, offset: int = 0) -> list[SessionRow]:
        """Sessions, oldest first."""
        rows = await self._db.fetchall(
            f"SELECT {SESSION_COLS} FROM {self.t['sessions']} ORDER BY created_at, session_id LIMIT ? OFFSET ?",
            (int(limit), int(offset)),
        )
        return [self._session_row(r) for r in rows]

    async def list_children(self, parent_session_id: str) -> list[SessionRow]:
        rows = await self._db.fetchall(
            f"SELECT {SESSION_COLS} FROM {self.t['sessions']} WHERE parent_session_id = ? "
            "ORDER BY created_at, session_id",
            (parent_session_id,),
        )
        return [self._session_row(r) for r in rows]

    async def close_session(self, session_id: str, *, cascade: bool = True) -> int:
        """Delete a session and every row it owns; return how many sessions were deleted.

        With ``cascade`` its ephemeral and linked sub-agents (recursively) go too; detached ones (and,
        without ``cascade``, all children) survive with no parent. Unknown ids delete nothing.
        """
        t = self.t

        async def unit(tx: Transaction) -> int:
            if (
                await tx.fetchone(
                    f"SELECT 1 AS present FROM {t['sessions']} WHERE session_id = ?", (session_id,)
                )
                is None
            ):
                return 0
            doomed = [session_id]
            orphans: list[str] = []
            frontier = [session_id]
            while frontier:
                parent = frontier.pop()
                for child in await tx.fetchall(
                    f"SELECT session_id, lifecycle FROM {t['sessions']} WHERE parent_session_id = ?",
                    (parent,),
                ):
                    if cascade and child["lifecycle"] != SubagentLifecycle.DETACHED.value:
                        doomed.append(child["session_id"])
                        frontier.append(child["session_id"])
                    else:
                        orphans.append(child["session_id"])
            if orphans:
                now = now_ms()
                await tx.executemany(
                    f"UPDATE {t['sessions']} SET parent_session_id = NULL, updated_at = ? WHERE session_id = ?",
                    [(now, o) for o in orphans],
                )
            keys = [(s,) for s in doomed]
            for name in (*_SESSION_TABLES, "sessions"):
                await tx.executemany(f"DELETE FROM {t[name]} WHERE session_id = ?", keys)
            for s in doomed:
                self._known.pop(s, None)
            return len(doomed)

        return await self._db.transact(unit)

    async def archive_session(self, session_id: str) -> None:
        """Mark a session archived (kept, but flagged as no longer in use)."""
        await self._update_session(session_id, "status = ?", (SessionStatus.ARCHIVED.value,))

    async def update_session_prompt(self, session_id: str, system_prompt: str | None) -> None:
        """Replace the session's system prompt (and bump ``prompt_version`` so cached windows notice)."""
        t = self.t

        async def unit(tx: Transaction) -> None:
            await self._lock_state(tx, session_id)
            await tx.execute(
                f"UPDATE {t['sessions']} SET system_prompt = ?, updated_at = ? WHERE session_id = ?",
                (system_prompt, now_ms(), session_id),
            )
            await tx.execute(
                f"UPDATE {t['session_state']} SET prompt_version = prompt_version + 1, "
                "state_version = state_version + 1 WHERE session_id = ?",
                (session_id,),
            )

        self._known.pop(session_id, None)
        await self._db.transact(unit)

    async def _update_session(self, session_id: str, assignment: str, params: tuple[Any, ...]) -> None:
        count = await self._db.execute(
            f"UPDATE {self.t['sessions']} SET {assignment}, updated_at = ? WHERE session_id = ?",
            (*params, now_ms(), session_id),
        )
        if not count:
            raise SessionNotFoundError(session_id)

    async def merge_session_metadata(self, session_id: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Shallow-merge ``patch`` into the session metadata (a ``None`` value removes the key)."""
        t = self.t

        async def unit(tx: Transaction) -> dict[str, Any]:
            await self._lock_state(tx, session_id)
            row = await tx.fetchone(
                f"SELECT metadata_json FROM {t['sessions']} WHERE session_id = ?", (session_id,)
            )
            if row is None:
                raise SessionNotFoundError(session_id)
            merged = dict(decode_json(row["metadata_json"], "sessions", f"session_id={session_id}") or {})
            for key, value in patch.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            await tx.execute(
                f"UPDATE {t['sessions']} SET metadata_json = ?, updated_at = ? WHERE session_id = ?",
                (dumps(merged) if merged else None, now_ms(), session_id),
            )
            return merged

        return await self._db.transact(unit)

    async def abort_pending(self, session_id: str, *, reason: str) -> int:
        """Answer every unresolved tool call with ``"<aborted: {reason}>"``; return how many."""

        async def unit(tx: Transaction) -> int:
            state = await self._lock_state(tx, session_id)
            text = state["pending_json"]
            pending = decode_json(text, "session_state", f"session_id={session_id}") if text else None
            if not pending:
                return 0
            names = {
                str(tc.get("id")): (tc.get("function") or {}).get("name") for tc in pending["tool_calls"]
            }
            msgs = [
                NewMessage(
                    role="tool",
                    content=f"<aborted: {reason}>",
                    name=names.get(tc_id),
                    tool_call_id=tc_id,
                    round_index=pending.get("round_index"),
                    meta={"aborted": True},
                )
                for tc_id in pending_ids(pending)
            ]
            await self._append_locked(
                tx,
                session_id,
                state,
                msgs,
                [prepare_message(m) for m in msgs],
                False,
                KEEP,
                None,
                (),
                None,
                None,
            )
            return len(msgs)

        self._known.pop(session_id, None)  # rare: the next append reads the row again
        return await self._db.transact(unit)

    # -- reads ----------------------------------------------------------------------------------------

    async def get_state(self, session_id: str) -> SessionStateRow | None:
        r = await self._db.fetchone(self._sql_get_state, (session_id,))
        if r is None:
            return None
        pending = decode_json(r["pending_json"], "session_state", f"session_id={session_id}")
        return SessionStateRow(
            session_id,
            int(r["next_seq"]),
            int(r["send_index"]),
            int(r["round_index"]),
            int(r["last_compact_seq"]),
            pending or None,
            int(r["prompt_version"]),
        )

    async def load_window(
        self, session_id: str
    ) -> tuple[SessionRow, SessionStateRow, list[MessageRow]] | None:
        """The session row, its state and its active messages, read in one transaction (one hop on
        SQLite): what a loop needs to rebuild a session's window cold. ``None`` for an unknown session."""

        async def unit(tx: Transaction) -> tuple[Row, Row, list[Row]] | None:
            session = await tx.fetchone(self._sql_get_session, (session_id,))
            if session is None:
                return None
            state = await tx.fetchone(self._sql_get_state, (session_id,))
            rows = await tx.fetchall(self._sql_active, (session_id,))
            return (session, state, rows) if state is not None else None

        found = await self._db.transact(unit)
        if found is None:
            return None
        session, r, rows = found
        pending = decode_json(r["pending_json"], "session_state", f"session_id={session_id}")
        state = SessionStateRow(
            session_id,
            int(r["next_seq"]),
            int(r["send_index"]),
            int(r["round_index"]),
            int(r["last_compact_seq"]),
            pending or None,
            int(r["prompt_version"]),
        )
        decode = self._message_row
        return self._session_row(session), state, [decode(row) for row in rows]

    async def load_active_messages(
        self, session_id: str, *, after_seq: int | None = None
    ) -> list[MessageRow]:
        """Active messages in seq order (optionally only those after ``after_seq``); one query."""
        if after_seq is None:
            rows = await self._db.fetchall(self._sql_active, (session_id,))
        else:
            rows = await self._db.fetchall(self._sql_active_after, (session_id, after_seq))
        decode = self._message_row
        return [decode(r) for r in rows]

    async def load_all_messages(self, session_id: str) -> list[MessageRow]:
        """Every message of the session in seq order, whatever its state."""
        rows = await self._db.fetchall(
            f"SELECT {MESSAGE_COLS} FROM {self.t['messages']} WHERE session_id = ? ORDER BY seq",
            (session_id,),
        )
        return [self._message_row(r) for r in rows]

    async def load_send(self, session_id: str, send_index: int) -> list[MessageRow]:
        """The messages written by one send (any state), in seq order."""
        rows = await self._db.fetchall(
            f"SELECT {MESSAGE_COLS} FROM {self.t['messages']} WHERE session_id = ? AND send_index = ? "
            "ORDER BY seq",
            (session_id, send_index),
        )
        return [self._message_row(r) for r in rows]

    async def get_message(self, session_id: str, seq: int) -> MessageRow | None:
        row = await self._db.fetchone(
            f"SELECT {MESSAGE_COLS} FROM {self.t['messages']} WHERE session_id = ? AND seq = ?",
            (session_id, seq),
        )
        return None if row is None else self._message_row(row)

    async def count_messages(self, session_id: str) -> int:
        row = await self._db.fetchone(
            f"SELECT COUNT(*) AS n FROM {self.t['messages']} WHERE session_id = ?", (session_id,)
        )
        return 0 if row is None else int(row["n"])

    # -- message states, compaction, retention ------------------------------------------------------------

    async def set_message_state(self, session_id: str, seqs: Sequence[int], state: MessageState | str) -> int:
        """Move messages forward (active → compacted_out → dropped); return how many changed.

        Moving backwards, naming an unknown seq, or leaving a tool call and its result split between
        active and inactive raises :class:`HistoryInvariantError` and changes nothing.
        """
        target = MessageState(state)
        wanted = sorted(set(int(s) for s in seqs))

        async def unit(tx: Transaction) -> int:
            st = await self._lock_state(tx, session_id)
            return await self._move_states(tx, session_id, st, wanted, target)

        return await self._db.transact(unit)

    async def _move_states(
        self, tx: Transaction, sid: str, st: Row, seqs: list[int], target: MessageState
    ) -> int:
        if not seqs:
            return 0
        msgs = self.t["messages"]
        current: dict[int, MessageState] = {}
        for i in range(0, len(seqs), 500):
            chunk = seqs[i : i + 500]
            for r in await tx.fetchall(
                f"SELECT seq, state FROM {msgs} WHERE session_id = ? AND seq IN ({', '.join('?' * len(chunk))})",
                (sid, *chunk),
            ):
                current[int(r["seq"])] = MessageState(r["state"])
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
            rows = await tx.fetchall(
                f"SELECT seq, role, tool_calls_json, tool_call_id FROM {msgs} "
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
            pending = decode_json(text, "session_state", f"session_id={sid}") if text else None
            if pending and pending.get("assistant_seq") in leaving_active:
                raise HistoryInvariantError(
                    f"message #{pending['assistant_seq']} awaits tool results and must stay active"
                )
            check_active_window(window, pending)
        await tx.executemany(
            f"UPDATE {msgs} SET state = ? WHERE session_id = ? AND seq = ?",
            [(target.value, sid, s) for s in moving],
        )
        return len(moving)

    async def record_compaction(
        self,
        session_id: str,
        *,
        from_seq: int,
        to_seq: int,
        note: NewMessage,
        before_tokens: int | None = None,
        after_tokens: int | None = None,
        also_seqs: Sequence[int] = (),
    ) -> CompactionRow:
        """Fold messages ``from_seq..to_seq`` in one transaction: mark the active ones
        ``compacted_out``, append ``note`` (the summary), record the compaction.

        ``also_seqs`` are further messages compacted out in the same transaction (e.g. the previous
        summary note, which a rolling fold replaces)."""
        prepared = [prepare_message(note)]
        extra = {int(s) for s in also_seqs}

        async def unit(tx: Transaction) -> CompactionRow:
            st = await self._lock_state(tx, session_id)
            rows = await tx.fetchall(
                f"SELECT seq FROM {self.t['messages']} WHERE session_id = ? AND state = 'active' "
                "AND seq >= ? AND seq <= ? ORDER BY seq",
                (session_id, from_seq, to_seq),
            )
            seqs = sorted({int(r["seq"]) for r in rows} | extra)
            await self._move_states(tx, session_id, st, seqs, MessageState.COMPACTED_OUT)
            res, _ = await self._append_locked(
                tx, session_id, st, [note], prepared, False, KEEP, note.round_index, (), None, None
            )
            compact_seq = await self._next_id(tx, "compactions", "compact_seq", session_id)
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
                f"INSERT INTO {self.t['compactions']} (session_id, compact_seq, note_seq, from_seq, to_seq, "
                "before_tokens, after_tokens, round_index, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    compact_seq,
                    row.note_seq,
                    from_seq,
                    to_seq,
                    before_tokens,
                    after_tokens,
                    row.round_index,
                    row.created_at,
                ),
            )
            await tx.execute(
                f"UPDATE {self.t['session_state']} SET last_compact_seq = ? "
                "WHERE session_id = ? AND last_compact_seq < ?",
                (to_seq, session_id, to_seq),
            )
            return row

        self._known.pop(session_id, None)  # rare: the next append reads the row again
        return await self._db.transact(unit)

    async def list_compactions(self, session_id: str) -> list[CompactionRow]:
        rows = await self._db.fetchall(
            f"SELECT session_id, compact_seq, note_seq, from_seq, to_seq, before_tokens, after_tokens, "
            f"round_index, created_at FROM {self.t['compactions']} WHERE session_id = ? ORDER BY compact_seq",
            (session_id,),
        )
        return [CompactionRow(**r) for r in rows]

    async def prune_compacted_messages(self, session_id: str, *, keep_recent: int = 0) -> int:
        """Delete inactive (compacted-out or dropped) messages except the ``keep_recent`` newest."""
        msgs = self.t["messages"]

        async def unit(tx: Transaction) -> int:
            await self._lock_state(tx, session_id)
            rows = await tx.fetchall(
                f"SELECT seq FROM {msgs} WHERE session_id = ? AND state <> 'active' ORDER BY seq DESC",
                (session_id,),
            )
            doomed = [(session_id, int(r["seq"])) for r in rows[max(keep_recent, 0) :]]
            if doomed:
                await tx.executemany(f"DELETE FROM {msgs} WHERE session_id = ? AND seq = ?", doomed)
            return len(doomed)

        return await self._db.transact(unit)
