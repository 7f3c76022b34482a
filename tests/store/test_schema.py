"""Schema provisioning, verification, migrations, prefixes and DSNs."""

from __future__ import annotations

from typing import Any

import pytest

from power_loop.errors import (
    ConfigError,
    InvalidDSN,
    InvalidTablePrefix,
    SchemaTooNewError,
    StoreSchemaError,
)
from power_loop.store import (
    CURRENT_SCHEMA_VERSION,
    ColumnSpec,
    Dialect,
    MigrationStep,
    SchemaPolicy,
    SessionStore,
    SqliteDialect,
    Transaction,
    all_table_names,
    connect_database,
    ensure_schema,
    open_store,
    provisioning_ddl,
)
from power_loop.store._schema import MIGRATIONS

NEXT = CURRENT_SCHEMA_VERSION + 1


async def test_auto_create_is_idempotent(store_dsn_and_prefix: tuple[str, str]) -> None:
    dsn, prefix = store_dsn_and_prefix
    db = await connect_database(dsn)
    try:
        assert await ensure_schema(db, prefix) == CURRENT_SCHEMA_VERSION
        assert await ensure_schema(db, prefix, policy="auto_create") == CURRENT_SCHEMA_VERSION
        assert await ensure_schema(db, prefix, policy=SchemaPolicy.VERIFY) == CURRENT_SCHEMA_VERSION
        store = SessionStore(db, table_prefix=prefix)
        sid = await store.create_session()
        assert await ensure_schema(db, prefix) == CURRENT_SCHEMA_VERSION
        assert await store.get_session(sid) is not None  # re-provisioning kept the data
    finally:
        await db.close()


async def test_verify_missing_schema_carries_exact_ddl(store_dsn_and_prefix: tuple[str, str]) -> None:
    dsn, prefix = store_dsn_and_prefix
    with pytest.raises(StoreSchemaError) as err:
        await open_store(dsn, table_prefix=prefix, schema="verify")
    db = await connect_database(dsn)
    try:
        expected = provisioning_ddl(db.dialect, prefix)
        assert err.value.ddl == expected
        assert err.value.code == "store.schema_mismatch"
        assert all(stmt in str(err.value) for stmt in expected)
        # running the DDL it gave us makes VERIFY pass
        for stmt in err.value.ddl:
            await db.execute(stmt)
        assert await ensure_schema(db, prefix, policy="verify") == CURRENT_SCHEMA_VERSION
        # partial schema: drop one table
        await db.execute(f"DROP TABLE {prefix}notes")
        with pytest.raises(StoreSchemaError, match=f"{prefix}notes") as err2:
            await ensure_schema(db, prefix, policy="verify")
        assert err2.value.ddl == expected
    finally:
        await db.close()


async def test_newer_schema_is_refused(store_dsn_and_prefix: tuple[str, str]) -> None:
    dsn, prefix = store_dsn_and_prefix
    db = await connect_database(dsn)
    try:
        await ensure_schema(db, prefix)
        await db.execute(
            f"UPDATE {prefix}schema_migrations SET version = ? WHERE id = ?", (CURRENT_SCHEMA_VERSION + 1, 1)
        )
        for policy in ("auto_create", "verify"):
            with pytest.raises(SchemaTooNewError, match="upgrade power_loop") as err:
                await ensure_schema(db, prefix, policy=policy)
            assert err.value.code == "store.schema_too_new"
    finally:
        await db.close()


async def _add_flag(tx: Transaction, dialect: Dialect, prefix: str) -> None:
    cols = {str(r["name"]).lower() for r in await tx.fetchall(dialect.columns_sql(), (prefix + "notes",))}
    if "flag" not in cols:
        await tx.execute(dialect.add_column("notes", ColumnSpec("flag", "small", False, 0), prefix))


