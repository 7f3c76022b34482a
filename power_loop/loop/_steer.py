"""Steering a running send: ``follow_up(text, sid, mode="steer")``.

A steer is a follow-up queued with ``kind="steer"``. The running send takes it at its next *safe
point* instead of waiting for the round boundary:

* during a model call, the call is cancelled (its partial output discarded, nothing stored) and the
  send goes on with the steering text as the next user message;
* during a tool batch, the batch finishes (every call is answered: history stays valid, SPEC §2.4),
  except the tools `StopPolicy` lets interrupt, which are cancelled and answered ``<interrupted:
  steered>``; then the steering text follows.

Each running send has a `SteerWatch`, registered by session id in the loop's `SteerSignals`. A steer
queued by the same loop is noticed at once (`SteerSignals.notice`). A steer queued by another
process (which found the session leased and busy) is found by polling the store every
``StopPolicy.poll_interval_s`` while a leased send runs: the running send does no extra work when
nothing is queued, and a loop without leases never polls (no other process can reach its sends).
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Awaitable, Callable, Collection, Coroutine, Generator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from .. import events as P
from ..base import get_tool_runtime_context
from ..errors import ConfigError
from ..events import AgentEventType as ET

if TYPE_CHECKING:
    from ..store import FollowUpRow, LeaseToken, SessionStore
    from ._send_state import SendState

__all__ = [
    "STEERED_TEXT",
    "SteerInterrupt",
    "SteerSignals",
    "SteerWatch",
    "StopPolicy",
    "follow_up_kind",
    "wait_or_steer",
]

T = TypeVar("T")

#: The result of a tool call cancelled by a steer.
STEERED_TEXT = "<interrupted: steered>"


@dataclass(frozen=True, slots=True)
class StopPolicy:
    """Which tools a steer may cancel mid-run, and how often a leased send looks for steers.

    ``interruptible_tools`` names the tools a steer cancels (answered ``<interrupted: steered>``);
    ``interruptible`` is a predicate on the tool name for the same purpose (either one suffices).
    Every other tool call finishes before the steer is taken. ``poll_interval_s`` is how often a send
    holding a session lease (``lease_ttl_s``) checks the store for a steer queued by another process.
    """

    interruptible_tools: Collection[str] = field(default_factory=frozenset)
    interruptible: Callable[[str], bool] | None = None
    poll_interval_s: float = 2.0

    def __post_init__(self) -> None:
        names = self.interruptible_tools
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise ConfigError("StopPolicy.interruptible_tools must be a collection of tool names")
        object.__setattr__(self, "interruptible_tools", frozenset(names))
        if self.interruptible is not None and not callable(self.interruptible):
            raise ConfigError("StopPolicy.interruptible must be a callable taking a tool name, or None")
        interval = self.poll_interval_s
        if (
            isinstance(interval, bool)
            or not isinstance(interval, (int, float))
            or not math.isfinite(interval)
        ):
            raise ConfigError(f"StopPolicy.poll_interval_s must be a number of seconds, got {interval!r}")
        if interval <= 0:
            raise ConfigError(f"StopPolicy.poll_interval_s must be > 0, got {interval!r}")

    def can_interrupt(self, tool_name: str) -> bool:
        """Whether a steer cancels a running call of ``tool_name``."""
        if tool_name in self.interruptible_tools:
            return True
        return self.interruptible is not None and bool(self.interruptible(tool_name))


def follow_up_kind(mode: str) -> str:
    """The queued item's kind for ``follow_up(mode=)``: ``"queue"`` (default) or ``"steer"``."""
    if mode not in ("queue", "steer"):
        raise ConfigError(f"follow_up mode must be 'queue' or 'steer', got {mode!r}")
    return mode


class SteerInterrupt(Exception):
    """Internal signal: the model call was cancelled by a steer (never leaves the round engine)."""


