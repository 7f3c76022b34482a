"""SIGKILL a process in the middle of a parallel foreach, then `resume_run` in this process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wf_helpers import research_llm, research_spec

from power_loop.loop import StatefulAgentLoop
from power_loop.store import SessionStore
from power_loop.workflow import create_workflow, resume_run

pytestmark = pytest.mark.slow

WORKER = Path(__file__).resolve().parent / "wf_crash_worker.py"
TOPICS = [f"t{i}" for i in range(6)]
REPO = Path(__file__).resolve().parents[2]


async def _wait_for(check, what: str, proc: subprocess.Popen[bytes], limit_s: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit_s
    while not await check():
        if proc.poll() is not None:
            raise AssertionError(
                f"worker exited early ({proc.returncode}) waiting for {what}: {proc.stderr.read()!r}"
            )  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def _spawn(dsn: str, prefix: str, parent: str, work: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(WORKER), dsn, prefix, parent, str(work)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


async def _completed_steps(store: SessionStore, parent: str, run_id: str) -> set[str]:
    rows = await store.list_workflow_records(parent, run_id)
    return {r.step_key for r in rows if r.status == "completed" and r.step_key != "@run"}


async def test_sigkill_mid_foreach_then_resume_replays_finished_leaves(
    loop_dsn_and_prefix: tuple[str, str], tmp_path: Path
) -> None:
    dsn, prefix = loop_dsn_and_prefix
    work = tmp_path / "work"
    work.mkdir()
    (work / "block").write_text("t3 t4 t5")
    async with StatefulAgentLoop(llm=research_llm(), dsn=dsn, table_prefix=prefix) as loop:
        store = await loop.ensure_store()
        parent = await loop.new_session()
        proc = _spawn(dsn, prefix, parent, work)
        try:

            async def two_blocked() -> bool:
                return (work / "blocked_t3").exists() and (work / "blocked_t4").exists()

            await _wait_for(two_blocked, "two leaves in flight", proc)
            run_id = (work / "run_id").read_text()

            async def three_done() -> bool:
                return len(await _completed_steps(store, parent, run_id)) == 3

            await _wait_for(three_done, "three finished leaves in the journal", proc)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        finished_before = await _completed_steps(store, parent, run_id)
        assert finished_before == {"researcher:0", "researcher:1", "researcher:2"}
        calls_before = (work / "calls").read_text().split()
        assert sorted(calls_before) == ["t0", "t1", "t2", "t3", "t4"]  # t5 never started

        resumer = research_llm()
        async with StatefulAgentLoop(llm=resumer, dsn=dsn, table_prefix=prefix) as loop2:
            resumed = await resume_run(loop2, parent, run_id)
        rerun = [r.system_prompt for r in resumer.requests]
        # finished leaves are replayed, never re-run: only t3, t4, t5 and the writer call the model
        assert sorted(rerun) == [
            "You research t3.",
            "You research t4.",
            "You research t5.",
            "You write reports.",
        ]
        assert all(resumed.results[k].replayed for k in finished_before)

        # equal to an uninterrupted run
        other = await loop.new_session()
        fresh = await create_workflow(
            research_spec(TOPICS, max_concurrency=2), parent_loop=loop, parent_session_id=other
        ).run()
        assert resumed.status == fresh.status == "completed"
        assert resumed.final is not None and fresh.final is not None
        assert resumed.final.text == fresh.final.text
        assert {k: r.text for k, r in resumed.results.items()} == {
            k: r.text for k, r in fresh.results.items()
        }

        # idempotency: one session per leaf under the run's driver, never a duplicate
        run_row = next(r for r in await store.list_workflow_records(parent, run_id) if r.step_key == "@run")
        children = await store.list_children(run_row.body["driver_sid"])
        keys = [c.metadata["idempotency_key"] for c in children]
        assert sorted(keys) == sorted(
            f"{run_id}:{k}" for k in [*(f"researcher:{i}" for i in range(6)), "writer"]
        )
        assert run_row.status == "completed" and run_row.body["attempts"] == 2
