"""Several OS processes writing one database at once (SQLite file, PostgreSQL, MySQL).

- Appends from 4 processes to the same few sessions never duplicate or skip a sequence number.
- 4 processes provisioning a fresh schema at the same moment all succeed.

Workers connect first, report ``ready`` and wait for ``go`` on stdin, so the racing part starts together.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import defaultdict
from typing import Any

import pytest

from power_loop.store import CURRENT_SCHEMA_VERSION, SessionStore, open_store

pytestmark = pytest.mark.slow

PROCESSES = 4
SESSIONS = 3
APPENDS_EACH = 100

WORKER = r"""
import asyncio, json, random, sys
from power_loop.store import NewMessage, SessionStore, connect_database, ensure_schema

async def main(dsn, prefix, mode, arg):
    db = await connect_database(dsn)
    try:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if mode == "provision":
            version = await ensure_schema(db, prefix)
            store = SessionStore(db, table_prefix=prefix)
            sid = await store.create_session()
            res = await store.append_messages(sid, [NewMessage("user", "hi")], begin_send=True)
            print(json.dumps({"version": version, "seq": res.first_seq}), flush=True)
            return
        store = SessionStore(db, table_prefix=prefix)
        sids, appends = json.loads(arg)
        rng = random.Random()
        got = []
        for i in range(appends):
            sid = rng.choice(sids)
            n = rng.randint(1, 3)
            msgs = [NewMessage("user", f"{i}.{k}") for k in range(n)]
            res = await store.append_messages(sid, msgs, begin_send=(i % 2 == 0))
            got.append([sid, res.first_seq, res.last_seq])
        print(json.dumps(got), flush=True)
    finally:
        await db.close()

asyncio.run(main(*sys.argv[1:5]))
"""

HANG_GUARD_S = 120.0  # only a guard against a hung worker; no test asserts on durations


async def run_workers(dsn: str, prefix: str, mode: str, arg: str) -> list[Any]:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            dsn,
            prefix,
            mode,
            arg,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for p in procs:  # every worker is connected ...
            assert p.stdout is not None
            line = await asyncio.wait_for(p.stdout.readline(), HANG_GUARD_S)
            assert line.strip() == b"ready", line
        for p in procs:  # ... before any starts racing
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            await p.stdin.drain()
        outputs = []
        for p in procs:
            out, err = await asyncio.wait_for(p.communicate(), HANG_GUARD_S)
            assert p.returncode == 0, err.decode()[-3000:]
            outputs.append(json.loads(out))
        return outputs
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()


async def test_concurrent_appends_from_processes_keep_seqs_contiguous(
    shared: tuple[str, str, SessionStore],
) -> None:
    dsn, prefix, store = shared
    sids = [await store.create_session() for _ in range(SESSIONS)]
    outputs = await run_workers(dsn, prefix, "append", json.dumps([sids, APPENDS_EACH]))
    claimed: dict[str, list[int]] = defaultdict(list)
    for out in outputs:
        assert len(out) == APPENDS_EACH
        for sid, first, last in out:
            assert last >= first
            claimed[sid].extend(range(first, last + 1))
    total = 0
    for sid in sids:
        stored = [m.seq for m in await store.load_all_messages(sid)]
        assert stored == list(range(1, len(stored) + 1)), "duplicate or missing seq"
        assert sorted(claimed[sid]) == stored  # every process got exactly the seqs it wrote
        state = await store.get_state(sid)
        assert state is not None and state.next_seq == len(stored) + 1
        total += len(stored)
    assert total == sum(len(c) for c in claimed.values())


async def test_processes_provisioning_a_fresh_schema_at_once_all_succeed(
    loop_dsn_and_prefix: tuple[str, str],
) -> None:
    dsn, prefix = loop_dsn_and_prefix  # nothing has created this prefix's tables yet
    outputs = await run_workers(dsn, prefix, "provision", "")
    assert outputs == [{"version": CURRENT_SCHEMA_VERSION, "seq": 1}] * PROCESSES
    store = await open_store(dsn, table_prefix=prefix, schema="verify")
    try:
        assert len(await store.list_sessions()) == PROCESSES
    finally:
        await store.close()
