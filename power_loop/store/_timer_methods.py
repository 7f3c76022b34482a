"""The timer methods of :class:`~power_loop.store.SessionStore` (the ``timers`` table: see ``_timers``).

Times are epoch milliseconds: ours are the ``*_ms`` keywords; the published keywords (``due_at``,
``now``) are accepted as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from ..errors import ConfigError
from ._core import check_ints, check_session_id
from ._rows import TimerRow
from ._timers import TimerRepository

__all__ = ["TimerMethods"]


def _one(ours: str, value: int | None, published: str, alias: int | None, *, required: bool) -> int | None:
    """The time given under our keyword or the published one (not both; one of them if ``required``)."""
    if value is not None and alias is not None:
        raise ConfigError(f"pass {ours}= or {published}=, not both")
    if required and value is None and alias is None:
        raise ConfigError(f"{ours}= (epoch ms) is required")
    return value if value is not None else alias


class TimerMethods:
    """Arm, list, fire (compare-and-set) and cancel per-session timers."""

    _timers: TimerRepository

    async def create_timer(
        self,
        session_id: str,
        *,
        due_at_ms: int | None = None,
        note: str,
        interval_s: int | None = None,
        due_at: int | None = None,
    ) -> TimerRow:
        """Arm a timer due at ``due_at_ms`` (epoch ms; the published keyword ``due_at`` also works);
        ``interval_s`` makes it recurring."""
        check_session_id(session_id)
        due = _one("due_at_ms", due_at_ms, "due_at", due_at, required=True)
        return await self._timers.create(
            session_id, due_at_ms=cast(int, due), note=note, interval_s=interval_s
        )

    async def get_timer(self, session_id: str, timer_id: int) -> TimerRow | None:
        """One timer, or ``None``."""
        check_session_id(session_id)
        check_ints(timer_id=timer_id)
        return await self._timers.get(session_id, timer_id)

    async def list_timers(
        self, session_id: str, *, statuses: Sequence[str] = ("armed", "firing")
    ) -> list[TimerRow]:
        """The session's timers in ``statuses``, soonest first."""
        check_session_id(session_id)
        return await self._timers.list_timers(session_id, statuses=statuses)

    async def due_timers(
        self, *, now_ms: int | None = None, limit: int = 50, now: int | None = None
    ) -> list[TimerRow]:
        """Armed timers of every session that are due at ``now_ms`` (default: now; the published
        keyword ``now`` also works), earliest first."""
        when = _one("now_ms", now_ms, "now", now, required=False)
        check_ints(now_ms=when, limit=limit)
        return await self._timers.due(now_ms=when, limit=limit)

    async def transition_timer(
        self,
        session_id: str,
        timer_id: int,
        *,
        from_status: str,
        to_status: str,
        due_at_ms: int | None = None,
        now_ms: int | None = None,
        due_at: int | None = None,
    ) -> bool:
        """Compare-and-set the status; True only for the one caller that won the transition.

        ``due_at_ms`` (published: ``due_at``) re-schedules the timer; ``now_ms`` (default: now) is the
        time stamped into ``updated_at``, the firing heartbeat.
        """
        check_session_id(session_id)
        due_at_ms = _one("due_at_ms", due_at_ms, "due_at", due_at, required=False)
        return await self._timers.transition(
            session_id,
            timer_id,
            from_status=from_status,
            to_status=to_status,
            due_at_ms=due_at_ms,
            now_ms=now_ms,
        )

    async def finish_firing_timer(self, session_id: str, timer_id: int, *, now_ms: int | None = None) -> bool:
        """A ``firing`` timer is done: one-shot → ``fired``; recurring → ``armed`` again at now+interval.

        ``now_ms`` (default: now) is the fire time; a recurring timer's next due time counts from it.
        """
        check_session_id(session_id)
        check_ints(timer_id=timer_id, now_ms=now_ms)
        return await self._timers.finish_firing(session_id, timer_id, now_ms=now_ms)

    async def heartbeat_firing_timer(
        self, session_id: str, timer_id: int, *, now_ms: int | None = None
    ) -> bool:
        """Refresh a ``firing`` timer's ``updated_at`` (its heartbeat); False once it is no longer firing."""
        check_session_id(session_id)
        check_ints(timer_id=timer_id, now_ms=now_ms)
        return await self._timers.heartbeat_firing(session_id, timer_id, now_ms=now_ms)

    async def recover_stale_firing_timers(self, *, older_than_ms: int, now_ms: int | None = None) -> int:
        """Re-arm ``firing`` timers whose heartbeat (``updated_at``) is older than ``older_than_ms``.

        Their runner died mid-delivery; the timers keep their due time, so the next scan fires them
        again (timers are at-least-once). Returns how many were re-armed.
        """
        check_ints(older_than_ms=older_than_ms, now_ms=now_ms)
        return await self._timers.recover_stale_firing(older_than_ms=older_than_ms, now_ms=now_ms)

    async def cancel_timer(self, session_id: str, timer_id: int) -> bool:
        """Cancel an armed or firing timer; False if it is already finished or unknown."""
        check_session_id(session_id)
        check_ints(timer_id=timer_id)
        return await self._timers.cancel(session_id, timer_id)