async def test_migration_ladder_runs_fake_next_step(store_dsn_and_prefix: tuple[str, str]) -> None:
    dsn, prefix = store_dsn_and_prefix
    db = await connect_database(dsn)
    nxt = CURRENT_SCHEMA_VERSION + 1
    step = MigrationStep(nxt, "add notes.flag", _add_flag)
    ladder = [*MIGRATIONS, step]
    try:
        assert await ensure_schema(db, prefix) == CURRENT_SCHEMA_VERSION
        store = SessionStore(db, table_prefix=prefix)
        sid = await store.create_session()
        await store.add_note(sid, "kept")
        assert await ensure_schema(db, prefix, migrations=ladder, target_version=nxt) == nxt
        row = await db.fetchone(f"SELECT version FROM {prefix}schema_migrations WHERE id = ?", (1,))
        assert row is not None and row["version"] == nxt
        cols = {
            str(r["name"]).lower() for r in await db.fetchall(db.dialect.columns_sql(), (prefix + "notes",))
        }
        assert "flag" in cols
        assert [n.content for n in await store.list_notes(sid)] == ["kept"]
        # re-running is a no-op; a step re-applied after a crash is idempotent
        assert await ensure_schema(db, prefix, migrations=ladder, target_version=nxt) == nxt
        await db.execute(f"UPDATE {prefix}schema_migrations SET version = ? WHERE id = ?", (nxt - 1, 1))
        assert await ensure_schema(db, prefix, migrations=ladder, target_version=nxt) == nxt
        # the current code now refuses the newer database
        with pytest.raises(SchemaTooNewError):
            await ensure_schema(db, prefix)
        # a gap in the ladder is reported, not skipped
        with pytest.raises(StoreSchemaError, match="migration path"):
            await ensure_schema(db, prefix, migrations=ladder, target_version=nxt + 1)
    finally:
        await db.close()


async def test_v1_schema_migrates_to_the_workflow_journal(store_dsn_and_prefix: tuple[str, str]) -> None:
    """A database provisioned at version 1 gains ``workflow_journal`` (and keeps its data)."""
    dsn, prefix = store_dsn_and_prefix
    db = await connect_database(dsn)
    try:
        assert await ensure_schema(db, prefix) == CURRENT_SCHEMA_VERSION
        store = SessionStore(db, table_prefix=prefix)
        sid = await store.create_session()
        # wind the database back to version 1: no journal table
        await db.execute(f"DROP TABLE {prefix}workflow_journal")
        await db.execute(f"UPDATE {prefix}schema_migrations SET version = ? WHERE id = ?", (1, 1))
        assert await ensure_schema(db, prefix) == CURRENT_SCHEMA_VERSION
        await store.put_workflow_record(sid, "r1", "@run", status="running", body={"a": 1})
        [row] = await store.list_workflow_runs(sid)
        assert (row.run_id, row.status, row.body) == ("r1", "running", {"a": 1})
        assert await store.get_session(sid) is not None
    finally:
        await db.close()


async def test_a_version_1_schema_gains_the_tool_call_log(store_dsn_and_prefix: tuple[str, str]) -> None:
    dsn, prefix = store_dsn_and_prefix
    db = await connect_database(dsn)
    try:
        assert await ensure_schema(db, prefix, migrations=(), target_version=1) == 1
        await db.execute(f"DROP TABLE {prefix}tool_call_log")  # as version 1 created it: without
        assert await ensure_schema(db, prefix) == CURRENT_SCHEMA_VERSION
        store = SessionStore(db, table_prefix=prefix)
        sid = await store.create_session()
        await store.record_tool_calls_started(sid, [("c1", "pay")], assistant_seq=2)
        assert [r.status for r in await store.get_tool_call_records(sid)] == ["started"]
    finally:
        await db.close()


async def _has_index(db: Any, table: str, name: str) -> bool:
    kind = db.dialect.name
    if kind == "sqlite":
        rows = await db.fetchall(f"PRAGMA index_list({table})")
    elif kind == "postgres":
        rows = await db.fetchall("SELECT indexname AS name FROM pg_indexes WHERE tablename = ?", (table,))
    else:
        rows = await db.fetchall(
            "SELECT index_name AS name FROM information_schema.statistics "
            "WHERE table_schema = DATABASE() AND table_name = ?",
            (table,),
        )
    return name in {str(r["name"]) for r in rows}


