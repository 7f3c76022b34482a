"""Steps a cancellation cannot split, at no cost when nothing is cancelled.

A store write and the in-memory update recording it must happen entirely or not at all: a
cancellation landing between them leaves the caller unsure whether the write committed (it may still
finish on the SQLite thread or the server). Running the step as its own task under
``asyncio.shield`` protects it, but costs three event-loop iterations per step even when nothing is
ever cancelled. :func:`run_to_completion` instead drives the step's coroutine on the caller's own
task for as long as what it waits on cannot be taken from it:

* an :class:`UncancellableFuture` (a result produced elsewhere, e.g. on a thread, that happens whether
  or not anyone waits: the SQLite transaction hand-off) is awaited as it is — a task cancelled
  meanwhile is only woken once the result is in, so the step reads it and goes on;
* at the first other future (a network driver's), the rest of the step moves to a task of its own,
  awaited through ``asyncio.shield`` — the classic protection, paid once per step, only there.

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
        steps: Generator[Any, None, T] | None = self._work.__await__()
        interrupted = False
        try:
            while True:
                assert steps is not None
                try:
                    waiting = steps.send(None)
                except StopIteration as done:
                    if interrupted:
                        raise asyncio.CancelledError from None
                    result: T = done.value
                    return result
                if waiting is None or isinstance(waiting, UncancellableFuture):
                    if (yield from _wait_out(waiting)):
                        interrupted = True
                    continue
                rest = asyncio.ensure_future(_finish(_Resumed(steps, waiting)))
                steps = None  # the task owns the step now
                result, cut = yield from _shielded(rest)
                if interrupted or cut:
                    raise asyncio.CancelledError
                return result
        finally:
            if steps is not None:
                steps.close()


def _wait_out(waiting: UncancellableFuture[Any] | None) -> Generator[Any, None, bool]:
    """Yield what the step waits on to the task until it is done; True if a cancellation came."""
    interrupted = False
    if waiting is None:  # a bare yield (``asyncio.sleep(0)``)
        try:
            yield None
        except asyncio.CancelledError:
            interrupted = True
        return interrupted
    while not waiting.done():  # woken only when it is done: it refuses to be cancelled
        waiting._asyncio_future_blocking = True
        try:
            yield waiting
        except asyncio.CancelledError:
            interrupted = True
    return interrupted


class _Resumed(Awaitable[T]):
    """A step suspended on ``waiting``, continued on whichever task awaits this."""

    __slots__ = ("_steps", "_waiting")

    def __init__(self, steps: Generator[Any, None, T], waiting: asyncio.Future[Any]) -> None:
        self._steps = steps
        self._waiting = waiting

    def __await__(self) -> Generator[Any, None, T]:
        steps, waiting = self._steps, self._waiting
        while not waiting.done():  # the step reads the outcome itself when resumed
            waiting._asyncio_future_blocking = True
            try:
                yield waiting
            except BaseException:
                if not waiting.done():
                    steps.close()
                    raise
        sent: Any = None
        thrown: BaseException | None = None
        while True:  # ``yield from steps``, resumed mid-way
            try:
                yielded = steps.send(sent) if thrown is None else steps.throw(thrown)
            except StopIteration as done:
                result: T = done.value
                return result
            sent, thrown = None, None
            try:
                sent = yield yielded
            except BaseException as exc:
                thrown = exc


async def _finish(rest: _Resumed[T]) -> T:
    return await rest


def _shielded(task: asyncio.Future[T]) -> Generator[Any, None, tuple[T, bool]]:
    """Await ``task`` through ``asyncio.shield``: (its result, whether a cancellation came)."""
    cut = False
    while not task.done():
        try:
            yield from asyncio.shield(task).__await__()
        except asyncio.CancelledError:
            if task.cancelled():  # the step itself was cancelled, not only our wait on it
                raise
            cut = True
    return task.result(), cut
