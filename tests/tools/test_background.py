"""Durable background tasks: ``background_run`` / ``check_background``, their store rows and the
``BackgroundRuntimeProjector`` — on SQLite, PostgreSQL and MySQL. No sub-second timing: every wait is
a bounded poll."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from power_loop import BackgroundRuntimeProjector, ProjectionContext
from power_loop.errors import SessionNotFoundError
from power_loop.store import BackgroundTaskRow, SessionStore, open_store
from power_loop.tools import (
    BackgroundSupervisor,
    RuntimeEnv,
    ToolRegistry,
    ToolRuntimeContext,
    create_default_tool_registry,
    register_background_tools,
    runtime_env_context,
    stop_background_task,
    use_tool_runtime_context,
)

_OFFERED = ProjectionContext(tool_names=("background_run", "check_background"))


@pytest.fixture
async def store(store_dsn_and_prefix: tuple[str, str]) -> AsyncIterator[SessionStore]:
    dsn, prefix = store_dsn_and_prefix
    s = await open_store(dsn, table_prefix=prefix)
    try:
        yield s
    finally:
        await s.close()


def _tools(tmp_path: Path, **kwargs: Any) -> ToolRegistry:
    (tmp_path / "ws").mkdir(exist_ok=True)
    registry = ToolRegistry()
    register_background_tools(registry, tmp_path / "ws", output_dir=tmp_path / "out", **kwargs)
    return registry


async def _call(registry: ToolRegistry, store: SessionStore, sid: str, name: str, **args: Any) -> Any:
    entry = registry.get(name)
    assert entry is not None
    with use_tool_runtime_context(ToolRuntimeContext(session_id=sid, store=store)):
        return await entry.handler(**args)


async def _finished(
    store: SessionStore, sid: str, task_id: str, *, within_s: float = 60
) -> BackgroundTaskRow:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        row = await store.get_background_task(sid, task_id)
        assert row is not None
        if row.finished:
            return row
        await asyncio.sleep(0.2)
    raise AssertionError(f"task {task_id} still running after {within_s}s")


async def _projected(store: SessionStore, sid: str) -> list[str]:
    messages = await BackgroundRuntimeProjector().project(
        store=store, session_id=sid, round_index=1, context=_OFFERED
    )
    assert all(m.name == "runtime_background_updates" and m.role == "user" for m in messages)
    return [m.content for m in messages]


async def test_run_check_and_the_finish_delivered_once(store: SessionStore, tmp_path: Path) -> None:
    tools = _tools(tmp_path)
    sid = await store.create_session()
    (tmp_path / "ws" / "go").unlink(missing_ok=True)
    started = await _call(
        tools,
        store,
        sid,
        "background_run",
        command="while [ ! -f go ]; do sleep 0.1; done; echo made it; pwd",
    )
    assert started.ok and started.data["status"] == "running"
    task_id = started.data["task_id"]
    running = await _call(tools, store, sid, "check_background", task_id=task_id)
    assert running.ok and running.data["status"] == "running" and "(no output yet)" in running.content
    assert await _projected(store, sid) == []  # nothing finished yet
    (tmp_path / "ws" / "go").write_text("")
    row = await _finished(store, sid, task_id)
    assert (row.status, row.return_code) == ("completed", 0)
    assert (
        row.output_tail is not None
        and "made it" in row.output_tail
        and str(tmp_path / "ws") in row.output_tail
    )
    assert row.output_path and _text(row.output_path).startswith("made it")
    [shown] = await _projected(store, sid)
    assert shown.startswith("<background_updates>") and shown.endswith("</background_updates>")
    assert f'<task id="{task_id}" status="completed" return_code="0">' in shown and "made it" in shown
    assert await _projected(store, sid) == []  # delivered once
    listing = await _call(tools, store, sid, "check_background")
    assert listing.ok and f"{task_id}  completed" in listing.content


async def test_each_registration_supervises_its_own_tasks_and_aclose_kills_them(
    store: SessionStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import power_loop.tools._background as bg

    monkeypatch.setattr(bg, "MAX_RUNNING_BACKGROUND_TASKS", 1)
    (tmp_path / "ws").mkdir()
    first, second = ToolRegistry(), ToolRegistry()
    sup_a = register_background_tools(first, tmp_path / "ws", output_dir=tmp_path / "out")
    sup_b = register_background_tools(second, tmp_path / "ws", output_dir=tmp_path / "out")
    assert isinstance(sup_a, BackgroundSupervisor) and sup_a is not sup_b
    sid = await store.create_session()
    a = await _call(first, store, sid, "background_run", command="sleep 120")
    refused = await _call(first, store, sid, "background_run", command="sleep 120")
    assert a.ok and not refused.ok and "already running" in refused.content  # the limit is per supervisor
    b = await _call(second, store, sid, "background_run", command="sleep 120")
    assert b.ok and (sup_a.running(sid), sup_b.running(sid)) == (1, 1)
    # A task watched by another supervisor is stopped through its verified process group.
    assert await stop_background_task(store, sid, b.data["task_id"], supervisor=sup_a) is True
    assert (await _finished(store, sid, b.data["task_id"])).status == "killed"
    assert await sup_a.aclose() == 1  # kills what it watches and waits for the end to be recorded
    row = await store.get_background_task(sid, a.data["task_id"])
    assert row is not None and row.status == "killed" and sup_a.running(sid) == 0
    await sup_b.aclose()  # its watcher may still hold b's process: it records the end too
    row = await store.get_background_task(sid, b.data["task_id"])
    assert row is not None and row.status == "killed" and sup_b.running(sid) == 0


async def test_failure_exit_code_and_check_marks_seen(store: SessionStore, tmp_path: Path) -> None:
    tools = _tools(tmp_path)
    sid = await store.create_session()
    started = await _call(tools, store, sid, "background_run", command="echo oops >&2; exit 3")
    row = await _finished(store, sid, started.data["task_id"])
    assert (row.status, row.return_code) == ("failed(3)", 3) and "oops" in (row.output_tail or "")
    checked = await _call(tools, store, sid, "check_background", task_id=row.task_id)
    assert "failed(3), exit code 3" in checked.content and "oops" in checked.content
    assert await _projected(store, sid) == []  # the model saw it through check_background
    missing = await _call(tools, store, sid, "check_background", task_id="bg_nope")
    assert not missing.ok and "no background task" in missing.content


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie nobody reaped yet has ended too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _text(path: str | None) -> str:
    return Path(path or "").read_text()


async def _gone(pid: int, *, within_s: float = 30) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        await asyncio.sleep(0.2)
    return False


async def test_timeout_kills_the_process_group(store: SessionStore, tmp_path: Path) -> None:
    tools = _tools(tmp_path, timeout_s=5)  # ample time to start the grandchild, even on a busy host
    sid = await store.create_session()
    started = await _call(
        tools, store, sid, "background_run", command="sleep 300 & echo $! > child.pid; echo started; wait"
    )
    row = await _finished(store, sid, started.data["task_id"])
    assert row.status == "timeout" and "started" in (row.output_tail or "")
    child = int((tmp_path / "ws" / "child.pid").read_text())
    assert await _gone(child)  # the grandchild died with its group
    [shown] = await _projected(store, sid)
    assert 'status="timeout"' in shown


async def _dead_pid() -> int:
    proc = await asyncio.create_subprocess_exec("true")
    await proc.wait()
    return proc.pid


async def test_a_task_whose_process_vanished_is_lost_not_running(store: SessionStore, tmp_path: Path) -> None:
    tools = _tools(tmp_path)
    sid = await store.create_session()
    log = tmp_path / "orphan.log"
    log.write_text("half way\n")
    now = time.time_ns() // 1_000_000
    host = socket.gethostname()
    # As left behind by a host process that was killed: still "running", its pid gone.
    await store.upsert_background_task(
        sid,
        task_id="bg_dead",
        command="make",
        status="running",
        output_path=str(log),
        pid=await _dead_pid(),
        host=host,
    )
    # On another host: running until well past its deadline, then lost.
    await store.upsert_background_task(
        sid,
        task_id="bg_far",
        command="x",
        status="running",
        pid=1,
        host="elsewhere",
        deadline_at=now + 3_600_000,
    )
    await store.upsert_background_task(
        sid,
        task_id="bg_far_late",
        command="y",
        status="running",
        pid=1,
        host="elsewhere",
        deadline_at=now - 3_600_000,
    )
    checked = await _call(tools, store, sid, "check_background", task_id="bg_dead")
    assert checked.data["status"] == "lost" and "half way" in checked.content
    stored = await store.get_background_task(sid, "bg_dead")
    assert stored is not None and stored.status == "lost" and stored.pid is not None  # where it ran is kept
    [shown] = await _projected(store, sid)
    assert 'id="bg_far_late" status="lost"' in shown and "bg_dead" not in shown and 'bg_far"' not in shown
    assert (await store.get_background_task(sid, "bg_far")).status == "running"  # type: ignore[union-attr]


async def test_output_is_bounded(store: SessionStore, tmp_path: Path) -> None:
    from power_loop.tools._background_proc import BACKGROUND_TAIL_CHARS, MAX_BACKGROUND_OUTPUT_BYTES

    tools = _tools(tmp_path)
    sid = await store.create_session()
    command = "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo THE END"
    row = await _finished(
        store, sid, (await _call(tools, store, sid, "background_run", command=command)).data["task_id"]
    )
    assert row.status == "completed"
    assert row.output_tail is not None and len(row.output_tail) <= BACKGROUND_TAIL_CHARS
    assert row.output_tail.rstrip().endswith("THE END")
    saved = _text(row.output_path)
    assert MAX_BACKGROUND_OUTPUT_BYTES < len(saved) < MAX_BACKGROUND_OUTPUT_BYTES + 100_000
    assert "bytes truncated" in saved and saved.rstrip().endswith("THE END")


async def test_output_just_over_the_cap_is_kept_whole(store: SessionStore, tmp_path: Path) -> None:
    from power_loop.tools._background_proc import MAX_BACKGROUND_OUTPUT_BYTES

    tools = _tools(tmp_path)
    sid = await store.create_session()
    command = f"head -c {MAX_BACKGROUND_OUTPUT_BYTES} /dev/zero | tr '\\0' x; echo; echo TAIL-MARK"
    row = await _finished(
        store, sid, (await _call(tools, store, sid, "background_run", command=command)).data["task_id"]
    )
    assert row.output_tail is not None and row.output_tail.count("TAIL-MARK") == 1
    saved = _text(row.output_path)
    assert len(saved) == MAX_BACKGROUND_OUTPUT_BYTES + len("\nTAIL-MARK\n") and "truncated" not in saved


async def test_store_rows_unseen_and_session_lifecycle(store: SessionStore) -> None:
    sid = await store.create_session()
    with pytest.raises(SessionNotFoundError):
        await store.upsert_background_task("sess_missing", task_id="t", command="c", status="running")
    await store.upsert_background_task(sid, task_id="t1", command="c1", status="running", pid=42, host="h")
    await store.upsert_background_task(sid, task_id="t1", command="c1", status="completed", return_code=0)
    [row] = await store.list_unseen_background_updates(sid)
    assert (row.status, row.return_code, row.pid, row.host) == ("completed", 0, 42, "h")
    assert await store.mark_background_seen(sid, ["t1", "t1"]) == 1
    assert await store.list_unseen_background_updates(sid) == []
    assert [r.task_id for r in await store.list_background_tasks(sid)] == ["t1"]
    assert await store.mark_background_seen(sid, []) == 0
    assert "background_tasks" not in (await store.export_session(sid))["tables"]
    await store.close_session(sid)
    assert await store.list_background_tasks(sid) == []


async def test_projector_costs_nothing_without_the_tools() -> None:
    # No store access at all: a loop not offering the tools pays nothing per round.
    messages = await BackgroundRuntimeProjector().project(
        store=None,  # type: ignore[arg-type]
        session_id="s",
        round_index=0,
        context=ProjectionContext(tool_names=("bash", "todo")),
    )
    assert messages == []
    assert repr(BackgroundRuntimeProjector(mark_seen=False)) == "BackgroundRuntimeProjector(mark_seen=False)"


async def test_unbound_registry_runs_in_the_runtime_env_workspace(
    store: SessionStore, tmp_path: Path
) -> None:
    registry = create_default_tool_registry(include=["background_run", "check_background"], bind=False)
    assert registry.names() == ["background_run", "check_background"]
    sid = await store.create_session()
    with runtime_env_context(RuntimeEnv(workspace_dir=tmp_path)):
        started = await _call(registry, store, sid, "background_run", command="pwd")
    row = await _finished(store, sid, started.data["task_id"])
    assert row.status == "completed" and str(tmp_path) in (row.output_tail or "")


async def test_outside_a_loop_is_an_error(tmp_path: Path) -> None:
    from power_loop.tools import execute_tool_call

    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "background_run", "arguments": '{"command": "true"}'},
    }
    outcome = await execute_tool_call(_tools(tmp_path), call)
    assert outcome.failed and "StatefulAgentLoop" in outcome.output


async def test_an_older_schema_gains_the_background_tasks_table(
    store_dsn_and_prefix: tuple[str, str],
) -> None:
    from power_loop.store import CURRENT_SCHEMA_VERSION, connect_database, ensure_schema

    dsn, prefix = store_dsn_and_prefix
    db = await connect_database(dsn)
    try:
        assert await ensure_schema(db, prefix) == CURRENT_SCHEMA_VERSION
        s = SessionStore(db, table_prefix=prefix)
        sid = await s.create_session()
        # wind the database back to the schema before background tasks (later steps re-run safely:
        # every step creates its tables only if they are missing)
        from power_loop.store._schema import MIGRATIONS

        back = next(m.version for m in MIGRATIONS if "background_tasks" in m.description) - 1
        await db.execute(f"DROP TABLE {prefix}background_tasks")
        await db.execute(f"UPDATE {prefix}schema_migrations SET version = ? WHERE id = ?", (back, 1))
        assert await ensure_schema(db, prefix) == CURRENT_SCHEMA_VERSION
        await s.upsert_background_task(sid, task_id="t", command="c", status="running")
        assert [r.task_id for r in await s.list_background_tasks(sid)] == ["t"]
        assert await s.get_session(sid) is not None
    finally:
        await db.close()


_HOST_SCRIPT = """
import asyncio, sys
from pathlib import Path
from power_loop.store import open_store
from power_loop.tools._background import BackgroundSupervisor, start_background_task

