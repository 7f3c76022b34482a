"""Scaffolding shared by the pooled server backends (PostgreSQL in ``_postgres``, MySQL in ``_mysql``).

Both backends write the same SQL shapes (validated unquoted identifiers, ``information_schema``
probes, ``INSERT … VALUES (?, …)`` heads), borrow one pooled connection per call, map driver errors
onto :mod:`power_loop.errors` naming the server but never the password, and hold advisory locks on a
dedicated connection outside the pool. That common logic lives here; each backend module keeps only
its driver's calls, its SQL differences and its error classification.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from ..errors import StoreClosedError
from ._dsn import DSNParts, describe_error, sanitized_cause
from ._sqltext import check_columns, check_ident, render_default

if TYPE_CHECKING:
    from ._port import ColumnSpec, Params, Row, Transaction, UnitOfWork

__all__ = ["ServerDatabase", "ServerDialect", "numeric"]

T = TypeVar("T")
P = TypeVar("P")  # what a dialect caches per distinct statement

_CACHE_LIMIT = 4096


def numeric(text: str) -> int | float:
    """Decode ``numeric``/``DECIMAL`` (only produced by aggregates such as SUM here) like SQLite would."""
    return int(text) if text.lstrip("-").isdigit() else float(Decimal(text))


class ServerDialect(ABC, Generic[P]):
    """The SQL text PostgreSQL and MySQL write alike; subclasses fill in the differences.

    Every identifier is checked against the server's length limit (a longer one would be silently
    truncated or refused) before it is pasted into SQL.
    """

    __slots__ = ("_cache",)
    name: str
    _max_ident: ClassVar[int]
    _types: ClassVar[Mapping[str, str]]  # logical column type -> SQL type
    _add_column: ClassVar[str]  # the ALTER TABLE clause adding a column
    _table_match: ClassVar[str]  # information_schema condition: this schema, table named by ``?``
    # MySQL/MariaDB have no UPDATE … RETURNING; PostgreSQL overrides this.
    supports_update_returning: ClassVar[bool] = False

    def __init__(self) -> None:
        self._cache: dict[str, P] = {}

    @abstractmethod
    def _compile(self, sql: str) -> P:
        """The driver form of ``?``-placeholder ``sql`` (computed once per distinct statement)."""

    def _cached(self, sql: str) -> P:
        try:
            return self._cache[sql]
        except KeyError:
            pass
        if len(self._cache) >= _CACHE_LIMIT:  # only reachable with ad-hoc SQL; stay bounded
            self._cache.clear()
        out = self._cache[sql] = self._compile(sql)
        return out

    def _default(self, column: ColumnSpec) -> str:
        return render_default(column, backslash_escapes=False)

    def _column(self, column: ColumnSpec) -> str:
        null = "" if column.nullable else " NOT NULL"
        return f"{column.name} {self._types[column.type]}{null}{self._default(column)}"

    def _values(self, table: str, cols: Sequence[str]) -> str:
        """``table (c1, c2) VALUES (?, ?)`` after validating every identifier."""
        check_ident(table, max_len=self._max_ident)
        names = check_columns(cols, max_len=self._max_ident)
        return f"{table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"

    def add_column(self, table: str, column: ColumnSpec, prefix: str) -> str:
        full = check_ident(prefix + table, max_len=self._max_ident)
        check_ident(column.name, max_len=self._max_ident)
        return f"ALTER TABLE {full} {self._add_column} {self._column(column)}"

    @abstractmethod
    def _on_conflict(
        self, table: str, key_cols: Sequence[str], val_cols: Sequence[str], add_cols: Sequence[str]
    ) -> str:
        """The upsert's conflict clause: overwrite ``val_cols``, accumulate ``add_cols``."""

    def upsert(
        self,
        table: str,
        key_cols: Sequence[str],
        val_cols: Sequence[str],
        *,
        add_cols: Sequence[str] = (),
        insert_only_cols: Sequence[str] = (),
    ) -> str:
        values = self._values(table, [*key_cols, *val_cols, *add_cols, *insert_only_cols])
        return f"INSERT INTO {values} {self._on_conflict(table, key_cols, val_cols, add_cols)}"

    @property
    def for_update(self) -> str:
        return " FOR UPDATE"

    def table_exists_sql(self) -> str:
        return f"SELECT 1 AS present FROM information_schema.tables WHERE {self._table_match}"

    def columns_sql(self) -> str:
        return (
            "SELECT column_name AS name FROM information_schema.columns "
            f"WHERE {self._table_match} ORDER BY ordinal_position"
        )


