from __future__ import annotations

import asyncio

import pytest

from power_loop.testing import VirtualClock


async def test_sleep_advances_virtual_time_only() -> None:
    clock = VirtualClock(start=100.0, wall_start=1_000.0)
    assert clock() == clock.monotonic() == 100.0 and clock.time() == 1_000.0
    await clock.sleep(30)
    assert clock.monotonic() == 130.0 and clock.time() == 1_030.0
    await clock.sleep(0)
    await clock.sleep(-1)
    assert clock.monotonic() == 130.0
    assert clock.sleeps == [30, 0, -1]


async def test_concurrent_sleepers_wake_in_deadline_order() -> None:
    clock = VirtualClock()
    order: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        order.append((name, clock.monotonic()))

    await asyncio.gather(sleeper("late", 10), sleeper("early", 2), sleeper("mid", 5))
    assert order == [("early", 2.0), ("mid", 5.0), ("late", 10.0)]


async def test_sequential_sleeps_inside_tasks_accumulate() -> None:
    clock = VirtualClock()

    async def worker() -> float:
        for _ in range(3):
            await clock.sleep(1.5)
        return clock.monotonic()

    assert await asyncio.gather(worker(), worker()) == [4.5, 4.5]


async def test_race_against_timeout_timer() -> None:
    clock = VirtualClock()
    slow = asyncio.ensure_future(clock.sleep(30))
    timer = asyncio.ensure_future(clock.sleep(10))
    done, _ = await asyncio.wait({slow, timer}, return_when=asyncio.FIRST_COMPLETED)
    assert done == {timer} and clock.monotonic() == 10.0
    slow.cancel()
    await asyncio.sleep(0)
    assert clock.pending == 0


async def test_manual_mode_only_moves_on_advance() -> None:
    clock = VirtualClock(autojump=False)
    task = asyncio.ensure_future(clock.sleep(5))
    for _ in range(50):
        await asyncio.sleep(0)
    assert not task.done() and clock.pending == 1
    clock.advance(4)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(1)
    await task
    assert clock.monotonic() == 5.0 and clock.pending == 0
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


def test_epoch_ms_is_the_wall_clock_in_whole_milliseconds() -> None:
    clock = VirtualClock(wall_start=1_700_000_000.123, autojump=False)
    assert clock.epoch_ms() == 1_700_000_000_123
    for _ in range(1000):  # repeated float steps never drift off the millisecond
        clock.advance(0.001)
    assert clock.epoch_ms() == 1_700_000_001_123
    clock.advance(59)
    assert clock.epoch_ms() == 1_700_000_060_123
