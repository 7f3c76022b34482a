"""``stop_job(sid, "send")`` between real OS processes (SQLite file, PostgreSQL, MySQL): a worker
process drives a send that never ends by itself; this process lists it and stops it."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from power_loop import StatefulAgentLoop
from power_loop.testing import ScriptedLLM

pytestmark = pytest.mark.slow

WORKER = r"""
import asyncio, json, sys
from power_loop import AgentLoopConfig, StatefulAgentLoop, ToolDefinition, ToolRegistry
from power_loop.testing import ScriptedLLM

async def step(x):
    await asyncio.sleep(0.01)
    return "stepped"

async def main(dsn, prefix, sid):
    registry = ToolRegistry()
    registry.register(ToolDefinition(name="step", description="one step",
                                     input_schema={"type": "object", "properties": {"x": {"type": "string"}}}), step)
    llm = ScriptedLLM(default=ScriptedLLM.tool_call("step", {"x": "again"}))
    async with StatefulAgentLoop(llm=llm, dsn=dsn, table_prefix=prefix, tool_registry=registry,
                                 config=AgentLoopConfig(max_rounds=1_000_000), lease_ttl_s=1.5) as loop:
        result = await loop.send("work until stopped", sid)
        print(json.dumps({"status": result.status, "rounds": result.rounds}), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
"""

HANG_GUARD_S = 60.0  # only a guard against a hung worker; no test asserts on durations


async def test_a_send_in_another_process_is_listed_and_stopped(loop_dsn_and_prefix: tuple[str, str]) -> None:
    dsn, prefix = loop_dsn_and_prefix
    async with StatefulAgentLoop(llm=ScriptedLLM(), dsn=dsn, table_prefix=prefix, lease_ttl_s=1.5) as loop:
        sid = await loop.new_session()
        store = await loop.ensure_store()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            dsn,
            prefix,
            sid,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            # Wait until the worker's send holds the lease and has run a tool.
            while await store.count_messages(sid) < 3 or not await loop.list_jobs(sid):
                assert proc.returncode is None, "the worker died"
                await asyncio.sleep(0.05)
            (job,) = await loop.list_jobs(sid)
            assert (job.id, job.status, job.started_at) == ("send", "running", None)
            assert f":{proc.pid}:" in job.detail  # held by host:pid:random — the worker
            assert await loop.stop_job(sid, "send", reason="stopped from another process") is True
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), HANG_GUARD_S)
            if not line:
                assert proc.stderr is not None
                raise AssertionError((await proc.stderr.read()).decode()[-2000:])
            assert json.loads(line)["status"] == "cancelled"
            await asyncio.wait_for(proc.wait(), HANG_GUARD_S)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert await loop.list_jobs(sid) == []
        assert await loop.get_pending(sid) is None  # every tool call answered