async def test_a_version_9_schema_gains_the_sessions_by_time_index(
    store_dsn_and_prefix: tuple[str, str],
) -> None:
    dsn, prefix = store_dsn_and_prefix
    db = await connect_database(dsn)
    table, index = f"{prefix}sessions", f"{prefix}idx_sessions_parent_created"
    try:
        assert await ensure_schema(db, prefix) == CURRENT_SCHEMA_VERSION == 10
        assert await _has_index(db, table, index)  # a fresh schema has it
        on = f" ON {table}" if db.dialect.name == "mysql" else ""
        await db.execute(f"DROP INDEX {index}{on}")  # as version 9 left it
        await db.execute(f"UPDATE {prefix}schema_migrations SET version = ? WHERE id = ?", (9, 1))
        assert not await _has_index(db, table, index)
        assert await ensure_schema(db, prefix) == 10
        assert await _has_index(db, table, index)
        await db.execute(f"UPDATE {prefix}schema_migrations SET version = ? WHERE id = ?", (9, 1))
        assert await ensure_schema(db, prefix) == 10  # the step runs again harmlessly
    finally:
        await db.close()


@pytest.mark.parametrize("prefix", ["1abc", "a-b", "a b", "x" * 32, "pl;drop", "é_"])
def test_bad_prefix_rejected(prefix: str) -> None:
    with pytest.raises(InvalidTablePrefix) as err:
        provisioning_ddl(SqliteDialect(), prefix)
    assert err.value.code == "store.invalid_prefix"
    with pytest.raises(InvalidTablePrefix):
        all_table_names(prefix)


async def test_bad_prefix_rejected_by_open_store() -> None:
    with pytest.raises(InvalidTablePrefix):
        await open_store(":memory:", table_prefix="bad-prefix")


@pytest.mark.parametrize("prefix", ["", "pl_", "_x", "A" * 31])
def test_good_prefixes_accepted(prefix: str) -> None:
    ddl = provisioning_ddl(SqliteDialect(), prefix)
    assert ddl[0].startswith(f"CREATE TABLE IF NOT EXISTS {prefix}schema_migrations")
    assert ddl[-1].startswith(f"INSERT INTO {prefix}schema_migrations")
    assert "?" not in ddl[-1]


def test_schema_policy_coercion() -> None:
    assert SchemaPolicy.coerce(None) is SchemaPolicy.AUTO_CREATE
    assert SchemaPolicy.coerce("VERIFY") is SchemaPolicy.VERIFY
    assert SchemaPolicy.coerce(SchemaPolicy.AUTO_CREATE) is SchemaPolicy.AUTO_CREATE
    with pytest.raises(ConfigError, match="auto_create"):
        SchemaPolicy.coerce("create-please")


async def test_bad_schema_string_rejected_by_open_store() -> None:
    with pytest.raises(ConfigError):
        await open_store(":memory:", schema="nope")


@pytest.mark.parametrize(
    "dsn",
    ["redis://user:s3cret@host/0", "oracle://scott:s3cret@db:1521/x", "http://a:s3cret@b"],
)
async def test_unknown_dsn_scheme_redacts_password(dsn: str) -> None:
    with pytest.raises(InvalidDSN) as err:
        await open_store(dsn)
    assert "s3cret" not in str(err.value)
    assert "***" in str(err.value)
    assert err.value.code == "store.invalid_dsn"


async def test_sqlite_dsn_with_host_is_rejected() -> None:
    with pytest.raises(InvalidDSN, match="sqlite:///"):
        await open_store("sqlite://host/file.db")


