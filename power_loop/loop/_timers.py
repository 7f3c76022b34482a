"""`TimerRunner`: fires due durable timers into their sessions.

Timers live in the store (``loop.schedule_timer``); nothing fires them until a runner scans. A
runner claims each due timer with a compare-and-set ``armed → firing``, so any number of runners —
in one process or many, on one database — fire each due timer exactly once per due time. While a
delivery runs (a whole send can take minutes) the runner refreshes the timer's heartbeat
(``updated_at``); a ``firing`` row whose heartbeat went stale belonged to a runner that died, and
:meth:`TimerRunner.start` re-arms it. A re-fire delivers with the same inbox id as the
firing it repeats (``timer:<id>:<fire_count>``), so a crash after the message was persisted but
before the timer was finished stores nothing twice: the repeat finishes the interrupted send.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from .. import events as P
from .. import hooks as H
from ..errors import ConfigError, SessionNotFoundError
from ..events import AgentEventType
from ..hooks import HookDirective, HookPoint
from ._types import FollowUpQueued

if TYPE_CHECKING:
    from ..store import SessionStore, TimerRow
    from ._loop import StatefulAgentLoop

__all__ = ["TimerRunner", "format_timer_message"]

_log = logging.getLogger("power_loop.timers")

# A failed delivery is retried this long after the failure (the timer is re-armed, not lost).
_ERROR_RETRY_MS = 30_000
# Due timers claimed per store query; a scan keeps querying until nothing new is due.
_BATCH = 50


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def format_timer_message(timer: TimerRow) -> str:
    """The user-turn text a fired timer injects into its session."""
    return (
        f"<timer id={timer.timer_id}>\n"
        "Your scheduled wake-up has fired. Your note to yourself was:\n"
        f"{timer.note}\n"
        "</timer>"
    )


def _item_id(timer: TimerRow) -> str:
    """The inbox id of a timer's current firing (``deliver``'s ``item_id``): the same until the firing
    is finished, so delivering it again after a crash stores its message once."""
    return f"timer:{timer.timer_id}:{timer.fire_count}"


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{name} must be a number of seconds > 0, got {value!r}")
    return float(value)


class TimerRunner:
    """Scans the loop's store for due timers and delivers each into its session.

    ::

        async with TimerRunner(loop):          # start() ... stop()
            await serve_forever()

    Each due timer: claim (``armed → firing``), run the ``TIMER_FIRE`` hook (if any handler is
    registered), then act on its verdict —

    * ``BREAK`` → the timer is cancelled (outcome ``"cancelled"``);
    * ``ctx.postpone_s > 0`` → re-armed ``postpone_s`` from now (``"postponed"``);
    * ``SKIP`` → this firing is dropped; a recurring timer re-arms as usual (``"skipped"``);
    * otherwise ``ctx.message`` goes to ``loop.deliver`` with the firing's inbox id: a new
      send (``"delivered"``) or, when a send of the session is running, a queued inbox item
      (``"queued"``); then the timer is
      finished (one-shot → ``fired``, recurring → armed ``interval_s`` after this fire time).

    A session that no longer exists cancels its timer (``"cancelled"``); any exception while
    delivering is logged and the timer re-armed 30 s later (``"error"``). Every outcome publishes a
    ``TIMER_FIRED`` event with `P.TimerFiredPayload`.

    ``clock`` returns epoch milliseconds (default: wall clock) and decides what is due and every time
    written to the timer rows; tests pass a controllable one, e.g. the ``epoch_ms``
    of a `power_loop.testing.VirtualClock`. The scan and heartbeat intervals are real seconds.
    """

    def __init__(
        self,
        loop: StatefulAgentLoop,
        *,
        scan_interval_s: float = 2.0,
        stale_firing_s: float = 120.0,
        heartbeat_interval_s: float | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.loop = loop
        self.scan_interval_s = _positive("scan_interval_s", scan_interval_s)
        self.stale_firing_s = _positive("stale_firing_s", stale_firing_s)
        if heartbeat_interval_s is None:
            heartbeat_interval_s = max(1.0, self.stale_firing_s / 4)
        self.heartbeat_interval_s = _positive("heartbeat_interval_s", heartbeat_interval_s)
        if self.heartbeat_interval_s >= self.stale_firing_s:
            # Otherwise a live delivery would look stale and be fired a second time.
            raise ConfigError("heartbeat_interval_s must be shorter than stale_firing_s")
        self._clock = clock if clock is not None else _wall_ms
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """True while the background scan task is alive."""
        return self._task is not None and not self._task.done()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Re-arm stale ``firing`` timers, then scan every ``scan_interval_s`` in a background task."""
        if self.running:
            raise ConfigError("TimerRunner is already running")
        await self.recover_stale()
        self._task = asyncio.create_task(self._run(), name="power-loop-timers")

    async def stop(self) -> None:
        """Cancel the background task and wait for it to end (idempotent).

        A delivery interrupted here leaves its timer ``firing``; the next runner's :meth:`start`
        re-arms it once its heartbeat is older than ``stale_firing_s``.
        """
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait([task])

    async def __aenter__(self) -> TimerRunner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ scanning

    async def recover_stale(self) -> int:
        """Re-arm ``firing`` timers whose heartbeat is older than ``stale_firing_s``; return the count."""
        store = await self.loop.ensure_store()
        now = self._clock()
        count = await store.recover_stale_firing_timers(
            older_than_ms=now - int(self.stale_firing_s * 1000), now_ms=now
        )
        if count:
            _log.warning("re-armed %d timer(s) left firing by a runner that stopped", count)
        return count

    async def scan_once(self) -> int:
        """Fire every timer due now (concurrently); return how many this runner claimed.

        Each timer fires at most once per call, so a timer re-armed into the past cannot spin.
        """
        store = await self.loop.ensure_store()
        seen: set[tuple[str, int]] = set()
        fired = 0
        while True:
            due = [
                t
                for t in await store.due_timers(now_ms=self._clock(), limit=_BATCH)
                if (t.session_id, t.timer_id) not in seen
            ]
            if not due:
                return fired
            seen.update((t.session_id, t.timer_id) for t in due)
            claimed = await asyncio.gather(*(self._fire(store, t) for t in due))
            fired += sum(claimed)

    async def _run(self) -> None:
        last_recovery = self._clock()
        while True:
            try:
                # Runners in other processes can die too; their rows are picked up while this one lives.
                if self._clock() - last_recovery >= self.stale_firing_s * 500:
                    last_recovery = self._clock()
                    await self.recover_stale()
                await self.scan_once()
            except Exception:
                _log.exception("timer scan failed; retrying in %.3gs", self.scan_interval_s)
            await asyncio.sleep(self.scan_interval_s)

    # ------------------------------------------------------------------ one timer

    async def _fire(self, store: SessionStore, timer: TimerRow) -> bool:
        sid, tid = timer.session_id, timer.timer_id
        try:
            won = await store.transition_timer(
                sid, tid, from_status="armed", to_status="firing", now_ms=self._clock()
            )
        except Exception:
            _log.exception("could not claim timer %s/%d", sid, tid)
            return False
        if not won:  # another runner got it, or it was cancelled meanwhile
            return False
        outcome = await self._deliver(store, timer)
        try:
            self.loop.event_bus.emit(
                AgentEventType.TIMER_FIRED,
                lambda: P.TimerFiredPayload(
                    timer_id=tid, note=timer.note, due_at=timer.due_at, outcome=outcome
                ),
                session_id=sid,
            )
        except Exception:
            _log.exception("a TIMER_FIRED subscriber failed for timer %s/%d", sid, tid)
        return True

    async def _deliver(self, store: SessionStore, timer: TimerRow) -> str:
        """Act on one claimed timer; return the outcome. Never raises (except cancellation)."""
        sid, tid = timer.session_id, timer.timer_id
        try:
            if await store.get_session(sid) is None:
                raise SessionNotFoundError(sid)
            ctx = H.TimerFireCtx(
                session_id=sid,
                timer_id=tid,
                note=timer.note,
                due_at=timer.due_at,
                message=format_timer_message(timer),
            )
            hooks = self.loop.hooks
            if hooks.has(HookPoint.TIMER_FIRE):
                await hooks.run(HookPoint.TIMER_FIRE, ctx)
            if ctx.directive == HookDirective.BREAK:
                await store.transition_timer(
                    sid, tid, from_status="firing", to_status="cancelled", now_ms=self._clock()
                )
                return "cancelled"
            if ctx.postpone_s > 0:
                now = self._clock()
                await store.transition_timer(
                    sid,
                    tid,
                    from_status="firing",
                    to_status="armed",
                    due_at_ms=now + int(ctx.postpone_s * 1000),
                    now_ms=now,
                )
                return "postponed"
            if ctx.directive == HookDirective.SKIP:
                await store.finish_firing_timer(sid, tid, now_ms=self._clock())
                return "skipped"
            async with self._heartbeat(store, sid, tid):
                # One id per firing: a re-fire after a runner died mid-delivery finds the message stored
                # and finishes that send (resume) instead of storing it a second time.
                result = await self.loop.deliver(ctx.message, sid, item_id=_item_id(timer))
            await store.finish_firing_timer(sid, tid, now_ms=self._clock())
            return "queued" if isinstance(result, FollowUpQueued) else "delivered"
        except SessionNotFoundError:
            await self._settle(store, timer, to_status="cancelled", due_at_ms=None)
            return "cancelled"
        except Exception:
            _log.exception(
                "delivering timer %s/%d failed; retrying in %ds", sid, tid, _ERROR_RETRY_MS // 1000
            )
            await self._settle(store, timer, to_status="armed", due_at_ms=self._clock() + _ERROR_RETRY_MS)
            return "error"

    async def _settle(
        self, store: SessionStore, timer: TimerRow, *, to_status: str, due_at_ms: int | None
    ) -> None:
        try:
            await store.transition_timer(
                timer.session_id,
                timer.timer_id,
                from_status="firing",
                to_status=to_status,
                due_at_ms=due_at_ms,
                now_ms=self._clock(),
            )
        except Exception:  # the row stays firing; stale recovery re-arms it later
            _log.exception("could not settle timer %s/%d", timer.session_id, timer.timer_id)

    @asynccontextmanager
    async def _heartbeat(self, store: SessionStore, sid: str, tid: int) -> AsyncIterator[None]:
        beat = asyncio.create_task(self._beat(store, sid, tid), name=f"power-loop-timer-heartbeat-{tid}")
        try:
            yield
        finally:
            beat.cancel()
            await asyncio.wait([beat])  # unlike `await beat`, never swallows our own cancellation

    async def _beat(self, store: SessionStore, sid: str, tid: int) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval_s)
            try:
                if not await store.heartbeat_firing_timer(sid, tid, now_ms=self._clock()):
                    return  # cancelled or recovered elsewhere: nothing left to keep alive
            except Exception:
                _log.warning("timer %s/%d heartbeat failed", sid, tid, exc_info=True)