class SteerWatch:
    """One running send's view of the steers queued for it.

    ``latest`` is the newest steer's item id known, ``delivered`` the newest item id the send took in;
    a steer waits while ``latest > delivered``. ``event`` is set exactly then (`steer_event`).
    """

    __slots__ = (
        "_flags",
        "_leaf",
        "_poller",
        "_tools",
        "_work",
        "delivered",
        "event",
        "latest",
        "policy",
        "sid",
        "taken",
    )

    def __init__(self, sid: str, policy: StopPolicy, flags: set[str]) -> None:
        self.sid = sid
        self.policy = policy
        self._flags = flags  # the engine's "follow-ups waiting" flags
        self.latest = 0
        self.delivered = 0
        self.taken = 0  # steers taken in by this send
        self.event = asyncio.Event()
        self._work: asyncio.Future[Any] | None = None
        self._leaf: asyncio.Future[Any] | None = None  # what the model call waits on (inline path)
        self._tools: set[asyncio.Future[Any]] = set()
        self._poller: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> bool:
        return self.latest > self.delivered

    def notice(self, item_id: int) -> None:
        """A steer with ``item_id`` was queued: interrupt what may be interrupted."""
        if item_id <= self.latest or item_id <= self.delivered:
            return
        self.latest = item_id
        self._flags.add(self.sid)
        self.event.set()
        if self._work is not None:
            self._work.cancel()
        if self._leaf is not None:
            self._leaf.cancel()  # the call sees a cancellation where it waits, and unwinds
        for task in self._tools:
            task.cancel()

    def took(self, items: list[FollowUpRow]) -> bool:
        """The send took ``items`` in (one user message); True when one of them was a steer."""
        self.delivered = max(self.delivered, *(item.item_id for item in items))
        if not self.waiting:
            self.event.clear()
        steers = sum(1 for item in items if item.kind == "steer")
        self.taken += steers
        return steers > 0

    async def model_call(self, call: Awaitable[T]) -> T:
        """Await the model call unless a steer comes first: then cancel it, raise `SteerInterrupt`."""
        if self.waiting:
            _discard(call)
            raise SteerInterrupt
        if _COUNTS_CANCELS:
            return await _SteerableCall(self, call)
        # Python 3.10 cannot tell a steer from a cancellation of the send: a task of its own.
        work: asyncio.Future[T] = asyncio.ensure_future(call)
        self._work = work
        try:
            await asyncio.wait((work,))
        except asyncio.CancelledError:
            work.cancel()
            raise
        finally:
            self._work = None
        if work.cancelled() and self.waiting:
            raise SteerInterrupt
        return work.result()

    async def tool_call(self, name: str, call: Coroutine[Any, Any, str]) -> str | None:
        """Run one tool call; an interruptible tool is cancelled by a steer (``None`` is returned)."""
        if not self.policy.can_interrupt(name):
            return await call
        if self.waiting:
            call.close()
            return None
        task = asyncio.ensure_future(call)
        self._tools.add(task)
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            self._tools.discard(task)
        if task.cancelled() and self.waiting:
            return None
        return task.result()

    def interrupted(self, s: SendState, round_index: int, what: str, cancelled: list[str]) -> None:
        """Publish ``steer_interrupted``: ``what`` ("model_call" or "tool_batch") gave way to a steer."""
        item_id = self.latest
        s.emit(
            ET.STEER_INTERRUPTED,
            partial(
                P.SteerInterruptedPayload,
                interrupted=what,
                round_index=round_index,
                item_id=str(item_id),
                cancelled_tools=cancelled,
            ),
            round_index=round_index,
        )

    def poll(self, store: SessionStore) -> None:
        """Look for steers queued by other processes every ``poll_interval_s`` (leased sends only)."""
        self._poller = asyncio.ensure_future(self._poll(store))

    async def _poll(self, store: SessionStore) -> None:
        while True:
            await asyncio.sleep(self.policy.poll_interval_s)
            try:
                latest = await store.latest_steer(self.sid)
            except Exception:  # a transient store error: the round boundary still delivers it
                continue
            self.notice(latest)

    async def stop(self) -> None:
        poller = self._poller
        if poller is not None:
            poller.cancel()
            await asyncio.wait((poller,))  # never raises the poller's CancelledError into the send


# Python 3.11+: a task counts the cancellations asked of it (``Task.cancelling``).
_COUNTS_CANCELS = sys.version_info >= (3, 11)


