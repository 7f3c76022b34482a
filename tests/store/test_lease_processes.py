"""Session leases between real OS processes (SQLite file, PostgreSQL, MySQL), including SIGKILL.

Workers are fresh Python processes running the snippet below; they report on stdout as JSON lines.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from power_loop import StatefulAgentLoop
from power_loop.errors import SessionBusy
from power_loop.store import LeaseToken, NewMessage, SessionStore
from power_loop.store._core import now_ms
from power_loop.testing import ScriptedLLM

pytestmark = pytest.mark.slow

WORKER = r"""
import asyncio, json, os, sys
from power_loop import StatefulAgentLoop
from power_loop.errors import PowerLoopError, SessionBusy
from power_loop.store import NewMessage, hold_lease, new_holder_id, open_store
from power_loop.testing import ScriptedLLM

def say(**data):
    print(json.dumps(data), flush=True)

async def main(dsn, prefix, sid, mode, ttl):
    if mode == "send":  # a loop whose send stalls inside the model call while holding the lease
        llm = ScriptedLLM(default=ScriptedLLM.delay(3600, ScriptedLLM.text("never")))
        loop = StatefulAgentLoop(llm=llm, dsn=dsn, table_prefix=prefix, lease_ttl_s=ttl)
        await loop.send("from the worker", sid)
        return
    store = await open_store(dsn, table_prefix=prefix)
    try:
        if mode == "hold":  # hold the lease (renewed) until killed
            async with hold_lease(store, sid, ttl_s=ttl) as held:
                t = held.token
                say(holder=t.holder, epoch=t.epoch, expires=t.expires_at_ms)
                await asyncio.sleep(3600)
        elif mode == "try":
            try:
                t = await store.acquire_lease(sid, holder=new_holder_id(), ttl_s=ttl)
                say(acquired=t.epoch)
            except SessionBusy as exc:
                say(code=exc.code, holder=exc.holder, expires=exc.expires_at_ms)
        elif mode == "zombie":  # take the lease, never renew it, write when told to
            t = await store.acquire_lease(sid, holder=f"zombie:{os.getpid()}", ttl_s=ttl)
            say(holder=t.holder, epoch=t.epoch, expires=t.expires_at_ms)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            try:
                await store.append_messages(sid, [NewMessage("assistant", "late")], lease=t)
                say(outcome="written")
            except PowerLoopError as exc:
                say(outcome=exc.code, current_epoch=getattr(exc, "current_epoch", None),
                    current_holder=getattr(exc, "current_holder", None))
    finally:
        await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])))
