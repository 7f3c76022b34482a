"""Durable storage: the `SessionStore` facade over SQLite, PostgreSQL or MySQL.

Open one with :func:`open_store` (a DSN picks the backend)::

    store = await open_store("./power_loop_sessions.db")
    sid = await store.create_session(system_prompt="be brief")
    await store.append_messages(sid, [NewMessage("user", "hi")], begin_send=True)

Names load with their module on first access (the server dialects too), so importing the package
costs nothing and SQLite-only programs never load the server dialects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_dir, lazy_getattr

if TYPE_CHECKING:
    from ._background import BackgroundTaskRow
    from ._capabilities import (
        Maintenance,
    )
    from ._hook_events import HookEventRow, NewHookEvent
    from ._inbox import InboxRepository, InboxRow
    from ._lease import (
        HeldLease,
        LeaseToken,
        hold_lease,
        new_holder_id,
    )
    from ._mysql import MySQLDialect
    from ._open import (
        DEFAULT_DB_PATH,
        DEFAULT_TABLE_PREFIX,
        connect_database,
    )
    from ._open_store import open_store
    from ._port import (
        ColumnSpec,
        Database,
        Dialect,
        IndexSpec,
        TableSpec,
        Transaction,
    )
    from ._postgres import PostgresDialect
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
    from ._sessions import MAX_SPAWN_DEPTH
    from ._sqlite import (
        SqliteDatabase,
        SqliteDialect,
    )
    from ._store import (
        SessionStore,
    )
    from ._tool_calls import ToolCallRecord
    from ._workflows import WorkflowRecordRow

__all__ = [
    "CURRENT_SCHEMA_VERSION",
    "DEFAULT_DB_PATH",
    "DEFAULT_TABLE_PREFIX",
    "KEEP",
    "MAX_SPAWN_DEPTH",
    "MUTATE_SKIP",
    "AppendResult",
    "ColumnSpec",
    "CompactionRow",
    "Database",
    "Dialect",
    "FollowUpRow",
    "HeldLease",
    "IndexSpec",
    "InboxRepository",
    "InboxRow",
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
    "Transaction",
    "UsageRoundRow",
    "WorkflowRecordRow",
    "all_table_names",
    "connect_database",
    "ensure_schema",
    "hold_lease",
    "new_holder_id",
    "open_store",
    "provisioning_ddl",
    "BackgroundTaskRow",
    "HookEventRow",
    "NewHookEvent",
    "ToolCallRecord",
]

# Every name loads with its module on first use, so `from power_loop.store import NewMessage` pays for
# the row types only, and a loop that has not opened its store yet pays for no backend. The server
# dialects are SQL text: no database driver is imported with them either.
_MODULES: dict[str, tuple[str, ...]] = {
    "_capabilities": ("Maintenance",),
    "_inbox": ("InboxRepository", "InboxRow"),
    "_lease": ("HeldLease", "LeaseToken", "hold_lease", "new_holder_id"),
    "_mysql": ("MySQLDialect",),
    "_open": ("DEFAULT_DB_PATH", "DEFAULT_TABLE_PREFIX", "connect_database"),
    "_open_store": ("open_store",),
    "_port": ("ColumnSpec", "Database", "Dialect", "IndexSpec", "TableSpec", "Transaction"),
    "_postgres": ("PostgresDialect",),
    "_rows": (
        "KEEP",
        "MUTATE_SKIP",
        "AppendResult",
        "CompactionRow",
        "FollowUpRow",
        "MessageRow",
        "MessageState",
        "NewMessage",
        "NoteRow",
        "RoundUsage",
        "SendAccounting",
        "SessionKind",
        "SessionRow",
        "SessionStateRow",
        "SessionStatsRow",
        "SessionStatus",
        "SubagentLifecycle",
        "TimerRow",
        "TimerStatus",
        "UsageRoundRow",
    ),
    "_schema": (
        "CURRENT_SCHEMA_VERSION",
        "MigrationStep",
        "SchemaPolicy",
        "all_table_names",
        "ensure_schema",
        "provisioning_ddl",
    ),
    "_sessions": ("MAX_SPAWN_DEPTH",),
    "_sqlite": ("SqliteDatabase", "SqliteDialect"),
    "_store": ("SessionStore",),
    "_workflows": ("WorkflowRecordRow",),
    "_background": ("BackgroundTaskRow",),
    "_tool_calls": ("ToolCallRecord",),
    "_hook_events": ("HookEventRow", "NewHookEvent"),
}
_LAZY = {name: f".{module}" for module, names in _MODULES.items() for name in names}
__getattr__ = lazy_getattr(__name__, _LAZY, globals())
__dir__ = lazy_dir(_LAZY, globals())
