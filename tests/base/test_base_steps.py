"""``run_to_completion``: a step a cancellation cannot split, with no task of its own."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_loop.base import UncancellableFuture, run_to_completion


def set_from_thread(fut: asyncio.Future[Any], value: Any, go: threading.Event) -> threading.Thread:
    """Set ``fut`` from another thread once ``go`` is set (as the SQLite connection thread does)."""
    loop = fut.get_loop()

    def work() -> None:
        go.wait(30)
        loop.call_soon_threadsafe(fut.set_result, value)

    thread = threading.Thread(target=work)
    thread.start()
    return thread


async def test_an_uncancellable_future_refuses_cancel_and_keeps_its_result() -> None:
    fut: UncancellableFuture[int] = UncancellableFuture(loop=asyncio.get_running_loop())
    assert fut.cancel() is False and not fut.cancelled()
    fut.set_result(3)
    assert await fut == 3


async def test_a_task_cancelled_on_an_uncancellable_wait_finishes_the_step_then_is_cancelled() -> None:
    fut: UncancellableFuture[str] = UncancellableFuture(loop=asyncio.get_running_loop())
    go = threading.Event()
    thread = set_from_thread(fut, "row 7", go)
    seen: list[str] = []

    async def step() -> str:
        value = await fut
        seen.append(value)  # the update recording the write
        return value

    task = asyncio.ensure_future(run_to_completion(step()))
    await asyncio.sleep(0)
    task.cancel()
    go.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    thread.join()
    assert seen == ["row 7"] and task.cancelled()


async def test_a_cancelled_task_leaves_an_ordinary_future_alone_and_finishes_the_step() -> None:
    loop = asyncio.get_running_loop()
    inner: asyncio.Future[int] = loop.create_future()
    seen: list[int] = []

    async def step() -> None:
        seen.append(await inner)
        await asyncio.sleep(0)
        seen.append(-1)

    task = asyncio.ensure_future(run_to_completion(step()))
    await asyncio.sleep(0)
    for _ in range(3):  # repeated cancellations are absorbed the same way
        task.cancel()
        await asyncio.sleep(0)
    assert not inner.cancelled()
    inner.set_result(5)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == [5, -1]


async def test_an_error_of_the_step_wins_over_the_cancellation() -> None:
    loop = asyncio.get_running_loop()
    inner: asyncio.Future[None] = loop.create_future()

    async def step() -> None:
        await inner
        raise ValueError("write failed")

    task = asyncio.ensure_future(run_to_completion(step()))
    await asyncio.sleep(0)
    task.cancel()
    inner.set_result(None)
    with pytest.raises(ValueError, match="write failed"):
        await task


async def test_without_a_cancellation_it_is_a_plain_await() -> None:
    async def step() -> int:
        await asyncio.sleep(0)
        return 42

    assert await run_to_completion(step()) == 42


async def test_an_abandoned_step_is_closed_with_the_awaiting_coroutine() -> None:
    closed: list[bool] = []
    never: UncancellableFuture[None] = UncancellableFuture(loop=asyncio.get_running_loop())

    async def step() -> None:
        try:
            await never
        finally:
            closed.append(True)

    outer = run_to_completion(step()).__await__()
    next(outer)  # suspended on the future
    outer.close()  # e.g. the task was garbage-collected
    assert closed == [True]


WAITS = st.lists(st.sampled_from(["uncancellable", "future", "bare"]), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(waits=WAITS, cancel_at=st.lists(st.integers(min_value=0, max_value=6), max_size=4))
def test_every_wait_runs_and_the_task_ends_cancelled_exactly_when_asked(
    waits: list[str], cancel_at: list[int]
) -> None:
    """Whatever the waits and wherever cancellations land, the step runs every wait to its end,
    and the task ends cancelled if and only if a cancellation was requested while it ran."""

    async def scenario() -> tuple[list[int], bool, bool]:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[int] | None] = []
        for kind in waits:
            if kind == "uncancellable":
                futures.append(UncancellableFuture(loop=loop))
            elif kind == "future":
                futures.append(loop.create_future())
            else:
                futures.append(None)
        done: list[int] = []

        async def step() -> str:
            for index, fut in enumerate(futures):
                if fut is None:
                    await asyncio.sleep(0)
                else:
                    assert await fut == index
                done.append(index)
            return "ok"

        task = asyncio.ensure_future(run_to_completion(step()))
        requested = False
        for index, fut in enumerate(futures):
            await asyncio.sleep(0)
            if index in cancel_at and not task.done():
                task.cancel()
                requested = True
            if fut is not None:
                fut.set_result(index)
        outcome = await asyncio.gather(task, return_exceptions=True)
        return done, requested, isinstance(outcome[0], asyncio.CancelledError)

    done, requested, cancelled = asyncio.run(scenario())
    assert done == list(range(len(waits)))
    assert cancelled == requested
