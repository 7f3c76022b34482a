"""PostgreSQL backend of the storage port, on an ``asyncpg`` connection pool.

``asyncpg`` is an optional extra (``pip install 'power-loop[postgres]'``) imported when a PostgreSQL
store is opened. Driver errors are mapped onto :mod:`power_loop.errors` classes whose messages name
the server (``host:port/db``) but never the password.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import urlencode

from ..errors import (
    MissingDependencyError,
    StoreClosedError,
    StoreError,
    StoreIntegrityError,
    StoreUnavailable,
)
from ._dsn import (
    DSNParts,
    auth_failed,
    connection_lost,
    database_missing,
    describe_error,
    parse_dsn,
    sanitized_cause,
    unavailable,
)
from ._port import ColumnSpec, Params, Row, TableSpec, UnitOfWork
from ._sqltext import (
    check_columns,
    check_ident,
    check_table,
    render_default,
    replace_placeholders,
    status_rowcount,
)

__all__ = ["PostgresDatabase", "PostgresDialect", "connect_postgres"]

T = TypeVar("T")

_SERVER = "PostgreSQL"
_MAX_IDENT = 63  # NAMEDATALEN - 1; longer names would be silently truncated by the server
_TYPES = {"key": "TEXT", "text": "TEXT", "enum": "TEXT", "int": "BIGINT", "small": "SMALLINT"}
_SCHEMES = {"postgresql": "postgresql", "postgres": "postgresql"}
_CACHE_LIMIT = 4096


class PostgresDialect:
    """SQL text for PostgreSQL: ``$n`` placeholders, ``ON CONFLICT`` upserts, ``information_schema``."""

    __slots__ = ("_cache",)
    name: str = "postgres"

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    def translate(self, sql: str) -> str:
        try:
            return self._cache[sql]
        except KeyError:
            pass
        if len(self._cache) >= _CACHE_LIMIT:  # only reachable with ad-hoc SQL; stay bounded
            self._cache.clear()
        out = self._cache[sql] = replace_placeholders(sql, lambda n: f"${n}", double_percent=False)
        return out

    def _column(self, column: ColumnSpec) -> str:
        null = "" if column.nullable else " NOT NULL"
        default = render_default(column, backslash_escapes=False)
        return f"{column.name} {_TYPES[column.type]}{null}{default}"

    def create_table(self, table: TableSpec, prefix: str) -> list[str]:
        full = check_table(table, prefix, max_len=_MAX_IDENT)
        body = ",\n  ".join(self._column(c) for c in table.columns)
        stmts = [
            f"CREATE TABLE IF NOT EXISTS {full} (\n  {body},\n"
            f"  PRIMARY KEY ({', '.join(table.primary_key)})\n)"
        ]
        for index in table.indexes:
            unique = "UNIQUE " if index.unique else ""
            stmts.append(
                f"CREATE {unique}INDEX IF NOT EXISTS {prefix}{index.name} "
                f"ON {full} ({', '.join(index.columns)})"
            )
        return stmts

    def add_column(self, table: str, column: ColumnSpec, prefix: str) -> str:
        full = check_ident(prefix + table, max_len=_MAX_IDENT)
        check_ident(column.name, max_len=_MAX_IDENT)
        return f"ALTER TABLE {full} ADD COLUMN IF NOT EXISTS {self._column(column)}"

    def upsert(
        self,
        table: str,
        key_cols: Sequence[str],
        val_cols: Sequence[str],
        *,
        add_cols: Sequence[str] = (),
        insert_only_cols: Sequence[str] = (),
    ) -> str:
        check_ident(table, max_len=_MAX_IDENT)
        cols = check_columns([*key_cols, *val_cols, *add_cols, *insert_only_cols], max_len=_MAX_IDENT)
        sets = [f"{c} = EXCLUDED.{c}" for c in val_cols]
        sets += [f"{c} = {table}.{c} + EXCLUDED.{c}" for c in add_cols]
        action = f"DO UPDATE SET {', '.join(sets)}" if sets else "DO NOTHING"
        return (
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON CONFLICT ({', '.join(key_cols)}) {action}"
        )

    def insert_ignore(self, table: str, cols: Sequence[str]) -> str:
        check_ident(table, max_len=_MAX_IDENT)
        names = check_columns(cols, max_len=_MAX_IDENT)
        return (
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
            "ON CONFLICT DO NOTHING"
        )

    @property
    def for_update(self) -> str:
        return " FOR UPDATE"

    # Unquoted identifiers fold to lower case in PostgreSQL, hence lower(?).
    def table_exists_sql(self) -> str:
        return (
            "SELECT 1 AS present FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name = lower(?)"
        )

    def columns_sql(self) -> str:
        return (
            "SELECT column_name AS name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = lower(?) ORDER BY ordinal_position"
        )


def _numeric(text: str) -> int | float:
    """Decode ``numeric`` (only produced by aggregates such as SUM here) like SQLite would."""
    return int(text) if text.lstrip("-").isdigit() else float(Decimal(text))


async def _init_connection(conn: Any) -> None:
    await conn.set_type_codec("numeric", encoder=str, decoder=_numeric, schema="pg_catalog", format="text")


async def _keep_session(conn: Any) -> None:
    """Pool ``reset`` hook: skip asyncpg's default reset query (one round trip per release).

    Pooled connections never change session state (no SET, LISTEN, cursors or session advisory
    locks: :meth:`PostgresDatabase.advisory_lock` uses its own connection); asyncpg still rolls back
    any open transaction before calling this.
    """


def lock_key(name: str) -> int:
    """The signed 64-bit advisory-lock key of ``name`` (stable across processes and versions)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _is_closed(conn: Any) -> bool:
    """True when the pooled connection is gone (asyncpg detaches a proxy whose socket closed)."""
    try:
        return bool(conn.is_closed())
    except Exception:
        return True


