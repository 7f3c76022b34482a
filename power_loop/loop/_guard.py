"""`SessionGuard`: one driver per session at a time.

Within the process a session is driven under its own `asyncio.Lock`. The guard keeps a lock only while
someone holds or waits for it: each entry counts its users (the holder plus the waiters), and the last
user to leave removes it, so a loop that drives millions of sessions keeps no lock per idle session.
Counting our own users (instead of asking the lock whether it has waiters) holds under cancellation
too: a waiter cancelled before it got the lock still leaves through the same ``finally``.

Across processes (``lease_ttl_s``) the holder also takes the session's store lease for the block,
renewed in the background and released after; the current lease token fences the block's writes.

The guard also knows when no session is held at all, which is what a graceful shutdown waits for.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING

from ..errors import ConfigError, InvalidSessionIdError

if TYPE_CHECKING:
    from ..store import HeldLease, LeaseToken, SessionStore

__all__ = ["SessionGuard"]


class _Entry:
    """A session's in-process lock and how many tasks hold or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class SessionGuard:
    """Per-session exclusion for one loop: in-process locks (reference-counted) plus optional leases.

    ``lease_ttl_s`` None turns cross-process leases off; otherwise it is the lease's time to live in
    seconds, and every `hold` with ``lease=True`` takes the session's lease (`SessionBusy` when
    another live process has it).
    """

    __slots__ = ("_entries", "_holder", "_idle", "_leases", "_ttl_s", "_users")

    def __init__(self, lease_ttl_s: float | None = None) -> None:
        if lease_ttl_s is not None and (
            isinstance(lease_ttl_s, bool) or not isinstance(lease_ttl_s, (int, float)) or not lease_ttl_s > 0
        ):
            raise ConfigError("lease_ttl_s must be None (no leases) or a number of seconds > 0")
        self._ttl_s = lease_ttl_s
        self._holder = ""
        if lease_ttl_s is not None:
            # The lease machinery loads only for a loop that leases. One holder id per loop
            # instance: every lease this loop takes is recognisably its own.
            from ..store import new_holder_id

            self._holder = new_holder_id()
        self._entries: dict[str, _Entry] = {}
        self._leases: dict[str, HeldLease] = {}
        self._users = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def hold(self, session_id: str, store: SessionStore, *, lease: bool = True) -> _Hold:
        """Drive ``session_id`` exclusively for an ``async with`` block (holding its lease when leasing)."""
        leased = lease and self._ttl_s is not None
        return _Hold(self, session_id, store if leased else None)

    def busy(self, session_id: str) -> bool:
        """Whether a task of this process is driving ``session_id`` right now."""
        entry = self._entries.get(session_id)
        return entry is not None and entry.lock.locked()

    def lease_token(self, session_id: str) -> LeaseToken | None:
        """The current token of the lease held for ``session_id`` (None when not leasing)."""
        held = self._leases.get(session_id)
        return None if held is None else held.token

    @property
    def ttl_s(self) -> float | None:
        """The lease time to live in seconds (None: this guard does not lease)."""
        return self._ttl_s

    @property
    def sessions(self) -> int:
        """How many sessions have a holder or a waiter right now."""
        return len(self._entries)

    def _join(self, session_id: str) -> _Entry:
        if not isinstance(session_id, str):  # before it is used as a key; the store checks the rest
            raise InvalidSessionIdError(f"invalid session id: a {type(session_id).__name__}, not a string")
        entry = self._entries.get(session_id)
        if entry is None:
            entry = self._entries[session_id] = _Entry()
        entry.users += 1
        self._users += 1
        self._idle.clear()
        return entry

    def _leave(self, session_id: str, entry: _Entry) -> None:
        # An entry is in the table exactly while it has users, so this one is still the table's.
        entry.users -= 1
        if entry.users == 0:
            del self._entries[session_id]
        self._users -= 1
        if self._users == 0:
            self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no session is held (at most ``timeout_s``); False when the time ran out."""
        if self._users == 0:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=timeout_s)
        except asyncio.TimeoutError:
            return False
        return True


class _Hold:
    """One `SessionGuard.hold`: join the session's entry, take its lock, then (leasing) its lease.

    A class rather than a generator-based context manager because it runs on every send; whatever
    step fails or is cancelled, the steps before it are undone and the entry is left.
    """

    __slots__ = ("_entry", "_guard", "_lease", "_session_id", "_store")

    def __init__(self, guard: SessionGuard, session_id: str, store: SessionStore | None) -> None:
        self._guard = guard
        self._session_id = session_id
        self._store = store  # None: no lease for this hold
        self._lease: AbstractAsyncContextManager[HeldLease] | None = None

    async def __aenter__(self) -> None:
        guard, session_id = self._guard, self._session_id
        entry = self._entry = guard._join(session_id)
        try:
            await entry.lock.acquire()
        except BaseException:
            guard._leave(session_id, entry)
            raise
        if self._store is None:
            return
        assert guard._ttl_s is not None
        from ..store import hold_lease

        lease = hold_lease(self._store, session_id, ttl_s=guard._ttl_s, holder=guard._holder)
        try:
            guard._leases[session_id] = await lease.__aenter__()
        except BaseException:
            entry.lock.release()
            guard._leave(session_id, entry)
            raise
        self._lease = lease

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        guard, session_id, entry = self._guard, self._session_id, self._entry
        try:
            if self._lease is not None:
                del guard._leases[session_id]
                await self._lease.__aexit__(exc_type, exc, tb)
        finally:
            entry.lock.release()
            guard._leave(session_id, entry)
