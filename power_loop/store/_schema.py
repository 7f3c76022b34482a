"""The logical schema, its version table, the migration ladder and provisioning.

Tables are described once as :class:`TableSpec` s; each backend's :class:`Dialect` turns them into DDL.
A single-row ``{prefix}schema_migrations`` table records the schema version. Opening a store either
creates/migrates the schema (:attr:`SchemaPolicy.AUTO_CREATE`) or only checks it
(:attr:`SchemaPolicy.VERIFY`, for deployments where the application may not run DDL).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from ..errors import (
    ConfigError,
    InvalidTablePrefix,
    SchemaTooNewError,
    StoreClosedError,
    StoreConnectionLost,
    StoreError,
    StoreSchemaError,
    StoreUnavailable,
)
from ._port import Database, Dialect, Transaction
from ._tables import (
    ATTACHMENTS_TABLE,
    BACKGROUND_TASKS_TABLE,
    HOOK_EVENTS_TABLE,
    INBOX_TABLE,
    SCHEMA_TABLES,
    SESSIONS_BY_TIME_INDEX,
    TOOL_CALL_LOG,
    VERSION_TABLE,
    WORKFLOW_JOURNAL_TABLE,
    col,
)

__all__ = [
    "CURRENT_SCHEMA_VERSION",
    "MIGRATIONS",
    "SCHEMA_TABLES",
    "VERSION_TABLE",
    "MigrationStep",
    "SchemaPolicy",
    "all_table_names",
    "missing_table_hint",
    "ensure_schema",
    "provisioning_ddl",
    "validate_table_prefix",
]

CURRENT_SCHEMA_VERSION = 10

_log = logging.getLogger("power_loop.store")

_PREFIX_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,30}")


class SchemaPolicy(str, Enum):
    """What opening a store does about the schema."""

    AUTO_CREATE = "auto_create"  # create missing tables, migrate older schemas (default)
    VERIFY = "verify"  # only check; raise StoreSchemaError carrying the DDL to run

    @classmethod
    def coerce(cls, value: SchemaPolicy | str | None) -> SchemaPolicy:
        """Accept the enum, its string value, or ``None`` (= AUTO_CREATE)."""
        if value is None:
            return cls.AUTO_CREATE
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            choices = ", ".join(repr(p.value) for p in cls)
            raise ConfigError(f"unknown schema policy {value!r}; expected one of {choices}") from None


def validate_table_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is ``""`` or a short SQL identifier; else raise InvalidTablePrefix."""
    if not isinstance(prefix, str) or (prefix and not _PREFIX_RE.fullmatch(prefix)):
        raise InvalidTablePrefix(
            f"invalid table_prefix {prefix!r}: use '' or 1-31 characters of letters, digits and '_' "
            "not starting with a digit (for example 'pl_')"
        )
    return prefix


def all_table_names(prefix: str) -> list[str]:
    """Every full table name the store uses, version table last (handy for dropping a test schema)."""
    validate_table_prefix(prefix)
    return [prefix + t.name for t in SCHEMA_TABLES] + [prefix + VERSION_TABLE.name]


