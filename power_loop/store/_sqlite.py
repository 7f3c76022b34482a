"""SQLite backend: one connection living on one dedicated thread.

The event loop hands the thread a whole unit of work and gets one future back, so a transaction costs
one thread hop however many statements it runs. On the thread the unit's coroutine is driven
synchronously (its :class:`Transaction` methods never suspend). When several units are queued they
are committed together (group commit): each runs inside its own SAVEPOINT within one
``BEGIN IMMEDIATE … COMMIT``, so a failing unit rolls back only itself and every caller still learns
its outcome only after the shared COMMIT is durable.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import sqlite3
import threading
import urllib.parse
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..base import UncancellableFuture
from ..errors import (
    StoreClosedError,
    StoreCorruptError,
    StoreError,
    StoreIntegrityError,
    StoreSchemaError,
    StoreUnavailable,
)
from ._schema import missing_table_hint

if TYPE_CHECKING:
    from ._port import ColumnSpec, Dialect, Params, Row, TableSpec, UnitOfWork

__all__ = ["SqliteDatabase", "SqliteDialect"]

T = TypeVar("T")

_SQL_TYPES = {
    "key": "TEXT",
    "text": "TEXT",
    "int": "INTEGER",
    "small": "INTEGER",
    "enum": "TEXT",
    "blob": "BLOB",
}
_CHECKPOINT_MODES = frozenset({"PASSIVE", "FULL", "RESTART", "TRUNCATE"})
_MAX_BATCH = 64  # units committed together at most
_LOCK_NAME = re.compile(r"[^A-Za-z0-9_.-]")  # what a lock name may keep in its file name


def _literal(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def _column_sql(col: ColumnSpec) -> str:
    parts = [col.name, _SQL_TYPES[col.type]]
    if not col.nullable:
        parts.append("NOT NULL")
    if col.default is not None:
        parts.append("DEFAULT " + _literal(col.default))
    return " ".join(parts)


class SqliteDialect:
    """SQL text for SQLite (>= 3.24 for ``ON CONFLICT … DO UPDATE``)."""

    name = "sqlite"
    # RETURNING arrived in SQLite 3.35.
    supports_update_returning = sqlite3.sqlite_version_info >= (3, 35)

    def translate(self, sql: str) -> str:
        return sql

    def create_table(self, table: TableSpec, prefix: str) -> list[str]:
        cols = ", ".join(_column_sql(c) for c in table.columns)
        full = prefix + table.name
        stmts = [f"CREATE TABLE IF NOT EXISTS {full} ({cols}, PRIMARY KEY ({', '.join(table.primary_key)}))"]
        for idx in table.indexes:
            unique = "UNIQUE " if idx.unique else ""
            stmts.append(
                f"CREATE {unique}INDEX IF NOT EXISTS {prefix}{idx.name} ON {full} ({', '.join(idx.columns)})"
            )
        return stmts

    def add_column(self, table: str, column: ColumnSpec, prefix: str) -> str:
        return f"ALTER TABLE {prefix}{table} ADD COLUMN {_column_sql(column)}"

    def upsert(
        self,
        table: str,
        key_cols: Sequence[str],
        val_cols: Sequence[str],
        *,
        add_cols: Sequence[str] = (),
        insert_only_cols: Sequence[str] = (),
    ) -> str:
        cols = [*key_cols, *val_cols, *add_cols, *insert_only_cols]
        head = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        sets = [f"{c} = excluded.{c}" for c in val_cols]
        sets += [f"{c} = {table}.{c} + excluded.{c}" for c in add_cols]
        conflict = f" ON CONFLICT ({', '.join(key_cols)}) DO "
        return head + conflict + ("UPDATE SET " + ", ".join(sets) if sets else "NOTHING")

    def insert_ignore(self, table: str, cols: Sequence[str]) -> str:
        return (
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            "ON CONFLICT DO NOTHING"
        )

    @property
    def for_update(self) -> str:
        # The whole unit already holds the database write lock (BEGIN IMMEDIATE).
        return ""

    def table_exists_sql(self) -> str:
        return "SELECT 1 AS present FROM sqlite_master WHERE type = 'table' AND name = ?"

    def columns_sql(self) -> str:
        return "SELECT name FROM pragma_table_info(?)"


def map_sqlite_error(exc: sqlite3.Error, path: str) -> StoreError:
    """Turn a driver error into the specific store error naming the file and the fix."""
    msg = str(exc)
    low = msg.lower()
    if "not a database" in low or "malformed" in low:
        return StoreCorruptError(
            f"SQLite database {path!r} is damaged or is not a database ({msg}); restore it from a "
            "backup or point the DSN at another file"
        )
    if "unable to open" in low:
        return StoreUnavailable(
            f"cannot open SQLite database {path!r} ({msg}); check that the directory exists and is writable"
        )
    if "disk is full" in low or "readonly database" in low:
        # The database takes no writes for now (a full disk or quota, a read-only file or mount):
        # nothing of the failed transaction was written; once fixed the next write works.
        return StoreUnavailable(
            f"SQLite database {path!r} cannot take writes ({msg}); free disk space or make the file "
            "writable, then retry"
        )
    if low.startswith("no such table"):
        return StoreSchemaError(
            f"SQLite database {path!r}: " + missing_table_hint(msg.split(":", 1)[-1].strip())
        )
    if isinstance(exc, sqlite3.IntegrityError):
        return StoreIntegrityError(f"SQLite constraint violated on {path!r}: {msg}")
    if "locked" in low or "busy" in low:
        return StoreError(f"SQLite database {path!r} stayed locked by another connection for 5 s ({msg})")
    return StoreError(f"SQLite error on {path!r}: {msg}")


class _SyncTransaction:
    """A Transaction whose async methods complete without ever suspending (runs on the DB thread)."""

    __slots__ = ("_conn", "_path")

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self._path = path

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            return self._conn.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            raise map_sqlite_error(exc, self._path) from exc

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        try:
            self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise map_sqlite_error(exc, self._path) from exc

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return _fetchone(self._conn, self._path, sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return _fetchall(self._conn, self._path, sql, params)


def _fetchone(conn: sqlite3.Connection, path: str, sql: str, params: Params) -> Row | None:
    try:
        cur = conn.execute(sql, params)
        row = cur.fetchone()
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, path) from exc
    if row is None or cur.description is None:
        return None
    return dict(zip([d[0] for d in cur.description], row, strict=True))


def _fetchall(conn: sqlite3.Connection, path: str, sql: str, params: Params) -> list[Row]:
    try:
        cur = conn.execute(sql, params)
        rows = cur.fetchall()
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, path) from exc
    if cur.description is None:  # a statement without result columns
        return []
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in rows]


def _drive(work: UnitOfWork[T], tx: _SyncTransaction) -> T:
    """Run a unit of work to completion synchronously; it must never really suspend."""
    it = work(tx).__await__()
    try:
        it.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    close = getattr(it, "close", None)
    if close is not None:
        close()
    raise RuntimeError(
        "unit of work awaited a foreign awaitable; a unit may only await its Transaction's methods"
    )


_UNIT, _CALL, _CLOSE = 0, 1, 2


class _Job:
    __slots__ = ("fut", "kind", "loop", "payload")

    def __init__(
        self, kind: int, payload: Any, loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any]
    ) -> None:
        self.kind = kind
        self.payload = payload
        self.loop = loop
        self.fut = fut


def _settle(items: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for fut, ok, value in items:
        if fut.done():  # the awaiting caller was cancelled
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


def _deliver(outcomes: list[tuple[_Job, bool, Any]]) -> None:
    """Hand results back: one ``call_soon_threadsafe`` per event loop involved."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for job, ok, value in outcomes:
        by_loop.setdefault(job.loop, []).append((job.fut, ok, value))
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, items)
        except RuntimeError:  # that event loop is closed; nobody is waiting any more
            pass


