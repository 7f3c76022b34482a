"""MySQL / MariaDB backend of the storage port, on an ``aiomysql`` connection pool.

``aiomysql`` is an optional extra (``pip install 'power-loop[mysql]'``) imported when a MySQL store
is opened. The SQL produced here runs unchanged on MySQL >= 8.0 and MariaDB >= 10.6: upserts use
``ON DUPLICATE KEY UPDATE c = VALUES(c)`` (the MySQL-only ``AS new_row`` alias is avoided).

Every pooled connection runs with autocommit on, ``READ COMMITTED`` isolation, ``CLIENT_FOUND_ROWS``
(so an UPDATE reports *matched* rows, as PostgreSQL and SQLite do) and an ``sql_mode`` that makes
MySQL reject the same things PostgreSQL rejects (strict mode, ``ONLY_FULL_GROUP_BY``) and read
standard SQL the same way (``ANSI_QUOTES``, ``PIPES_AS_CONCAT``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from types import ModuleType
from typing import Any, TypeVar

from ..errors import (
    InvalidDSN,
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
from ._sqltext import check_columns, check_ident, check_table, render_default, replace_placeholders

__all__ = ["MySQLDatabase", "MySQLDialect", "connect_mysql"]

T = TypeVar("T")

_SERVER = "MySQL"
_MAX_IDENT = 64
_TYPES = {
    "key": "VARCHAR(255)",
    "text": "LONGTEXT",
    "enum": "VARCHAR(32)",
    "int": "BIGINT",
    "small": "TINYINT",
}
_TABLE_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
_SQL_MODE = (
    "STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,"
    "ONLY_FULL_GROUP_BY,ANSI_QUOTES,PIPES_AS_CONCAT"
)
_CACHE_LIMIT = 4096
_QUERY_OPTIONS = {"connect_timeout", "unix_socket"}

# Server / client error numbers (see the MySQL and MariaDB error references).
_AUTH = {1044, 1045, 1130, 1698, 1251}
_DB_MISSING = {1049}
_UNAVAILABLE = {1040, 1053, 2002, 2003, 2005}
_LOST = {1053, 1927, 2006, 2013, 2055, 4031}


class MySQLDialect:
    """SQL text for MySQL/MariaDB: ``%s`` placeholders, ``ON DUPLICATE KEY UPDATE``, inline ``KEY``s."""

    __slots__ = ("_cache",)
    name: str = "mysql"

    def __init__(self) -> None:
        self._cache: dict[str, tuple[str, bool]] = {}

    def prepare(self, sql: str) -> tuple[str, bool]:
        """``(driver SQL, is_upsert)``; upserts get their affected-row count normalised."""
        try:
            return self._cache[sql]
        except KeyError:
            pass
        if len(self._cache) >= _CACHE_LIMIT:  # only reachable with ad-hoc SQL; stay bounded
            self._cache.clear()
        text = replace_placeholders(sql, lambda _: "%s", double_percent=True)
        out = self._cache[sql] = (text, "ON DUPLICATE KEY UPDATE" in sql.upper())
        return out

    def translate(self, sql: str) -> str:
        return self.prepare(sql)[0]

    def _column(self, column: ColumnSpec) -> str:
        null = "" if column.nullable else " NOT NULL"
        default = render_default(column, backslash_escapes=True)
        if default and column.type == "text":
            # LONGTEXT only takes an expression default: DEFAULT ('x') (MySQL 8.0.13+, MariaDB 10.2+).
            default = f" DEFAULT ({default.removeprefix(' DEFAULT ')})"
        return f"{column.name} {_TYPES[column.type]}{null}{default}"

    def create_table(self, table: TableSpec, prefix: str) -> list[str]:
        full = check_table(table, prefix, max_len=_MAX_IDENT)
        types = {c.name: c.type for c in table.columns}
        keyed = [*table.primary_key, *(c for i in table.indexes for c in i.columns)]
        bad = sorted({c for c in keyed if types[c] == "text"})
        if bad:
            raise ValueError(
                f"table {table.name!r}: 'text' column(s) {bad} cannot be part of a key or index on "
                "MySQL; declare them as 'key' or 'enum'"
            )
        lines = [self._column(c) for c in table.columns]
        lines.append(f"PRIMARY KEY ({', '.join(table.primary_key)})")
        # Inline KEYs: MySQL 8 has no CREATE INDEX IF NOT EXISTS, so indexes live in the CREATE TABLE.
        for index in table.indexes:
            unique = "UNIQUE " if index.unique else ""
            lines.append(f"{unique}KEY {prefix}{index.name} ({', '.join(index.columns)})")
        body = ",\n  ".join(lines)
        return [f"CREATE TABLE IF NOT EXISTS {full} (\n  {body}\n) {_TABLE_OPTIONS}"]

    def add_column(self, table: str, column: ColumnSpec, prefix: str) -> str:
        """``ALTER TABLE … ADD COLUMN`` — MySQL 8 has no ``IF NOT EXISTS`` here: probe first."""
        full = check_ident(prefix + table, max_len=_MAX_IDENT)
        check_ident(column.name, max_len=_MAX_IDENT)
        return f"ALTER TABLE {full} ADD COLUMN {self._column(column)}"

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
        sets = [f"{c} = VALUES({c})" for c in val_cols]
        sets += [f"{c} = {c} + VALUES({c})" for c in add_cols]
        if not sets:  # nothing to update: a no-op assignment keeps the existing row
            sets = [f"{key_cols[0]} = {key_cols[0]}"]
        return (
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON DUPLICATE KEY UPDATE {', '.join(sets)}"
        )

    def insert_ignore(self, table: str, cols: Sequence[str]) -> str:
        check_ident(table, max_len=_MAX_IDENT)
        names = check_columns(cols, max_len=_MAX_IDENT)
        return f"INSERT IGNORE INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"

    @property
    def for_update(self) -> str:
        return " FOR UPDATE"

    # lower() on both sides: table names are stored lower-cased where lower_case_table_names != 0.
    def table_exists_sql(self) -> str:
        return (
            "SELECT 1 AS present FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND lower(table_name) = lower(?)"
        )

    def columns_sql(self) -> str:
        return (
            "SELECT column_name AS name FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND lower(table_name) = lower(?) ORDER BY ordinal_position"
        )


def _numeric(text: str) -> int | float:
    """Decode DECIMAL (only produced by aggregates such as SUM here) like SQLite would."""
    return int(text) if text.lstrip("-").isdigit() else float(Decimal(text))


def _quiet_cursors(aiomysql: ModuleType) -> tuple[type[Any], type[Any]]:
    """Cursor classes that skip aiomysql's SHOW WARNINGS round trip and ``warnings.warn``.

    Expected notes (``CREATE TABLE IF NOT EXISTS`` on an existing table, a duplicate skipped by
    ``INSERT IGNORE``) would otherwise cost a round trip and print a Python warning each time.
    """

    class QuietCursor(aiomysql.Cursor):  # type: ignore[name-defined,misc]
        async def _show_warnings(self, conn: Any) -> None:
            return None

    class QuietDictCursor(aiomysql.DictCursor):  # type: ignore[name-defined,misc]
        async def _show_warnings(self, conn: Any) -> None:
            return None

    return QuietCursor, QuietDictCursor


def lock_name(database: str | None, name: str) -> str:
    """GET_LOCK names are server-wide: scope them to the database; hash when over 64 characters."""
    scoped = f"{database or ''}.{name}"
    if len(scoped) <= 64:
        return scoped
    return "pl_" + hashlib.blake2b(scoped.encode("utf-8"), digest_size=16).hexdigest()


class _MyTransaction:
    """The :class:`~power_loop.store._port.Transaction` adapter over one pooled connection."""

    __slots__ = ("_conn", "_cursor_cls", "_db", "_prepare")

    def __init__(self, conn: Any, db: MySQLDatabase) -> None:
        self._conn = conn
        self._db = db
        self._prepare = db.dialect.prepare
        self._cursor_cls = db._dict_cursor

    async def execute(self, sql: str, params: Params = ()) -> int:
        text, is_upsert = self._prepare(sql)
        try:
            async with self._conn.cursor() as cur:
                await cur.execute(text, tuple(params))
                count: int = cur.rowcount
        except Exception as exc:
            raise self._db._error(exc, self._conn)
        # ON DUPLICATE KEY UPDATE reports 2 for an updated row; PostgreSQL and SQLite report 1.
        return min(count, 1) if is_upsert else count

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        if not rows:
            return
        text = self._prepare(sql)[0]
        try:
            async with self._conn.cursor() as cur:
                await cur.executemany(text, [tuple(r) for r in rows])
        except Exception as exc:
            raise self._db._error(exc, self._conn)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        text = self._prepare(sql)[0]
        try:
            async with self._conn.cursor(self._cursor_cls) as cur:
                await cur.execute(text, tuple(params))
                row: Row | None = await cur.fetchone()
        except Exception as exc:
            raise self._db._error(exc, self._conn)
        return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        text = self._prepare(sql)[0]
        try:
            async with self._conn.cursor(self._cursor_cls) as cur:
                await cur.execute(text, tuple(params))
                rows = await cur.fetchall()
        except Exception as exc:
            raise self._db._error(exc, self._conn)
        return list(rows)


class MySQLDatabase:
    """A :class:`~power_loop.store._port.Database` on an aiomysql pool. Open with :func:`connect_mysql`."""

    def __init__(
        self,
        aiomysql: ModuleType,
        parts: DSNParts,
        connect_kwargs: dict[str, Any],
        dict_cursor: type[Any],
        *,
        lock_timeout: float = 30.0,
    ) -> None:
        self.dialect = MySQLDialect()
        self._aiomysql = aiomysql
        self._dict_cursor = dict_cursor
        self._pool: Any = None
        self._parts = parts
        self._connect_kwargs = connect_kwargs
        self._closed = False
        self._lock_timeout = lock_timeout

    @property
    def server(self) -> str:
        """``host:port/db`` of the server (no credentials)."""
        return self._parts.where

    def _error(self, exc: BaseException, conn: Any = None, *, connecting: bool = False) -> BaseException:
        """The power_loop error for driver error ``exc``; non-driver exceptions are returned as is.

        Specific classes first; any other server/driver error (e.g. bad SQL) becomes a plain
        :class:`StoreError` chained to the driver's exception.
        """
        err = self._aiomysql  # re-exports pymysql's exception classes
        parts = self._parts
        summary = describe_error(exc, parts.password)
        is_driver = isinstance(exc, err.Error)
        code = exc.args[0] if is_driver and exc.args and isinstance(exc.args[0], int) else None
        mapped: BaseException | None = None
        if isinstance(exc, err.IntegrityError):
            mapped = StoreIntegrityError(summary)
        elif code in _AUTH:
            mapped = auth_failed(_SERVER, parts, summary)
        elif code in _DB_MISSING:
            mapped = database_missing(_SERVER, parts, summary)
        elif connecting and (
            code in _UNAVAILABLE
            or code in _LOST
            or isinstance(exc, (OSError, asyncio.TimeoutError, TimeoutError))
        ):
            mapped = unavailable(_SERVER, parts, summary)
        elif code in _LOST or isinstance(exc, OSError) or (is_driver and conn is not None and conn.closed):
            mapped = connection_lost(_SERVER, parts, summary)
        elif is_driver:
            mapped = StoreError(f"MySQL error at {parts.where}: {summary}")
        if mapped is None:
            return exc
        return sanitized_cause(mapped, exc, parts.password)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"the MySQL store at {self._parts.where} is closed")

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
                await conn.begin()
            except Exception as exc:
                raise self._error(exc, conn)
            try:
                result = await work(_MyTransaction(conn, self))
            except BaseException:
                if not conn.closed:
                    try:
                        await conn.rollback()
                    except Exception:
                        conn.close()  # state unknown: the pool drops closed connections
                raise
            try:
                await conn.commit()
            except Exception as exc:
                raise self._error(exc, conn)
            return result
        finally:
            self._pool.release(conn)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        conn = await self._acquire()
        try:
            return await _MyTransaction(conn, self).fetchone(sql, params)
        finally:
            self._pool.release(conn)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        conn = await self._acquire()
        try:
            return await _MyTransaction(conn, self).fetchall(sql, params)
        finally:
            self._pool.release(conn)

    async def execute(self, sql: str, params: Params = ()) -> int:
        conn = await self._acquire()
        try:
            return await _MyTransaction(conn, self).execute(sql, params)
        finally:
            self._pool.release(conn)

    @asynccontextmanager
    async def advisory_lock(self, name: str) -> AsyncIterator[None]:
        """``GET_LOCK`` on a dedicated connection (outside the pool, so a pool of size 1 cannot
        deadlock against statements run inside the block). Waits at most ``lock_timeout`` seconds (30 by
        default), then raises
        :class:`~power_loop.errors.StoreUnavailable`."""
        self._check_open()
        key = lock_name(self._parts.database, name)
        try:
            conn = await self._aiomysql.connect(**self._connect_kwargs)
        except Exception as exc:
            raise self._error(exc, connecting=True)
        locked = False
        try:
            try:
                async with conn.cursor() as cur:
                    await cur.execute("SELECT GET_LOCK(%s, %s)", (key, self._lock_timeout))
                    (got,) = await cur.fetchone()
            except Exception as exc:
                raise self._error(exc, conn)
            if got != 1:
                raise StoreUnavailable(
                    f"could not take the lock {name!r} on the MySQL server at {self.server} within "
                    f"{self._lock_timeout:g} s: another session holds it (e.g. a schema provisioning that "
                    f"hangs); retry, or find the holder with SELECT IS_USED_LOCK('{key}')"
                )
            locked = True
            yield
        finally:
            # Release explicitly so the next waiter is granted at once; a closed session releases
            # its locks anyway, which is the fallback when the connection is broken.
            try:
                if locked:
                    async with conn.cursor() as cur:
                        await cur.execute("SELECT RELEASE_LOCK(%s)", (key,))
                await conn.ensure_closed()
            except Exception:
                conn.close()

    async def close(self) -> None:
        """Close the pool (waits for borrowed connections to come back). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._pool.close()
        await self._pool.wait_closed()


