"""Durable storage: the `SessionStore` facade over SQLite, PostgreSQL or MySQL.

Open one with :func:`open_store` (a DSN picks the backend)::

    store = await open_store("./power_loop_sessions.db")
    sid = await store.create_session(system_prompt="be brief")
    await store.append_messages(sid, [NewMessage("user", "hi")], begin_send=True)

The server dialects (``PostgresDialect``, ``MySQLDialect``) load on first access, so importing the
package stays cheap for SQLite-only programs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr
from ._capabilities import Maintenance
from ._lease import HeldLease, LeaseToken, hold_lease, new_holder_id
from ._open import DEFAULT_DB_PATH, DEFAULT_TABLE_PREFIX, connect_database, open_store
from ._port import ColumnSpec, Database, Dialect, IndexSpec, TableSpec, Transaction
from ._rows import (
    KEEP,
    MUTATE_SKIP,
    AppendResult,
    CompactionRow,
    FollowUpRow,
    MessageRow,
    MessageState,
    NewMessage,
    NoteRow,
    RoundUsage,
    SendAccounting,
    SessionKind,
    SessionRow,
    SessionStateRow,
    SessionStatsRow,
    SessionStatus,
    SubagentLifecycle,
    TimerRow,
    TimerStatus,
    UsageRoundRow,
)
from ._schema import (
    CURRENT_SCHEMA_VERSION,
    MigrationStep,
    SchemaPolicy,
    all_table_names,
    ensure_schema,
    provisioning_ddl,
)
from ._sqlite import SqliteDatabase, SqliteDialect
from ._store import SessionStore
from ._tool_calls import ToolCallRecord

if TYPE_CHECKING:
    from ._mysql import MySQLDialect
    from ._postgres import PostgresDialect

__all__ = [
    "CURRENT_SCHEMA_VERSION",
    "DEFAULT_DB_PATH",
    "DEFAULT_TABLE_PREFIX",
    "KEEP",
    "MUTATE_SKIP",
    "AppendResult",
    "ColumnSpec",
    "CompactionRow",
    "Database",
    "Dialect",
    "FollowUpRow",
    "HeldLease",
    "IndexSpec",
    "LeaseToken",
    "Maintenance",
    "MessageRow",
    "MessageState",
    "MigrationStep",
    "MySQLDialect",
    "NewMessage",
    "NoteRow",
    "PostgresDialect",
    "RoundUsage",
    "SchemaPolicy",
    "SendAccounting",
    "SessionKind",
    "SessionRow",
    "SessionStateRow",
    "SessionStatsRow",
    "SessionStatus",
    "SessionStore",
    "SqliteDatabase",
    "SqliteDialect",
    "SubagentLifecycle",
    "TableSpec",
    "TimerRow",
    "TimerStatus",
    "ToolCallRecord",
    "Transaction",
    "UsageRoundRow",
    "all_table_names",
    "connect_database",
    "ensure_schema",
    "hold_lease",
    "new_holder_id",
    "open_store",
    "provisioning_ddl",
]

# SQL text of the server dialects; no database driver is imported with them either.
_LAZY = {"MySQLDialect": "._mysql", "PostgresDialect": "._postgres"}

__getattr__ = lazy_getattr(__name__, _LAZY, globals())
