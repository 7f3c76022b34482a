"""``AgentEventBus``: per-loop publish/subscribe for :class:`AgentEvent`.

There is no process-wide default bus: each loop owns one (or is given one), so loops never observe each
other's events by accident.

Cost model ("pay only for what is used"): subscriptions are compiled into a routing table
``type -> handlers`` whenever they change, so :meth:`wants` is one dict lookup and :meth:`emit` returns
before building anything when nobody listens.

Dispatch modes:

* ``"inline"`` (default) — :meth:`publish` calls sync handlers immediately, in order; an awaitable a
  handler returns is scheduled as a tracked task (see :meth:`drain`). Handler exceptions propagate to the
  publisher unless ``suppress_subscriber_errors=True`` (then they are logged).
* ``"background"`` — :meth:`publish` appends to a bounded buffer consumed by one task on the running event
  loop; handlers (sync or async) run there in publish order and their exceptions are always logged,
  never propagated. ``on_overflow`` decides what a full buffer does; ``dropped`` counts losses.

Errors are logged under the ``power_loop.events`` logger.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigError
from ._event import AgentEvent
from ._payload_base import BaseEventPayload
from ._types import AgentEventType, resolve_event_type

__all__ = ["AgentEventBus", "EventBusProtocol", "EventHandler", "EventStream"]

_log = logging.getLogger("power_loop.events")

EventHandler = Callable[[AgentEvent], Any]
"""A subscriber: ``(event) -> None`` or an awaitable."""

EventData = BaseEventPayload | dict[str, Any] | Callable[[], "BaseEventPayload | dict[str, Any]"] | None

_DISPATCH_MODES = ("inline", "background")
_OVERFLOW_POLICIES = ("drop_newest", "drop_oldest", "block")


@runtime_checkable
class EventBusProtocol(Protocol):
    """What the loop needs from an event bus."""

    def subscribe(
        self, event_type: AgentEventType | str | None, handler: EventHandler, *, priority: int = 0
    ) -> Callable[[], None]: ...

    def unsubscribe(self, handler: EventHandler) -> bool: ...

    def wants(self, event_type: AgentEventType | str) -> bool: ...

    def publish(self, event: AgentEvent) -> None: ...

    async def publish_async(self, event: AgentEvent) -> None: ...


class _Sub:
    __slots__ = ("event_type", "handler", "priority", "seq")

    def __init__(self, event_type: AgentEventType | None, handler: EventHandler, priority: int, seq: int):
        self.event_type = event_type
        self.handler = handler
        self.priority = priority
        self.seq = seq


def _describe(handler: object) -> str:
    return str(getattr(handler, "__qualname__", None) or type(handler).__qualname__)


class AgentEventBus:
    """Publish/subscribe hub for one loop. See the module docstring for the dispatch modes.

    ``sync_dispatch`` is accepted for compatibility with the published keyword: ``"inline"`` maps to
    inline dispatch and ``"thread"`` to ``"background"`` (handlers run on a task of the event loop rather
    than on a worker thread).
    """

    def __init__(
        self,
        *,
        suppress_subscriber_errors: bool = False,
        dispatch: str = "inline",
        queue_maxsize: int = 1000,
        on_overflow: str = "drop_newest",
        sync_dispatch: str | None = None,
    ) -> None:
        if sync_dispatch is not None:
            mapped = {"inline": "inline", "thread": "background"}.get(sync_dispatch)
            if mapped is None:
                raise ConfigError(f"sync_dispatch must be 'inline' or 'thread', got {sync_dispatch!r}")
            dispatch = mapped
        if dispatch not in _DISPATCH_MODES:
            raise ConfigError(f"dispatch must be one of {_DISPATCH_MODES}, got {dispatch!r}")
        if on_overflow not in _OVERFLOW_POLICIES:
            raise ConfigError(f"on_overflow must be one of {_OVERFLOW_POLICIES}, got {on_overflow!r}")
        if not isinstance(queue_maxsize, int) or isinstance(queue_maxsize, bool) or queue_maxsize < 0:
            raise ConfigError(f"queue_maxsize must be an int >= 0 (0 = unbounded), got {queue_maxsize!r}")
        self.suppress_subscriber_errors = suppress_subscriber_errors
        self.dispatch = dispatch
        self.queue_maxsize = queue_maxsize
        self.on_overflow = on_overflow
        self.dropped = 0
        """Events lost to overflow (background mode) or left undelivered by :meth:`aclose`."""
        self._background = dispatch == "background"
        self._subs: list[_Sub] = []
        self._sub_seq = 0
        self._routes: dict[AgentEventType, tuple[EventHandler, ...]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Background machinery, bound lazily to the event loop that first publishes. The buffer is a plain
        # deque (loop-agnostic); the events and the worker task belong to ``_loop``.
        self._buf: deque[AgentEvent] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task[None] | None = None
        self._not_empty: asyncio.Event | None = None
        self._not_full: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None

    # -- subscriptions -------------------------------------------------------------------------------

    def subscribe(
        self, event_type: AgentEventType | str | None, handler: EventHandler, *, priority: int = 0
    ) -> Callable[[], None]:
        """Call ``handler(event)`` for ``event_type`` (enum, value or name), or every type when ``None``.

        Handlers run by ``(priority, subscription order)``; handlers for all types run before typed ones.
        Returns a function that removes exactly this subscription (calling it twice is harmless).
        """
        et = None if event_type is None else resolve_event_type(event_type)
        if not callable(handler):
            raise ConfigError(f"event handler must be callable, got {handler!r}")
        self._sub_seq += 1
        sub = _Sub(et, handler, priority, self._sub_seq)
        self._subs.append(sub)
        self._rebuild()

        def unsubscribe() -> None:
            if sub in self._subs:
                self._subs.remove(sub)
                self._rebuild()

        return unsubscribe

    def unsubscribe(self, handler: EventHandler) -> bool:
        """Remove every subscription of ``handler`` (compared with ``==``), for all types; True if any."""
        kept = [s for s in self._subs if s.handler != handler]
        if len(kept) == len(self._subs):
            return False
        self._subs = kept
        self._rebuild()
        return True

    def _rebuild(self) -> None:
        key: Callable[[_Sub], tuple[int, int]] = lambda s: (s.priority, s.seq)  # noqa: E731
        glob = tuple(s.handler for s in sorted((s for s in self._subs if s.event_type is None), key=key))
        typed: dict[AgentEventType, list[EventHandler]] = {}
        for s in sorted(self._subs, key=key):
            if s.event_type is not None:
                typed.setdefault(s.event_type, []).append(s.handler)
        if glob:
            self._routes = {t: glob + tuple(typed.get(t, ())) for t in AgentEventType}
        else:
            self._routes = {t: tuple(hs) for t, hs in typed.items()}

    def wants(self, event_type: AgentEventType | str) -> bool:
        """True iff some subscriber would receive ``event_type`` (O(1); guard payload construction with it)."""
        if event_type in self._routes:  # str values hash and compare equal to their member
            return True
        if isinstance(event_type, AgentEventType):
            return False
        return resolve_event_type(event_type) in self._routes

    # -- publishing ----------------------------------------------------------------------------------

    def emit(
        self,
        event_type: AgentEventType | str,
        data: EventData = None,
        *,
        session_id: str | None = None,
        round_index: int | None = None,
        stream_id: str | None = None,
        source: str | None = None,
    ) -> AgentEvent | None:
        """Build and publish an event, or do nothing (returning ``None``) when nobody :meth:`wants` it.

        ``data`` is a payload object, a plain dict, or a zero-argument callable producing either; the
        callable is only called when the event will actually be delivered.
        """
        if not self.wants(event_type):
            return None
        if callable(data):
            data = data()
        typed: BaseEventPayload | None = None
        payload: dict[str, Any] | None = None
        if isinstance(data, BaseEventPayload):
            typed = data
        else:
            payload = data
        event = AgentEvent(
            event_type,
            payload=payload,
            data=typed,
            session_id=session_id,
            round_index=round_index,
            stream_id=stream_id,
            source=source,
        )
        self.publish(event)
        return event

    def publish(self, event: AgentEvent) -> None:
        """Deliver ``event`` (sync). Inline: handlers run now. Background: the event is enqueued."""
        handlers = self._routes.get(event.type)
        if not handlers:
            return
        if self._background:
            self._enqueue(event)
            return
        for handler in handlers:
            try:
                result = handler(event)
            except Exception:
                if not self.suppress_subscriber_errors:
                    raise
                _log.exception("event subscriber %s failed on %s", _describe(handler), event.type.value)
                continue
            if result is not None and inspect.isawaitable(result):
                self._spawn(result, handler, event)

    async def publish_async(self, event: AgentEvent) -> None:
        """Inline: run every handler in order, awaiting async ones. Background: enqueue, and under
        ``on_overflow="block"`` wait for room in the buffer first (true back-pressure)."""
        handlers = self._routes.get(event.type)
        if not handlers:
            return
        if self._background:
            loop = asyncio.get_running_loop()
            if self._loop is not None and self._loop is not loop and self._loop.is_running():
                fut = asyncio.run_coroutine_threadsafe(self.publish_async(event), self._loop)
                await asyncio.wrap_future(fut)
                return
            self._bind(loop)
            if self.on_overflow == "block" and self.queue_maxsize:
                while len(self._buf) >= self.queue_maxsize:
                    assert self._not_full is not None
                    self._not_full.clear()
                    await self._not_full.wait()
            self._put(event)
            return
        for handler in handlers:
            try:
                result = handler(event)
                if result is not None and inspect.isawaitable(result):
                    await result
            except Exception:
                if not self.suppress_subscriber_errors:
                    raise
                _log.exception("event subscriber %s failed on %s", _describe(handler), event.type.value)

    def _spawn(self, awaitable: Awaitable[Any], handler: EventHandler, event: AgentEvent) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # A sync caller with no event loop in this thread: finish the handler before returning.
            try:
                asyncio.run(_await(awaitable))
            except Exception:
                if not self.suppress_subscriber_errors:
                    raise
                _log.exception("event subscriber %s failed on %s", _describe(handler), event.type.value)
            return
        task = loop.create_task(self._run_contained(awaitable, handler, event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _run_contained(awaitable: Awaitable[Any], handler: EventHandler, event: AgentEvent) -> None:
        # Nobody awaits these tasks' results, so an error can only be reported, not propagated.
        try:
            await awaitable
        except Exception:
            _log.exception("async event subscriber %s failed on %s", _describe(handler), event.type.value)

    # -- background mode -----------------------------------------------------------------------------

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is loop:
            return
        self._loop = loop
        self._worker = None
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        if self._buf:  # events left from a previous (stopped) loop are delivered on this one
            self._put_signal()

    def _enqueue(self, event: AgentEvent) -> None:
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        bound = self._loop
        if running is not None and (bound is None or bound is running or not bound.is_running()):
            self._bind(running)
            self._put(event)
            return
        if bound is not None and bound.is_running():
            # Published from another thread: hand the event to the bus's loop.
            if self.on_overflow == "block":
                asyncio.run_coroutine_threadsafe(self.publish_async(event), bound).result()
            else:
                bound.call_soon_threadsafe(self._put, event)
            return
        raise ConfigError(
            "AgentEventBus(dispatch='background') needs a running asyncio event loop to publish; "
            "publish from async code or use dispatch='inline'"
        )

    def _put(self, event: AgentEvent) -> None:
        buf = self._buf
        if self.queue_maxsize and len(buf) >= self.queue_maxsize:
            if self.on_overflow == "drop_newest":
                self.dropped += 1
                return
            if self.on_overflow == "drop_oldest":
                buf.popleft()
                self.dropped += 1
            # "block": a sync publish on the loop's own thread cannot wait without stalling the loop that
            # must make room, so it goes over the bound; publish_async and other threads do wait.
        buf.append(event)
        self._put_signal()

    def _put_signal(self) -> None:
        assert self._loop is not None and self._not_empty is not None and self._idle is not None
        self._idle.clear()
        self._not_empty.set()
        if self._worker is None or self._worker.done():
            self._worker = self._loop.create_task(self._work(), name="power-loop-event-bus")

    async def _work(self) -> None:
        buf = self._buf
        assert self._not_empty is not None and self._not_full is not None and self._idle is not None
        not_empty, not_full, idle = self._not_empty, self._not_full, self._idle
        while True:
            if not buf:
                idle.set()
                not_empty.clear()
                await not_empty.wait()
                continue
            event = buf.popleft()
            not_full.set()
            for handler in self._routes.get(event.type, ()):
                try:
                    result = handler(event)
                    if result is not None and inspect.isawaitable(result):
                        await result
                except Exception:
                    _log.exception("event subscriber %s failed on %s", _describe(handler), event.type.value)

    # -- lifecycle -----------------------------------------------------------------------------------

    async def drain(self, *, timeout: float | None = None) -> bool:
        """Wait until buffered events are delivered and handler tasks finished (including events those
        handlers publish), for work on the calling event loop. Returns False if ``timeout`` seconds passed
        first (nothing is cancelled)."""
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()  # a close scheduled by shutdown() runs drain from one of our tasks

        async def quiesce() -> None:
            while True:
                tasks = [t for t in self._tasks if t.get_loop() is loop and not t.done() and t is not me]
                if tasks:
                    await asyncio.wait(tasks)  # unlike gather, never cancels them if we are cancelled
                    continue
                idle = self._idle
                if self._loop is loop and idle is not None and not idle.is_set():
                    await idle.wait()
                    continue
                return

        try:
            await asyncio.wait_for(quiesce(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def aclose(self, *, timeout: float | None = None) -> None:
        """Drain (bounded by ``timeout``), then stop the worker and cancel leftover handler tasks.

        Events still buffered are counted in ``dropped``. The bus stays usable: a later publish starts a
        fresh worker.
        """
        await self.drain(timeout=timeout)
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        leftovers = [t for t in self._tasks if t.get_loop() is loop and not t.done() and t is not me]
        worker = self._worker if self._loop is loop else None
        if self._buf and self._loop is loop:
            self.dropped += len(self._buf)
            _log.warning("event bus closed with %d undelivered event(s)", len(self._buf))
            self._buf.clear()
        if worker is not None:
            leftovers.append(worker)
            self._worker = None
        for task in leftovers:
            task.cancel()
        for task in leftovers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._idle is not None and self._loop is loop:
            self._idle.set()

    def shutdown(self, *, timeout: float = 5.0) -> None:
        """Synchronous :meth:`aclose` for non-async callers (compatible with the published method).

        From another thread than the bus's event loop it blocks until closed; on the loop's own thread it
        schedules the close and returns at once.
        """
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            self.dropped += len(self._buf)
            self._buf.clear()
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task = loop.create_task(self.aclose(timeout=timeout))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            asyncio.run_coroutine_threadsafe(self.aclose(timeout=timeout), loop).result()

    # -- streaming -----------------------------------------------------------------------------------

    def stream(
        self,
        types: Iterable[AgentEventType | str] | None = None,
        *,
        maxsize: int = 10_000,
        session_id: str | None = None,
    ) -> EventStream:
        """An async context manager yielding an async iterator of events (all types, or ``types``).

        ``session_id`` keeps only that session's events. At most ``maxsize`` undelivered events are kept
        (0 = unbounded); beyond that the oldest are dropped and counted in ``EventStream.dropped``.
        Iteration ends after :meth:`EventStream.close` once the buffered events are consumed.
        """
        resolved = None if types is None else tuple(resolve_event_type(t) for t in types)
        if not isinstance(maxsize, int) or maxsize < 0:
            raise ConfigError(f"maxsize must be an int >= 0, got {maxsize!r}")
        return EventStream(self, resolved, maxsize, session_id)


async def _await(awaitable: Awaitable[Any]) -> None:
    await awaitable


class EventStream:
    """Events of one bus as an async iterator; create with :meth:`AgentEventBus.stream`.

    ::

        async with bus.stream([AgentEventType.STREAM_DELTA]) as events:
            async for event in events:
                ...
    """

    def __init__(
        self,
        bus: AgentEventBus,
        types: tuple[AgentEventType, ...] | None,
        maxsize: int,
        session_id: str | None,
    ) -> None:
        self._bus = bus
        self._types = types
        self._maxsize = maxsize
        self._session_id = session_id
        self._buf: deque[AgentEvent] = deque()
        self._closed = False
        self._unsubs: list[Callable[[], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._wake: asyncio.Event | None = None
        self.dropped = 0

    async def __aenter__(self) -> EventStream:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._wake = asyncio.Event()
        if self._types is None:
            self._unsubs.append(self._bus.subscribe(None, self._on_event))
        else:
            self._unsubs.extend(self._bus.subscribe(t, self._on_event) for t in dict.fromkeys(self._types))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        self._closed = True

    def _on_event(self, event: AgentEvent) -> None:
        if self._session_id is not None and event.session_id != self._session_id:
            return
        if threading.get_ident() != self._thread:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._push, event)
        else:
            self._push(event)

    def _push(self, event: AgentEvent) -> None:
        if self._closed:
            return
        if self._maxsize and len(self._buf) >= self._maxsize:
            self._buf.popleft()
            self.dropped += 1
        self._buf.append(event)
        assert self._wake is not None
        self._wake.set()

    def close(self) -> None:
        """Stop accepting events; iteration ends once the already-buffered ones are consumed."""
        self._closed = True
        if self._wake is not None and self._loop is not None:
            if threading.get_ident() == self._thread:
                self._wake.set()
            else:
                self._loop.call_soon_threadsafe(self._wake.set)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> AgentEvent:
        if self._wake is None:
            raise ConfigError("iterate an EventStream inside 'async with bus.stream(...) as events'")
        while True:
            if self._buf:
                return self._buf.popleft()
            if self._closed:
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()
