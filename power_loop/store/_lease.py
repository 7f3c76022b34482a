"""Cross-process session leases: at most one live process drives a session at a time.

A lease is one row of ``{prefix}session_leases``: ``(session_id, holder, epoch, expires_at_ms)``.

- **Acquire** (an atomic conditional UPDATE): take the row if it is free, released or expired,
  bumping ``epoch``; otherwise raise :class:`~power_loop.errors.SessionBusy` naming the holder and the expiry.
- **Renew** while held (:func:`hold_lease` does it every ``ttl/3`` in the background); a holder that
  dies (even by SIGKILL) stops renewing, so its lease expires after ``ttl`` and can be taken over.
- **Fence**: ``append_messages(..., lease=token)`` checks, in the write's own transaction, that the
  session's lease still has the token's epoch and holder, else raises
  :class:`~power_loop.errors.LeaseLostError` and writes nothing. A paused process that wakes up after
  its lease was taken over (a *zombie*) therefore cannot interleave its late writes.
- **Release** keeps the row (``expires_at_ms = 0``) so epochs never repeat.

The SQL is the same on every backend (only ``FOR UPDATE`` and the insert-if-absent form come from the
dialect). Expiry uses the writers' wall clocks, so hosts sharing a database need clocks that agree to
well within the TTL; fencing itself compares epochs only and needs no clock.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..errors import ConfigError, LeaseLostError, SessionBusy, SessionNotFoundError, StoreError
from ._core import StoreContext, now_ms

if TYPE_CHECKING:
    from ._port import Database, Transaction
    from ._sessions import SessionRepository

__all__ = [
    "HeldLease",
    "LeaseRepository",
    "LeaseToken",
    "SupportsLeases",
    "hold_lease",
    "lease_fence",
    "new_holder_id",
]


@dataclass(frozen=True, slots=True)
class LeaseToken:
    """One holding of a session's lease (also the shape ``SessionStore.get_lease`` returns).

    ``epoch`` increases by one at every acquisition; writes fenced with this token are accepted only
    while the session's lease still has this ``epoch`` and ``holder``.
    """

    session_id: str
    holder: str
    epoch: int
    expires_at_ms: int


def new_holder_id() -> str:
    """A fresh holder id ``host:pid:random`` (random so two holders in one process differ)."""
    import socket  # only needed when leases are used

    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _ttl_ms(ttl_s: float) -> int:
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float)) or not ttl_s > 0:
        raise ConfigError(f"lease ttl_s must be a number of seconds > 0, got {ttl_s!r}")
    return max(1, int(ttl_s * 1000))


def _check_holder(holder: str) -> str:
    if not isinstance(holder, str) or not holder or len(holder) > 255:
        raise ConfigError(
            f"lease holder must be a non-empty string of at most 255 characters, got {holder!r}"
        )
    return holder


def lease_fence(t: Mapping[str, str]) -> str:
    """The condition a fenced write appends to its ``WHERE``: the lease still has the token's epoch
    and holder (parameters: session id, epoch, holder). It rides on a statement the write runs
    anyway, so fencing costs no extra round trip."""
    return (
        f" AND EXISTS (SELECT 1 FROM {t['session_leases']} WHERE session_id = ? AND epoch = ? AND holder = ?)"
    )


class SupportsLeases(Protocol):
    """What :func:`hold_lease` needs: a :class:`~power_loop.store.SessionStore` (or its lease part)."""

    async def acquire_lease(self, session_id: str, *, holder: str, ttl_s: float) -> LeaseToken: ...

    async def renew_lease(self, token: LeaseToken, *, ttl_s: float) -> LeaseToken: ...

    async def release_lease(self, token: LeaseToken) -> bool: ...


class LeaseRepository:
    """The ``session_leases`` table: acquire, renew, release, read; the error a stale token gets."""

    __slots__ = ("_ctx", "_sessions", "_sql_get", "_sql_insert", "_sql_release", "_sql_renew", "_sql_take")

    def __init__(self, ctx: StoreContext, sessions: SessionRepository) -> None:
        self._ctx = ctx
        self._sessions = sessions
        table = ctx.t["session_leases"]
        self._sql_get = f"SELECT holder, epoch, expires_at_ms FROM {table} WHERE session_id = ?"
        self._sql_insert = ctx.db.dialect.insert_ignore(
            table, ("session_id", "holder", "epoch", "expires_at_ms")
        )
        # Take the row if it is free (expired or released) or already ours; bumps the epoch atomically.
        self._sql_take = (
            f"UPDATE {table} SET holder = ?, epoch = epoch + 1, expires_at_ms = ? "
            "WHERE session_id = ? AND (expires_at_ms <= ? OR holder = ?)"
        )
        self._sql_renew = (
            f"UPDATE {table} SET expires_at_ms = ? WHERE session_id = ? AND holder = ? AND epoch = ?"
        )
        self._sql_release = f"UPDATE {table} SET holder = '', expires_at_ms = 0 WHERE session_id = ? AND holder = ? AND epoch = ?"

    async def acquire(self, session_id: str, *, holder: str, ttl_s: float) -> LeaseToken:
        ttl = _ttl_ms(ttl_s)
        _check_holder(holder)
        db = self._ctx.db
        now = now_ms()
        expires = now + ttl
        if await db.execute(self._sql_take, (holder, expires, session_id, now, holder)):
            row = await db.fetchone(self._sql_get, (session_id,))
            if row is not None and row["holder"] == holder and int(row["expires_at_ms"]) == expires:
                return LeaseToken(session_id, holder, int(row["epoch"]), expires)
            # Taken over again in between (only possible with a TTL shorter than a round trip).
        else:
            row = await db.fetchone(self._sql_get, (session_id,))
            if row is None:  # never leased: create the row at epoch 1
                if not await self._sessions.exists(db, session_id):
                    raise SessionNotFoundError(session_id)
                if await db.execute(self._sql_insert, (session_id, holder, 1, expires)):
                    return LeaseToken(session_id, holder, 1, expires)
                # Another process created it first; its holding decides.
                row = await db.fetchone(self._sql_get, (session_id,))
                if row is None:
                    raise SessionNotFoundError(session_id)
                if int(row["expires_at_ms"]) <= now_ms():
                    return await self.acquire(session_id, holder=holder, ttl_s=ttl_s)
        if row is None:  # the session was closed meanwhile
            raise SessionNotFoundError(session_id)
        raise SessionBusy(session_id, holder=str(row["holder"]), expires_at_ms=int(row["expires_at_ms"]))

    async def renew(self, token: LeaseToken, *, ttl_s: float) -> LeaseToken:
        expires = now_ms() + _ttl_ms(ttl_s)
        if not await self._ctx.db.execute(
            self._sql_renew, (expires, token.session_id, token.holder, token.epoch)
        ):
            raise await self.lost(token)
        return LeaseToken(token.session_id, token.holder, token.epoch, expires)

    async def release(self, token: LeaseToken) -> bool:
        return bool(
            await self._ctx.db.execute(self._sql_release, (token.session_id, token.holder, token.epoch))
        )

    async def get(self, session_id: str) -> LeaseToken | None:
        row = await self._ctx.db.fetchone(self._sql_get, (session_id,))
        if row is None:
            return None
        return LeaseToken(session_id, str(row["holder"]), int(row["epoch"]), int(row["expires_at_ms"]))

    async def lost(self, token: LeaseToken, tx: Transaction | None = None) -> LeaseLostError:
        """The error for a fenced write or renewal that found ``token`` stale (names the new holder)."""
        q: Transaction | Database = self._ctx.db if tx is None else tx
        row = await q.fetchone(self._sql_get, (token.session_id,))
        return LeaseLostError(
            token.session_id,
            epoch=token.epoch,
            holder=token.holder,
            current_epoch=None if row is None else int(row["epoch"]),
            current_holder=None if row is None else str(row["holder"]),
        )


class HeldLease:
    """A lease held by :func:`hold_lease`: renewed in the background every ``ttl/3`` seconds.

    ``token`` is the current holding (pass it as ``append_messages(..., lease=held.token)``);
    ``lost`` is set when a renewal found the lease taken over (the next fenced write fails too).
    """

    __slots__ = ("_store", "_ttl_s", "lost", "token")

    def __init__(self, store: SupportsLeases, token: LeaseToken, ttl_s: float) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self.token = token
        self.lost: LeaseLostError | None = None

    async def _renew_forever(self) -> None:
        interval = self._ttl_s / 3
        while True:
            await asyncio.sleep(interval)
            try:
                self.token = await self._store.renew_lease(self.token, ttl_s=self._ttl_s)
            except LeaseLostError as exc:
                self.lost = exc
                return
            except StoreError:
                # A transient outage: retry at the next tick; if it lasts past the TTL another process
                # may take over, and the fence then rejects this holder's writes.
                continue


@asynccontextmanager
async def hold_lease(
    store: SupportsLeases, session_id: str, *, ttl_s: float, holder: str | None = None
) -> AsyncIterator[HeldLease]:
    """Acquire the session's lease, keep it renewed while the block runs, release it afterwards.

    Raises :class:`SessionBusy` when another live holder has it. ``holder`` defaults to a fresh
    :func:`new_holder_id`.
    """
    token = await store.acquire_lease(session_id, holder=holder or new_holder_id(), ttl_s=ttl_s)
    held = HeldLease(store, token, ttl_s)
    renewer = asyncio.create_task(held._renew_forever(), name=f"power_loop-lease:{session_id}")
    try:
        yield held
    finally:
        renewer.cancel()
        await asyncio.wait([renewer])  # never raises the renewer's CancelledError into this task
        if held.lost is None:
            try:
                await store.release_lease(held.token)
            except StoreError:
                pass  # unreachable database: the lease simply expires after its TTL
