"""``check_database``: the store's conformance checks, for a third-party ``Database`` adapter.

An adapter implements the small port of :mod:`power_loop.store` (``Database`` / ``Transaction``) on
its own driver. These checks drive it the way :class:`~power_loop.store.SessionStore` does and report
every broken promise at once: transactions that do not roll back, driver errors that escape unmapped,
lost concurrent updates, values that do not round-trip, a history invariant not enforced.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import HistoryInvariantError, StoreError, StoreIntegrityError
from ..store import Database, NewMessage, SessionStore, Transaction, all_table_names, ensure_schema

#: Opens a new connection (or pool) to the database under test; called several times.
DatabaseFactory = Callable[[], Awaitable[Database]]

# How long the first holder keeps the lock once a second connection asks for it.
_LOCK_WINDOW_S = 0.5
_TEXT = "héllo ✓ — 日本語 \U0001f600 'quotes' \"double\" back\\slash %s ? :1 $1\n" + "x" * 70_000


@dataclass
class DatabaseReport:
    """What :func:`check_database` found: the names of the checks that passed and the failures."""

    passed: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return not self.failures


async def check_database(
    factory: DatabaseFactory, *, table_prefix: str = "plcheck_", raise_on_failure: bool = True
) -> DatabaseReport:
    """Run the conformance checks against the ``Database`` that ``factory()`` opens.

    The schema is provisioned under ``table_prefix`` with :func:`~power_loop.store.ensure_schema`
    and dropped at the end, so point it at a scratch database or a prefix nothing else uses. With
    ``raise_on_failure`` (the default) any failure raises an ``AssertionError`` naming every failed
    check; otherwise inspect the returned :class:`DatabaseReport`.
    """
    report = DatabaseReport()
    db = await factory()
    try:
        if not isinstance(db, Database):
            raise AssertionError(f"factory() returned {type(db).__name__}, which lacks the Database port")
        await _drop(db, table_prefix)
        await ensure_schema(db, table_prefix)
        store = SessionStore(db, table_prefix=table_prefix)
        for name, check in _CHECKS:
            try:
                await check(_Ctx(db, store, factory, table_prefix))
            except Exception as exc:  # every failure is collected, not just the first
                report.failures[name] = f"{type(exc).__name__}: {exc}"
            else:
                report.passed.append(name)
        await _drop(db, table_prefix)
    finally:
        await db.close()
    if raise_on_failure and report.failures:
        lines = "\n".join(f"  {name}: {why}" for name, why in report.failures.items())
        raise AssertionError(f"{len(report.failures)} Database conformance check(s) failed:\n{lines}")
    return report


@dataclass
class _Ctx:
    db: Database
    store: SessionStore
    factory: DatabaseFactory
    prefix: str

    @property
    def scratch(self) -> str:
        return f"{self.prefix}check_scratch"


async def _drop(db: Database, prefix: str) -> None:
    for name in [f"{prefix}check_scratch", *all_table_names(prefix)]:
        await db.execute(f"DROP TABLE IF EXISTS {name}")


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


async def _sessions_round_trip(c: _Ctx) -> None:
    sid = await c.store.create_session(system_prompt=_TEXT, metadata={"k": [1, 2.5, None, "é"]})
    row = await c.store.get_session(sid)
    _expect(row is not None and row.system_prompt == _TEXT, "system prompt did not round-trip")
    assert row is not None
    _expect(row.metadata == {"k": [1, 2.5, None, "é"]}, f"metadata came back as {row.metadata!r}")
    merged = await c.store.merge_session_metadata(sid, {"more": True})
    _expect(merged == {"k": [1, 2.5, None, "é"], "more": True}, f"merged metadata: {merged!r}")
    _expect(sid in {s.session_id for s in await c.store.list_sessions(limit=1000)}, "session not listed")


async def _messages_in_order(c: _Ctx) -> None:
    sid = await c.store.create_session()
    await c.store.append_messages(sid, [NewMessage("user", _TEXT)], begin_send=True)
    await c.store.append_messages(sid, [NewMessage("assistant", f"reply {i}") for i in range(5)])
    rows = await c.store.load_all_messages(sid)
    seqs = [r.seq for r in rows]
    _expect(seqs == sorted(seqs) and len(set(seqs)) == 6, f"seqs not strictly increasing: {seqs}")
    _expect(rows[0].content == _TEXT, "long unicode content did not round-trip")
    _expect([r.content for r in rows[1:]] == [f"reply {i}" for i in range(5)], "messages out of order")


async def _history_invariant(c: _Ctx) -> None:
    sid = await c.store.create_session()
    call = {"id": "call_1", "type": "function", "function": {"name": "t", "arguments": "{}"}}
    await c.store.append_messages(
        sid, [NewMessage("user", "q"), NewMessage("assistant", "", tool_calls=[call])], begin_send=True
    )
    before = await c.store.count_messages(sid)
    try:
        await c.store.append_messages(sid, [NewMessage("tool", "r", tool_call_id="nope")])
    except HistoryInvariantError:
        pass
    else:
        raise AssertionError("a tool result for an unknown call was accepted")
    _expect(await c.store.count_messages(sid) == before, "a refused append left rows behind")


async def _rollback(c: _Ctx) -> None:
    await c.db.execute(f"CREATE TABLE {c.scratch} (k VARCHAR(64) PRIMARY KEY, v INTEGER NOT NULL)")

    async def insert_then_fail(tx: Transaction) -> None:
        await tx.execute(f"INSERT INTO {c.scratch} (k, v) VALUES (?, ?)", ("a", 1))
        raise RuntimeError("boom")

    try:
        await c.db.transact(insert_then_fail)
    except RuntimeError:
        pass
    else:
        raise AssertionError("transact() swallowed the exception raised by the work")
    rows = await c.db.fetchall(f"SELECT k FROM {c.scratch}")
    _expect(rows == [], f"transact() did not roll back: {rows}")


async def _commit_visible_elsewhere(c: _Ctx) -> None:
    async def insert(tx: Transaction) -> int:
        return await tx.execute(f"INSERT INTO {c.scratch} (k, v) VALUES (?, ?)", ("b", 2))

    _expect(await c.db.transact(insert) == 1, "execute() did not report one affected row")
    other = await c.factory()
    try:
        row = await other.fetchone(f"SELECT v FROM {c.scratch} WHERE k = ?", ("b",))
    finally:
        await other.close()
    _expect(
        row is not None and int(row["v"]) == 2, f"a committed row is not visible to a new connection: {row}"
    )


async def _integrity_errors_mapped(c: _Ctx) -> None:
    try:
        await c.db.execute(f"INSERT INTO {c.scratch} (k, v) VALUES (?, ?)", ("b", 3))
    except StoreIntegrityError:
        return
    except StoreError as exc:
        raise AssertionError(
            f"a duplicate key raised {type(exc).__name__}, not StoreIntegrityError"
        ) from None
    raise AssertionError("a duplicate primary key was accepted")


async def _concurrent_updates(c: _Ctx) -> None:
    sid = await c.store.create_session()
    await asyncio.gather(
        *(c.store.mutate_runtime_state(sid, "n", lambda n: (n or 0) + 1, default=0) for _ in range(20))
    )
    value = await c.store.get_runtime_state(sid, "n")
    _expect(value == 20, f"concurrent read-modify-writes lost updates: 20 expected, {value} stored")


async def _advisory_lock(c: _Ctx) -> None:
    order: list[str] = []
    held, trying, got_in = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with c.db.advisory_lock(f"{c.prefix}check"):
            order.append("a-in")
            held.set()
            await trying.wait()
            # Held on while the second connection asks for the lock: a lock that does not exclude lets
            # it in during this window (a correct one never does, however long the window).
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(got_in.wait(), _LOCK_WINDOW_S)
            order.append("a-out")

    async def second() -> None:
        await held.wait()
        other = await c.factory()
        try:
            trying.set()
            async with other.advisory_lock(f"{c.prefix}check"):
                order.append("b-in")
                got_in.set()
        finally:
            await other.close()

    await asyncio.wait_for(asyncio.gather(first(), second()), timeout=60)
    _expect(order == ["a-in", "a-out", "b-in"], f"the advisory lock did not exclude: {order}")


_CHECKS: list[tuple[str, Callable[[_Ctx], Awaitable[Any]]]] = [
    ("sessions_round_trip", _sessions_round_trip),
    ("messages_in_order", _messages_in_order),
    ("history_invariant", _history_invariant),
    ("transaction_rollback", _rollback),
    ("commit_visible_to_new_connection", _commit_visible_elsewhere),
    ("integrity_errors_mapped", _integrity_errors_mapped),
    ("concurrent_updates", _concurrent_updates),
    ("advisory_lock", _advisory_lock),
]
