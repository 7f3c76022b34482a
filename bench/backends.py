"""power_loop on PostgreSQL and MySQL next to the raw async driver, measured in the same run.

    python -m bench.backends                       # both servers (local defaults below)
    python -m bench.backends --quick               # fewer iterations
    python -m bench.backends --postgres DSN --mysql DSN --json out.json

DSNs default to ``$POWER_LOOP_BENCH_POSTGRES_DSN`` / ``$POWER_LOOP_BENCH_MYSQL_DSN``, then the test
variables ``$POWER_LOOP_TEST_POSTGRES_DSN`` / ``$POWER_LOOP_TEST_MYSQL_DSN``, then
``postgresql://postgres@127.0.0.1:5432/pl_store_test`` and ``mysql://root@127.0.0.1:3306/pl_store_test``.
A server that cannot be reached is reported and skipped.

The floor is the raw driver (asyncpg / aiomysql) committing the rows of one text send (two messages,
the session's sequence counter, its statistics) in one transaction. The model is an instant scripted
model, so every kernel figure is kernel + database cost. Round trips are counted by wrapping the
store's ``Database`` in a proxy: BEGIN and COMMIT count one each, and so does every statement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

from bench._common import ROW, drive_concurrently, echo_tools, median_ms, text_llm, tool_llm
from power_loop import StatefulAgentLoop, ToolRegistry
from power_loop.store import (
    Database,
    SessionStore,
    Transaction,
    all_table_names,
    connect_database,
    ensure_schema,
)
from power_loop.testing import ScriptedLLM

T = TypeVar("T")
DEFAULT_DSNS = {
    "postgres": "postgresql://postgres@127.0.0.1:5432/pl_store_test",
    "mysql": "mysql://root@127.0.0.1:3306/pl_store_test",
}
TARGETS = {  # SPEC §9, relative to the floor measured in the same run
    "text_send_x_floor": ("<=", 2.5),
    "tool_send_x_floor": ("<=", 5.0),
    "concurrent_40_sends_per_s": (">=", 1500.0),
}


# --------------------------------------------------------------------------- round-trip counting


class _CountingTransaction:
    def __init__(self, inner: Transaction, db: CountingDatabase) -> None:
        self._inner = inner
        self._db = db

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._db.round_trips += 1
        return await self._inner.execute(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:  # the backends send nothing for an empty batch
            self._db.round_trips += 1
        await self._inner.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self._db.round_trips += 1
        return await self._inner.fetchone(sql, params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self._db.round_trips += 1
        return await self._inner.fetchall(sql, params)


class CountingDatabase:
    """A :class:`Database` proxy counting round trips (BEGIN, each statement, COMMIT)."""

    def __init__(self, inner: Database) -> None:
        self._inner = inner
        self.dialect = inner.dialect
        self.round_trips = 0
        self.transactions = 0
        # MySQL runs with autocommit off: no BEGIN per unit, but a COMMIT after each lone statement.
        self._implicit_begin = bool(getattr(inner, "implicit_begin", False))

    async def transact(self, work: Callable[[Any], Awaitable[T]]) -> T:
        self.round_trips += 1 if self._implicit_begin else 2  # (BEGIN +) COMMIT
        self.transactions += 1

        async def counted(tx: Transaction) -> T:
            return await work(_CountingTransaction(tx, self))

        return await self._inner.transact(counted)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self.round_trips += 2 if self._implicit_begin else 1
        return await self._inner.fetchone(sql, params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self.round_trips += 2 if self._implicit_begin else 1
        return await self._inner.fetchall(sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.round_trips += 2 if self._implicit_begin else 1
        return await self._inner.execute(sql, params)

    def advisory_lock(self, name: str) -> AbstractAsyncContextManager[None]:
        return self._inner.advisory_lock(name)

    async def close(self) -> None:
        await self._inner.close()


# --------------------------------------------------------------------------- the floor


async def floor_postgres(dsn: str, prefix: str, n: int) -> float:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    m, s, st = f"{prefix}fm", f"{prefix}fs", f"{prefix}fst"
    try:
        await conn.execute(
            f"CREATE TABLE {m} (sid TEXT, seq BIGINT, role TEXT, content TEXT, PRIMARY KEY (sid, seq))"
        )
        await conn.execute(f"CREATE TABLE {s} (sid TEXT PRIMARY KEY, next_seq BIGINT, pending TEXT)")
        await conn.execute(f"CREATE TABLE {st} (sid TEXT PRIMARY KEY, sends BIGINT, tokens BIGINT)")
        await conn.execute(f"INSERT INTO {s} VALUES ('a', 1, NULL)")
        await conn.execute(f"INSERT INTO {st} VALUES ('a', 0, 0)")
        ins = f"INSERT INTO {m} VALUES ('a', $1, $2, $3)"
        upd = f"UPDATE {s} SET next_seq = $1, pending = NULL WHERE sid = 'a'"
        stats = f"UPDATE {st} SET sends = sends + 1, tokens = tokens + 15 WHERE sid = 'a'"
        seq = 1
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            async with conn.transaction():
                await conn.executemany(ins, [(seq, "user", ROW), (seq + 1, "assistant", ROW)])
                await conn.execute(upd, seq + 2)
                await conn.execute(stats)
            samples.append(time.perf_counter() - start)
            seq += 2
        return median_ms(samples)
    finally:
        for table in (m, s, st):
            await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()


async def floor_mysql(dsn: str, prefix: str, n: int) -> float:
    from urllib.parse import urlsplit

    import aiomysql

    url = urlsplit(dsn)
    conn = await aiomysql.connect(
        host=url.hostname or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        db=url.path.lstrip("/"),
        autocommit=True,
    )
    m, s, st = f"{prefix}fm", f"{prefix}fs", f"{prefix}fst"
    try:
        async with conn.cursor() as cur:
            await cur.execute(
                f"CREATE TABLE {m} (sid VARCHAR(255), seq BIGINT, role VARCHAR(32), content LONGTEXT, "
                "PRIMARY KEY (sid, seq)) ENGINE=InnoDB"
            )
            await cur.execute(
                f"CREATE TABLE {s} (sid VARCHAR(255) PRIMARY KEY, next_seq BIGINT, pending LONGTEXT) ENGINE=InnoDB"
            )
            await cur.execute(
                f"CREATE TABLE {st} (sid VARCHAR(255) PRIMARY KEY, sends BIGINT, tokens BIGINT) ENGINE=InnoDB"
            )
            await cur.execute(f"INSERT INTO {s} VALUES ('a', 1, NULL)")
            await cur.execute(f"INSERT INTO {st} VALUES ('a', 0, 0)")
            ins = f"INSERT INTO {m} VALUES ('a', %s, %s, %s)"
            upd = f"UPDATE {s} SET next_seq = %s, pending = NULL WHERE sid = 'a'"
            stats = f"UPDATE {st} SET sends = sends + 1, tokens = tokens + 15 WHERE sid = 'a'"
            seq = 1
            samples = []
            for _ in range(n):
                start = time.perf_counter()
                await conn.begin()
                await cur.executemany(ins, [(seq, "user", ROW), (seq + 1, "assistant", ROW)])
                await cur.execute(upd, (seq + 2,))
                await cur.execute(stats)
                await conn.commit()
                samples.append(time.perf_counter() - start)
                seq += 2
            return median_ms(samples)
    finally:
        async with conn.cursor() as cur:
            for table in (m, s, st):
                await cur.execute(f"DROP TABLE IF EXISTS {table}")
        conn.close()


# --------------------------------------------------------------------------- kernel scenarios


class Bench:
    """One backend: a counted store on a fresh table prefix, dropped at the end."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.prefix = f"bench{secrets.token_hex(3)}_"
        self.db: CountingDatabase | None = None
        self.store: SessionStore | None = None

    async def __aenter__(self) -> Bench:
        inner = await connect_database(self.dsn)
        await ensure_schema(inner, self.prefix)
        self.db = CountingDatabase(inner)
        self.store = SessionStore(self.db, table_prefix=self.prefix)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.store is not None
        await self.store.close()
        db = await connect_database(self.dsn)
        try:
            for name in all_table_names(self.prefix):
                await db.execute(f"DROP TABLE IF EXISTS {name}")
        finally:
            await db.close()

    async def per_send(
        self, llm: ScriptedLLM, n: int, *, tools: ToolRegistry | None = None, lease_ttl_s: float | None = None
    ) -> tuple[float, float, float]:
        """Median ms per send, round trips per send, transactions per send (steady state)."""
        assert self.store is not None and self.db is not None
        db = self.db
        async with StatefulAgentLoop(
            llm=llm, store=self.store, tool_registry=tools, lease_ttl_s=lease_ttl_s
        ) as loop:
            sid = await loop.new_session()
            for _ in range(3):  # warm up: prepared statements, the window cache
                await loop.send(ROW, sid)
            rt0, tx0 = db.round_trips, db.transactions
            samples = []
            for _ in range(n):
                start = time.perf_counter()
                await loop.send(ROW, sid)
                samples.append(time.perf_counter() - start)
            return median_ms(samples), (db.round_trips - rt0) / n, (db.transactions - tx0) / n

    async def concurrent(self, sessions: int, sends_each: int) -> float:
        assert self.store is not None
        async with StatefulAgentLoop(llm=text_llm(), store=self.store) as loop:
            sids = [await loop.new_session() for _ in range(sessions)]
            await asyncio.gather(*(loop.send(ROW, sid) for sid in sids))  # warm the pool
            return await drive_concurrently(loop, sids, sends_each)


