"""Durability: a writer killed with SIGKILL loses no committed message (SPEC §2.5)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from power_loop.store import open_store

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from power_loop.store import NewMessage, open_store

    async def main(path):
        store = await open_store(path)
        sid = await store.create_session(session_id="victim")
        print("ready", flush=True)
        while True:
            res = await store.append_messages(sid, [NewMessage("user", "x" * 200)], begin_send=True)
            print(res.first_seq, flush=True)

    asyncio.run(main(sys.argv[1]))
    """
)


async def reopen(path: Path) -> tuple[list[int], int | None]:
    store = await open_store(str(path))
    try:
        seqs = [m.seq for m in await store.load_all_messages("victim")]
        state = await store.get_state("victim")
    finally:
        await store.close()
    return seqs, None if state is None else state.next_seq


@pytest.mark.slow
def test_sigkilled_writer_loses_no_committed_message(tmp_path: Path) -> None:
    db_path = tmp_path / "crash.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    printed: list[int] = []
    try:
        first = proc.stdout.readline()
        assert first.strip() == "ready", proc.stderr.read() if proc.stderr else ""
        while len(printed) < 300:
            line = proc.stdout.readline()
            assert line, "writer exited early"
            printed.append(int(line))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        # drain whatever it printed before dying: those seqs were committed too
        printed.extend(int(x) for x in proc.stdout.read().split())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    seqs, next_seq = asyncio.run(reopen(db_path))
    assert set(printed) <= set(seqs)
    assert seqs == list(range(1, len(seqs) + 1))
    assert next_seq == len(seqs) + 1
