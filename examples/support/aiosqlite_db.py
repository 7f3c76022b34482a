"""Bring your own database driver: the storage port implemented on ``aiosqlite``.

power_loop's ``SessionStore`` is written against a small port (``power_loop.store.Database`` and
``Transaction``). Any driver can back it: this file implements the port on ``aiosqlite`` (the async
SQLite driver many applications already use), reusing the built-in ``SqliteDialect`` for the SQL
text. The repository's store conformance suite runs against this adapter too, and
``examples/26_custom_database_adapter.py`` checks it with ``power_loop.testing.check_database`` (the
same checks, for your own adapter) before it runs a loop on it (needs ``pip install aiosqlite``).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiosqlite

from power_loop.errors import StoreClosedError, StoreError, StoreIntegrityError
from power_loop.store import Database, SessionStore, SqliteDialect, ensure_schema

T = TypeVar("T")
Row = dict[str, Any]


def _mapped(exc: sqlite3.Error) -> StoreError:
    """Driver errors become power_loop store errors (the store catches those, never driver types)."""
    if isinstance(exc, sqlite3.IntegrityError):
        return StoreIntegrityError(str(exc))
    return StoreError(f"aiosqlite: {exc}")


def _rows(cursor: aiosqlite.Cursor, rows: Iterable[Any]) -> list[Row]:
    if cursor.description is None:  # a statement without result columns
        return []
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in rows]


class AiosqliteTransaction:
    """The ``Transaction`` of the port: statements on the connection inside BEGIN … COMMIT."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        try:
            async with self._conn.execute(sql, params) as cur:
                return cur.rowcount
        except sqlite3.Error as exc:
            raise _mapped(exc) from exc

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            await self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise _mapped(exc) from exc

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            async with self._conn.execute(sql, params) as cur:
                return _rows(cur, await cur.fetchall())
        except sqlite3.Error as exc:
            raise _mapped(exc) from exc


class AiosqliteDatabase:
    """The ``Database`` of the port on one aiosqlite connection.

    One SQLite connection runs one transaction at a time, so an ``asyncio.Lock`` serialises units of
    work (and the one-statement helpers, which must not land inside someone else's transaction).
    ``BEGIN IMMEDIATE`` takes the file's write lock up front, which also excludes other processes.
    """

    def __init__(self, conn: aiosqlite.Connection, path: str = ":memory:") -> None:
        self.dialect = SqliteDialect()  # the SQL text is exactly the built-in SQLite backend's
        self._conn = conn
        self._path = path
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(cls, path: str) -> AiosqliteDatabase:
        conn = await aiosqlite.connect(path, isolation_level=None)  # we issue BEGIN/COMMIT ourselves
        try:
            await conn.execute("PRAGMA busy_timeout = 5000")
            await conn.execute("PRAGMA foreign_keys = ON")
            if path != ":memory:":
                await conn.execute("PRAGMA journal_mode = WAL")
                await conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            await conn.close()
            raise
        return cls(conn, path)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the aiosqlite database is closed")

    async def transact(self, work: Callable[[AiosqliteTransaction], Awaitable[T]]) -> T:
        """Run ``work(tx)`` in one transaction: commit if it returns, roll back if it raises."""
        async with self._lock:
            self._check_open()
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _mapped(exc) from exc
            try:
                result = await work(AiosqliteTransaction(self._conn))
                await self._conn.execute("COMMIT")
            except sqlite3.Error as exc:  # COMMIT failed
                await self._rollback()
                raise _mapped(exc) from exc
            except BaseException:
                await self._rollback()
                raise
            return result

    async def _rollback(self) -> None:
        if self._conn.in_transaction:  # SQLite may already have rolled back by itself
            await self._conn.execute("ROLLBACK")

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        async with self._lock:
            self._check_open()
            return await AiosqliteTransaction(self._conn).fetchone(sql, params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._lock:
            self._check_open()
            return await AiosqliteTransaction(self._conn).fetchall(sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._lock:
            self._check_open()
            return await AiosqliteTransaction(self._conn).execute(sql, params)

    @asynccontextmanager
    async def advisory_lock(self, name: str) -> AsyncIterator[None]:
        """An exclusive lock across connections and processes: ``flock`` on a lock file beside the
        database, waited for on a thread (an in-memory database has one connection: nothing to do)."""
        if self._path == ":memory:":
            yield
            return
        fd = os.open(f"{self._path}.{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)  # also releases a lock a cancelled wait took meanwhile

    async def close(self) -> None:
        async with self._lock:
            if not self._closed:
                self._closed = True
                await self._conn.close()


async def open_aiosqlite_store(path: str, *, table_prefix: str = "pl_") -> SessionStore:
    """A ready ``SessionStore`` on aiosqlite: connect, provision the schema, wrap."""
    db = await AiosqliteDatabase.open(path)
    assert isinstance(db, Database)  # the port is a runtime-checkable Protocol
    try:
        await ensure_schema(db, table_prefix)
    except BaseException:
        await db.close()
        raise
    return SessionStore(db, table_prefix=table_prefix)
