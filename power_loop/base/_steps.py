"""Steps a cancellation cannot split, at no cost when nothing is cancelled.

A store write and the in-memory update recording it must happen entirely or not at all: a
cancellation landing between them leaves the caller unsure whether the write committed (it may still
finish on the SQLite thread or the server). Running the step as its own task under
``asyncio.shield`` protects it, but costs three event-loop iterations per step even when nothing is
ever cancelled. :func:`run_to_completion` instead drives the step's coroutine on the caller's own
task and keeps cancellations away from it at the futures it waits on:

* an :class:`UncancellableFuture` (a result produced elsewhere, e.g. on a thread, that happens whether
  or not anyone waits: the SQLite hand-off) is awaited as it is — a task cancelled meanwhile is only
  woken when the result is in, so the step reads it and goes on;
* any other future is awaited through a relay future, so cancelling the task cancels the relay, never
  the future the step waits on (one extra iteration, paid only by such waits).

The cancellation is re-raised once the step has finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Generator
from typing import Any, TypeVar

__all__ = ["UncancellableFuture", "run_to_completion"]

T = TypeVar("T")


class UncancellableFuture(asyncio.Future[T]):
    """A future whose ``cancel()`` refuses: its result is produced by work that cannot be stopped.

    A task cancelled while awaiting it receives the cancellation only once the result is set.
    """

    def cancel(self, msg: Any | None = None) -> bool:
        return False


def run_to_completion(work: Awaitable[T]) -> Awaitable[T]:
    """Await ``work`` to its end even if the awaiting task is cancelled meanwhile, then re-raise
    the cancellation (see the module docstring for how, and what it costs)."""
    return _ToCompletion(work)


class _ToCompletion(Awaitable[T]):
    __slots__ = ("_work",)

    def __init__(self, work: Awaitable[T]) -> None:
        self._work = work

    def __await__(self) -> Generator[Any, None, T]:
        steps = self._work.__await__()
        interrupted = False
        try:
            while True:
                try:
                    waiting = steps.send(None)
                except StopIteration as done:
                    if interrupted:
                        raise asyncio.CancelledError from None
                    result: T = done.value
                    return result
                if (yield from _wait_out(waiting)):
                    interrupted = True
        finally:
            close = getattr(steps, "close", None)
            if close is not None:
                close()


def _wait_out(waiting: Any) -> Generator[Any, None, bool]:
    """Yield what the step waits on to the task until it is done; True if a cancellation came."""
    if waiting is None:  # a bare yield (``asyncio.sleep(0)``): nothing to protect
        try:
            yield None
        except asyncio.CancelledError:
            return True
        return False
    interrupted = False
    relay: asyncio.Future[Any] = waiting if isinstance(waiting, UncancellableFuture) else _relay(waiting)
    while not waiting.done():
        if relay.done():  # a cancellation took the relay: wait through a new one
            relay = _relay(waiting)
        relay._asyncio_future_blocking = True
        try:
            yield relay
        except asyncio.CancelledError:
            interrupted = True
    return interrupted


def _relay(waiting: asyncio.Future[Any]) -> asyncio.Future[None]:
    """A future set when ``waiting`` is done: cancelling it leaves ``waiting`` alone."""
    relay: asyncio.Future[None] = waiting.get_loop().create_future()

    def done(_: asyncio.Future[Any]) -> None:
        if not relay.done():
            relay.set_result(None)

    waiting.add_done_callback(done)
    return relay