class ServerDatabase(ABC):
    """A :class:`~power_loop.store._port.Database` on a driver's connection pool.

    Each call borrows one pooled connection and wraps it in the backend's Transaction adapter; the
    subclass supplies the driver calls (begin/commit/rollback, release, lock statements) and the
    classification of driver errors.
    """

    kind: ClassVar[str]  # "PostgreSQL" / "MySQL": names the server in messages

    def __init__(
        self, driver: ModuleType, parts: DSNParts, connect_kwargs: dict[str, Any], *, lock_timeout: float
    ) -> None:
        self._driver = driver
        self._pool: Any = None
        self._parts = parts
        self._connect_kwargs = connect_kwargs
        self._lock_timeout = lock_timeout
        self._closed = False

    @property
    def server(self) -> str:
        """``host:port/db`` of the server (no credentials)."""
        return self._parts.where

    # -- hooks for the driver ------------------------------------------------------------------

    @abstractmethod
    def _classify(
        self, exc: BaseException, conn: Any, *, connecting: bool, summary: str
    ) -> BaseException | None:
        """The power_loop error for driver error ``exc`` (``summary``: its password-free text), or
        None when ``exc`` is not the driver's."""

    @abstractmethod
    def _transaction(self, conn: Any) -> Transaction:
        """The Transaction adapter over the borrowed connection ``conn``."""

    @abstractmethod
    async def _release(self, conn: Any) -> None:
        """Hand ``conn`` back to the pool."""

    @abstractmethod
    async def _begin(self, conn: Any) -> Any:
        """Start a transaction on ``conn``; the returned handle goes to commit/rollback."""

    @abstractmethod
    async def _commit(self, conn: Any, handle: Any) -> None:
        """Commit the transaction ``_begin`` started."""

    @abstractmethod
    async def _rollback(self, conn: Any, handle: Any) -> None:
        """Roll back the transaction ``_begin`` started."""

    @abstractmethod
    def _is_closed(self, conn: Any) -> bool:
        """True when the connection is gone (nothing left to roll back)."""

    @abstractmethod
    def _discard(self, conn: Any) -> None:
        """Close ``conn`` at once, whatever its state, so the pool never hands it out again."""

    @abstractmethod
    async def _lock(self, conn: Any, name: str) -> None:
        """Take the server's named lock on the dedicated ``conn`` within ``lock_timeout`` seconds,
        else raise :class:`~power_loop.errors.StoreUnavailable` saying how to find the holder."""

    @abstractmethod
    async def _unlock(self, conn: Any, name: str) -> None:
        """Release the lock ``_lock`` took."""

    @abstractmethod
    async def _close_connection(self, conn: Any) -> None:
        """Close the dedicated (unpooled) connection ``conn`` politely."""

    @abstractmethod
    async def _close_pool(self) -> None:
        """Close the pool, waiting for borrowed connections to come back."""

    # -- shared logic --------------------------------------------------------------------------

    def _error(self, exc: BaseException, conn: Any = None, *, connecting: bool = False) -> BaseException:
        """The power_loop error for driver error ``exc``; non-driver exceptions are returned as is.

        Specific classes first; any other server/driver error (e.g. bad SQL) becomes a plain
        :class:`~power_loop.errors.StoreError` chained to a password-free copy of the driver's exception.
        """
        parts = self._parts
        summary = describe_error(exc, parts.password)
        mapped = self._classify(exc, conn, connecting=connecting, summary=summary)
        if mapped is None:
            return exc
        return sanitized_cause(mapped, exc, parts.password)

    async def _open_pool(self, create_pool: Callable[..., Awaitable[Any]], **kwargs: Any) -> None:
        """Create the pool with the driver's ``create_pool(**kwargs)``; failures name the server."""
        try:
            self._pool = await create_pool(**kwargs)
        except Exception as exc:
            raise self._error(exc, connecting=True)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"the {self.kind} store at {self._parts.where} is closed")

    async def _acquire(self) -> Any:
        self._check_open()
        try:
            return await self._pool.acquire()
        except Exception as exc:
            raise self._error(exc, connecting=True)

    async def transact(self, work: UnitOfWork[T]) -> T:
        conn = await self._acquire()
        try:
            try:
                handle = await self._begin(conn)
            except Exception as exc:
                raise self._error(exc, conn)
            try:
                result = await work(self._transaction(conn))
            except BaseException:
                if not self._is_closed(conn):
                    try:
                        await self._rollback(conn, handle)
                    except Exception:
                        self._discard(conn)  # state unknown: never hand it back to the pool
                raise
            try:
                await self._commit(conn, handle)
            except Exception as exc:
                raise self._error(exc, conn)
            return result
        finally:
            await self._release(conn)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        conn = await self._acquire()
        try:
            return await self._transaction(conn).fetchone(sql, params)
        finally:
            await self._release(conn)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        conn = await self._acquire()
        try:
            return await self._transaction(conn).fetchall(sql, params)
        finally:
            await self._release(conn)

    async def execute(self, sql: str, params: Params = ()) -> int:
        """One statement in autocommit mode; returns the affected row count."""
        conn = await self._acquire()
        try:
            return await self._transaction(conn).execute(sql, params)
        finally:
            await self._release(conn)

    @asynccontextmanager
    async def advisory_lock(self, name: str) -> AsyncIterator[None]:
        """Hold the server's named lock (``pg_advisory_lock`` / ``GET_LOCK``) for the block.

        The lock lives on a dedicated connection outside the pool, so a pool of size 1 cannot deadlock
        against statements run inside the block. Waits at most ``lock_timeout`` seconds (30 by
        default), then raises :class:`~power_loop.errors.StoreUnavailable`.
        """
        self._check_open()
        try:
            conn = await self._driver.connect(**self._connect_kwargs)
        except Exception as exc:
            raise self._error(exc, connecting=True)
        locked = False
        try:
            await self._lock(conn, name)
            locked = True
            yield
        finally:
            # Unlock explicitly so the next waiter is granted at once; closing the session would
            # release the lock anyway, which is the fallback when the connection is broken.
            try:
                if locked:
                    await self._unlock(conn, name)
                await self._close_connection(conn)
            except Exception:
                self._discard(conn)

    async def close(self) -> None:
        """Close the pool (waits for borrowed connections to come back). Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._close_pool()
