"""A virtual clock: ``monotonic()``/``time()`` you control and an ``async sleep`` that never waits."""

from __future__ import annotations

import asyncio
import heapq
import itertools

__all__ = ["VirtualClock"]


class VirtualClock:
    """Controllable time for tests, pluggable wherever power_loop accepts ``clock=``/``sleep=``.

    ``clock()`` / ``monotonic()`` read virtual seconds; ``time()`` is the matching wall clock (epoch
    seconds; :meth:`epoch_ms` the same in milliseconds). ``await clock.sleep(s)`` parks the caller until virtual time reaches ``now + s``.
    With ``autojump=True`` (default) time jumps straight to the earliest pending wake-up once the
    event loop has had ``settle_iterations`` turns to let other tasks run and register their own
    sleeps, so concurrent sleeps (a call racing a timeout) resolve in deadline order without real
    waiting. With ``autojump=False`` only :meth:`advance` moves time. ``sleeps`` records every
    requested duration, in order.
    """

    __slots__ = (
        "_heap",
        "_jump_scheduled",
        "_now",
        "_seq",
        "_wall_offset",
        "autojump",
        "settle_iterations",
        "sleeps",
    )

    def __init__(
        self,
        start: float = 0.0,
        *,
        wall_start: float = 1_700_000_000.0,
        autojump: bool = True,
        settle_iterations: int = 20,
    ) -> None:
        self._now = float(start)
        self._wall_offset = wall_start - self._now
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._jump_scheduled = False
        self.autojump = autojump
        self.settle_iterations = settle_iterations
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """Virtual monotonic seconds."""
        return self._now

    __call__ = monotonic

    def time(self) -> float:
        """Virtual wall-clock seconds since the epoch (moves with :meth:`monotonic`)."""
        return self._now + self._wall_offset

    def epoch_ms(self) -> int:
        """Virtual wall-clock milliseconds since the epoch: the ``clock=`` a ``TimerRunner`` takes.

        Rounded, not truncated, so whole-millisecond starts and steps stay exact despite floats.
        """
        return round(self.time() * 1000)

    @property
    def pending(self) -> int:
        """How many sleepers are still parked."""
        return sum(1 for _, _, fut in self._heap if not fut.done())

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every sleeper now due."""
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go backwards")
        self._now += seconds
        self._wake_due()

    async def sleep(self, seconds: float) -> None:
        """Park until virtual time has moved ``seconds`` forward (``<= 0`` just yields once)."""
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._heap, (self._now + seconds, next(self._seq), fut))
        if self.autojump:
            self._schedule_jump(loop)
        await fut

    def _wake_due(self) -> None:
        while self._heap and (self._heap[0][0] <= self._now or self._heap[0][2].done()):
            _, _, fut = heapq.heappop(self._heap)
            if not fut.done():
                fut.set_result(None)

    def _schedule_jump(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._jump_scheduled:
            self._jump_scheduled = True
            loop.call_soon(self._settle, loop, self.settle_iterations)

    def _settle(self, loop: asyncio.AbstractEventLoop, turns_left: int) -> None:
        if turns_left > 0:
            loop.call_soon(self._settle, loop, turns_left - 1)
            return
        self._jump_scheduled = False
        while self._heap and self._heap[0][2].done():  # drop cancelled sleepers
            heapq.heappop(self._heap)
        if not self._heap or not self.autojump:
            return
        self._now = max(self._now, self._heap[0][0])
        self._wake_due()
        if self._heap:
            self._schedule_jump(loop)
