"""Cooperative cancellation: one token type over the cancellation sources users already have."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Union

from ..errors import CancellationRequested

__all__ = ["CancellationLike", "CancellationToken"]

CancellationLike = Union["CancellationToken", asyncio.Event, threading.Event, Callable[[], bool], None]
"""Anything :meth:`CancellationToken.from_any` accepts."""

_Source = asyncio.Event | threading.Event | Callable[[], bool] | None


class CancellationToken:
    """A thread-safe cancellation flag that async code can also wait on.

    ``CancellationToken()`` is an owned token flipped by :meth:`cancel`. :meth:`from_any` wraps an
    ``asyncio.Event``, a ``threading.Event`` or a ``() -> bool`` callable, so a caller's own stop
    signal works unchanged. Cancellation is cooperative: it is observed at check points (round
    start, before each tool, during retry sleeps), never by killing a running call.
    """

    __slots__ = ("_cancelled", "_lock", "_reason", "_source", "_waiters")

    def __init__(self) -> None:
        self._source: _Source = None
        self._cancelled = False
        self._reason = "cancelled"
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @classmethod
    def from_any(cls, source: CancellationLike) -> CancellationToken:
        """Wrap ``source``; a token is returned as is and ``None`` gives a fresh, never-cancelled token."""
        if isinstance(source, CancellationToken):
            return source
        token = cls()
        if source is None:
            return token
        if not isinstance(source, (asyncio.Event, threading.Event)) and not callable(source):
            raise TypeError(
                "cancellation source must be a CancellationToken, asyncio.Event, threading.Event, "
                f"a () -> bool callable or None, not {type(source).__name__}"
            )
        token._source = source
        return token

    @classmethod
    def never(cls) -> CancellationToken:
        """A fresh token nobody else holds (it only cancels if you call :meth:`cancel` on it)."""
        return cls()

    @property
    def reason(self) -> str:
        return self._reason

    def is_cancelled(self) -> bool:
        """True once cancelled here or through the wrapped source (a raising callable counts as not)."""
        if self._cancelled:
            return True
        source = self._source
        if source is None:
            return False
        if isinstance(source, (asyncio.Event, threading.Event)):
            return source.is_set()
        try:
            return bool(source())
        except Exception:
            return False

    def cancel(self, reason: str = "cancelled") -> None:
        """Cancel (idempotent; the first reason wins). A wrapped ``threading.Event`` is set as well."""
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
            self._reason = reason
            waiters, self._waiters = self._waiters, []
        if isinstance(self._source, threading.Event):
            self._source.set()
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, fut)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass

    def raise_if_cancelled(self) -> None:
        """Raise :class:`CancellationRequested` carrying the reason when cancelled."""
        if self.is_cancelled():
            raise CancellationRequested(self._reason)

    async def wait(self, poll_interval: float = 0.05) -> None:
        """Return once cancelled. Owned tokens wake immediately; wrapped sources are polled."""
        if self.is_cancelled():
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        entry = (loop, fut)
        with self._lock:
            self._waiters.append(entry)
        try:
            if self._source is None:
                if not self._cancelled:
                    await fut
                return
            while not self.is_cancelled():
                await asyncio.wait({fut}, timeout=poll_interval)
        finally:
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)

    def __repr__(self) -> str:
        state = f"cancelled reason={self._reason!r}" if self.is_cancelled() else "active"
        return f"<CancellationToken {state}>"


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
