"""``loop.list_jobs`` / ``loop.stop_job``: the running send, background tasks, workflow runs, timers —
on every loop backend, including a send stopped from another loop (as another process would)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from loop_helpers import check_history, make_tools

from power_loop import AgentLoopConfig, Job, StatefulAgentLoop
from power_loop.errors import JobNotFoundError, JobNotStoppable, SessionNotFoundError
from power_loop.store import BackgroundTaskRow, SessionStore
from power_loop.testing import ScriptedLLM

MakeLoop = Callable[..., StatefulAgentLoop]


def _looping_llm() -> ScriptedLLM:
    """A model that calls ``step`` every round: the send runs until it is stopped."""
    return ScriptedLLM(default=ScriptedLLM.tool_call("step", {"x": "again"}))


async def test_no_jobs_and_unknown_sessions(make_loop: MakeLoop) -> None:
    loop = make_loop(llm=ScriptedLLM())
    sid = await loop.new_session()
    assert await loop.list_jobs(sid) == []
    assert await loop.stop_job(sid, "send") is False  # nothing runs
    with pytest.raises(SessionNotFoundError):
        await loop.list_jobs("sess_" + "0" * 24)
    with pytest.raises(SessionNotFoundError):
        await loop.stop_job("sess_" + "0" * 24, "send")
    for job_id in ("nope", "bg:", "wf:", "timer:x", "timer:999", "bg:bg_missing", "wf:missing"):
        with pytest.raises(JobNotFoundError) as info:
            await loop.stop_job(sid, job_id)
        assert info.value.code == "job.not_found" and info.value.job_id == job_id


async def test_a_timer_is_a_job(make_loop: MakeLoop) -> None:
    loop = make_loop(llm=ScriptedLLM())
    sid = await loop.new_session()
    timer = await loop.schedule_timer(sid, delay_s=3600, note="check the build")
    (job,) = await loop.list_jobs(sid)
    assert job == Job(f"timer:{timer.timer_id}", "timer", "armed", timer.created_at, "check the build")
    assert await loop.stop_job(sid, job.id) is True
    assert await loop.list_jobs(sid) == []
    assert await loop.stop_job(sid, job.id) is False  # already cancelled


async def test_stopping_the_running_send_in_process(make_loop: MakeLoop) -> None:
    stepped = asyncio.Event()

    async def step(x: str) -> str:
        stepped.set()
        await asyncio.sleep(0.01)
        return "stepped"

    loop = make_loop(
        llm=_looping_llm(), tool_registry=make_tools(step=step), config=AgentLoopConfig(max_rounds=100_000)
    )
    sid = await loop.new_session()
    task = asyncio.ensure_future(loop.send("work until stopped", sid))
    await asyncio.wait_for(stepped.wait(), 60)
    (job,) = await loop.list_jobs(sid)
    assert (job.id, job.kind, job.status, job.detail) == ("send", "send", "running", "this loop")
    assert job.started_at is not None
    assert await loop.stop_job(sid, "send", reason="user pressed stop") is True
    result = await asyncio.wait_for(task, 60)
    assert result.status == "cancelled"
    check_history(await loop.get_messages(sid))
    assert await loop.list_jobs(sid) == []


async def test_stopping_a_send_run_by_another_process(make_loop: MakeLoop) -> None:
    """Two loops with their own store connections and leases: the one not running the send sees it
    (through the lease) and stops it (through the durable request the holder's watcher reads)."""
    stepped = asyncio.Event()

    async def step(x: str) -> str:
        stepped.set()
        await asyncio.sleep(0.01)
        return "stepped"

    config = AgentLoopConfig(max_rounds=100_000)
    driver = make_loop(llm=_looping_llm(), tool_registry=make_tools(step=step), config=config, lease_ttl_s=3)
    other = make_loop(llm=ScriptedLLM(), lease_ttl_s=3)
    sid = await driver.new_session()
    task = asyncio.ensure_future(driver.send("work until stopped", sid))
    await asyncio.wait_for(stepped.wait(), 60)
    (job,) = await other.list_jobs(sid)
    assert (job.id, job.status, job.started_at) == ("send", "running", None)
    assert job.detail.startswith("held by ")
    assert await other.stop_job(sid, "send") is True
    result = await asyncio.wait_for(task, 60)
    assert result.status == "cancelled"
    check_history(await other.get_messages(sid))
    assert await other.list_jobs(sid) == []
    # The request was consumed: the next send of the session runs normally.
    driver.llm = ScriptedLLM([ScriptedLLM.text("fresh")])
    assert (await driver.send("again", sid)).final_text == "fresh"


async def test_a_workflow_run_is_stopped_through_its_journal(make_loop: MakeLoop) -> None:
    from power_loop.workflow._journal import CANCEL_KEY, RUN_KEY

    loop = make_loop(llm=ScriptedLLM())
    sid = await loop.new_session()
    store = await loop.ensure_store()
    await store.put_workflow_record(sid, "run1", RUN_KEY, status="running", body={"workflow": "triage"})
    await store.put_workflow_record(sid, "run0", RUN_KEY, status="completed", body={"workflow": "old"})
    (job,) = await loop.list_jobs(sid)
    assert (job.id, job.kind, job.status, job.detail) == ("wf:run1", "workflow", "running", "triage")
    assert await loop.stop_job(sid, "wf:run1", reason="no longer needed") is True
    mark = await store.get_workflow_record(sid, "run1", CANCEL_KEY)
    assert mark is not None and mark.body == {"reason": "no longer needed"}
    assert await loop.stop_job(sid, "wf:run0") is False  # finished


async def _bg_row(store: SessionStore, sid: str, task_id: str) -> BackgroundTaskRow:
    row = await store.get_background_task(sid, task_id)
    assert row is not None
    return row


async def test_background_tasks_are_jobs(make_loop: MakeLoop, tmp_path: Path) -> None:
    from power_loop.tools._background import BackgroundSupervisor, start_background_task

    loop = make_loop(llm=ScriptedLLM())
    sid = await loop.new_session()
    store = await loop.ensure_store()
    (tmp_path / "ws").mkdir()
    row = await start_background_task(
        "sleep 120",
        tmp_path / "ws",
        session_id=sid,
        store=store,
        output_dir=tmp_path / "out",
        supervisor=BackgroundSupervisor(),
    )
    (job,) = await loop.list_jobs(sid)
    assert (job.id, job.kind, job.status, job.detail) == (
        f"bg:{row.task_id}",
        "background",
        "running",
        "sleep 120",
    )
    assert await loop.stop_job(sid, job.id) is True
    deadline = time.monotonic() + 60
    while not (await _bg_row(store, sid, row.task_id)).finished:
        assert time.monotonic() < deadline, "the killed task was not recorded"
        await asyncio.sleep(0.05)
    assert (await _bg_row(store, sid, row.task_id)).status == "killed"
    assert await loop.stop_job(sid, job.id) is False
    assert await loop.list_jobs(sid) == []


async def test_background_tasks_of_other_processes(make_loop: MakeLoop) -> None:
    loop = make_loop(llm=ScriptedLLM())
    sid = await loop.new_session()
    store = await loop.ensure_store()
    await store.upsert_background_task(
        sid, task_id="bg_far", command="sleep 9", status="running", pid=1234, host="another-host"
    )
    with pytest.raises(JobNotStoppable) as info:
        await loop.stop_job(sid, "bg:bg_far")
    assert info.value.code == "job.not_stoppable"
    # Started on this host by a process that died: its process group is gone, so it is recorded lost.
    gone = await asyncio.create_subprocess_exec("true", start_new_session=True)
    await gone.wait()
    await store.upsert_background_task(
        sid, task_id="bg_gone", command="true", status="running", pid=gone.pid, host=socket.gethostname()
    )
    assert await loop.stop_job(sid, "bg:bg_gone") is False
    assert (await _bg_row(store, sid, "bg_gone")).status == "lost"
    # Started on this host by another process that still watches it: killed by its process group.
    env = {**os.environ, "POWER_LOOP_BACKGROUND_TASK": "bg_here"}
    proc = await asyncio.create_subprocess_exec("sleep", "120", start_new_session=True, env=env)
    try:
        # Until the child has exec'd, /proc shows the parent's environment (no marker): wait for it.
        deadline = time.monotonic() + 60
        environ = Path(f"/proc/{proc.pid}/environ")
        while b"POWER_LOOP_BACKGROUND_TASK=bg_here" not in environ.read_bytes():  # noqa: ASYNC240
            assert time.monotonic() < deadline, "the child never exec'd"
            await asyncio.sleep(0.05)
        await store.upsert_background_task(
            sid,
            task_id="bg_here",
            command="sleep 120",
            status="running",
            pid=proc.pid,
            host=socket.gethostname(),
        )
        assert await loop.stop_job(sid, "bg:bg_here") is True
        assert await asyncio.wait_for(proc.wait(), 60) == -signal.SIGKILL
        assert (await _bg_row(store, sid, "bg_here")).status == "killed"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
