"""`DeferredInput`: input that reaches a session later than a send's own — follow-ups and timers.

A follow-up for a session that is being driven is queued durably in the store and delivered by the
running send at its next round boundary (or by the next send, after a restart). The round engine
learns that something waits from ``flags``: the ids of sessions with follow-ups queued, set here when
this loop queues one and by the engine when a store write reports one queued elsewhere.

A timer is a durable note to the session's future self, armed here and fired by a `TimerRunner`.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ._types import FollowUpQueued

if TYPE_CHECKING:
    from ..store import TimerRow
    from ._store_ref import StoreRef

__all__ = ["DeferredInput", "queued_text"]


# About 100 years: far beyond any sensible timer, far below every backend's integer limit.
_MAX_TIMER_S = 100 * 365 * 24 * 3600
_MAX_DUE_MS = 2**62


def _whole(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _shown(value: object) -> str:
    """``repr(value)`` for an error message; an int too long to print (or to read) is not spelled out."""
    if isinstance(value, int) and not -(10**18) < value < 10**18:
        return "an integer of more than 18 digits"
    return repr(value)[:60]


class DeferredInput:
    """Follow-ups and timers for one loop's store; ``flags`` is shared with the loop's round engine."""

    __slots__ = ("_stores", "flags")

    def __init__(self, stores: StoreRef, flags: set[str]) -> None:
        self._stores = stores
        self.flags = flags

    async def queue_follow_up(self, session_id: str, content: str) -> FollowUpQueued:
        """Store ``content`` for the session's running (or next) send and flag the session."""
        store = await self._stores.ensure()
        item_id = await store.enqueue_follow_up(session_id, content)
        self.flags.add(session_id)
        depth = len(await store.list_follow_ups(session_id))
        return FollowUpQueued(session_id=session_id, queue_depth=depth, item_id=item_id)

    async def schedule_timer(
        self,
        session_id: str,
        *,
        delay_s: float | None,
        due_at_ms: int | None,
        note: str,
        interval_s: int | None,
    ) -> TimerRow:
        """Arm a durable timer: exactly one of ``delay_s`` / ``due_at_ms``; ``interval_s`` makes it recur."""
        if (delay_s is None) == (due_at_ms is None):
            raise ConfigError("schedule_timer needs exactly one of delay_s= or due_at_ms=")
        if not isinstance(note, str) or not note.strip():
            raise ConfigError("schedule_timer needs a non-blank note")
        if interval_s is not None and not _whole(interval_s, 1, _MAX_TIMER_S):
            raise ConfigError(f"interval_s must be an int from 1 to {_MAX_TIMER_S}, got {_shown(interval_s)}")
        if delay_s is not None:
            # NaN, infinities, bools and absurd delays would overflow or corrupt the due time.
            if isinstance(delay_s, bool) or not isinstance(delay_s, (int, float)):
                raise ConfigError(f"delay_s must be a number of seconds, got {type(delay_s).__name__}")
            if not math.isfinite(delay_s) or not 0 <= delay_s <= _MAX_TIMER_S:
                raise ConfigError(
                    f"delay_s must be a finite number from 0 to {_MAX_TIMER_S}, got {_shown(delay_s)}"
                )
            due_at_ms = time.time_ns() // 1_000_000 + int(delay_s * 1000)
        elif not _whole(due_at_ms, 0, _MAX_DUE_MS):
            raise ConfigError(f"due_at_ms must be an int from 0 to {_MAX_DUE_MS}, got {_shown(due_at_ms)}")
        assert due_at_ms is not None
        store = await self._stores.ensure()
        return await store.create_timer(session_id, due_at_ms=due_at_ms, note=note, interval_s=interval_s)

    async def cancel_timer(self, session_id: str, timer_id: int) -> bool:
        """Cancel an armed or firing timer; False when it already finished or is unknown."""
        return await (await self._stores.ensure()).cancel_timer(session_id, timer_id)

    async def list_timers(self, session_id: str) -> list[TimerRow]:
        """The session's armed and firing timers, soonest first."""
        return await (await self._stores.ensure()).list_timers(session_id)


def queued_text(content: str | list[dict[str, Any]]) -> str:
    """A queued follow-up is text (the durable queue stores strings): parts are refused."""
    if isinstance(content, str):
        return content
    raise ConfigError("a follow-up queued behind a running send must be text; send images with send()")