MigrationApply = Callable[[Transaction, Dialect, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class MigrationStep:
    """Brings a schema from ``version - 1`` to ``version``. ``apply`` must be idempotent
    (probe before altering) because MySQL DDL commits implicitly and a step may be re-run."""

    version: int
    description: str
    apply: MigrationApply


async def _create_workflow_journal(tx: Transaction, dialect: Dialect, prefix: str) -> None:
    # CREATE ... IF NOT EXISTS: re-running the step after a crash is harmless.
    for stmt in dialect.create_table(WORKFLOW_JOURNAL_TABLE, prefix):
        await tx.execute(stmt)


async def _create_background_tasks(tx: Transaction, dialect: Dialect, prefix: str) -> None:
    for stmt in dialect.create_table(BACKGROUND_TASKS_TABLE, prefix):  # IF NOT EXISTS: re-runnable
        await tx.execute(stmt)


async def _create_attachments(tx: Transaction, dialect: Dialect, prefix: str) -> None:
    for stmt in dialect.create_table(ATTACHMENTS_TABLE, prefix):
        await tx.execute(stmt)


async def _add_call_timing(tx: Transaction, dialect: Dialect, prefix: str) -> None:
    # Only the columns still missing: re-running the step after a crash is harmless.
    found = {
        str(r["name"]).lower() for r in await tx.fetchall(dialect.columns_sql(), (prefix + "usage_rounds",))
    }
    for name in ("duration_ms", "attempts"):
        if name not in found:
            await tx.execute(dialect.add_column("usage_rounds", col(name, "int"), prefix))


async def _create_hook_events(tx: Transaction, dialect: Dialect, prefix: str) -> None:
    for stmt in dialect.create_table(HOOK_EVENTS_TABLE, prefix):  # IF NOT EXISTS: re-runnable
        await tx.execute(stmt)


async def _create_tool_call_log(tx: Transaction, dialect: Dialect, prefix: str) -> None:
    # CREATE TABLE IF NOT EXISTS on every dialect: re-running the step is harmless.
    for stmt in dialect.create_table(TOOL_CALL_LOG, prefix):
        await tx.execute(stmt)


async def _add_follow_up_kind(tx: Transaction, dialect: Dialect, prefix: str) -> None:
    # Only when still missing: re-running the step after a crash is harmless.
    found = {
        str(r["name"]).lower() for r in await tx.fetchall(dialect.columns_sql(), (prefix + "follow_ups",))
    }
    if "kind" not in found:
        await tx.execute(dialect.add_column("follow_ups", col("kind", "enum", False, "queue"), prefix))


async def _create_inbox(tx: Transaction, dialect: Dialect, prefix: str) -> None:
    for stmt in dialect.create_table(INBOX_TABLE, prefix):  # IF NOT EXISTS: re-runnable
        await tx.execute(stmt)


async def _index_sessions_by_time(tx: Transaction, dialect: Dialect, prefix: str) -> None:
    table = prefix + "sessions"
    index = next(i for i in SCHEMA_TABLES[0].indexes if i.name == SESSIONS_BY_TIME_INDEX)
    name, cols = prefix + index.name, ", ".join(index.columns)
    if dialect.name != "mysql":  # SQLite and PostgreSQL: IF NOT EXISTS makes the step re-runnable
        await tx.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({cols})")
        return
    # MySQL has no CREATE INDEX IF NOT EXISTS: probe the catalog first.
    found = await tx.fetchall(
        "SELECT 1 FROM information_schema.statistics "
        "WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?",
        (table, name),
    )
    if not found:
        await tx.execute(f"ALTER TABLE {table} ADD INDEX {name} ({cols})")


# Version 1 is the baseline created from SCHEMA_TABLES; later versions append steps here.
MIGRATIONS: tuple[MigrationStep, ...] = (
    MigrationStep(2, "add the workflow_journal table", _create_workflow_journal),
    MigrationStep(3, "add the background_tasks table (background_run)", _create_background_tasks),
    MigrationStep(4, "add the attachments table", _create_attachments),
    MigrationStep(
        5, "tool_call_log: started/finished record of side-effecting tool calls", _create_tool_call_log
    ),
    MigrationStep(6, "usage_rounds: duration_ms and attempts of each round's model call", _add_call_timing),
    MigrationStep(7, "follow_ups: kind (queue or steer)", _add_follow_up_kind),
    MigrationStep(8, "add the hook_events table (the hook audit trail)", _create_hook_events),
    MigrationStep(9, "add the inbox table (send(message_id=), deliver: ids stored once)", _create_inbox),
    MigrationStep(10, "sessions: index (parent_session_id, created_at, session_id)", _index_sessions_by_time),
)


def _stamp_sql(dialect: Dialect, prefix: str) -> str:
    return dialect.insert_ignore(prefix + VERSION_TABLE.name, ("id", "version"))


def provisioning_ddl(dialect: Dialect, prefix: str, *, version: int = CURRENT_SCHEMA_VERSION) -> list[str]:
    """The exact script creating the schema at ``version`` (what ``power-loop ddl`` prints)."""
    validate_table_prefix(prefix)
    script = list(dialect.create_table(VERSION_TABLE, prefix))
    for table in SCHEMA_TABLES:
        script.extend(dialect.create_table(table, prefix))
    # The stamp is the only statement with parameters; both are integers, so inline them.
    stamp = _stamp_sql(dialect, prefix)
    for value in (1, int(version)):
        stamp = stamp.replace("?", str(value), 1)
    script.append(stamp)
    return script


async def _table_exists(tx: Transaction, dialect: Dialect, full_name: str) -> bool:
    return await tx.fetchone(dialect.table_exists_sql(), (full_name,)) is not None


async def _read_version(tx: Transaction, dialect: Dialect, prefix: str) -> int | None:
    if not await _table_exists(tx, dialect, prefix + VERSION_TABLE.name):
        return None
    row = await tx.fetchone(f"SELECT version FROM {prefix}{VERSION_TABLE.name} WHERE id = ?", (1,))
    return None if row is None else int(row["version"])


async def _missing_parts(tx: Transaction, dialect: Dialect, prefix: str) -> list[str]:
    missing: list[str] = []
    for table in SCHEMA_TABLES:
        full = prefix + table.name
        if not await _table_exists(tx, dialect, full):
            missing.append(f"table {full}")
            continue
        have = {str(r["name"]).lower() for r in await tx.fetchall(dialect.columns_sql(), (full,))}
        missing.extend(f"column {full}.{c.name}" for c in table.columns if c.name.lower() not in have)
    return missing


async def _recreate_dropped_tables(tx: Transaction, dialect: Dialect, prefix: str) -> None:
    """AUTO_CREATE on a stamped schema whose tables were dropped since: create them again (empty),
    rather than opening and failing on the first write."""
    for table in SCHEMA_TABLES:
        if not await _table_exists(tx, dialect, prefix + table.name):
            _log.warning("power_loop table %s%s was missing; created it again (empty)", prefix, table.name)
            for stmt in dialect.create_table(table, prefix):
                await tx.execute(stmt)


def missing_table_hint(table: str | None) -> str:
    """The fix for a statement that found no table (dropped while the store was open)."""
    what = f"table {table}" if table else "a power_loop table"
    return (
        f"{what} does not exist (dropped after the store was opened?); reopen the store with "
        "schema='auto_create' to create it again, or run the DDL of `power-loop ddl`"
    )


def _check_ladder(migrations: Sequence[MigrationStep], start: int, target: int) -> list[MigrationStep]:
    steps = [m for m in migrations if start < m.version <= target]
    if [m.version for m in steps] != list(range(start + 1, target + 1)):
        raise StoreSchemaError(f"no complete migration path from schema version {start} to {target}")
    return steps


async def ensure_schema(
    db: Database,
    prefix: str,
    *,
    policy: SchemaPolicy | str | None = None,
    migrations: Sequence[MigrationStep] = MIGRATIONS,
    target_version: int = CURRENT_SCHEMA_VERSION,
) -> int:
    """Create, migrate or verify the schema under ``prefix``; return the schema version in force.

    Raises :class:`SchemaTooNewError` when the database was stamped by newer code (whatever the
    policy) and :class:`StoreSchemaError` (with ``.ddl``) when VERIFY finds a missing/partial schema.
    """
    validate_table_prefix(prefix)
    mode = SchemaPolicy.coerce(policy)
    dialect = db.dialect
    if mode is SchemaPolicy.VERIFY:
        return await db.transact(lambda tx: _verify(tx, dialect, prefix, target_version))
    # A database whose transactions already exclude every other writer needs no lock around them.
    exclusive = getattr(db, "exclusive_transactions", False) is True
    lock = contextlib.nullcontext() if exclusive else db.advisory_lock("power_loop:provision:" + prefix)
    async with lock:
        try:
            return await db.transact(lambda tx: _provision(tx, dialect, prefix, target_version, migrations))
        except (StoreSchemaError, StoreUnavailable, StoreConnectionLost, StoreClosedError):
            raise
        except StoreError as exc:
            raise StoreSchemaError(
                f"creating the power_loop schema under prefix {prefix!r} failed: {exc}",
                ddl=provisioning_ddl(dialect, prefix, version=target_version),
            ) from exc


def _too_new(prefix: str, found: int, target_version: int) -> SchemaTooNewError:
    return SchemaTooNewError(
        f"the database schema under prefix {prefix!r} is version {found}, newer than this "
        f"power_loop supports ({target_version}); upgrade power_loop to open it"
    )


async def _verify(tx: Transaction, dialect: Dialect, prefix: str, target_version: int) -> int:
    """VERIFY: check the schema is complete and current, change nothing."""
    found = await _read_version(tx, dialect, prefix)
    if found is not None and found > target_version:
        raise _too_new(prefix, found, target_version)
    problems = await _missing_parts(tx, dialect, prefix)
    if found is None:
        problems.insert(0, f"version table {prefix}{VERSION_TABLE.name} (or its row)")
    elif found < target_version:
        problems.insert(0, f"schema version {found} needs migrating to {target_version}")
    if problems:
        raise StoreSchemaError(
            f"power_loop schema under prefix {prefix!r} is missing or incomplete: " + "; ".join(problems),
            ddl=provisioning_ddl(dialect, prefix, version=target_version),
        )
    return target_version


async def _provision(
    tx: Transaction,
    dialect: Dialect,
    prefix: str,
    target_version: int,
    migrations: Sequence[MigrationStep],
) -> int:
    """CREATE/MIGRATE: provision a fresh schema or climb the migration ladder to ``target_version``."""
    found = await _read_version(tx, dialect, prefix)
    if found is not None and found > target_version:
        raise _too_new(prefix, found, target_version)
    if found == target_version:
        await _recreate_dropped_tables(tx, dialect, prefix)
        return found
    if found is None:
        for stmt in provisioning_ddl(dialect, prefix, version=target_version)[:-1]:
            await tx.execute(stmt)
        await tx.execute(_stamp_sql(dialect, prefix), (1, target_version))
        return target_version
    for step in _check_ladder(migrations, found, target_version):
        await step.apply(tx, dialect, prefix)
        await tx.execute(
            f"UPDATE {prefix}{VERSION_TABLE.name} SET version = ? WHERE id = ?", (step.version, 1)
        )
    return target_version
