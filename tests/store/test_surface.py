"""Pins the public surface of power_loop.store and the history helper's pure behaviour."""

from __future__ import annotations

import subprocess
import sys

import pytest

import power_loop.store as store_pkg
from power_loop.errors import HistoryInvariantError
from power_loop.store import KEEP, NewMessage
from power_loop.store._history import advance_pending, check_active_window

EXPECTED = {
    "BackgroundTaskRow",
    "CURRENT_SCHEMA_VERSION",
    "DEFAULT_DB_PATH",
    "DEFAULT_TABLE_PREFIX",
    "MAX_SPAWN_DEPTH",
    "KEEP",
    "MUTATE_SKIP",
    "AppendResult",
    "ColumnSpec",
    "CompactionRow",
    "Database",
    "Dialect",
    "FollowUpRow",
    "HookEventRow",
    "NewHookEvent",
    "InboxRepository",
    "InboxRow",
    "IndexSpec",
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
    "WorkflowRecordRow",
    "all_table_names",
    "connect_database",
    "ensure_schema",
    "open_store",
    "provisioning_ddl",
    "HeldLease",
    "LeaseToken",
    "hold_lease",
    "new_holder_id",
}


def test_public_names() -> None:
    assert set(store_pkg.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(store_pkg, name) is not None
    assert store_pkg.DEFAULT_DB_PATH == "./power_loop_sessions.db"
    assert store_pkg.DEFAULT_TABLE_PREFIX == "pl_"
    assert store_pkg.SchemaPolicy.AUTO_CREATE == "auto_create"


def test_store_imports_without_optional_drivers() -> None:
    # The server dialects load on first access: neither they nor any driver come with the package.
    code = (
        "import sys, power_loop.store\n"
        "bad = [m for m in ('asyncpg', 'aiomysql', 'pymysql', 'aiosqlite') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "lazy = [m for m in ('power_loop.store._postgres', 'power_loop.store._mysql') if m in sys.modules]\n"
        "assert not lazy, lazy\n"
        "assert power_loop.store.PostgresDialect().name == 'postgres'\n"
        "assert power_loop.store.MySQLDialect().name == 'mysql'\n"
        "assert 'asyncpg' not in sys.modules and 'aiomysql' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_advance_pending_is_pure() -> None:
    calls = [{"id": "a"}, {"id": "b"}]
    pending, changed = advance_pending(
        None, [NewMessage("assistant", tool_calls=calls, round_index=4)], first_seq=10, send_index=2
    )
    assert changed and pending == {
        "assistant_seq": 10,
        "round_index": 4,
        "send_index": 2,
        "tool_calls": calls,
        "pending_interactions": [],
    }
    after, _ = advance_pending(
        pending, [NewMessage("tool", "x", tool_call_id="a")], first_seq=11, send_index=2
    )
    assert after is not None and after["tool_calls"] == [{"id": "b"}]
    assert pending["tool_calls"] == calls  # input untouched
    same, changed = advance_pending(
        None, [NewMessage("user", "x")], first_seq=1, send_index=1, interactions=KEEP
    )
    assert (same, changed) == (None, False)


def test_check_active_window() -> None:
    rows = [
        {"seq": 1, "role": "assistant", "tool_calls": [{"id": "a"}], "tool_call_id": None},
        {"seq": 2, "role": "tool", "tool_calls": None, "tool_call_id": "a"},
    ]
    check_active_window(rows, None)
    with pytest.raises(HistoryInvariantError):
        check_active_window(rows[:1], None)
    check_active_window(rows[:1], {"tool_calls": [{"id": "a"}]})
    with pytest.raises(HistoryInvariantError):
        check_active_window(rows[1:], None)


async def test_schema_version_is_the_version_this_code_writes() -> None:
    # Published on SessionStore (power-loop 3.0.2 §7.5): kept as part of the facade.
    async with await store_pkg.open_store(":memory:") as store:
        assert store.schema_version == store_pkg.CURRENT_SCHEMA_VERSION
