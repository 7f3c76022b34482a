"""The bring-your-own-driver example (``examples/support/aiosqlite_db.py``, on aiosqlite).

The whole store conformance suite already runs on it (backend id ``aiosqlite`` of the ``store``
fixture); these tests pin what is specific to a third-party adapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from power_loop import StatefulAgentLoop
from power_loop.errors import HistoryInvariantError, StoreClosedError, StoreIntegrityError
from power_loop.store import Database, NewMessage, SessionStore, Transaction, open_store
from power_loop.testing import ScriptedLLM


@pytest.fixture
def adapter(custom_adapter: Any) -> Any:
    return custom_adapter


async def test_adapter_satisfies_the_port(adapter: Any, tmp_path: Path) -> None:
    db = await adapter.AiosqliteDatabase.open(str(tmp_path / "a.db"))
    try:
        assert isinstance(db, Database)
        assert db.dialect.name == "sqlite"

        async def unit(tx: Transaction) -> None:
            assert isinstance(tx, Transaction)

        await db.transact(unit)
    finally:
        await db.close()


async def test_adapter_and_builtin_backend_share_one_file(adapter: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    custom = await adapter.open_aiosqlite_store(path, table_prefix="pl_")
    builtin = await open_store(path, table_prefix="pl_", schema="verify")  # same schema, byte for byte
    try:
        sid = await custom.create_session(system_prompt="p")
        await custom.append_messages(sid, [NewMessage("user", "via aiosqlite")], begin_send=True)
        res = await builtin.append_messages(sid, [NewMessage("assistant", "via sqlite3")])
        assert res.first_seq == 2
        assert [m.content for m in await custom.load_active_messages(sid)] == ["via aiosqlite", "via sqlite3"]
    finally:
        await custom.close()
        await builtin.close()


async def test_a_failing_unit_rolls_back_and_the_connection_stays_usable(
    adapter: Any, tmp_path: Path
) -> None:
    store: SessionStore = await adapter.open_aiosqlite_store(str(tmp_path / "r.db"))
    try:
        sid = await store.create_session()
        await store.append_messages(
            sid, [NewMessage("assistant", None, tool_calls=[{"id": "c1", "function": {"name": "f"}}])]
        )
        with pytest.raises(HistoryInvariantError):  # a user turn while a tool call is unanswered
            await store.append_messages(sid, [NewMessage("user", "too early")])
        assert await store.count_messages(sid) == 1
        await store.append_messages(sid, [NewMessage("tool", "ok", tool_call_id="c1")])
        assert await store.count_messages(sid) == 2
    finally:
        await store.close()


async def test_driver_errors_are_mapped_and_close_is_final(adapter: Any, tmp_path: Path) -> None:
    db = await adapter.AiosqliteDatabase.open(str(tmp_path / "e.db"))
    await db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
    await db.execute("INSERT INTO t VALUES (?)", (1,))
    with pytest.raises(StoreIntegrityError):
        await db.execute("INSERT INTO t VALUES (?)", (1,))
    await db.close()
    await db.close()  # idempotent
    with pytest.raises(StoreClosedError):
        await db.fetchone("SELECT 1")


async def test_a_loop_runs_on_the_adapter(adapter: Any, tmp_path: Path) -> None:
    store = await adapter.open_aiosqlite_store(str(tmp_path / "l.db"))
    llm = ScriptedLLM([ScriptedLLM.text("hi")])
    async with StatefulAgentLoop(llm=llm, store=store, lease_ttl_s=30) as loop:
        sid = await loop.new_session()
        result = await loop.send("hello", sid)
        assert result.final_text == "hi"
        lease = await store.get_lease(sid)
        assert lease is not None and lease.epoch == 1 and lease.expires_at_ms == 0  # held, then released
    assert [m.role for m in await store.load_all_messages(sid)] == ["user", "assistant"]
    await store.close()