async def main():
    dsn, prefix, sid, ws, out, command, timeout, wait_output = sys.argv[1:]
    store = await open_store(dsn, table_prefix=prefix)
    row = await start_background_task(
        command, Path(ws), session_id=sid, store=store, timeout_s=float(timeout), output_dir=Path(out),
        supervisor=BackgroundSupervisor(),
    )
    for _ in range(600):  # with output expected, let it reach the file before this host dies
        if wait_output == "0" or Path(row.output_path).stat().st_size:
            break
        await asyncio.sleep(0.1)
    print(row.task_id, row.pid, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def _start_in_a_host_then_kill_it(
    dsn: str, prefix: str, sid: str, tmp_path: Path, command: str, timeout_s: int
) -> tuple[str, int]:
    """A separate host process starts the task; it is then killed (SIGKILL) with no chance to record."""
    (tmp_path / "ws").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(Path.cwd()), os.environ.get("PYTHONPATH")) if p),
    }
    wait_output = "1" if "echo" in command else "0"
    args = (
        dsn,
        prefix,
        sid,
        str(tmp_path / "ws"),
        str(tmp_path / "out"),
        command,
        str(timeout_s),
        wait_output,
    )
    host = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOST_SCRIPT, *args, stdout=asyncio.subprocess.PIPE, env=env
    )
    try:
        assert host.stdout is not None
        line = await asyncio.wait_for(host.stdout.readline(), timeout=120)
    finally:
        host.kill()
        await host.wait()
    task_id, pid = line.decode().split()
    return task_id, int(pid)


