"""The storage port: the only surface the `SessionStore` is written against.

A backend supplies a :class:`Database` (connection handling, transactions, error mapping) and a
:class:`Dialect` (SQL text differences). SQL is written once, with ``?`` placeholders, and every
statement passes through :meth:`Dialect.translate` inside the backend.

Transactions are *units of work*: an ``async`` callable that receives a :class:`Transaction` and only
awaits that transaction's methods. This lets the SQLite backend run the whole unit on its connection
thread in one hop (it drives the coroutine synchronously there), while network backends simply await
it inside a real transaction. A unit must not await anything else (no sleeps, no other I/O): a unit
that suspends on a foreign awaitable is a programming error and raises ``RuntimeError``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

__all__ = [
    "ColumnSpec",
    "ColumnType",
    "Database",
    "Dialect",
    "IndexSpec",
    "Params",
    "Row",
    "TableSpec",
    "Transaction",
    "UnitOfWork",
]

Row = Mapping[str, Any]
Params = Sequence[Any]
T = TypeVar("T")

# Logical column types; each dialect maps them to concrete SQL types.
#   key   - short identifier used in primary keys / indexes (VARCHAR(255) on MySQL)
#   text  - unbounded text (TEXT / LONGTEXT)
#   int   - 64-bit integer
#   small - small integer / boolean flag
#   enum  - short status-like string (VARCHAR(32) on MySQL)
#   blob  - binary payload (BLOB / BYTEA / LONGBLOB)
ColumnType = Literal["key", "text", "int", "small", "enum", "blob"]


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    name: str
    type: ColumnType
    nullable: bool = True
    default: str | int | None = None


@dataclass(frozen=True, slots=True)
class IndexSpec:
    name: str  # unprefixed; the dialect prefixes it
    columns: tuple[str, ...]
    unique: bool = False


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str  # unprefixed logical name
    columns: tuple[ColumnSpec, ...]
    primary_key: tuple[str, ...]
    indexes: tuple[IndexSpec, ...] = field(default=())


@runtime_checkable
class Transaction(Protocol):
    """Statements inside one database transaction. SQL uses ``?`` placeholders."""

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of affected rows."""
        ...

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement for each parameter row."""
        ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...


UnitOfWork = Callable[[Transaction], Awaitable[T]]


@runtime_checkable
class Dialect(Protocol):
    """SQL differences between backends. Everything else is shared.

    Optional capability (read with ``getattr``, so dialects that predate it keep working):
    ``supports_update_returning: bool`` (default False) — the backend runs ``UPDATE … RETURNING``
    (through ``Transaction.fetchall``). The store then allocates an append's seqs with one statement
    that locks, advances and reads the session's state row instead of a locking read plus an update.
    """

    name: str  # "sqlite" | "postgres" | "mysql" | a custom name

    def translate(self, sql: str) -> str:
        """Turn ``?`` placeholders into the driver's style (and escape literal ``%`` where needed)."""
        ...

    def create_table(self, table: TableSpec, prefix: str) -> list[str]:
        """DDL (idempotent: ``IF NOT EXISTS``) creating the table and its indexes."""
        ...

    def add_column(self, table: str, column: ColumnSpec, prefix: str) -> str:
        """DDL adding one column to an existing table (used by migrations)."""
        ...

    def upsert(
        self,
        table: str,
        key_cols: Sequence[str],
        val_cols: Sequence[str],
        *,
        add_cols: Sequence[str] = (),
        insert_only_cols: Sequence[str] = (),
    ) -> str:
        """INSERT-or-UPDATE with parameters in the order key + val + add + insert_only.

        ``add_cols`` accumulate (``col = col + new``) on conflict; ``insert_only_cols`` keep their
        first value. ``table`` is the full (prefixed) table name.
        """
        ...

    def insert_ignore(self, table: str, cols: Sequence[str]) -> str:
        """INSERT that silently does nothing when the primary key exists."""
        ...

    @property
    def for_update(self) -> str:
        """Row-lock suffix for a SELECT inside a transaction ('' where the backend locks otherwise)."""
        ...

    def table_exists_sql(self) -> str:
        """A query taking one parameter (full table name) returning a row iff the table exists."""
        ...

    def columns_sql(self) -> str:
        """A query taking one parameter (full table name) returning rows with a ``name`` column."""
        ...


@runtime_checkable
class Database(Protocol):
    """An open database. Implementations map driver errors onto `power_loop.errors.StoreError`s."""

    dialect: Dialect

    async def transact(self, work: UnitOfWork[T]) -> T:
        """Run ``work`` in one transaction: commit if it returns, roll back and re-raise if it raises."""
        ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def execute(self, sql: str, params: Params = ()) -> int:
        """One statement in its own transaction (autocommit)."""
        ...

    def advisory_lock(self, name: str) -> AbstractAsyncContextManager[None]:
        """Hold a cross-process named lock (e.g. schema provisioning) for the duration of the block.

        PostgreSQL: ``pg_advisory_lock``; MySQL: ``GET_LOCK``; SQLite: ``flock`` on a lock file beside
        the database (a no-op for ``:memory:``). Statements run by other methods meanwhile are not
        blocked by it. Schema provisioning holds it around its transaction, unless the database sets
        ``exclusive_transactions = True`` (its every transaction already excludes all other writers).
        """
        ...

    async def close(self) -> None: ...
