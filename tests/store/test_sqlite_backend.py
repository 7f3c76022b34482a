"""SQLite backend specifics: the connection thread, group commit, pragmas, errors, maintenance."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from power_loop.errors import StoreClosedError, StoreCorruptError, StoreError, StoreUnavailable
from power_loop.store import (
    Database,
    Maintenance,
    NewMessage,
    SessionStore,
    SqliteDatabase,
    Transaction,
    open_store,
)


@pytest.fixture
async def db(tmp_path: Path) -> Any:
    d = await SqliteDatabase.open(str(tmp_path / "t.db"))
    await d.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)")
    yield d
    await d.close()


async def test_database_satisfies_the_port(db: SqliteDatabase) -> None:
    assert isinstance(db, Database) and isinstance(db, Maintenance)


async def test_pragmas(db: SqliteDatabase) -> None:
    async def pragma(name: str) -> Any:
        row = await db.fetchone(f"PRAGMA {name}")
        assert row is not None
        return next(iter(row.values()))

    assert str(await pragma("journal_mode")).lower() == "wal"
    assert await pragma("synchronous") == 1  # NORMAL
    assert await pragma("foreign_keys") == 1
    assert await pragma("busy_timeout") == 5000


async def test_units_run_on_one_dedicated_thread(db: SqliteDatabase) -> None:
    seen: list[int] = []

    async def unit(tx: Transaction) -> int:
        seen.append(threading.get_ident())
        return await tx.execute("INSERT INTO kv VALUES (?, ?)", (f"k{len(seen)}", 1))

    assert await asyncio.gather(*[db.transact(unit) for _ in range(10)]) == [1] * 10
    assert len(seen) == 10 and len(set(seen)) == 1 and threading.get_ident() not in seen


async def test_foreign_awaitable_is_refused_and_rolled_back(db: SqliteDatabase) -> None:
    async def bad(tx: Transaction) -> None:
        await tx.execute("INSERT INTO kv VALUES ('x', 1)")
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="foreign awaitable"):
        await db.transact(bad)
    assert await db.fetchone("SELECT v FROM kv WHERE k = 'x'") is None
    assert await db.execute("INSERT INTO kv VALUES ('y', 2)") == 1  # still usable


async def test_failing_unit_rolls_back_and_maps_errors(db: SqliteDatabase) -> None:
    async def dup(tx: Transaction) -> None:
        await tx.execute("INSERT INTO kv VALUES ('a', 1)")
        await tx.execute("INSERT INTO kv VALUES ('a', 2)")

    with pytest.raises(StoreError, match="UNIQUE"):
        await db.transact(dup)
    assert await db.fetchall("SELECT * FROM kv") == []

    async def syntax(tx: Transaction) -> None:
        await tx.fetchall("SELEKT nothing")

    with pytest.raises(StoreError):
        await db.transact(syntax)


async def test_group_commit_isolates_a_failing_unit(db: SqliteDatabase) -> None:
    gate = threading.Event()

    async def blocker(tx: Transaction) -> str:
        gate.wait(10)  # holds the connection thread (synchronously) so the next units queue up
        await tx.execute("INSERT INTO kv VALUES ('blocker', 0)")
        return "blocker"

    def writer(i: int) -> Any:
        async def unit(tx: Transaction) -> int:
            await tx.execute("INSERT INTO kv VALUES (?, ?)", (f"k{i}", i))
            if i == 3:
                raise ValueError("unit 3 fails")
            return i

        return unit

    first = asyncio.ensure_future(db.transact(blocker))
    await asyncio.sleep(0.05)
    rest = [asyncio.ensure_future(db.transact(writer(i))) for i in range(6)]
    await asyncio.sleep(0.05)
    gate.set()
    assert await first == "blocker"
    results = await asyncio.gather(*rest, return_exceptions=True)
    assert [r for r in results if not isinstance(r, BaseException)] == [0, 1, 2, 4, 5]
    assert isinstance(results[3], ValueError)
    keys = sorted(r["k"] for r in await db.fetchall("SELECT k FROM kv"))
    assert keys == ["blocker", "k0", "k1", "k2", "k4", "k5"]


async def test_fetch_and_execute(db: SqliteDatabase) -> None:
    assert await db.execute("INSERT INTO kv VALUES (?, ?)", ("a", 1)) == 1
    assert await db.execute("UPDATE kv SET v = v + 1") == 1
    assert await db.fetchone("SELECT k, v FROM kv") == {"k": "a", "v": 2}
    assert await db.fetchall("SELECT k FROM kv WHERE v > ?", (5,)) == []


async def test_closed_database(tmp_path: Path) -> None:
    d = await SqliteDatabase.open(str(tmp_path / "c.db"))
    await d.close()
    await d.close()
    with pytest.raises(StoreClosedError) as err:
        await d.fetchone("SELECT 1")
    assert err.value.code == "store.closed"


async def test_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "junk.db"
    bad.write_bytes(b"this is definitely not a sqlite database file" * 100)
    with pytest.raises(StoreCorruptError, match=r"junk\.db") as err:
        await open_store(str(bad))
    assert err.value.code == "store.corrupt"


async def test_unopenable_path(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    with pytest.raises(StoreUnavailable, match="adir") as err:
        await SqliteDatabase.open(str(tmp_path / "adir"))
    assert err.value.code == "store.unavailable"


async def test_maintenance(tmp_path: Path) -> None:
    store = await open_store(str(tmp_path / "m.db"))
    try:
        sid = await store.create_session()
        await store.append_messages(sid, [NewMessage("user", "x" * 5000) for _ in range(50)])
        await store.checkpoint()
        await store.checkpoint(mode="passive")
        with pytest.raises(StoreError, match="checkpoint mode"):
            await store.checkpoint(mode="bogus")
        await store.vacuum()
        await store.vacuum(incremental=False)
        await store.backup(str(tmp_path / "bk" / "copy.db"))
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "bk" / "copy.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM pl_messages").fetchone()[0] == 50
    conn.close()


async def test_memory_maintenance_and_backup(tmp_path: Path) -> None:
    async with await open_store(":memory:") as store:
        sid = await store.create_session()
        await store.checkpoint()
        await store.backup(str(tmp_path / "mem.db"))
    copy = await open_store(str(tmp_path / "mem.db"))
    try:
        assert await copy.get_session(sid) is not None
    finally:
        await copy.close()


class _NoMaintenance:
    """A Database without the Maintenance capability (as the server backends)."""

    def __init__(self, inner: SqliteDatabase) -> None:
        self._inner = inner
        self.dialect = inner.dialect
        self.transact = inner.transact
        self.fetchone = inner.fetchone
        self.fetchall = inner.fetchall
        self.execute = inner.execute
        self.advisory_lock = inner.advisory_lock
        self.close = inner.close


async def test_maintenance_on_backends_without_it(tmp_path: Path) -> None:
    inner = await SqliteDatabase.open(":memory:")
    store = SessionStore(_NoMaintenance(inner), table_prefix="pl_")  # type: ignore[arg-type]
    try:
        await store.checkpoint()
        await store.vacuum()
        with pytest.raises(StoreError, match="backup"):
            await store.backup(str(tmp_path / "x.db"))
    finally:
        await store.close()


async def test_the_advisory_lock_excludes_a_second_connection_and_ordinary_use_makes_no_lock_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locks.db"
    store = await open_store(str(path))  # provisioning: BEGIN IMMEDIATE, no advisory lock
    await store.close()
    assert _lock_files(tmp_path) == []
    first, second = await SqliteDatabase.open(str(path)), await SqliteDatabase.open(str(path))
    try:
        order: list[str] = []
        async with first.advisory_lock("job:a/b"):
            waiter = asyncio.ensure_future(_enter(second, "job:a/b", order))
            for _ in range(50):  # the waiter runs its wait on a thread: give it every chance
                await asyncio.sleep(0.01)
            order.append("first-out")
        await asyncio.wait_for(waiter, 60)
        assert order == ["first-out", "second-in"]
        assert _lock_files(tmp_path) == ["locks.db-job_a_b.lock"]
    finally:
        await first.close()
        await second.close()


async def _enter(db: SqliteDatabase, name: str, order: list[str]) -> None:
    async with db.advisory_lock(name):
        order.append("second-in")


def _lock_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.lock"))