@pytest.mark.parametrize("form", ["bare", "rel", "abs", "driver"])
async def test_sqlite_dsn_forms(
    form: str, tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    dsn = {
        "bare": "nested/dir/a.db",
        "rel": "sqlite:///rel/b.db",
        "abs": f"sqlite:///{tmp_path}/abs/c.db",
        "driver": "sqlite+aiosqlite:///d.db",
    }[form]
    expected = {"bare": "nested/dir/a.db", "rel": "rel/b.db", "abs": "abs/c.db", "driver": "d.db"}[form]
    store = await open_store(dsn)
    try:
        await store.create_session()
    finally:
        await store.close()
    assert (tmp_path / expected).exists()  # type: ignore[operator]


@pytest.mark.parametrize("dsn", [":memory:", "sqlite://", "sqlite:///:memory:", "sqlite3://"])
async def test_memory_dsn_forms(dsn: str) -> None:
    async with await open_store(dsn) as store:
        sid = await store.create_session()
        assert await store.get_session(sid) is not None


async def test_home_is_expanded(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    async with await open_store("~/deep/x.db"):
        pass
    assert (tmp_path / "deep" / "x.db").exists()  # type: ignore[operator]


async def test_a_version_5_schema_gains_the_call_timing_columns(
    store_dsn_and_prefix: tuple[str, str],
) -> None:
    dsn, prefix = store_dsn_and_prefix
    db = await connect_database(dsn)
    try:
        assert await ensure_schema(db, prefix) == CURRENT_SCHEMA_VERSION
        for column in ("duration_ms", "attempts"):  # as version 5 had it
            await db.execute(f"ALTER TABLE {prefix}usage_rounds DROP COLUMN {column}")
        await db.execute(f"UPDATE {prefix}schema_migrations SET version = ? WHERE id = ?", (5, 1))
        assert await ensure_schema(db, prefix) == CURRENT_SCHEMA_VERSION
        await db.execute(f"UPDATE {prefix}schema_migrations SET version = ? WHERE id = ?", (5, 1))
        assert await ensure_schema(db, prefix) == CURRENT_SCHEMA_VERSION  # re-running the step is harmless
        store = SessionStore(db, table_prefix=prefix)
        sid = await store.create_session()
        from power_loop.store import NewMessage, RoundUsage

        await store.append_messages(
            sid,
            [NewMessage("user", "hi")],
            begin_send=True,
            round_usage=RoundUsage(0, 3, 4, 7, duration_ms=120, attempts=2),
        )
        [row] = await store.list_usage_rounds(sid)
        assert (row.total_tokens, row.duration_ms, row.attempts) == (7, 120, 2)
    finally:
        await db.close()


async def test_a_version_6_schema_gains_the_follow_up_kind(store_dsn_and_prefix: tuple[str, str]) -> None:
    dsn, prefix = store_dsn_and_prefix
    db = await connect_database(dsn)
    try:
        assert await ensure_schema(db, prefix) == CURRENT_SCHEMA_VERSION
        store = SessionStore(db, table_prefix=prefix)
        sid = await store.create_session()
        await store.enqueue_follow_up(sid, "queued before the upgrade")
        await db.execute(f"ALTER TABLE {prefix}follow_ups DROP COLUMN kind")  # as version 6 had it
        await db.execute(f"UPDATE {prefix}schema_migrations SET version = ? WHERE id = ?", (6, 1))
        assert await ensure_schema(db, prefix) == CURRENT_SCHEMA_VERSION
        await db.execute(f"UPDATE {prefix}schema_migrations SET version = ? WHERE id = ?", (6, 1))
        assert await ensure_schema(db, prefix) == CURRENT_SCHEMA_VERSION  # re-running the step is harmless
        steer = await store.enqueue_follow_up(sid, "change course", kind="steer")
        assert [(f.content, f.kind) for f in await store.list_follow_ups(sid)] == [
            ("queued before the upgrade", "queue"),
            ("change course", "steer"),
        ]
        assert await store.latest_steer(sid) == steer
        with pytest.raises(ConfigError, match="kind"):
            await store.enqueue_follow_up(sid, "x", kind="urgent")
    finally:
        await db.close()
