"""PostgreSQL backend of the storage port, on an ``asyncpg`` connection pool.

``asyncpg`` is an optional extra (``pip install asyncpg``; the ``postgres`` extra of a checkout) imported when a PostgreSQL
store is opened. Driver errors are mapped onto :mod:`power_loop.errors` classes whose messages name
the server (``host:port/db``) but never the password.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

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
from ._port import Params, Row, TableSpec, Transaction
from ._schema import missing_table_hint
from ._server import ServerDatabase, ServerDialect, numeric
from ._sqltext import check_table, replace_placeholders, status_rowcount

if TYPE_CHECKING:
    from ._port import Params, Row, TableSpec, Transaction

__all__ = ["PostgresDatabase", "PostgresDialect", "connect_postgres"]

_SCHEMES = {"postgresql": "postgresql", "postgres": "postgresql"}


class PostgresDialect(ServerDialect[str]):
    """SQL text for PostgreSQL: ``$n`` placeholders, ``ON CONFLICT`` upserts, ``information_schema``."""

    __slots__ = ()
    name: str = "postgres"
    supports_update_returning = True
    _max_ident = 63  # NAMEDATALEN - 1; longer names would be silently truncated by the server
    _types = {
        "key": "TEXT",
        "text": "TEXT",
        "enum": "TEXT",
        "int": "BIGINT",
        "small": "SMALLINT",
        "blob": "BYTEA",
    }
    _add_column = "ADD COLUMN IF NOT EXISTS"
    # Unquoted identifiers fold to lower case in PostgreSQL, hence lower(?).
    _table_match = "table_schema = current_schema() AND table_name = lower(?)"

    def _compile(self, sql: str) -> str:
        return replace_placeholders(sql, lambda n: f"${n}", double_percent=False)

    def translate(self, sql: str) -> str:
        return self._cached(sql)

    def create_table(self, table: TableSpec, prefix: str) -> list[str]:
        full = check_table(table, prefix, max_len=self._max_ident)
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

    def _on_conflict(
        self, table: str, key_cols: Sequence[str], val_cols: Sequence[str], add_cols: Sequence[str]
    ) -> str:
        sets = [f"{c} = EXCLUDED.{c}" for c in val_cols]
        sets += [f"{c} = {table}.{c} + EXCLUDED.{c}" for c in add_cols]
        action = f"DO UPDATE SET {', '.join(sets)}" if sets else "DO NOTHING"
        return f"ON CONFLICT ({', '.join(key_cols)}) {action}"

    def insert_ignore(self, table: str, cols: Sequence[str]) -> str:
        return f"INSERT INTO {self._values(table, cols)} ON CONFLICT DO NOTHING"


async def _init_connection(conn: Any) -> None:
    await conn.set_type_codec("numeric", encoder=str, decoder=numeric, schema="pg_catalog", format="text")


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


class PostgresDatabase(ServerDatabase):
    """A :class:`~power_loop.store._port.Database` on an asyncpg pool. Open with :func:`connect_postgres`.

    :meth:`advisory_lock` takes ``pg_advisory_lock`` under ``SET lock_timeout``.
    """

    kind = "PostgreSQL"

    def __init__(
        self,
        asyncpg: ModuleType,
        parts: DSNParts,
        connect_kwargs: dict[str, Any],
        *,
        lock_timeout: float = 30.0,
    ) -> None:
        super().__init__(asyncpg, parts, connect_kwargs, lock_timeout=lock_timeout)
        self.dialect = PostgresDialect()

    def _classify(
        self, exc: BaseException, conn: Any, *, connecting: bool, summary: str
    ) -> BaseException | None:
        pg = self._driver
        parts = self._parts
        if isinstance(exc, (pg.InvalidPasswordError, pg.InvalidAuthorizationSpecificationError)):
            return auth_failed(self.kind, parts, summary)
        if isinstance(exc, pg.InvalidCatalogNameError):
            return database_missing(self.kind, parts, summary)
        if isinstance(exc, pg.IntegrityConstraintViolationError):
            return StoreIntegrityError(summary)
        if isinstance(exc, pg.ClientConfigurationError) or (
            connecting and isinstance(exc, pg.UndefinedObjectError)
        ):  # a DSN option asyncpg refuses, or one the server does not know
            return InvalidDSN(f"invalid PostgreSQL DSN option for {parts.where}: {summary}")
        if isinstance(exc, pg.UndefinedTableError):
            return StoreSchemaError(f"PostgreSQL at {parts.where}: {missing_table_hint(None)} ({summary})")
        if isinstance(exc, (pg.CannotConnectNowError, pg.TooManyConnectionsError)):
            return unavailable(self.kind, parts, summary)
        if connecting and isinstance(
            exc, (OSError, asyncio.TimeoutError, TimeoutError, pg.PostgresConnectionError)
        ):
            return unavailable(self.kind, parts, summary)
        if isinstance(
            exc, (OSError, pg.PostgresConnectionError, pg.AdminShutdownError, pg.CrashShutdownError)
        ) or (
            # asyncpg reports a connection the server just terminated mid-operation as an interface or
            # internal client error ("cannot switch to state ..."), depending on where it noticed.
            isinstance(exc, (pg.InterfaceError, pg.InternalClientError))
            and conn is not None
            and _is_closed(conn)
        ):
            return connection_lost(self.kind, parts, summary)
        if isinstance(exc, (pg.PostgresError, pg.InterfaceError, pg.InternalClientError)):
            return StoreError(f"PostgreSQL error at {parts.where}: {summary}")
        return None

    def _transaction(self, conn: Any) -> Transaction:
        return _PgTransaction(conn, self)

    async def _release(self, conn: Any) -> None:
        await self._pool.release(conn)

    async def _begin(self, conn: Any) -> Any:
        tx = conn.transaction()
        await tx.start()
        return tx

    async def _commit(self, conn: Any, handle: Any) -> None:
        await handle.commit()

    async def _rollback(self, conn: Any, handle: Any) -> None:
        await handle.rollback()

    def _is_closed(self, conn: Any) -> bool:
        return _is_closed(conn)

    def _discard(self, conn: Any) -> None:
        conn.terminate()

    async def _lock(self, conn: Any, name: str) -> None:
        try:
            await conn.execute(f"SET lock_timeout = {max(1, int(self._lock_timeout * 1000))}")
            await conn.execute("SELECT pg_advisory_lock($1)", lock_key(name))
        except self._driver.LockNotAvailableError:
            raise StoreUnavailable(
                f"could not take the lock {name!r} on the PostgreSQL server at {self.server} "
                f"within {self._lock_timeout:g} s: another process holds it (e.g. a schema provisioning "
                "that hangs); retry, or find the holder in pg_locks (locktype 'advisory')"
            ) from None
        except Exception as exc:
            raise self._error(exc, conn)

    async def _unlock(self, conn: Any, name: str) -> None:
        await conn.execute("SELECT pg_advisory_unlock($1)", lock_key(name))

    async def _close_connection(self, conn: Any) -> None:
        await conn.close(timeout=5)

    async def _close_pool(self) -> None:
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
    await db._open_pool(
        asyncpg.create_pool,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        **kwargs,
    )
    return db