class _SteerableCall(Awaitable[T]):
    """A model call driven on the send's own task (no task, no extra event-loop iteration), which a
    steer interrupts by cancelling the future the call waits on: the call unwinds from there, and
    the cancellation becomes `SteerInterrupt` unless the send's task itself was asked to cancel."""

    __slots__ = ("_call", "_watch")

    def __init__(self, watch: SteerWatch, call: Awaitable[T]) -> None:
        self._watch = watch
        self._call = call

    def __await__(self) -> Generator[Any, None, T]:
        watch = self._watch
        steps = self._call.__await__()
        thrown: BaseException | None = None
        try:
            while True:
                try:
                    waiting = steps.send(None) if thrown is None else steps.throw(thrown)
                except StopIteration as done:
                    result: T = done.value
                    return result
                except asyncio.CancelledError:
                    if watch.waiting and not _asked_to_cancel():
                        raise SteerInterrupt from None
                    raise
                thrown = None
                watch._leaf = waiting
                try:
                    yield waiting
                except GeneratorExit:
                    raise
                except BaseException as exc:  # the waited future's error or a cancellation
                    thrown = exc
                finally:
                    watch._leaf = None
                if thrown is None and watch.waiting:  # steered while the call ran on: stop it here
                    thrown = asyncio.CancelledError()
        finally:
            close = getattr(steps, "close", None)
            if close is not None:
                close()


def _asked_to_cancel() -> bool:
    if sys.version_info < (3, 11):  # not reached: 3.10 runs the model call as a task
        return True
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class SteerSignals:
    """The steerable sends of one loop, by session id."""

    __slots__ = ("_watches", "flags")

    def __init__(self, flags: set[str]) -> None:
        self.flags = flags
        self._watches: dict[str, SteerWatch] = {}

    def open(self, sid: str, policy: StopPolicy, store: SessionStore, lease: LeaseToken | None) -> SteerWatch:
        """The watch of a send starting on ``sid`` (polling the store when the send holds a lease)."""
        watch = self._watches[sid] = SteerWatch(sid, policy, self.flags)
        if lease is not None:
            watch.poll(store)
        return watch

    async def close(self, watch: SteerWatch) -> None:
        if self._watches.get(watch.sid) is watch:
            del self._watches[watch.sid]
        await watch.stop()

    def notice(self, sid: str, item_id: int) -> None:
        """A steer was queued for ``sid``: the running send of this loop (if any) takes it."""
        watch = self._watches.get(sid)
        if watch is not None:
            watch.notice(item_id)

    def event(self, sid: str) -> asyncio.Event:
        """Set while a steer waits for the running send of ``sid`` (a fresh, unset event when none runs)."""
        watch = self._watches.get(sid)
        return watch.event if watch is not None else asyncio.Event()


async def wait_or_steer(work: Awaitable[Any] | float) -> bool:
    """Inside a tool handler: await ``work`` (or sleep ``work`` seconds) unless the running send is
    steered first. Returns True when a steer came first (``work`` is then cancelled), False when
    ``work`` finished. Outside a send it just awaits ``work``.

    This lets a tool that `StopPolicy` does not interrupt still cut a long wait short cooperatively.
    """
    if isinstance(work, (int, float)):
        work = asyncio.sleep(work)
    runtime = get_tool_runtime_context()
    steer_event = getattr(runtime.loop, "steer_event", None) if runtime is not None else None
    if runtime is None or steer_event is None:
        await work
        return False
    event: asyncio.Event = steer_event(runtime.session_id)
    if event.is_set():
        _discard(work)
        return True
    task = asyncio.ensure_future(work)
    steered = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((task, steered), return_when=asyncio.FIRST_COMPLETED)
    finally:
        steered.cancel()
        if not task.done():
            task.cancel()
    if task.done() and not task.cancelled():
        task.result()  # re-raises the work's own error
        return False
    return True


def _discard(call: Awaitable[Any]) -> None:
    """Drop an awaitable that will not be awaited (a coroutine is closed, so it warns of nothing)."""
    if asyncio.iscoroutine(call):
        call.close()
    elif isinstance(call, asyncio.Future):
        call.cancel()
