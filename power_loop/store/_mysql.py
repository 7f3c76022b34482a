"""MySQL / MariaDB backend of the storage port, on an ``aiomysql`` connection pool.

``aiomysql`` is an optional extra (``pip install aiomysql``; the ``mysql`` extra of a checkout) imported when a MySQL store
is opened. The SQL produced here runs unchanged on MySQL >= 8.0 and MariaDB >= 10.6: upserts use
``ON DUPLICATE KEY UPDATE c = VALUES(c)`` (the MySQL-only ``AS new_row`` alias is avoided).

Every pooled connection runs with autocommit off (see :class:`MySQLDatabase`), ``READ COMMITTED``
isolation, ``CLIENT_FOUND_ROWS`` (so an UPDATE reports *matched* rows, as PostgreSQL and SQLite do)
and an ``sql_mode`` that makes MySQL reject the same things PostgreSQL rejects (strict mode,
``ONLY_FULL_GROUP_BY``) and read standard SQL the same way (``ANSI_QUOTES``, ``PIPES_AS_CONCAT``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..errors import (
    InvalidDSN,
    MissingDependencyError,
    StoreError,
    StoreIntegrityError,
    StoreSchemaError,
    StoreUnavailable,
)
from ._dsn import (
    DSNParts,
    auth_failed,
    connection_lost,
    database_missing,
    parse_dsn,
    unavailable,
)
from ._port import ColumnSpec, Params, Row, TableSpec, Transaction
from ._schema import missing_table_hint
from ._server import ServerDatabase, ServerDialect, numeric
from ._sqltext import check_table, render_default, replace_placeholders

if TYPE_CHECKING:
    from ._dsn import DSNParts
    from ._port import ColumnSpec, Params, Row, TableSpec, Transaction

__all__ = ["MySQLDatabase", "MySQLDialect", "connect_mysql"]

_TABLE_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
_SQL_MODE = (
    "STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,"
    "ONLY_FULL_GROUP_BY,ANSI_QUOTES,PIPES_AS_CONCAT"
)
_QUERY_OPTIONS = {"connect_timeout", "unix_socket"}

# Server / client error numbers (see the MySQL and MariaDB error references).
_AUTH = {1044, 1045, 1130, 1698, 1251}
_DB_MISSING = {1049}
_NO_SUCH_TABLE = 1146
_UNAVAILABLE = {1040, 1053, 2002, 2003, 2005}
_LOST = {1053, 1927, 2006, 2013, 2055, 4031}


class MySQLDialect(ServerDialect[tuple[str, bool]]):
    """SQL text for MySQL/MariaDB: ``%s`` placeholders, ``ON DUPLICATE KEY UPDATE``, inline ``KEY``s."""

    __slots__ = ()
    name: str = "mysql"
    _max_ident = 64
    _types = {
        "key": "VARCHAR(255)",
        "text": "LONGTEXT",
        "enum": "VARCHAR(32)",
        "int": "BIGINT",
        "small": "TINYINT",
        "blob": "LONGBLOB",
    }
    # MySQL 8 has no ADD COLUMN IF NOT EXISTS: migrations probe the columns first.
    _add_column = "ADD COLUMN"
    # lower() on both sides: table names are stored lower-cased where lower_case_table_names != 0.
    _table_match = "table_schema = DATABASE() AND lower(table_name) = lower(?)"

    def _compile(self, sql: str) -> tuple[str, bool]:
        text = replace_placeholders(sql, lambda _: "%s", double_percent=True)
        return text, "ON DUPLICATE KEY UPDATE" in sql.upper()

    def prepare(self, sql: str) -> tuple[str, bool]:
        """``(driver SQL, is_upsert)``; upserts get their affected-row count normalised."""
        return self._cached(sql)

    def translate(self, sql: str) -> str:
        return self.prepare(sql)[0]

    def _default(self, column: ColumnSpec) -> str:
        default = render_default(column, backslash_escapes=True)
        if default and column.type == "text":
            # LONGTEXT only takes an expression default: DEFAULT ('x') (MySQL 8.0.13+, MariaDB 10.2+).
            default = f" DEFAULT ({default.removeprefix(' DEFAULT ')})"
        return default

    def create_table(self, table: TableSpec, prefix: str) -> list[str]:
        full = check_table(table, prefix, max_len=self._max_ident)
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

    def _on_conflict(
        self, table: str, key_cols: Sequence[str], val_cols: Sequence[str], add_cols: Sequence[str]
    ) -> str:
        sets = [f"{c} = VALUES({c})" for c in val_cols]
        sets += [f"{c} = {c} + VALUES({c})" for c in add_cols]
        if not sets:  # nothing to update: a no-op assignment keeps the existing row
            sets = [f"{key_cols[0]} = {key_cols[0]}"]
        return f"ON DUPLICATE KEY UPDATE {', '.join(sets)}"

    def insert_ignore(self, table: str, cols: Sequence[str]) -> str:
        return f"INSERT IGNORE INTO {self._values(table, cols)}"

    # Binary values are bound as hex text: aiomysql's bytes escaping is broken in current releases.
    binary_placeholder = "UNHEX(?)"

    @staticmethod
    def binary_value(data: bytes) -> str:
        return data.hex()


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


class MySQLDatabase(ServerDatabase):
    """A :class:`~power_loop.store._port.Database` on an aiomysql pool. Open with :func:`connect_mysql`.

    :meth:`advisory_lock` takes ``GET_LOCK`` on a name scoped to the database.

    Pooled connections run with autocommit *off*, so the first statement of a :meth:`transact` unit
    opens its transaction implicitly and no ``BEGIN`` round trip is sent (a text send is 2 such
    units). The price is that every use of a pooled connection must end its transaction: a lone
    :meth:`fetchone` / :meth:`fetchall` / :meth:`execute` is run as a one-statement unit, ended by
    ``COMMIT`` (``ROLLBACK`` on error). A connection left idle in the pool with a transaction open
    would hold its metadata locks and block DDL (``DROP`` / ``ALTER TABLE``) from every other session;
    aiomysql cannot be relied on to notice, as its in-transaction flag is not refreshed by result
    sets or errors.
    """

    # Read by round-trip counters (bench.backends): a unit sends no BEGIN, and a lone statement is
    # followed by a COMMIT.
    implicit_begin = True

    kind = "MySQL"

    def __init__(
        self,
        aiomysql: ModuleType,
        parts: DSNParts,
        connect_kwargs: dict[str, Any],
        dict_cursor: type[Any],
        *,
        lock_timeout: float = 30.0,
    ) -> None:
        super().__init__(aiomysql, parts, connect_kwargs, lock_timeout=lock_timeout)
        self.dialect = MySQLDialect()
        self._dict_cursor = dict_cursor

    def _classify(
        self, exc: BaseException, conn: Any, *, connecting: bool, summary: str
    ) -> BaseException | None:
        err = self._driver  # aiomysql re-exports pymysql's exception classes
        parts = self._parts
        is_driver = isinstance(exc, err.Error)
        code = exc.args[0] if is_driver and exc.args and isinstance(exc.args[0], int) else None
        if isinstance(exc, err.IntegrityError):
            return StoreIntegrityError(summary)
        if code == _NO_SUCH_TABLE:
            return StoreSchemaError(f"MySQL at {parts.where}: {missing_table_hint(None)} ({summary})")
        if code in _AUTH:
            return auth_failed(self.kind, parts, summary)
        if code in _DB_MISSING:
            return database_missing(self.kind, parts, summary)
        if connecting and (
            code in _UNAVAILABLE
            or code in _LOST
            or isinstance(exc, (OSError, asyncio.TimeoutError, TimeoutError))
        ):
            return unavailable(self.kind, parts, summary)
        if code in _LOST or isinstance(exc, OSError) or (is_driver and conn is not None and conn.closed):
            return connection_lost(self.kind, parts, summary)
        if is_driver:
            return StoreError(f"MySQL error at {parts.where}: {summary}")
        return None

    def _transaction(self, conn: Any) -> Transaction:
        return _MyTransaction(conn, self)

    async def _release(self, conn: Any) -> None:
        self._pool.release(conn)  # not a coroutine in aiomysql

    async def _begin(self, conn: Any) -> Any:
        return None  # autocommit is off: the unit's first statement opens the transaction

    async def _commit(self, conn: Any, handle: Any) -> None:
        try:
            await conn.commit()
        except BaseException:
            # The transaction may still be open: never hand this connection back to the pool.
            self._discard(conn)
            raise

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return await self.transact(lambda tx: tx.fetchone(sql, params))

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return await self.transact(lambda tx: tx.fetchall(sql, params))

    async def execute(self, sql: str, params: Params = ()) -> int:
        """One statement, committed before returning; returns the affected row count."""
        return await self.transact(lambda tx: tx.execute(sql, params))

    async def _rollback(self, conn: Any, handle: Any) -> None:
        await conn.rollback()

    def _is_closed(self, conn: Any) -> bool:
        return bool(conn.closed)

    def _discard(self, conn: Any) -> None:
        conn.close()  # the pool drops closed connections

    async def _lock(self, conn: Any, name: str) -> None:
        key = lock_name(self._parts.database, name)
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

    async def _unlock(self, conn: Any, name: str) -> None:
        async with conn.cursor() as cur:
            await cur.execute("SELECT RELEASE_LOCK(%s)", (lock_name(self._parts.database, name),))

    async def _close_connection(self, conn: Any) -> None:
        await conn.ensure_closed()

    async def _close_pool(self) -> None:
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
    options, timeout = _checked_options(parts, connect_timeout)
    cursor, dict_cursor = _quiet_cursors(aiomysql)
    conv = dict(decoders)
    conv[FIELD_TYPE.NEWDECIMAL] = conv[FIELD_TYPE.DECIMAL] = numeric
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
    # The dedicated advisory-lock connection keeps autocommit on (it never opens a transaction); the
    # pool turns it off to save each unit's BEGIN (see MySQLDatabase).
    db = MySQLDatabase(aiomysql, parts, kwargs, dict_cursor, lock_timeout=lock_timeout)
    pooled = {**kwargs, "autocommit": False}
    await db._open_pool(aiomysql.create_pool, minsize=minsize, maxsize=maxsize, **pooled)
    return db


def _checked_options(parts: DSNParts, connect_timeout: float) -> tuple[dict[str, str], float]:
    """The DSN's query options and connect timeout, refusing unknown options and a missing database."""
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
    try:
        return options, float(options.get("connect_timeout", connect_timeout))
    except ValueError:
        raise InvalidDSN(f"invalid MySQL DSN {parts.redacted!r}: connect_timeout must be a number") from None
