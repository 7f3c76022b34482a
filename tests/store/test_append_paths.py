"""The two append paths: ``UPDATE … RETURNING`` (SQLite ≥ 3.35, PostgreSQL) and lock-then-update.

Dialects declaring ``supports_update_returning`` get the one-statement allocation; every other
dialect (MySQL, custom ones predating the capability) keeps the locking read. Both must write exactly
the same rows and raise exactly the same errors; the fast path must save the locking read.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from power_loop.errors import HistoryInvariantError, SessionNotFoundError
from power_loop.store import (
    KEEP,
    ColumnSpec,
    Database,
    Dialect,
    LeaseToken,
    MySQLDialect,
    NewMessage,
    PostgresDialect,
    RoundUsage,
    SendAccounting,
    SessionStore,
    SqliteDatabase,
    SqliteDialect,
    TableSpec,
    Transaction,
    ensure_schema,
)

T = TypeVar("T")


class PlainDialect:
    """A custom dialect written before the capability existed: ``inner``'s SQL, no attribute."""

    def __init__(self, inner: Dialect) -> None:
        self._inner = inner
        self.name = inner.name

    def translate(self, sql: str) -> str:
        return self._inner.translate(sql)

    def create_table(self, table: TableSpec, prefix: str) -> list[str]:
        return self._inner.create_table(table, prefix)

    def add_column(self, table: str, column: ColumnSpec, prefix: str) -> str:
        return self._inner.add_column(table, column, prefix)

    def upsert(
        self,
        table: str,
        key_cols: Sequence[str],
        val_cols: Sequence[str],
        *,
        add_cols: Sequence[str] = (),
        insert_only_cols: Sequence[str] = (),
    ) -> str:
        return self._inner.upsert(
            table, key_cols, val_cols, add_cols=add_cols, insert_only_cols=insert_only_cols
        )

    def insert_ignore(self, table: str, cols: Sequence[str]) -> str:
        return self._inner.insert_ignore(table, cols)

    @property
    def for_update(self) -> str:
        return self._inner.for_update

    def table_exists_sql(self) -> str:
        return self._inner.table_exists_sql()

    def columns_sql(self) -> str:
        return self._inner.columns_sql()


