"""Timers: per-session reminders due at an epoch-ms time, optionally recurring.

Status moves by compare-and-set (``transition_timer``), so among workers scanning the same database
exactly one wins each firing; a ``firing`` timer's ``updated_at`` is its runner's heartbeat, and a
timer whose heartbeat stopped is re-armed (timers are at-least-once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ._core import StoreContext, now_ms, storable_text
from ._port import Transaction
from ._rows import TimerRow, TimerStatus

if TYPE_CHECKING:
    from ._port import Transaction

__all__ = ["TimerRepository"]

_TIMER_COLS = "session_id, timer_id, due_at, note, status, interval_s, fire_count, last_fired_at, created_at, updated_at"
_TIMER_STATUSES = frozenset(s.value for s in TimerStatus)


def _timer(r: Mapping[str, Any]) -> TimerRow:
    return TimerRow(**r)


def _status(value: str) -> str:
    status = getattr(value, "value", value)
    if status not in _TIMER_STATUSES:
        raise ConfigError(f"unknown timer status {value!r}; expected one of {sorted(_TIMER_STATUSES)}")
    return str(status)


def _at(when: int | None) -> int:
    """``when`` (epoch ms) or, when None, now."""
    return now_ms() if when is None else int(when)


def _whole(value: object) -> bool:
    """An int (not a bool) that every backend's BIGINT holds."""
    return isinstance(value, int) and not isinstance(value, bool) and value <= 2**62


def _shown(value: object) -> str:
    """``repr(value)`` for an error message; an int too long to print (or to read) is not spelled out."""
    if isinstance(value, int) and not -(10**18) < value < 10**18:
        return "an integer of more than 18 digits"
    return repr(value)[:60]


class TimerRepository:
    """The ``timers`` table; timer ids count per session (allocated with the state row locked)."""

    __slots__ = ("_ctx", "_table")

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        self._table = ctx.t["timers"]

    async def create(self, session_id: str, *, due_at_ms: int, note: str, interval_s: int | None) -> TimerRow:
        if interval_s is not None and (not _whole(interval_s) or interval_s <= 0):
            raise ConfigError(f"interval_s must be a positive number of seconds, got {_shown(interval_s)}")
        if not _whole(due_at_ms) or due_at_ms < 0:
            raise ConfigError(f"due_at_ms must be a non-negative int (epoch ms), got {_shown(due_at_ms)}")
        ctx = self._ctx
        note = storable_text(note)

        async def unit(tx: Transaction) -> TimerRow:
            await ctx.lock_state(tx, session_id)
            timer_id = await ctx.next_id(tx, "timers", "timer_id", session_id)
            now = now_ms()
            row = TimerRow(session_id, timer_id, int(due_at_ms), note, "armed", interval_s, 0, None, now, now)
            await tx.execute(
                f"INSERT INTO {self._table} ({_TIMER_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, timer_id, row.due_at, note, "armed", interval_s, 0, None, now, now),
            )
            return row

        return await ctx.db.transact(unit)

    async def get(self, session_id: str, timer_id: int) -> TimerRow | None:
        row = await self._ctx.db.fetchone(
            f"SELECT {_TIMER_COLS} FROM {self._table} WHERE session_id = ? AND timer_id = ?",
            (session_id, timer_id),
        )
        return None if row is None else _timer(row)

    async def list_timers(self, session_id: str, *, statuses: Sequence[str]) -> list[TimerRow]:
        wanted = [_status(s) for s in statuses]
        if not wanted:
            return []
        marks = ", ".join("?" * len(wanted))
        rows = await self._ctx.db.fetchall(
            f"SELECT {_TIMER_COLS} FROM {self._table} WHERE session_id = ? AND status IN ({marks}) "
            "ORDER BY due_at, timer_id",
            (session_id, *wanted),
        )
        return [_timer(r) for r in rows]

    async def due(self, *, now_ms: int | None, limit: int) -> list[TimerRow]:
        rows = await self._ctx.db.fetchall(
            f"SELECT {_TIMER_COLS} FROM {self._table} WHERE status = 'armed' AND due_at <= ? "
            "ORDER BY due_at, session_id, timer_id LIMIT ?",
            (_at(now_ms), int(limit)),
        )
        return [_timer(r) for r in rows]

    async def transition(
        self,
        session_id: str,
        timer_id: int,
        *,
        from_status: str,
        to_status: str,
        due_at_ms: int | None,
        now_ms: int | None,
    ) -> bool:
        at = _at(now_ms)
        count = await self._ctx.db.execute(
            f"UPDATE {self._table} SET status = ?, due_at = COALESCE(?, due_at), updated_at = ? "
            "WHERE session_id = ? AND timer_id = ? AND status = ?",
            (_status(to_status), due_at_ms, at, session_id, timer_id, _status(from_status)),
        )
        return count > 0

    async def finish_firing(self, session_id: str, timer_id: int, *, now_ms: int | None) -> bool:
        now = _at(now_ms)
        count = await self._ctx.db.execute(
            f"UPDATE {self._table} SET "
            "status = CASE WHEN interval_s IS NULL THEN 'fired' ELSE 'armed' END, "
            "due_at = CASE WHEN interval_s IS NULL THEN due_at ELSE ? + interval_s * 1000 END, "
            "fire_count = fire_count + 1, last_fired_at = ?, updated_at = ? "
            "WHERE session_id = ? AND timer_id = ? AND status = 'firing'",
            (now, now, now, session_id, timer_id),
        )
        return count > 0

    async def heartbeat_firing(self, session_id: str, timer_id: int, *, now_ms: int | None) -> bool:
        count = await self._ctx.db.execute(
            f"UPDATE {self._table} SET updated_at = ? "
            "WHERE session_id = ? AND timer_id = ? AND status = 'firing'",
            (_at(now_ms), session_id, timer_id),
        )
        return count > 0

    async def recover_stale_firing(self, *, older_than_ms: int, now_ms: int | None) -> int:
        return await self._ctx.db.execute(
            f"UPDATE {self._table} SET status = 'armed', updated_at = ? "
            "WHERE status = 'firing' AND updated_at < ?",
            (_at(now_ms), int(older_than_ms)),
        )

    async def cancel(self, session_id: str, timer_id: int) -> bool:
        count = await self._ctx.db.execute(
            f"UPDATE {self._table} SET status = 'cancelled', updated_at = ? "
            "WHERE session_id = ? AND timer_id = ? AND status IN ('armed', 'firing')",
            (now_ms(), session_id, timer_id),
        )
        return count > 0