async def test_host_killed_task_ends_by_itself_then_reported_lost(
    loop_dsn_and_prefix: tuple[str, str], tmp_path: Path
) -> None:
    dsn, prefix = loop_dsn_and_prefix
    store = await open_store(dsn, table_prefix=prefix)
    try:
        tools = _tools(tmp_path)
        sid = await store.create_session()
        task_id, pid = await _start_in_a_host_then_kill_it(
            dsn, prefix, sid, tmp_path, "echo begun; sleep 2", 300
        )
        assert await _gone(pid, within_s=60)  # the task's process ended on its own; nobody recorded it
        checked = await _call(tools, store, sid, "check_background", task_id=task_id)
        assert checked.data["status"] == "lost" and "begun" in checked.content
    finally:
        await store.close()


async def test_host_killed_task_outliving_its_deadline_is_killed_on_check(
    loop_dsn_and_prefix: tuple[str, str], tmp_path: Path
) -> None:
    dsn, prefix = loop_dsn_and_prefix
    store = await open_store(dsn, table_prefix=prefix)
    try:
        sid = await store.create_session()
        task_id, pid = await _start_in_a_host_then_kill_it(dsn, prefix, sid, tmp_path, "sleep 300", 2)
        row = await store.get_background_task(sid, task_id)
        assert row is not None and row.deadline_at is not None
        await asyncio.sleep(max(0, row.deadline_at - time.time_ns() // 1_000_000) / 1000 + 0.5)
        assert _alive(pid)  # orphaned: still running past its deadline, with no watcher
        [shown] = await _projected(store, sid)  # the next round notices
        assert f'id="{task_id}" status="timeout"' in shown
        assert await _gone(pid)
    finally:
        await store.close()


async def test_a_command_that_cannot_start_is_an_error(store: SessionStore, tmp_path: Path) -> None:
    from power_loop.tools import LocalShellBackend

    tools = _tools(tmp_path, backend=LocalShellBackend(bash_path=str(tmp_path / "no-such-shell")))
    sid = await store.create_session()
    result = await _call(tools, store, sid, "background_run", command="true")
    assert not result.ok and "could not start" in result.content
    row = await store.get_background_task(sid, result.data["task_id"])
    assert row is not None and row.status == "error" and row.finished


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
async def test_a_task_just_started_is_recognised_as_the_task_not_another_process() -> None:
    # Right after exec, /proc/<pid>/environ can read empty for a moment: it used to be taken for
    # another process's (a stop_job then recorded a running task "lost" and did not kill it).
    from power_loop.tools._background_proc import process_owner

    owners = []
    for i in range(100):
        env = {"POWER_LOOP_BACKGROUND_TASK": f"t{i}", "PATH": os.environ["PATH"]}
        proc = await asyncio.create_subprocess_exec("sleep", "60", start_new_session=True, env=env)
        owners.append(process_owner(proc.pid, f"t{i}"))
        proc.kill()
        await proc.wait()
    assert set(owners) == {"task"}