class _PgTransaction:
    """The :class:`~power_loop.store._port.Transaction` adapter over one pooled connection."""

    __slots__ = ("_conn", "_db", "_tr")

    def __init__(self, conn: Any, db: PostgresDatabase) -> None:
        self._conn = conn
        self._db = db
        self._tr = db.dialect.translate

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            status: str = await self._conn.execute(self._tr(sql), *params)
        except Exception as exc:
            raise self._db._error(exc, self._conn)
        return status_rowcount(status)

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        if not rows:
            return
        try:
            await self._conn.executemany(self._tr(sql), rows)
        except Exception as exc:
            raise self._db._error(exc, self._conn)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        try:
            record = await self._conn.fetchrow(self._tr(sql), *params)
        except Exception as exc:
            raise self._db._error(exc, self._conn)
        return None if record is None else dict(record)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            records = await self._conn.fetch(self._tr(sql), *params)
        except Exception as exc:
            raise self._db._error(exc, self._conn)
        return [dict(r) for r in records]


class PostgresDatabase:
    """A :class:`~power_loop.store._port.Database` on an asyncpg pool. Open with :func:`connect_postgres`."""

    def __init__(
        self,
        asyncpg: ModuleType,
        parts: DSNParts,
        connect_kwargs: dict[str, Any],
        *,
        lock_timeout: float = 30.0,
    ) -> None:
        self.dialect = PostgresDialect()
        self._asyncpg = asyncpg
        self._pool: Any = None
        self._parts = parts
        self._lock_timeout = lock_timeout
        self._connect_kwargs = connect_kwargs
        self._closed = False

    @property
    def server(self) -> str:
        """``host:port/db`` of the server (no credentials)."""
        return self._parts.where

    def _error(self, exc: BaseException, conn: Any = None, *, connecting: bool = False) -> BaseException:
        """The power_loop error for driver error ``exc``; non-driver exceptions are returned as is.

        Specific classes first; any other server/driver error (e.g. bad SQL) becomes a plain
        :class:`StoreError` chained to the driver's exception.
        """
        pg = self._asyncpg
        parts = self._parts
        summary = describe_error(exc, parts.password)
        mapped: BaseException | None = None
        if isinstance(exc, (pg.InvalidPasswordError, pg.InvalidAuthorizationSpecificationError)):
            mapped = auth_failed(_SERVER, parts, summary)
        elif isinstance(exc, pg.InvalidCatalogNameError):
            mapped = database_missing(_SERVER, parts, summary)
        elif isinstance(exc, pg.IntegrityConstraintViolationError):
            mapped = StoreIntegrityError(summary)
        elif isinstance(exc, (pg.CannotConnectNowError, pg.TooManyConnectionsError)):
            mapped = unavailable(_SERVER, parts, summary)
        elif connecting and isinstance(
            exc, (OSError, asyncio.TimeoutError, TimeoutError, pg.PostgresConnectionError)
        ):
            mapped = unavailable(_SERVER, parts, summary)
        elif isinstance(
            exc, (OSError, pg.PostgresConnectionError, pg.AdminShutdownError, pg.CrashShutdownError)
        ) or (isinstance(exc, pg.InterfaceError) and conn is not None and _is_closed(conn)):
            mapped = connection_lost(_SERVER, parts, summary)
        elif isinstance(exc, (pg.PostgresError, pg.InterfaceError)):
            mapped = StoreError(f"PostgreSQL error at {parts.where}: {summary}")
        if mapped is None:
            return exc
        return sanitized_cause(mapped, exc, parts.password)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"the PostgreSQL store at {self._parts.where} is closed")

    async def _acquire(self) -> Any:
        self._check_open()
        try:
            return await self._pool.acquire()
        except Exception as exc:
            raise self._error(exc, connecting=True)

    async def transact(self, work: UnitOfWork[T]) -> T:
        conn = await self._acquire()
        try:
            tx = conn.transaction()
            try:
                await tx.start()
            except Exception as exc:
                raise self._error(exc, conn)
            try:
                result = await work(_PgTransaction(conn, self))
            except BaseException:
                if not _is_closed(conn):
                    try:
                        await tx.rollback()
                    except Exception:
                        conn.terminate()  # state unknown: never hand it back to the pool
                raise
            try:
                await tx.commit()
            except Exception as exc:
                raise self._error(exc, conn)
            return result
        finally:
            await self._pool.release(conn)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        conn = await self._acquire()
        try:
            return await _PgTransaction(conn, self).fetchone(sql, params)
        finally:
            await self._pool.release(conn)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        conn = await self._acquire()
        try:
            return await _PgTransaction(conn, self).fetchall(sql, params)
        finally:
            await self._pool.release(conn)

    async def execute(self, sql: str, params: Params = ()) -> int:
        """One statement in autocommit mode; returns the affected row count."""
        conn = await self._acquire()
        try:
            return await _PgTransaction(conn, self).execute(sql, params)
        finally:
            await self._pool.release(conn)

    @asynccontextmanager
    async def advisory_lock(self, name: str) -> AsyncIterator[None]:
        """``pg_advisory_lock`` on a dedicated connection (outside the pool, so a pool of size 1 cannot
        deadlock against statements run inside the block). Waits at most ``lock_timeout`` seconds (30 by
        default), then raises
        :class:`~power_loop.errors.StoreUnavailable`."""
        self._check_open()
        key = lock_key(name)
        try:
            conn = await self._asyncpg.connect(**self._connect_kwargs)
        except Exception as exc:
            raise self._error(exc, connecting=True)
        locked = False
        try:
            try:
                await conn.execute(f"SET lock_timeout = {max(1, int(self._lock_timeout * 1000))}")
                await conn.execute("SELECT pg_advisory_lock($1)", key)
            except self._asyncpg.LockNotAvailableError:
                raise StoreUnavailable(
                    f"could not take the lock {name!r} on the PostgreSQL server at {self.server} "
                    f"within {self._lock_timeout:g} s: another process holds it (e.g. a schema provisioning "
                    "that hangs); retry, or find the holder in pg_locks (locktype 'advisory')"
                ) from None
            except Exception as exc:
                raise self._error(exc, conn)
            locked = True
            yield
        finally:
            # Unlock explicitly so the next waiter is granted at once; closing the session would
            # release the lock anyway, which is the fallback when the connection is broken.
            try:
                if locked:
                    await conn.execute("SELECT pg_advisory_unlock($1)", key)
                await conn.close(timeout=5)
            except Exception:
                conn.terminate()

    async def close(self) -> None:
        """Close the pool (waits for borrowed connections to come back). Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._pool.close()


async def connect_postgres(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout: float = 10.0,
    lock_timeout: float = 30.0,
) -> PostgresDatabase:
    """Open a :class:`PostgresDatabase` on ``postgresql://user:password@host:port/db``.

    ``postgres://`` and SQLAlchemy-style ``postgresql+asyncpg://`` are accepted; other query
    parameters (``sslmode``, ``application_name``, ...) are passed to asyncpg. Connects ``min_size``
    connections now, so a bad DSN, server or password fails here with a specific
    :class:`~power_loop.errors.StoreError`.
    """
    try:
        import asyncpg
    except ImportError:
        raise MissingDependencyError("asyncpg", "postgres", "the PostgreSQL store") from None
    parts = parse_dsn(dsn, schemes=_SCHEMES, default_port=5432, kind="PostgreSQL")
    kwargs: dict[str, Any] = {
        # Query parameters go through a password-free DSN; the credentials as keywords.
        "dsn": "postgresql://" + (f"?{urlencode(parts.query)}" if parts.query else ""),
        "port": parts.port,
        "timeout": connect_timeout,
    }
    for key, value in (
        ("host", parts.host),
        ("user", parts.user),
        ("password", parts.password),
        ("database", parts.database),
    ):
        if value is not None:
            kwargs[key] = value
    db = PostgresDatabase(asyncpg, parts, kwargs, lock_timeout=lock_timeout)
    try:
        db._pool = await asyncpg.create_pool(
            min_size=min_size, max_size=max_size, init=_init_connection, reset=_keep_session, **kwargs
        )
    except Exception as exc:
        raise db._error(exc, connecting=True)
    return db