class SqliteDatabase:
    """The SQLite :class:`~power_loop.store.Database` (also implements ``Maintenance``).

    Open with ``await SqliteDatabase.open(path)``; ``":memory:"`` gives a private in-memory database.
    File databases use WAL with ``synchronous=NORMAL``: a committed transaction survives a process
    crash. Every connection has ``foreign_keys=ON`` and ``busy_timeout=5000``.
    """

    #: Every ``transact`` begins ``IMMEDIATE``: it excludes every other writer, so schema provisioning
    #: needs no advisory lock (and makes no lock file).
    exclusive_transactions = True

    def __init__(self, path: str, *, read_only: bool = False, snapshot: bool = False) -> None:
        self.path = path
        self.is_memory = path == ":memory:" or path == ""
        self.read_only = read_only
        self.snapshot = snapshot and read_only
        # A read-only connection cannot take the write lock; a deferred BEGIN reads one snapshot.
        self._begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"
        self.dialect: Dialect = SqliteDialect()
        self._conn: sqlite3.Connection | None = None
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"power_loop-sqlite:{path}", daemon=True)

    @classmethod
    async def open(cls, path: str, *, read_only: bool = False, snapshot: bool = False) -> SqliteDatabase:
        """Open (creating if needed) the database at ``path`` on a fresh connection thread.

        ``read_only``: open an existing file with ``mode=ro`` and ``query_only`` (no file, journal or
        schema is ever created; every write fails); it still sees what other processes commit.
        ``snapshot`` (with ``read_only``, for one-shot reads such as the CLI's): when no connection
        has the file open, read it as ``immutable`` so not even SQLite's ``-wal``/``-shm`` side files
        appear — later commits by others are then not seen.
        """
        db = cls(path, read_only=read_only, snapshot=snapshot)
        db._thread.start()
        try:
            await db._submit(_CALL, db._connect)
        except BaseException:
            await db.close()
            raise
        return db

    # -- the connection thread -------------------------------------------------------------

    def _connect(self, _conn: sqlite3.Connection | None) -> None:
        target, uri = self.path, False
        if self.read_only:
            target, uri = f"file:{urllib.parse.quote(os.path.abspath(self.path))}?mode=ro", True
            if self.snapshot and not os.path.exists(self.path + "-wal"):
                # No connection has the file open (WAL keeps its -wal while one does): read it as
                # immutable, so even SQLite's -wal/-shm side files are not created.
                target += "&immutable=1"
        try:
            conn = sqlite3.connect(target, isolation_level=None, cached_statements=256, uri=uri)
        except sqlite3.Error as exc:
            raise map_sqlite_error(exc, self.path) from exc
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA foreign_keys = ON")
            if self.read_only:
                conn.execute("PRAGMA query_only = ON")
            elif not self.is_memory:
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes effect on a new file
                conn.execute("PRAGMA journal_mode = WAL").fetchone()
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the header
        except sqlite3.Error as exc:
            conn.close()
            raise map_sqlite_error(exc, self.path) from exc
        self._conn = conn

    def _run(self) -> None:
        held: _Job | None = None
        while True:
            job = held if held is not None else self._queue.get()
            held = None
            if job.kind == _CLOSE:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                _deliver([(job, True, None)])
                return
            if job.kind == _CALL:
                try:
                    _deliver([(job, True, job.payload(self._conn))])
                except Exception as exc:
                    _deliver([(job, False, exc)])
                continue
            batch = [job]
            while len(batch) < _MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt.kind != _UNIT:
                    held = nxt
                    break
                batch.append(nxt)
            _deliver(self._run_units(batch))

    def _run_units(self, batch: list[_Job]) -> list[tuple[_Job, bool, Any]]:
        conn = self._conn
        if conn is None:
            return [(j, False, StoreClosedError("the SQLite database is closed")) for j in batch]
        tx = _SyncTransaction(conn, self.path)
        try:
            conn.execute(self._begin)
        except sqlite3.Error as exc:
            err = map_sqlite_error(exc, self.path)
            return [(j, False, err) for j in batch]
        single = len(batch) == 1
        outcomes: list[tuple[_Job, bool, Any]] = []
        for job in batch:
            if not single:
                conn.execute("SAVEPOINT pl_unit")
            try:
                value = _drive(job.payload, tx)
            except Exception as exc:
                outcomes.append((job, False, exc))
                if not conn.in_transaction:
                    # SQLite itself rolled the whole transaction back (e.g. disk full): the
                    # earlier units of this batch are lost too.
                    lost = StoreError(f"SQLite rolled back the transaction on {self.path!r}: {exc}")
                    outcomes = [(j, False, v if not ok else lost) for j, ok, v in outcomes]
                    rest = batch[len(outcomes) :]
                    return outcomes + [(j, False, lost) for j in rest]
                if single:
                    conn.execute("ROLLBACK")
                    return outcomes
                conn.execute("ROLLBACK TO pl_unit")
                conn.execute("RELEASE pl_unit")
                continue
            if not single:
                conn.execute("RELEASE pl_unit")
            outcomes.append((job, True, value))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            err = map_sqlite_error(exc, self.path)
            return [(j, False, v if not ok else err) for j, ok, v in outcomes]
        return outcomes

    # -- event-loop side ---------------------------------------------------------------------

    async def _submit(self, kind: int, payload: Any, *, whole: bool = False) -> Any:
        loop = asyncio.get_running_loop()
        # A transaction runs to its end on the thread whoever waits: its future says so, so a
        # cancelled caller learns the outcome (``run_to_completion``) instead of guessing.
        fut: asyncio.Future[Any] = UncancellableFuture(loop=loop) if whole else loop.create_future()
        with self._lock:
            if self._closed:
                raise StoreClosedError(f"the SQLite database {self.path!r} is closed")
            self._queue.put(_Job(kind, payload, loop, fut))
        return await fut

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> Any:
        def run(conn: sqlite3.Connection | None) -> T:
            if conn is None:
                raise StoreClosedError(f"the SQLite database {self.path!r} is closed")
            return fn(conn)

        return self._submit(_CALL, run)

    async def transact(self, work: UnitOfWork[T]) -> T:
        """Run ``work`` as one transaction on the connection thread (one hop)."""
        result: T = await self._submit(_UNIT, work, whole=True)
        return result

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = await self._call(lambda c: _fetchone(c, self.path, sql, params))
        return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        rows: list[Row] = await self._call(lambda c: _fetchall(c, self.path, sql, params))
        return rows

    async def execute(self, sql: str, params: Params = ()) -> int:
        def run(conn: sqlite3.Connection) -> int:
            try:
                return conn.execute(sql, params).rowcount
            except sqlite3.Error as exc:
                raise map_sqlite_error(exc, self.path) from exc

        count: int = await self._call(run)
        return count

    @asynccontextmanager
    async def advisory_lock(self, name: str) -> AsyncIterator[None]:
        """An exclusive named lock across connections and processes: ``flock`` on a lock file beside
        the database (``<file>-<name>.lock``, made on first use), waited for on a thread. An in-memory
        database has one connection: nothing to exclude. Provisioning does not take it (see
        ``exclusive_transactions``), so ordinary use makes no lock file."""
        if self.is_memory:
            yield
            return
        try:
            import fcntl
        except ImportError as exc:  # Windows: no flock
            raise StoreError("advisory locks on a SQLite file need fcntl (a POSIX system)") from exc
        fd = os.open(f"{self.path}-{_LOCK_NAME.sub('_', name)}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)  # also releases a lock that a cancelled wait took meanwhile

    async def close(self) -> None:
        """Finish queued work, close the connection and stop the thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if not self._thread.is_alive():
                return
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[Any] = loop.create_future()
            self._queue.put(_Job(_CLOSE, None, loop, fut))
        await fut

    # -- Maintenance ---------------------------------------------------------------------------

    async def checkpoint(self, *, mode: str = "TRUNCATE") -> None:
        """``PRAGMA wal_checkpoint(mode)``; a no-op for in-memory databases."""
        mode = mode.upper()
        if mode not in _CHECKPOINT_MODES:
            raise StoreError(f"unknown checkpoint mode {mode!r}; use one of {sorted(_CHECKPOINT_MODES)}")
        if not self.is_memory:
            await self._call(lambda c: _fetchall(c, self.path, f"PRAGMA wal_checkpoint({mode})", ()))

    async def vacuum(self, *, incremental: bool = True) -> None:
        """``PRAGMA incremental_vacuum`` (cheap) or a full ``VACUUM`` (rewrites the file)."""
        sql = "PRAGMA incremental_vacuum" if incremental else "VACUUM"
        await self._call(lambda c: _fetchall(c, self.path, sql, ()))

    async def backup(self, dest_path: str) -> None:
        """Copy the live database to ``dest_path`` with SQLite's online backup API."""

        def run(conn: sqlite3.Connection) -> None:
            dest = Path(dest_path).expanduser()
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                target = sqlite3.connect(str(dest))
            except sqlite3.Error as exc:
                raise map_sqlite_error(exc, str(dest)) from exc
            try:
                conn.backup(target)
            except sqlite3.Error as exc:
                raise map_sqlite_error(exc, str(dest)) from exc
            finally:
                target.close()

        await self._call(run)