async def connect_mysql(
    dsn: str,
    *,
    minsize: int = 1,
    maxsize: int = 10,
    connect_timeout: float = 10.0,
    lock_timeout: float = 30.0,
) -> MySQLDatabase:
    """Open a :class:`MySQLDatabase` on ``mysql://user:password@host:port/db`` (MySQL 8 / MariaDB).

    ``mysql+aiomysql://`` / ``mariadb://`` are accepted; query options: ``connect_timeout``,
    ``unix_socket``. Connects ``minsize`` connections now, so a bad DSN, server or password fails
    here with a specific :class:`~power_loop.errors.StoreError`.
    """
    try:
        import aiomysql
        from pymysql.constants import CLIENT, FIELD_TYPE
        from pymysql.converters import decoders
    except ImportError:
        raise MissingDependencyError("aiomysql", "mysql", "the MySQL store") from None
    parts = parse_dsn(dsn, schemes={"mysql": "mysql", "mariadb": "mysql"}, default_port=3306, kind="MySQL")
    options = dict(parts.query)
    unknown = sorted(set(options) - _QUERY_OPTIONS)
    if unknown:
        raise InvalidDSN(
            f"invalid MySQL DSN {parts.redacted!r}: unsupported option(s) {unknown}; "
            f"supported: {sorted(_QUERY_OPTIONS)}"
        )
    if not parts.database:
        raise InvalidDSN(
            f"invalid MySQL DSN {parts.redacted!r}: name the database, e.g. mysql://user@host:3306/mydb"
        )
    cursor, dict_cursor = _quiet_cursors(aiomysql)
    conv = dict(decoders)
    conv[FIELD_TYPE.NEWDECIMAL] = conv[FIELD_TYPE.DECIMAL] = _numeric
    try:
        timeout = float(options.get("connect_timeout", connect_timeout))
    except ValueError:
        raise InvalidDSN(f"invalid MySQL DSN {parts.redacted!r}: connect_timeout must be a number") from None
    kwargs: dict[str, Any] = {
        "host": parts.host or "localhost",
        "port": parts.port,
        "user": parts.user or "root",
        "password": parts.password or "",
        "db": parts.database,
        "unix_socket": options.get("unix_socket"),
        "charset": "utf8mb4",
        "autocommit": True,
        "client_flag": CLIENT.FOUND_ROWS,
        "sql_mode": f"'{_SQL_MODE}'",  # aiomysql interpolates it verbatim into SET sql_mode=…
        "init_command": "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        "conv": conv,
        "cursorclass": cursor,
        "connect_timeout": timeout,
    }
    db = MySQLDatabase(aiomysql, parts, kwargs, dict_cursor, lock_timeout=lock_timeout)
    try:
        db._pool = await aiomysql.create_pool(minsize=minsize, maxsize=maxsize, **kwargs)
    except Exception as exc:
        raise db._error(exc, connecting=True)
    return db