async def run_backend(name: str, dsn: str, quick: bool) -> dict[str, Any]:
    n = 100 if quick else 400
    floor = floor_postgres if name == "postgres" else floor_mysql
    results: dict[str, Any] = {}
    results["floor_commit_ms"] = await floor(dsn, f"bench{secrets.token_hex(3)}_", n)
    async with Bench(dsn) as bench:
        ms, rts, txs = await bench.per_send(text_llm(), n)
        results.update(text_send_ms=ms, text_send_round_trips=rts, text_send_transactions=txs)
        ms, rts, txs = await bench.per_send(tool_llm(), n // 2, tools=echo_tools())
        results.update(tool_send_ms=ms, tool_send_round_trips=rts, tool_send_transactions=txs)
        ms, rts, txs = await bench.per_send(text_llm(), n // 2, lease_ttl_s=30.0)
        results.update(leased_text_send_ms=ms, leased_text_send_round_trips=rts)
        results["concurrent_40_sends_per_s"] = await bench.concurrent(40, 10 if quick else 25)
    results["text_send_x_floor"] = results["text_send_ms"] / results["floor_commit_ms"]
    results["tool_send_x_floor"] = results["tool_send_ms"] / results["floor_commit_ms"]
    return results


async def _reachable(dsn: str) -> str | None:
    try:
        db = await connect_database(dsn)
    except Exception as exc:  # report and skip this backend
        return f"{type(exc).__name__}: {exc}"
    await db.close()
    return None


async def run(dsns: dict[str, str], quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, dsn in dsns.items():
        problem = await _reachable(dsn)
        if problem is not None:
            out[name] = {"skipped": problem}
            continue
        out[name] = await run_backend(name, dsn, quick)
    return out


def _print(results: dict[str, Any]) -> None:
    for backend, figures in results.items():
        print(f"\n[{backend}]")
        if "skipped" in figures:
            print(f"  skipped: {figures['skipped']}")
            continue
        for key, value in figures.items():
            target = TARGETS.get(key)
            mark = ""
            if target is not None:
                op, bound = target
                ok = value <= bound if op == "<=" else value >= bound
                mark = f"{op}{bound:g} {'ok' if ok else 'MISSED'}"
            print(f"  {key:32} {value:12.3f}  {mark}")


def dsn_for(name: str, given: str | None) -> str:
    """The DSN of backend ``name``: ``given``, else the bench variable, the test variable, the default."""
    upper = name.upper()
    return (
        given
        or os.environ.get(f"POWER_LOOP_BENCH_{upper}_DSN")
        or os.environ.get(f"POWER_LOOP_TEST_{upper}_DSN")
        or DEFAULT_DSNS[name]
    )


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    dsns = {}
    if not args.only or args.only == "postgres":
        dsns["postgres"] = dsn_for("postgres", args.postgres)
    if not args.only or args.only == "mysql":
        dsns["mysql"] = dsn_for("mysql", args.mysql)
    return await run(dsns, args.quick)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backends")
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--postgres", metavar="DSN")
    parser.add_argument("--mysql", metavar="DSN")
    parser.add_argument("--only", choices=("postgres", "mysql"))
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    results = asyncio.run(_main(args))
    _print(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
