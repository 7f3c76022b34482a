"""Session-side data beyond messages: key/value state, notes, timers, follow-ups and statistics."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ConfigError, SessionNotFoundError
from ._core import StoreCore, dumps, now_ms
from ._core import now_ms as _clock  # due_timers' parameter shadows the name
from ._port import Transaction
from ._rows import (
    MUTATE_SKIP,
    FollowUpRow,
    NoteRow,
    SessionStatsRow,
    TimerRow,
    TimerStatus,
    UsageRoundRow,
    decode_json,
)

__all__ = ["AuxMixin"]

_TIMER_COLS = "session_id, timer_id, due_at, note, status, interval_s, fire_count, last_fired_at, created_at, updated_at"
_NOTE_COLS = "session_id, note_id, content, pinned, created_at, updated_at"
_STATS_COLS = (
    "session_id, sends, rounds, llm_calls, tool_calls, prompt_tokens, completion_tokens, "
    "cache_read_tokens, reasoning_tokens, total_tokens, first_send_at, last_send_at, updated_at"
)
_USAGE_COLS = (
    "session_id, send_index, round_index, prompt_tokens, completion_tokens, total_tokens, "
    "cache_read_tokens, reasoning_tokens, model, created_at"
)
_TIMER_STATUSES = frozenset(s.value for s in TimerStatus)


def _timer(r: Mapping[str, Any]) -> TimerRow:
    return TimerRow(**r)


def _note(r: Mapping[str, Any]) -> NoteRow:
    return NoteRow(
        r["session_id"], int(r["note_id"]), r["content"], bool(r["pinned"]), r["created_at"], r["updated_at"]
    )


def _status(value: str) -> str:
    status = getattr(value, "value", value)
    if status not in _TIMER_STATUSES:
        raise ConfigError(f"unknown timer status {value!r}; expected one of {sorted(_TIMER_STATUSES)}")
    return str(status)


class AuxMixin(StoreCore):
    # -- per-session runtime state ------------------------------------------------------------------

    async def get_runtime_state(self, session_id: str, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key`` for the session, or ``default``."""
        row = await self._db.fetchone(
            f"SELECT value_json FROM {self.t['session_runtime_state']} WHERE session_id = ? AND state_key = ?",
            (session_id, key),
        )
        if row is None or row["value_json"] is None:
            return default
        return decode_json(row["value_json"], "session_runtime_state", f"session_id={session_id}, key={key}")

    async def set_runtime_state(self, session_id: str, key: str, value: Any) -> None:
        """Store a JSON-serialisable ``value`` under ``key`` (SessionNotFoundError if no session)."""
        text = dumps(value)
        sql = self._db.dialect.upsert(
            self.t["session_runtime_state"], ("session_id", "state_key"), ("value_json", "updated_at")
        )

        async def unit(tx: Transaction) -> None:
            await self._lock_state(tx, session_id)
            await tx.execute(sql, (session_id, key, text, now_ms()))

        await self._db.transact(unit)

    async def mutate_runtime_state(
        self, session_id: str, key: str, fn: Callable[[Any], Any], *, default: Any = None
    ) -> Any:
        """Atomically replace the value with ``fn(current)``; return the value now stored.

        ``fn`` runs inside the transaction (on SQLite, on the connection thread): keep it quick and
        free of I/O. Returning :data:`MUTATE_SKIP` leaves the value untouched.
        """
        sql = self._db.dialect.upsert(
            self.t["session_runtime_state"], ("session_id", "state_key"), ("value_json", "updated_at")
        )
        read = (
            f"SELECT value_json FROM {self.t['session_runtime_state']} WHERE session_id = ? AND state_key = ?"
        )

        async def unit(tx: Transaction) -> Any:
            await self._lock_state(tx, session_id)
            row = await tx.fetchone(read, (session_id, key))
            current = default
            if row is not None and row["value_json"] is not None:
                current = decode_json(
                    row["value_json"], "session_runtime_state", f"session_id={session_id}, key={key}"
                )
            new = fn(current)
            if new is MUTATE_SKIP:
                return current
            await tx.execute(sql, (session_id, key, dumps(new), now_ms()))
            return new

        return await self._db.transact(unit)

    async def delete_runtime_state(self, session_id: str, key: str) -> bool:
        count = await self._db.execute(
            f"DELETE FROM {self.t['session_runtime_state']} WHERE session_id = ? AND state_key = ?",
            (session_id, key),
        )
        return count > 0

    # -- shared state (any owner, e.g. "blackboard:<id>") ---------------------------------------------

    async def get_shared_state(self, owner: str, key: str, default: Any = None) -> Any:
        row = await self._db.fetchone(
            f"SELECT value_json FROM {self.t['shared_state']} WHERE owner = ? AND state_key = ?", (owner, key)
        )
        if row is None or row["value_json"] is None:
            return default
        return decode_json(row["value_json"], "shared_state", f"owner={owner}, key={key}")

    async def set_shared_state(self, owner: str, key: str, value: Any) -> None:
        sql = self._db.dialect.upsert(
            self.t["shared_state"], ("owner", "state_key"), ("value_json", "updated_at")
        )
        await self._db.execute(sql, (owner, key, dumps(value), now_ms()))

    async def mutate_shared_state(
        self, owner: str, key: str, fn: Callable[[Any], Any], *, default: Any = None
    ) -> Any:
        """Atomic read-modify-write of a shared value (same contract as ``mutate_runtime_state``)."""
        table = self.t["shared_state"]
        # Upserting a placeholder (NULL value = absent) takes the row's write lock on every backend
        # at once; an INSERT-IGNORE-then-SELECT-FOR-UPDATE would deadlock concurrent MySQL callers.
        claim = self._db.dialect.upsert(
            table, ("owner", "state_key"), ("updated_at",), insert_only_cols=("value_json",)
        )
        read = f"SELECT value_json FROM {table} WHERE owner = ? AND state_key = ?"
        write = f"UPDATE {table} SET value_json = ?, updated_at = ? WHERE owner = ? AND state_key = ?"

        async def unit(tx: Transaction) -> Any:
            now = now_ms()
            await tx.execute(claim, (owner, key, now, None))
            row = await tx.fetchone(read, (owner, key))
            current = default
            if row is not None and row["value_json"] is not None:
                current = decode_json(row["value_json"], "shared_state", f"owner={owner}, key={key}")
            new = fn(current)
            if new is MUTATE_SKIP:
                return current
            await tx.execute(write, (dumps(new), now, owner, key))
            return new

        return await self._db.transact(unit)

    async def delete_shared_state(self, owner: str, key: str) -> bool:
        count = await self._db.execute(
            f"DELETE FROM {self.t['shared_state']} WHERE owner = ? AND state_key = ?", (owner, key)
        )
        return count > 0

    # -- notes ----------------------------------------------------------------------------------------

    async def add_note(self, session_id: str, content: str, *, pinned: bool = False) -> NoteRow:
        async def unit(tx: Transaction) -> NoteRow:
            await self._lock_state(tx, session_id)
            note_id = await self._next_id(tx, "notes", "note_id", session_id)
            now = now_ms()
            await tx.execute(
                f"INSERT INTO {self.t['notes']} ({_NOTE_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, note_id, content, int(pinned), now, now),
            )
            return NoteRow(session_id, note_id, content, pinned, now, now)

        return await self._db.transact(unit)

    async def update_note(
        self, session_id: str, note_id: int, *, content: str | None = None, pinned: bool | None = None
    ) -> bool:
        """Change a note's content and/or pin; False if it does not exist."""
        count = await self._db.execute(
            f"UPDATE {self.t['notes']} SET content = COALESCE(?, content), pinned = COALESCE(?, pinned), "
            "updated_at = ? WHERE session_id = ? AND note_id = ?",
            (content, None if pinned is None else int(pinned), now_ms(), session_id, note_id),
        )
        return count > 0

    async def delete_note(self, session_id: str, note_id: int) -> bool:
        count = await self._db.execute(
            f"DELETE FROM {self.t['notes']} WHERE session_id = ? AND note_id = ?", (session_id, note_id)
        )
        return count > 0

    async def list_notes(self, session_id: str) -> list[NoteRow]:
        rows = await self._db.fetchall(
            f"SELECT {_NOTE_COLS} FROM {self.t['notes']} WHERE session_id = ? ORDER BY note_id", (session_id,)
        )
        return [_note(r) for r in rows]

    async def count_notes(self, session_id: str) -> int:
        row = await self._db.fetchone(
            f"SELECT COUNT(*) AS n FROM {self.t['notes']} WHERE session_id = ?", (session_id,)
        )
        return 0 if row is None else int(row["n"])

    # -- timers -----------------------------------------------------------------------------------------

    async def create_timer(
        self, session_id: str, *, due_at_ms: int, note: str, interval_s: int | None = None
    ) -> TimerRow:
        """Arm a timer due at ``due_at_ms`` (epoch ms); ``interval_s`` makes it recurring."""
        if interval_s is not None and interval_s <= 0:
            raise ConfigError(f"interval_s must be a positive number of seconds, got {interval_s!r}")

        async def unit(tx: Transaction) -> TimerRow:
            await self._lock_state(tx, session_id)
            timer_id = await self._next_id(tx, "timers", "timer_id", session_id)
            now = now_ms()
            row = TimerRow(session_id, timer_id, int(due_at_ms), note, "armed", interval_s, 0, None, now, now)
            await tx.execute(
                f"INSERT INTO {self.t['timers']} ({_TIMER_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, timer_id, row.due_at, note, "armed", interval_s, 0, None, now, now),
            )
            return row

        return await self._db.transact(unit)

    async def get_timer(self, session_id: str, timer_id: int) -> TimerRow | None:
        row = await self._db.fetchone(
            f"SELECT {_TIMER_COLS} FROM {self.t['timers']} WHERE session_id = ? AND timer_id = ?",
            (session_id, timer_id),
        )
        return None if row is None else _timer(row)

    async def list_timers(
        self, session_id: str, *, statuses: Sequence[str] = ("armed", "firing")
    ) -> list[TimerRow]:
        wanted = [_status(s) for s in statuses]
        if not wanted:
            return []
        marks = ", ".join("?" * len(wanted))
        rows = await self._db.fetchall(
            f"SELECT {_TIMER_COLS} FROM {self.t['timers']} WHERE session_id = ? AND status IN ({marks}) "
            "ORDER BY due_at, timer_id",
            (session_id, *wanted),
        )
        return [_timer(r) for r in rows]

    async def due_timers(self, *, now_ms: int | None = None, limit: int = 50) -> list[TimerRow]:
        """Armed timers of every session that are due at ``now_ms`` (default: now), earliest first."""
        at = _clock() if now_ms is None else int(now_ms)
        rows = await self._db.fetchall(
            f"SELECT {_TIMER_COLS} FROM {self.t['timers']} WHERE status = 'armed' AND due_at <= ? "
            "ORDER BY due_at, session_id, timer_id LIMIT ?",
            (at, int(limit)),
        )
        return [_timer(r) for r in rows]

    async def transition_timer(
        self,
        session_id: str,
        timer_id: int,
        *,
        from_status: str,
        to_status: str,
        due_at_ms: int | None = None,
        now_ms: int | None = None,
    ) -> bool:
        """Compare-and-set the status; True only for the one caller that won the transition.

        ``now_ms`` (default: now) is the time stamped into ``updated_at``, the firing heartbeat.
        """
        at = _clock() if now_ms is None else int(now_ms)
        count = await self._db.execute(
            f"UPDATE {self.t['timers']} SET status = ?, due_at = COALESCE(?, due_at), updated_at = ? "
            "WHERE session_id = ? AND timer_id = ? AND status = ?",
            (_status(to_status), due_at_ms, at, session_id, timer_id, _status(from_status)),
        )
        return count > 0

    async def finish_firing_timer(self, session_id: str, timer_id: int, *, now_ms: int | None = None) -> bool:
        """A ``firing`` timer is done: one-shot → ``fired``; recurring → ``armed`` again at now+interval.

        ``now_ms`` (default: now) is the fire time; a recurring timer's next due time counts from it.
        """
        now = _clock() if now_ms is None else int(now_ms)
        count = await self._db.execute(
            f"UPDATE {self.t['timers']} SET "
            "status = CASE WHEN interval_s IS NULL THEN 'fired' ELSE 'armed' END, "
            "due_at = CASE WHEN interval_s IS NULL THEN due_at ELSE ? + interval_s * 1000 END, "
            "fire_count = fire_count + 1, last_fired_at = ?, updated_at = ? "
            "WHERE session_id = ? AND timer_id = ? AND status = 'firing'",
            (now, now, now, session_id, timer_id),
        )
        return count > 0

    async def heartbeat_firing_timer(
        self, session_id: str, timer_id: int, *, now_ms: int | None = None
    ) -> bool:
        """Refresh a ``firing`` timer's ``updated_at`` (its heartbeat); False once it is no longer firing."""
        at = _clock() if now_ms is None else int(now_ms)
        count = await self._db.execute(
            f"UPDATE {self.t['timers']} SET updated_at = ? "
            "WHERE session_id = ? AND timer_id = ? AND status = 'firing'",
            (at, session_id, timer_id),
        )
        return count > 0

    async def recover_stale_firing_timers(self, *, older_than_ms: int, now_ms: int | None = None) -> int:
        """Re-arm ``firing`` timers whose heartbeat (``updated_at``) is older than ``older_than_ms``.

        Their runner died mid-delivery; the timers keep their due time, so the next scan fires them
        again (timers are at-least-once). Returns how many were re-armed.
        """
        at = _clock() if now_ms is None else int(now_ms)
        return await self._db.execute(
            f"UPDATE {self.t['timers']} SET status = 'armed', updated_at = ? "
            "WHERE status = 'firing' AND updated_at < ?",
            (at, int(older_than_ms)),
        )

    async def cancel_timer(self, session_id: str, timer_id: int) -> bool:
        """Cancel an armed or firing timer; False if it is already finished or unknown."""
        count = await self._db.execute(
            f"UPDATE {self.t['timers']} SET status = 'cancelled', updated_at = ? "
            "WHERE session_id = ? AND timer_id = ? AND status IN ('armed', 'firing')",
            (now_ms(), session_id, timer_id),
        )
        return count > 0

    # -- follow-ups ---------------------------------------------------------------------------------------

    async def enqueue_follow_up(self, session_id: str, content: str) -> int:
        """Queue a message for delivery at the session's next round boundary; returns its item id."""
        state = self.t["session_state"]

        async def unit(tx: Transaction) -> int:
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
                f"INSERT INTO {self.t['follow_ups']} (session_id, item_id, content, created_at) "
                "VALUES (?, ?, ?, ?)",
                (session_id, item_id, content, now_ms()),
            )
            return item_id

        self._known.pop(session_id, None)  # the next append reads the new count
        return await self._db.transact(unit)

    async def list_follow_ups(self, session_id: str) -> list[FollowUpRow]:
        """Queued follow-ups in arrival order (consume them via ``append_messages(consume_follow_ups=)``)."""
        rows = await self._db.fetchall(
            f"SELECT session_id, item_id, content, created_at FROM {self.t['follow_ups']} "
            "WHERE session_id = ? ORDER BY item_id",
            (session_id,),
        )
        return [FollowUpRow(r["session_id"], int(r["item_id"]), r["content"], r["created_at"]) for r in rows]

    # -- statistics ---------------------------------------------------------------------------------------

    async def get_session_stats(self, session_id: str) -> SessionStatsRow | None:
        row = await self._db.fetchone(
            f"SELECT {_STATS_COLS} FROM {self.t['session_stats']} WHERE session_id = ?", (session_id,)
        )
        return None if row is None else SessionStatsRow(**row)

    async def list_session_stats(self) -> list[SessionStatsRow]:
        rows = await self._db.fetchall(
            f"SELECT {_STATS_COLS} FROM {self.t['session_stats']} ORDER BY session_id"
        )
        return [SessionStatsRow(**r) for r in rows]

    async def list_usage_rounds(self, session_id: str) -> list[UsageRoundRow]:
        rows = await self._db.fetchall(
            f"SELECT {_USAGE_COLS} FROM {self.t['usage_rounds']} WHERE session_id = ? "
            "ORDER BY send_index, round_index",
            (session_id,),
        )
        return [UsageRoundRow(**r) for r in rows]