class CountingTx:
    def __init__(self, inner: Transaction, log: list[str]) -> None:
        self._inner = inner
        self._log = log

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._log.append(sql)
        return await self._inner.execute(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._log.append(sql)
        await self._inner.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self._log.append(sql)
        return await self._inner.fetchone(sql, params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self._log.append(sql)
        return await self._inner.fetchall(sql, params)


class CountingDb:
    """``inner`` seen through another dialect, logging every statement run in a transaction."""

    def __init__(self, inner: Database, dialect: Dialect) -> None:
        self._inner = inner
        self.dialect = dialect
        self.log: list[str] = []
        self.fetchone = inner.fetchone
        self.fetchall = inner.fetchall
        self.execute = inner.execute
        self.close = inner.close

    async def transact(self, work: Callable[[Any], Awaitable[T]]) -> T:
        async def counted(tx: Transaction) -> T:
            return await work(CountingTx(tx, self.log))

        return await self._inner.transact(counted)

    def advisory_lock(self, name: str) -> AbstractAsyncContextManager[None]:
        return self._inner.advisory_lock(name)


@asynccontextmanager
async def sqlite_store(dialect: Dialect) -> AsyncIterator[tuple[SessionStore, CountingDb]]:
    inner = await SqliteDatabase.open(":memory:")
    await ensure_schema(inner, "pl_")
    db = CountingDb(inner, dialect)
    assert isinstance(db, Database)
    store = SessionStore(db, table_prefix="pl_")
    try:
        yield store, db
    finally:
        await store.close()


def call(i: str) -> dict[str, Any]:
    return {"id": i, "type": "function", "function": {"name": "f", "arguments": "{}"}}


def test_capabilities() -> None:
    assert SqliteDialect.supports_update_returning is (sqlite3.sqlite_version_info >= (3, 35))
    assert PostgresDialect().supports_update_returning is True
    assert MySQLDialect().supports_update_returning is False
    plain = PlainDialect(SqliteDialect())
    assert isinstance(plain, Dialect) and not hasattr(plain, "supports_update_returning")


async def _four_appends(store: SessionStore, db: CountingDb, *, remember: bool) -> list[str]:
    sid = await store.create_session(session_id="s")
    db.log.clear()
    for msgs, begin in (
        ([NewMessage("user", "hi")], True),
        ([NewMessage("assistant", None, tool_calls=[call("c1")], round_index=1)], False),
        ([NewMessage("tool", "r", tool_call_id="c1")], False),
        ([NewMessage("assistant", "done", round_index=2)], False),
    ):
        if not remember:
            store._ctx.known.clear()
        await store.append_messages(sid, msgs, begin_send=begin)
    return [s.split()[0] for s in db.log]


@pytest.mark.skipif(sqlite3.sqlite_version_info < (3, 35), reason="SQLite without RETURNING")
async def test_returning_path_saves_the_locking_read() -> None:
    plain = PlainDialect(SqliteDialect())
    async with sqlite_store(SqliteDialect()) as (fast, fast_db), sqlite_store(plain) as (slow, slow_db):
        # Plain turns: advance + insert; turns changing the pending blob add its update.
        assert await _four_appends(fast, fast_db, remember=False) == [
            "UPDATE",
            "INSERT",
            "UPDATE",
            "INSERT",
            "UPDATE",
            "UPDATE",
            "INSERT",
            "UPDATE",
            "UPDATE",
            "INSERT",
        ]
        assert "RETURNING" in fast_db.log[0]
        assert await _four_appends(slow, slow_db, remember=False) == ["SELECT", "INSERT", "UPDATE"] * 4


@pytest.mark.parametrize(
    "dialect", [SqliteDialect(), PlainDialect(SqliteDialect())], ids=["returning", "locking"]
)
async def test_remembered_state_saves_the_read_and_the_pending_update(dialect: Dialect) -> None:
    async with sqlite_store(dialect) as (store, db):
        log = await _four_appends(store, db, remember=True)
        # The first append reads (either way); from then on each is one version-checked UPDATE + INSERT.
        first = 2 if "RETURNING" in db.log[0] else 3
        assert log[first:] == ["UPDATE", "INSERT"] * 3
        assert all("state_version = ?" in sql for sql in db.log[first::2])


async def test_a_stale_memory_falls_back_in_the_same_transaction(
    store: SessionStore, make_store: Callable[[], Awaitable[SessionStore]]
) -> None:
    db = CountingDb(store.db, store.db.dialect)
    mine = SessionStore(db, table_prefix=store.table_prefix)
    other = await make_store()
    sid = await mine.create_session()
    await mine.append_messages(sid, [NewMessage("user", "a")], begin_send=True)
    await other.append_messages(sid, [NewMessage("assistant", None, tool_calls=[call("c1")], round_index=3)])
    db.log.clear()
    # Remembered: no pending call, next seq 2. Really: c1 awaits its result at seq 2.
    res = await mine.append_messages(sid, [NewMessage("tool", "r", tool_call_id="c1")])
    assert (res.first_seq, res.pending) == (3, None)
    assert "state_version = ?" not in db.log[0]  # the tool result is refused by the memory: read at once
    await other.update_session_prompt(sid, "new")
    await other.enqueue_follow_up(sid, "later")
    db.log.clear()
    res = await mine.append_messages(sid, [NewMessage("assistant", "b", round_index=1)])
    assert "state_version = ?" in db.log[0] and "state_version = ?" not in db.log[1]  # tried, then read
    assert (res.first_seq, res.prompt_version, res.follow_ups_waiting) == (4, 1, 1)
    state = await mine.get_state(sid)
    assert state is not None and (state.next_seq, state.round_index) == (5, 3)


async def test_a_session_closed_and_created_again_is_not_mistaken_for_the_old_one(
    store: SessionStore, make_store: Callable[[], Awaitable[SessionStore]]
) -> None:
    other = await make_store()
    sid = await store.create_session(session_id="again")
    for _ in range(3):
        await store.append_messages(sid, [NewMessage("user", "old")], begin_send=True)
    await other.close_session(sid)
    await other.create_session(session_id=sid)
    # As many writes as the old session had, so a version counted from a fixed start would repeat.
    await other.append_messages(sid, [NewMessage("user", "new")], begin_send=True)
    await other.append_messages(sid, [NewMessage("user", "new")], begin_send=True)
    await other.append_messages(sid, [NewMessage("assistant", None, tool_calls=[call("d")])])
    with pytest.raises(HistoryInvariantError):  # the new session's open call, not the old state
        await store.append_messages(sid, [NewMessage("user", "late")])
    res = await store.append_messages(sid, [NewMessage("tool", "r", tool_call_id="d")])
    assert res.first_seq == 4 and res.pending is None


async def test_unknown_session_is_not_found_on_every_path(store: SessionStore) -> None:
    token = LeaseToken("sess_missing", "a", 1, 0)
    for lease in (None, token):
        with pytest.raises(SessionNotFoundError):
            await store.append_messages("sess_missing", [NewMessage("user", "x")], lease=lease)
    sid = await store.create_session()
    assert await store.count_messages(sid) == 0


ops = st.lists(
    st.one_of(
        st.tuples(st.just("user"), st.booleans(), st.booleans()),
        st.tuples(st.just("assistant"), st.integers(0, 4), st.booleans()),
        st.tuples(st.just("calls"), st.integers(1, 3), st.integers(0, 4)),
        st.tuples(st.just("answer"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("bogus"), st.sampled_from(["zz", "dup"])),
        st.tuples(st.just("ask"), st.integers(0, 5)),
        st.tuples(st.just("follow_up"), st.booleans()),
        st.tuples(st.just("lease"), st.sampled_from(["take", "release"])),
        st.tuples(st.just("zombie"), st.booleans()),
        st.tuples(st.just("abort")),
        st.tuples(st.just("empty"), st.booleans()),
        # A write through a second store handle (another process), making remembered states stale.
        st.tuples(st.just("other"), st.sampled_from(["user", "calls", "prompt", "follow_up", "abort"])),
    ),
    max_size=14,
)


def _strip(row: Any) -> Any:
    """A row without wall-clock stamps (kept: whether an optional stamp is set)."""
    if row is None:
        return None
    out = dataclasses.asdict(row)
    for key in ("created_at", "updated_at", "first_send_at", "last_send_at"):
        if key in out:
            out[key] = out[key] is not None
    return out


async def _snapshot(store: SessionStore, sid: str) -> Any:
    return (
        [_strip(m) for m in await store.load_all_messages(sid)],
        await store.get_state(sid),
        _strip(await store.get_session_stats(sid)),
        [_strip(u) for u in await store.list_usage_rounds(sid)],
        [f.item_id for f in await store.list_follow_ups(sid)],
    )


async def _step(store: SessionStore, sid: str, op: tuple[Any, ...], ctx: dict[str, Any]) -> Any:
    """Apply one op; return its outcome (a result, or the error's type and message)."""
    lease: LeaseToken | None = ctx.get("lease")
    try:
        if op[0] == "user":
            stats = SendAccounting(sends=1) if op[2] else None
            res: Any = await store.append_messages(
                sid, [NewMessage("user", "u")], begin_send=op[1], stats=stats, lease=lease
            )
        elif op[0] == "assistant":
            usage = RoundUsage(op[1], prompt_tokens=3, total_tokens=5) if op[2] else None
            res = await store.append_messages(
                sid,
                [NewMessage("assistant", "a", round_index=op[1])],
                round_usage=usage,
                stats=SendAccounting(rounds=1, llm_calls=1),
                lease=lease,
            )
        elif op[0] == "calls":
            ids = [f"c{ctx['n'] + i}" for i in range(op[1])]
            ctx["n"] += op[1]
            msg = NewMessage("assistant", None, tool_calls=[call(i) for i in ids], round_index=op[2])
            res = await store.append_messages(sid, [msg], lease=lease)
        elif op[0] == "answer":
            state = await store.get_state(sid)
            open_ids = (
                [tc["id"] for tc in state.pending["tool_calls"]] if state and state.pending else ["none"]
            )
            msgs = [NewMessage("tool", "r", tool_call_id=open_ids[op[1] % len(open_ids)])]
            if op[2]:  # two answers in one append
                msgs.append(NewMessage("tool", "r", tool_call_id=open_ids[(op[1] + 1) % len(open_ids)]))
            res = await store.append_messages(sid, msgs, lease=lease)
        elif op[0] == "bogus":
            target = "c0" if op[1] == "dup" else "zz"
            res = await store.append_messages(
                sid, [NewMessage("tool", "r", tool_call_id=target)], lease=lease
            )
        elif op[0] == "ask":
            state = await store.get_state(sid)
            open_ids = (
                [tc["id"] for tc in state.pending["tool_calls"]] if state and state.pending else ["none"]
            )
            ask = {"interaction_id": "i", "tool_call_id": open_ids[op[1] % len(open_ids)]}
            res = await store.append_messages(sid, [], pending_interactions=[ask], lease=lease)
        elif op[0] == "follow_up":
            item = await store.enqueue_follow_up(sid, "later")
            consume = [item] if op[1] else [item, item + 100]
            res = await store.append_messages(
                sid, [NewMessage("user", "f")], consume_follow_ups=consume, lease=lease
            )
        elif op[0] == "lease":
            if op[1] == "take":
                ctx["lease"] = await store.acquire_lease(sid, holder="h", ttl_s=60)
            elif lease is not None:
                await store.release_lease(lease)
                ctx["lease"] = None
            res = None
        elif op[0] == "zombie":  # a fenced write with a token that never held the lease
            msg = NewMessage("tool", "r", tool_call_id="zz") if op[1] else NewMessage("user", "z")
            res = await store.append_messages(sid, [msg], lease=LeaseToken(sid, "h", 10_000, 0))
        elif op[0] == "abort":
            res = await store.abort_pending(sid, reason="x")
        elif op[0] == "other":
            other: SessionStore = ctx["other"]
            if op[1] == "user":
                res = await other.append_messages(sid, [NewMessage("user", "o")], begin_send=True)
            elif op[1] == "calls":
                ctx["n"] += 1
                msg = NewMessage("assistant", None, tool_calls=[call(f"o{ctx['n']}")], round_index=9)
                res = await other.append_messages(sid, [msg])
            elif op[1] == "prompt":
                await other.update_session_prompt(sid, "p")
                res = None
            elif op[1] == "follow_up":
                res = await other.enqueue_follow_up(sid, "o")
            else:
                res = await other.abort_pending(sid, reason="o")
        else:
            res = await store.append_messages(
                sid, [], begin_send=op[1], pending_interactions=KEEP if op[1] else []
            )
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return res


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=ops)
async def test_every_path_writes_and_refuses_the_same(
    store: SessionStore, make_store: Callable[[], Awaitable[SessionStore]], script: list[tuple[Any, ...]]
) -> None:
    """The same script on four sessions of one database, each written by another path.

    ``store`` takes its backend's path and ``plain`` always the locking one, each once remembering
    the state rows it wrote (optimistic appends, falling back to reading when another handle wrote
    in between) and once forgetting them before every step (always reading). The reference is the
    forgetful ``plain``: the locking read-then-write."""

    def handle(dialect: Dialect) -> SessionStore:  # one handle each: a handle's memory is its own
        return SessionStore(CountingDb(store.db, dialect), table_prefix=store.table_prefix)

    plain = PlainDialect(store.db.dialect)
    variants = [
        (handle(plain), False),
        (handle(plain), True),
        (handle(store.db.dialect), False),
        (store, True),
    ]
    other = await make_store()  # the second handle, writing to every variant's session alike
    sids = [await s.create_session() for s, _ in variants]
    ctxs: list[dict[str, Any]] = [{"n": 0, "other": other} for _ in variants]
    for op in script:
        outcomes = []
        for (s, remember), sid, ctx in zip(variants, sids, ctxs, strict=True):
            if not remember:
                s._ctx.known.clear()
            outcomes.append(
                (_neutral(await _step(s, sid, op, ctx), sid), _neutral(await _snapshot(s, sid), sid))
            )
        assert all(o == outcomes[0] for o in outcomes[1:]), op


def _neutral(value: Any, sid: str) -> Any:
    """``value`` with the session id replaced (the two sessions differ only in their ids)."""
    return json.loads(json.dumps(value, default=_encode).replace(sid, "<sid>"))


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)