"""

HANG_GUARD_S = 60.0  # only a guard against a hung worker; no test asserts on durations


@asynccontextmanager
async def worker(
    dsn: str, prefix: str, sid: str, mode: str, ttl: float
) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WORKER,
        dsn,
        prefix,
        sid,
        mode,
        str(ttl),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def report(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), HANG_GUARD_S)
    if not line:
        assert proc.stderr is not None
        err = await proc.stderr.read()
        raise AssertionError(f"worker exited without a report: {err.decode()[-2000:]}")
    data: dict[str, Any] = json.loads(line)
    return data


async def take_over(store: SessionStore, sid: str, holder: str) -> tuple[LeaseToken, list[SessionBusy]]:
    """Retry acquiring until the previous lease expires; return the token and the refusals seen."""
    refusals: list[SessionBusy] = []
    deadline = now_ms() + HANG_GUARD_S * 1000
    while True:
        try:
            return await store.acquire_lease(sid, holder=holder, ttl_s=30), refusals
        except SessionBusy as exc:
            refusals.append(exc)
            assert now_ms() < deadline, "the lease never expired"
            await asyncio.sleep(0.1)


async def test_second_process_gets_session_busy_with_holder_and_expiry(
    shared: tuple[str, str, SessionStore],
) -> None:
    dsn, prefix, store = shared
    sid = await store.create_session()
    async with worker(dsn, prefix, sid, "hold", 30) as holder:
        held = await report(holder)
        assert held["epoch"] == 1 and held["holder"].split(":")[1] == str(holder.pid)
        async with worker(dsn, prefix, sid, "try", 30) as contender:
            refused = await report(contender)
        assert refused == {"code": "session.busy", "holder": held["holder"], "expires": refused["expires"]}
        assert refused["expires"] >= held["expires"]
        with pytest.raises(SessionBusy) as info:  # this test process is a third one
            await store.acquire_lease(sid, holder="third", ttl_s=30)
        assert info.value.holder == held["holder"]


async def test_sigkilled_holder_lease_expires_and_is_taken_over(
    shared: tuple[str, str, SessionStore],
) -> None:
    dsn, prefix, store = shared
    sid = await store.create_session()
    async with worker(dsn, prefix, sid, "hold", 1.0) as holder:
        held = await report(holder)
        os.kill(holder.pid, signal.SIGKILL)
        await holder.wait()
    assert holder.returncode == -signal.SIGKILL
    last = await store.get_lease(sid)
    assert last is not None and last.holder == held["holder"]  # a killed holder releases nothing
    token, refusals = await take_over(store, sid, "successor")
    assert now_ms() > last.expires_at_ms  # taken only once the dead holder's lease had expired
    assert all(r.holder == held["holder"] for r in refusals)
    assert (token.holder, token.epoch) == ("successor", held["epoch"] + 1)


async def test_zombie_late_write_is_rejected(shared: tuple[str, str, SessionStore]) -> None:
    dsn, prefix, store = shared
    sid = await store.create_session()
    async with worker(dsn, prefix, sid, "zombie", 0.5) as zombie:
        first = await report(zombie)
        assert first["epoch"] == 1
        token, _ = await take_over(store, sid, "successor")
        assert token.epoch == 2
        await store.append_messages(sid, [NewMessage("user", "successor's")], begin_send=True, lease=token)
        assert zombie.stdin is not None
        zombie.stdin.write(b"go\n")
        await zombie.stdin.drain()
        outcome = await report(zombie)
    assert outcome == {"outcome": "store.lease_lost", "current_epoch": 2, "current_holder": "successor"}
    assert [m.content for m in await store.load_all_messages(sid)] == ["successor's"]
    state = await store.get_state(sid)
    assert state is not None and state.next_seq == 2


async def test_loop_send_in_another_process_is_busy_then_taken_over_after_sigkill(
    shared: tuple[str, str, SessionStore],
) -> None:
    dsn, prefix, store = shared
    sid = await store.create_session()
    llm = ScriptedLLM(default=ScriptedLLM.text("done"))
    async with worker(dsn, prefix, sid, "send", 1.0) as sender:
        # Wait until the worker's send holds the lease and stored its user turn.
        while (lease := await store.get_lease(sid)) is None or await store.count_messages(sid) == 0:
            assert sender.returncode is None, "the worker died"
            await asyncio.sleep(0.05)
        async with StatefulAgentLoop(llm=llm, store=store, lease_ttl_s=1.0) as loop:
            with pytest.raises(SessionBusy) as info:
                await loop.send("from the test", sid)
            assert info.value.holder == lease.holder
            assert await store.count_messages(sid) == 1  # the refused send wrote nothing
            os.kill(sender.pid, signal.SIGKILL)
            await sender.wait()
            deadline = now_ms() + HANG_GUARD_S * 1000
            while True:
                try:
                    result = await loop.send("from the test", sid)
                    break
                except SessionBusy:
                    assert now_ms() < deadline
                    await asyncio.sleep(0.1)
    assert result.status == "completed" and result.final_text == "done"
    contents = [m.content for m in await store.load_all_messages(sid)]
    assert contents == ["from the worker", "from the test", "done"]
    after = await store.get_lease(sid)
    assert after is not None and after.epoch == lease.epoch + 1 and after.expires_at_ms == 0
