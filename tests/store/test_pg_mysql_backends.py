"""The PostgreSQL and MySQL/MariaDB backends against the real local servers.

DSNs come from ``POWER_LOOP_TEST_POSTGRES_DSN`` / ``POWER_LOOP_TEST_MYSQL_DSN``; without them the
tests skip (or fail when ``CI`` is set). Every test works under a fresh table prefix and drops its
tables afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from power_loop.errors import (
    StoreClosedError,
    StoreConnectionLost,
    StoreIntegrityError,
    StoreUnavailable,
)
from power_loop.store._port import ColumnSpec, Database, IndexSpec, TableSpec, Transaction

DsnFor = Callable[[str], str]
ConnectServer = Callable[..., Awaitable[Any]]  # the conftest fixtures
TYPES = TableSpec(
    "types",
    (
        ColumnSpec("k", "key", nullable=False),
        ColumnSpec("n", "int", nullable=False, default=7),
        ColumnSpec("body", "text", default="it's"),
        ColumnSpec("flag", "small", nullable=False, default=1),
        ColumnSpec("status", "enum", nullable=False, default="active"),
        ColumnSpec("maybe", "int"),
    ),
    ("k",),
    (IndexSpec("idx_types_status", ("status", "n")), IndexSpec("idx_types_flag", ("flag",), unique=False)),
)
COUNTERS = TableSpec(
    "counters",
    (
        ColumnSpec("k", "key", nullable=False),
        ColumnSpec("v", "text"),
        ColumnSpec("n", "int", nullable=False, default=0),
        ColumnSpec("created", "int"),
    ),
    ("k",),
)


async def drop_prefixed(db: Any, prefix: str) -> None:
    rows = await db.fetchall(
        "SELECT table_name AS name FROM information_schema.tables "
        "WHERE table_schema = " + ("current_schema()" if db.dialect.name == "postgres" else "DATABASE()")
    )
    for row in rows:
        if str(row["name"]).lower().startswith(prefix.lower()):
            await db.execute(f"DROP TABLE {row['name']}")


@pytest.fixture
async def db(server_backend: str, server_dsn: DsnFor, connect_server: ConnectServer) -> AsyncIterator[Any]:
    database = await connect_server(server_backend, server_dsn(server_backend))
    database.test_prefix = f"t{uuid.uuid4().hex[:10]}_"
    try:
        yield database
    finally:
        await drop_prefixed(database, database.test_prefix)
        await database.close()


async def make(db: Any, *tables: TableSpec) -> None:
    for table in tables:
        for stmt in db.dialect.create_table(table, db.test_prefix):
            await db.execute(stmt)


async def test_database_satisfies_the_port(db: Any) -> None:
    assert isinstance(db, Database)
    assert db.test_prefix not in db.server and "@" not in db.server


async def test_ddl_is_idempotent_and_creates_every_type_and_index(db: Any) -> None:
    await make(db, TYPES)
    await make(db, TYPES)  # second run is a no-op
    p = db.test_prefix
    full = p + "types"
    assert await db.fetchone(db.dialect.table_exists_sql(), (full,)) is not None
    assert await db.fetchone(db.dialect.table_exists_sql(), (p + "nope",)) is None
    cols = [r["name"] for r in await db.fetchall(db.dialect.columns_sql(), (full,))]
    assert cols == ["k", "n", "body", "flag", "status", "maybe"]
    if db.dialect.name == "postgres":
        idx = await db.fetchall("SELECT indexname AS name FROM pg_indexes WHERE tablename = ?", (full,))
    else:
        idx = await db.fetchall(
            "SELECT DISTINCT index_name AS name FROM information_schema.statistics "
            "WHERE table_schema = DATABASE() AND table_name = ?",
            (full,),
        )
    names = {str(r["name"]).lower() for r in idx}
    assert {f"{p}idx_types_status", f"{p}idx_types_flag"} <= names
    # Defaults of every logical type apply.
    await db.execute(f"INSERT INTO {full} (k) VALUES (?)", ("a",))
    row = await db.fetchone(f"SELECT * FROM {full} WHERE k = ?", ("a",))
    assert row == {"k": "a", "n": 7, "body": "it's", "flag": 1, "status": "active", "maybe": None}
    # A migration-style column addition (probe first: MySQL has no ADD COLUMN IF NOT EXISTS).
    await db.execute(db.dialect.add_column("types", ColumnSpec("extra", "int", default=3), p))
    cols = [r["name"] for r in await db.fetchall(db.dialect.columns_sql(), (full,))]
    assert cols[-1] == "extra"
    assert (await db.fetchone(f"SELECT extra FROM {full} WHERE k = ?", ("a",))) == {"extra": 3}


async def test_translation_reaches_the_server_intact(db: Any) -> None:
    row = await db.fetchone("SELECT 'why?' AS w, '50%' AS p, ? AS v, ? AS u", ("x", "y%"))
    assert row == {"w": "why?", "p": "50%", "v": "x", "u": "y%"}


async def test_upsert_semantics(db: Any) -> None:
    await make(db, COUNTERS)
    t = db.test_prefix + "counters"
    sql = db.dialect.upsert(t, ["k"], ["v"], add_cols=["n"], insert_only_cols=["created"])
    assert await db.execute(sql, ("a", "first", 5, 100)) == 1
    assert await db.execute(sql, ("a", "second", 3, 200)) == 1
    assert await db.execute(sql, ("a", "second", 0, 300)) == 1  # unchanged values still count 1
    assert await db.fetchone(f"SELECT v, n, created FROM {t} WHERE k = ?", ("a",)) == {
        "v": "second",
        "n": 8,
        "created": 100,
    }
    keep = db.dialect.upsert(t, ["k"], [], insert_only_cols=["v"])
    await db.execute(keep, ("a", "ignored"))
    await db.execute(keep, ("b", "kept"))
    rows = await db.fetchall(f"SELECT k, v FROM {t} ORDER BY k")
    assert rows == [{"k": "a", "v": "second"}, {"k": "b", "v": "kept"}]


async def test_insert_ignore(db: Any) -> None:
    await make(db, COUNTERS)
    t = db.test_prefix + "counters"
    sql = db.dialect.insert_ignore(t, ["k", "v"])
    assert await db.execute(sql, ("a", "one")) == 1
    assert await db.execute(sql, ("a", "two")) == 0
    assert await db.fetchall(f"SELECT k, v FROM {t}") == [{"k": "a", "v": "one"}]


async def test_transact_commits_and_rolls_back(db: Any) -> None:
    await make(db, COUNTERS)
    t = db.test_prefix + "counters"

    async def ok(tx: Transaction) -> int:
        await tx.execute(f"INSERT INTO {t} (k, n) VALUES (?, ?)", ("a", 1))
        row = await tx.fetchone(f"SELECT n FROM {t} WHERE k = ?{db.dialect.for_update}", ("a",))
        assert row is not None
        return int(row["n"]) + await tx.execute(f"UPDATE {t} SET n = n + 1 WHERE k = ?", ("a",))

    assert await db.transact(ok) == 2

    async def boom(tx: Transaction) -> None:
        await tx.execute(f"INSERT INTO {t} (k, n) VALUES (?, ?)", ("b", 1))
        await tx.execute(f"UPDATE {t} SET n = 100 WHERE k = ?", ("a",))
        raise KeyError("abort")

    with pytest.raises(KeyError, match="abort"):
        await db.transact(boom)
    assert await db.fetchall(f"SELECT k, n FROM {t}") == [{"k": "a", "n": 2}]


async def test_integrity_errors_are_typed_and_roll_back(db: Any) -> None:
    await make(db, COUNTERS)
    t = db.test_prefix + "counters"
    await db.execute(f"INSERT INTO {t} (k) VALUES (?)", ("a",))
    with pytest.raises(StoreIntegrityError) as info:
        await db.execute(f"INSERT INTO {t} (k) VALUES (?)", ("a",))
    assert info.value.code == "store.integrity"

    async def dup(tx: Transaction) -> None:
        await tx.execute(f"INSERT INTO {t} (k) VALUES (?)", ("b",))
        await tx.execute(f"INSERT INTO {t} (k) VALUES (?)", ("a",))

    with pytest.raises(StoreIntegrityError):
        await db.transact(dup)
    assert await db.fetchall(f"SELECT k FROM {t}") == [{"k": "a"}]


async def test_an_idle_pooled_connection_holds_no_transaction(
    db: Any, server_backend: str, server_dsn: DsnFor, connect_server: ConnectServer
) -> None:
    # MySQL pools run with autocommit off (a unit's first statement opens its transaction, saving
    # the BEGIN round trip), so every lone read or write, failed statement and unit must still end
    # its transaction: an idle pooled connection holding one keeps metadata locks on the tables it
    # touched, and DDL from any other session would wait for them.
    t = db.test_prefix + "counters"
    size = {"min_size": 1, "max_size": 1} if server_backend == "postgres" else {"minsize": 1, "maxsize": 1}
    worker = await connect_server(server_backend, server_dsn(server_backend), **size)

    async def own_id(tx: Transaction) -> int:
        return await _own_connection_id(tx, server_backend)

    async def read(tx: Transaction) -> list[Any]:
        return await tx.fetchall(f"SELECT k FROM {t}")

    async def lock_then_fail(tx: Transaction) -> None:
        await tx.fetchone(f"SELECT k FROM {t} WHERE k = ?{db.dialect.for_update}", ("a",))
        raise KeyError("abort")

    async def insert() -> None:
        assert await worker.execute(f"INSERT INTO {t} (k) VALUES (?)", ("b",)) == 1

    async def failed_insert() -> None:
        with pytest.raises(StoreIntegrityError):
            await worker.execute(f"INSERT INTO {t} (k) VALUES (?)", ("a",))

    async def fetch_one() -> None:
        assert await worker.fetchone(f"SELECT k FROM {t} WHERE k = ?", ("a",)) == {"k": "a"}

    async def fetch_all() -> None:
        assert await worker.fetchall(f"SELECT k FROM {t}") == [{"k": "a"}]

    async def read_unit() -> None:
        assert await worker.transact(read) == [{"k": "a"}]

    async def failed_unit() -> None:
        with pytest.raises(KeyError, match="abort"):
            await worker.transact(lock_then_fail)

    async def drop(tx: Transaction) -> None:
        # A server-side wait limit turns a blocked DROP into an error instead of a hang.
        limit = (
            "SET LOCAL lock_timeout = '10s'"
            if server_backend == "postgres"
            else "SET SESSION lock_wait_timeout = 10"
        )
        await tx.execute(limit)
        await tx.execute(f"DROP TABLE {t}")

    try:
        first = await worker.transact(own_id)
        for step in (insert, failed_insert, fetch_one, fetch_all, read_unit, failed_unit):
            await make(db, COUNTERS)
            await db.execute(f"INSERT INTO {t} (k) VALUES (?)", ("a",))
            await step()
            # From another session, while the worker's only connection sits idle in its pool.
            await db.transact(drop)
            assert await db.fetchone(db.dialect.table_exists_sql(), (t,)) is None, step.__name__
        # One pooled connection served it all (none was dropped, which would also free its locks).
        assert await worker.transact(own_id) == first
    finally:
        await worker.close()


async def test_fetch_types_round_trip(db: Any) -> None:
    await make(db, TYPES)
    t = db.test_prefix + "types"
    big = "héllo wörld ✓ 🌍 " + "x" * (1 << 20)
    await db.execute(
        f"INSERT INTO {t} (k, n, body, flag, status, maybe) VALUES (?, ?, ?, ?, ?, ?)",
        ("ÄÖ-🔑", 2**62, big, 1, "done", None),
    )
    row = await db.fetchone(f"SELECT * FROM {t}")
    assert row is not None
    assert row["k"] == "ÄÖ-🔑" and row["body"] == big and row["maybe"] is None
    assert type(row["n"]) is int and row["n"] == 2**62
    assert type(row["flag"]) is int and row["flag"] == 1
    assert await db.fetchone(f"SELECT * FROM {t} WHERE k = ?", ("äö-🔑",)) is None  # case-sensitive ids
    agg = await db.fetchone(f"SELECT COUNT(*) AS c, SUM(n) AS s, MAX(n) AS m FROM {t}")
    assert agg == {"c": 1, "s": 2**62, "m": 2**62}
    assert all(type(v) is int for v in agg.values())
    assert await db.fetchone(f"SELECT k FROM {t} WHERE k = ?", ("missing",)) is None


async def test_executemany(db: Any) -> None:
    await make(db, COUNTERS)
    t = db.test_prefix + "counters"

    async def unit(tx: Transaction) -> None:
        await tx.executemany(f"INSERT INTO {t} (k, n) VALUES (?, ?)", [(f"k{i}", i) for i in range(100)])
        await tx.executemany(f"INSERT INTO {t} (k, n) VALUES (?, ?)", [])
        sql = db.dialect.upsert(t, ["k"], [], add_cols=["n"])
        await tx.executemany(sql, [("k1", 10), ("k2", 20), ("new", 5)])

    await db.transact(unit)
    rows = await db.fetchall(f"SELECT k, n FROM {t} WHERE k IN (?, ?, ?) ORDER BY k", ("k1", "k2", "new"))
    assert rows == [{"k": "k1", "n": 11}, {"k": "k2", "n": 22}, {"k": "new", "n": 5}]
    assert await db.fetchone(f"SELECT COUNT(*) AS c FROM {t}") == {"c": 101}


async def test_for_update_serialises_read_modify_write(db: Any) -> None:
    await make(db, COUNTERS)
    t = db.test_prefix + "counters"
    await db.execute(f"INSERT INTO {t} (k, n) VALUES (?, ?)", ("c", 0))

    async def bump(tx: Transaction) -> None:
        row = await tx.fetchone(f"SELECT n FROM {t} WHERE k = ?{db.dialect.for_update}", ("c",))
        assert row is not None
        await tx.execute(f"UPDATE {t} SET n = ? WHERE k = ?", (int(row["n"]) + 1, "c"))

    await asyncio.gather(*(db.transact(bump) for _ in range(30)))
    assert await db.fetchone(f"SELECT n FROM {t} WHERE k = ?", ("c",)) == {"n": 30}


async def _wait_for(probe: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(2000):
        if await probe():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never became true")


async def test_advisory_lock_excludes_a_second_holder(
    db: Any, server_backend: str, server_dsn: DsnFor, connect_server: ConnectServer
) -> None:
    other = await connect_server(server_backend, server_dsn(server_backend))
    # Short enough that MySQL's database-scoped lock name stays readable (names over 64 chars are hashed).
    name = f"plt:{uuid.uuid4().hex[:12]}"
    events: list[str] = []
    a_inside = asyncio.Event()
    release_a = asyncio.Event()

    async def first() -> None:
        async with db.advisory_lock(name):
            events.append("a-in")
            a_inside.set()
            await release_a.wait()
            events.append("a-out")

    async def second() -> None:
        await a_inside.wait()
        async with other.advisory_lock(name):
            events.append("b-in")

    async def b_is_waiting() -> bool:
        if server_backend == "postgres":
            row = await db.fetchone(
                "SELECT COUNT(*) AS c FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )
        else:
            row = await db.fetchone(
                "SELECT COUNT(*) AS c FROM information_schema.processlist "
                "WHERE info LIKE 'SELECT GET_LOCK(%' AND info LIKE ?",
                (f"%{name}%",),
            )
        return row is not None and int(row["c"]) >= 1

    try:
        tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
        await a_inside.wait()
        await _wait_for(b_is_waiting)  # the second holder is blocked on the server...
        assert events == ["a-in"]  # ...and has not entered
        release_a.set()
        await asyncio.gather(*tasks)
        assert events == ["a-in", "a-out", "b-in"]
        async with other.advisory_lock(name):  # released: can be taken again at once
            events.append("again")
        assert events[-1] == "again"
    finally:
        await other.close()


async def test_advisory_lock_gives_up_after_lock_timeout(
    db: Any, server_backend: str, server_dsn: DsnFor, connect_server: ConnectServer
) -> None:
    impatient = await connect_server(server_backend, server_dsn(server_backend), lock_timeout=0.2)
    name = f"power_loop:test:{uuid.uuid4().hex}"
    try:
        async with db.advisory_lock(name):
            with pytest.raises(StoreUnavailable, match="could not take the lock") as info:
                async with impatient.advisory_lock(name):
                    raise AssertionError("entered a held lock")
            assert info.value.code == "store.unavailable"
        async with impatient.advisory_lock(name):  # free again once the holder left
            pass
    finally:
        await impatient.close()


async def _own_connection_id(tx: Transaction, backend: str) -> int:
    sql = "SELECT pg_backend_pid() AS id" if backend == "postgres" else "SELECT CONNECTION_ID() AS id"
    row = await tx.fetchone(sql)
    assert row is not None
    return int(row["id"])


async def test_lost_connection_mid_transaction_then_pool_recovers(
    db: Any, server_backend: str, server_dsn: DsnFor, connect_server: ConnectServer
) -> None:
    await make(db, COUNTERS)
    t = db.test_prefix + "counters"
    killer = await connect_server(server_backend, server_dsn(server_backend))
    kill = "SELECT pg_terminate_backend(?, 10000)" if server_backend == "postgres" else "KILL ?"

    async def victim(tx: Transaction) -> None:
        await tx.execute(f"INSERT INTO {t} (k) VALUES (?)", ("lost",))
        await killer.execute(kill, (await _own_connection_id(tx, server_backend),))
        await tx.execute(f"INSERT INTO {t} (k) VALUES (?)", ("after",))

    try:
        with pytest.raises(StoreConnectionLost) as info:
            await db.transact(victim)
        assert info.value.code == "store.connection_lost"
        assert db.server in str(info.value)
        # The pool hands out a healthy connection next, and nothing of the unit was committed.
        assert await db.fetchone("SELECT 1 AS one") == {"one": 1}
        assert await db.fetchall(f"SELECT k FROM {t}") == []

        async def ok(tx: Transaction) -> int:
            return await tx.execute(f"INSERT INTO {t} (k) VALUES (?)", ("fine",))

        assert await db.transact(ok) == 1
    finally:
        await killer.close()


async def test_lost_connection_mid_statement(
    db: Any, server_backend: str, server_dsn: DsnFor, connect_server: ConnectServer
) -> None:
    killer = await connect_server(server_backend, server_dsn(server_backend))
    sleep = "SELECT pg_sleep(30)" if server_backend == "postgres" else "SELECT SLEEP(30)"
    kill = "SELECT pg_terminate_backend(?, 10000)" if server_backend == "postgres" else "KILL ?"
    started = asyncio.Event()
    ids: list[int] = []

    async def slow(tx: Transaction) -> None:
        ids.append(await _own_connection_id(tx, server_backend))
        started.set()
        await tx.fetchone(sleep)

    try:
        task = asyncio.create_task(db.transact(slow))
        await started.wait()
        await killer.execute(kill, (ids[0],))
        with pytest.raises(StoreConnectionLost):
            await task
        assert await db.fetchone("SELECT 2 AS two") == {"two": 2}
    finally:
        await killer.close()


async def test_cancelled_unit_rolls_back_and_pool_stays_usable(db: Any, server_backend: str) -> None:
    await make(db, COUNTERS)
    t = db.test_prefix + "counters"
    sleep = "SELECT pg_sleep(30)" if server_backend == "postgres" else "SELECT SLEEP(30)"
    started = asyncio.Event()
    ids: list[int] = []

    async def slow(tx: Transaction) -> None:
        await tx.execute(f"INSERT INTO {t} (k) VALUES (?)", ("cancelled",))
        ids.append(await _own_connection_id(tx, server_backend))
        started.set()
        await tx.fetchone(sleep)

    task = asyncio.create_task(db.transact(slow))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await db.fetchall(f"SELECT k FROM {t}") == []
    assert await db.execute(f"INSERT INTO {t} (k) VALUES (?)", ("next",)) == 1
    if server_backend == "mysql":
        # The client dropped the connection; end the server-side SLEEP now rather than when the
        # server notices, so the teardown's DROP TABLE does not wait for its metadata lock.
        with contextlib.suppress(Exception):
            await db.execute("KILL ?", (ids[0],))


async def test_closed_database_refuses_work(
    server_backend: str, server_dsn: DsnFor, connect_server: ConnectServer
) -> None:
    database = await connect_server(
        server_backend,
        server_dsn(server_backend),
        **({"max_size": 1} if server_backend == "postgres" else {"maxsize": 1}),
    )
    # A pool of one connection must not deadlock when statements run inside the advisory lock.
    async with database.advisory_lock("power_loop:test:pool-of-one"):
        assert await database.fetchone("SELECT 3 AS three") == {"three": 3}
    await database.close()
    await database.close()  # idempotent
    with pytest.raises(StoreClosedError):
        await database.fetchone("SELECT 1 AS one")


PROVISION_SCRIPT = textwrap.dedent(
    """
    import asyncio, os, sys
    from power_loop.store._port import ColumnSpec, TableSpec
    backend, dsn, prefix, index = sys.argv[1:5]
    TABLES = [
        TableSpec(f"t{i}", (ColumnSpec("k", "key", nullable=False), ColumnSpec("n", "int")), ("k",))
        for i in range(6)
    ]
    LOG = TableSpec("log", (ColumnSpec("proc", "int", nullable=False), ColumnSpec("seen", "int")), ("proc",))

    async def main():
        if backend == "postgres":
            from power_loop.store._postgres import connect_postgres as connect
        else:
            from power_loop.store._mysql import connect_mysql as connect
        db = await connect(dsn)
        try:
            async with db.advisory_lock("power_loop:provision:" + prefix):
                for table in [LOG, *TABLES]:
                    if await db.fetchone(db.dialect.table_exists_sql(), (prefix + table.name,)) is None:
                        for stmt in db.dialect.create_table(table, prefix):
                            await db.execute(stmt)
                seen = (await db.fetchone(f"SELECT COUNT(*) AS c FROM {prefix}log"))["c"]
                await db.execute(f"INSERT INTO {prefix}log (proc, seen) VALUES (?, ?)", (int(index), seen))
        finally:
            await db.close()

    asyncio.run(main())
    """
)


async def test_concurrent_processes_provision_under_the_lock(
    db: Any, server_backend: str, server_dsn: DsnFor
) -> None:
    dsn = server_dsn(server_backend)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            PROVISION_SCRIPT,
            server_backend,
            dsn,
            db.test_prefix,
            str(i),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for i in range(4)
    ]
    outcomes = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 120)
    for proc, (_, err) in zip(procs, outcomes, strict=True):
        assert proc.returncode == 0, err.decode()
    rows = await db.fetchall(f"SELECT proc, seen FROM {db.test_prefix}log ORDER BY seen")
    # Each process saw the rows of exactly the ones that held the lock before it.
    assert [r["seen"] for r in rows] == [0, 1, 2, 3]
    assert sorted(r["proc"] for r in rows) == [0, 1, 2, 3]
    for i in range(6):
        assert await db.fetchone(db.dialect.table_exists_sql(), (f"{db.test_prefix}t{i}",)) is not None
