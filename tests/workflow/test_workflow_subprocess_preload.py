"""``SubprocessExecutor(preload=True)``: leaves forked from one zygote process, same outcome as the plain mode."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from test_workflow_subprocess import RecordingLauncher
from wf_helpers import leaf, research_llm, research_spec

from power_loop.agents import AgentSpec
from power_loop.errors import ConfigError
from power_loop.llm import CancellationToken
from power_loop.loop import StatefulAgentLoop
from power_loop.workflow import (
    DirectWorkerLauncher,
    SubprocessExecutor,
    WorkerBootstrap,
    _forkserver,
    create_workflow,
)

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ENV = {"PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), str(HERE)])}


def _executor(tmp_path: Path, factory: str, **kw: Any) -> SubprocessExecutor:
    bootstrap = WorkerBootstrap(llm_factory=f"wf_worker_factories:{factory}")
    kw.setdefault("env", ENV)
    return SubprocessExecutor(bootstrap=bootstrap, runs_dir=tmp_path / "runs", preload=True, **kw)


def _state(pid: int) -> str | None:
    """The process's state letter (``Z`` = zombie), None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except (OSError, IndexError):
        return None


def _gone(pid: int) -> bool:
    return _state(pid) in (None, "Z")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


async def _eventually(check: Any, tries: int = 150) -> bool:
    for _ in range(tries):  # bounded, not timed: the machine may be slow
        if check():
            return True
        await asyncio.sleep(0.2)
    return bool(check())


async def _journal(loop: StatefulAgentLoop, parent: str, run_id: str) -> list[tuple[str, str]]:
    store = await loop.ensure_store()
    records = await store.list_workflow_records(parent, run_id)
    return sorted((r.step_key, str(r.body.get("status"))) for r in records if not r.step_key.startswith("@"))


async def _research(tmp_path: Path, name: str, executor: SubprocessExecutor) -> tuple[Any, ...]:
    async with StatefulAgentLoop(llm=research_llm(), dsn=str(tmp_path / f"{name}.db")) as loop:
        parent = await loop.new_session()
        wf = create_workflow(
            research_spec(["solar", "wind", "hydro"]),
            parent_loop=loop,
            executor=executor,
            parent_session_id=parent,
        )
        result = await wf.run()
        store = await loop.ensure_store()
        roles = {}
        for key, step in result.results.items():
            if step.session_id is not None:  # a leaf, not a container
                roles[key] = [m.role for m in await store.load_all_messages(step.session_id)]
        return result, roles, await _journal(loop, parent, wf.run_id)


async def test_preloaded_leaves_give_the_plain_modes_results_and_journal(tmp_path: Path) -> None:
    plain = SubprocessExecutor(
        bootstrap=WorkerBootstrap(llm_factory="wf_worker_factories:research_model"),
        runs_dir=tmp_path / "plain_runs",
        env=ENV,
    )
    expected, expected_roles, expected_journal = await _research(tmp_path, "plain", plain)
    async with _executor(tmp_path, "research_model") as executor:
        assert executor.zygote_pid is None  # started lazily, on the first leaf
        result, roles, journal = await _research(tmp_path, "preload", executor)
        zygote = executor.zygote_pid
        assert zygote is not None
    assert result.status == expected.status == "completed", result.errors
    assert result.final is not None and expected.final is not None
    assert result.final.text == expected.final.text == "REPORT: notes on hydro; notes on solar; notes on wind"
    assert {k: (v.status, v.text) for k, v in result.results.items()} == {
        k: (v.status, v.text) for k, v in expected.results.items()
    }
    # every leaf's session was imported into the parent store, as in the plain mode
    assert roles == expected_roles and len(roles) == 4
    assert all(r == ["user", "assistant"] for r in roles.values())
    assert journal == expected_journal and len(journal) == 4
    assert executor.zygote_pid is None and await _eventually(lambda: _gone(zygote))  # aclose stopped it
    leftovers = [p.name for p in (tmp_path / "runs").rglob("*") if p.suffix != ".db" and p.is_file()]
    assert leftovers == []  # result and log files are consumed


async def _start_leaf(
    executor: SubprocessExecutor, loop: StatefulAgentLoop, n: str, stop: CancellationToken | None = None
) -> asyncio.Future[dict[str, Any]]:
    """One leaf of run ``r<n>`` started on ``executor`` (not awaited)."""
    driver = await loop.new_session()
    return asyncio.ensure_future(
        executor.run_agent(
            AgentSpec(name="a", system_prompt="p"),
            "go",
            parent_loop=loop,
            driver_sid=driver,
            session_id="wf_" + n * 24,
            metadata={"workflow_run_id": f"r{n}", "workflow_node_id": "a"},
            stop_event=stop,
        )
    )


async def test_a_hanging_preloaded_leaf_is_killed_with_its_whole_process_group(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    env = {**ENV, "WF_PIDS_FILE": str(pids_file)}
    async with _executor(tmp_path, "hanging_model", env=env, timeout_s=8, term_grace_s=1) as executor:
        async with StatefulAgentLoop(llm=research_llm(), dsn=str(tmp_path / "parent.db")) as loop:
            result = await create_workflow(
                {"name": "hang", "root": leaf("a", "p")}, parent_loop=loop, executor=executor
            ).run()
        zygote = executor.zygote_pid
        assert zygote is not None and not _gone(zygote)  # the zygote itself lives on
    assert result.status == "failed" and result.results["a"].error == "worker timed out after 8s"
    worker, grandchild = (int(p) for p in pids_file.read_text().split())
    assert worker != zygote
    assert await _eventually(lambda: _gone(worker) and _gone(grandchild))  # SIGKILL got the stubborn one


async def test_a_stop_event_cancels_a_preloaded_leaf(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    env = {**ENV, "WF_PIDS_FILE": str(pids_file)}
    stop = CancellationToken()
    async with _executor(tmp_path, "hanging_model", env=env, term_grace_s=1) as executor:
        async with StatefulAgentLoop(llm=research_llm(), dsn=str(tmp_path / "parent.db")) as loop:
            running = await _start_leaf(executor, loop, "1", stop)
            assert await _eventually(pids_file.exists)  # the leaf is running its model
            stop.cancel()
            result = await running
    assert result["status"] == "failed" and result["error"] == "worker cancelled"
    worker, grandchild = (int(p) for p in pids_file.read_text().split())
    assert await _eventually(lambda: _gone(worker) and _gone(grandchild))


async def test_cancelling_a_preloaded_leafs_task_kills_it_and_leaves_no_result_files(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    env = {**ENV, "WF_PIDS_FILE": str(pids_file)}
    async with _executor(tmp_path, "hanging_model", env=env, term_grace_s=1) as executor:
        async with StatefulAgentLoop(llm=research_llm(), dsn=str(tmp_path / "parent.db")) as loop:
            running = await _start_leaf(executor, loop, "2")
            assert await _eventually(pids_file.exists)  # the leaf is running its model
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
    worker, grandchild = (int(p) for p in pids_file.read_text().split())
    assert await _eventually(lambda: _gone(worker) and _gone(grandchild))
    left = sorted(p.name for p in (tmp_path / "runs").rglob("*.result*"))
    assert left == []


async def test_a_crashing_child_is_a_failed_leaf(tmp_path: Path) -> None:
    async with _executor(tmp_path, "crashing_model") as executor:
        async with StatefulAgentLoop(llm=research_llm(), dsn=str(tmp_path / "parent.db")) as loop:
            result = await create_workflow(
                {"name": "crash", "root": leaf("a", "p")}, parent_loop=loop, executor=executor
            ).run()
        assert executor.zygote_pid is not None  # a leaf's crash is not the zygote's
    error = result.results["a"].error or ""
    assert result.status == "failed" and "exited without a result" in error, error


async def test_a_killed_zygote_is_replaced_and_no_zombie_remains(tmp_path: Path) -> None:
    spec = {
        "name": "fan",
        "root": {
            "type": "foreach",
            "as": "x",
            "items": [1, 2, 3, 4],
            "max_concurrency": 4,
            "body": leaf("a", "p"),
        },
    }
    async with _executor(tmp_path, "research_model") as executor:
        async with StatefulAgentLoop(llm=research_llm(), dsn=str(tmp_path / "parent.db")) as loop:
            first = await create_workflow(spec, parent_loop=loop, executor=executor).run()
            zygote = executor.zygote_pid
            assert first.status == "completed" and zygote is not None
            # every leaf child has been reaped by the zygote: no zombie (nor any child) is left
            assert await _eventually(lambda: _children(zygote) == [])
            os.kill(zygote, signal.SIGKILL)
            assert await _eventually(lambda: executor.zygote_pid is None)
            second = await create_workflow(spec, parent_loop=loop, executor=executor).run()
            assert second.status == "completed", second.errors
            assert executor.zygote_pid not in (None, zygote)


async def test_leaf_subprocesses_keep_their_exit_status(tmp_path: Path) -> None:
    # the child must not inherit the zygote's SIGCHLD reaping: asyncio would lose its subprocess's status
    async with _executor(tmp_path, "subprocess_model") as executor:
        async with StatefulAgentLoop(llm=research_llm(), dsn=str(tmp_path / "parent.db")) as loop:
            result = await create_workflow(
                {"name": "sub", "root": leaf("a", "p")}, parent_loop=loop, executor=executor
            ).run()
    assert result.results["a"].text == "rc=7", result.errors


async def test_without_pidfd_the_child_is_polled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_forkserver, "_pidfd_open", None)  # as on macOS
    async with _executor(tmp_path, "research_model") as executor:
        async with StatefulAgentLoop(llm=research_llm(), dsn=str(tmp_path / "parent.db")) as loop:
            result = await create_workflow(
                {"name": "one", "root": leaf("a", "You research tides.")}, parent_loop=loop, executor=executor
            ).run()
    assert result.results["a"].text == "notes on tides"


async def test_a_zygote_that_cannot_start_fails_the_leaf(tmp_path: Path) -> None:
    async with _executor(tmp_path, "research_model", python_executable="false") as executor:
        async with StatefulAgentLoop(llm=research_llm(), dsn=str(tmp_path / "parent.db")) as loop:
            result = await create_workflow(
                {"name": "one", "root": leaf("a", "p")}, parent_loop=loop, executor=executor
            ).run()
    error = result.results["a"].error or ""
    assert result.status == "failed" and error.startswith("worker zygote did not start"), error


def test_preload_refuses_a_launcher_and_a_platform_without_fork(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="preload"):
        _executor(tmp_path, "research_model", launcher=RecordingLauncher())
    assert _executor(tmp_path, "research_model", launcher=DirectWorkerLauncher()).preload
    monkeypatch.delattr(os, "fork")
    with pytest.raises(ConfigError, match="needs os"):
        _executor(tmp_path, "research_model")


def test_an_unclosed_executors_zygote_ends_with_its_process(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, os, sys
        from pathlib import Path
        from power_loop.loop import StatefulAgentLoop
        from power_loop.workflow import SubprocessExecutor, WorkerBootstrap, create_workflow
        from wf_helpers import leaf, research_llm

        async def main():
            executor = SubprocessExecutor(
                bootstrap=WorkerBootstrap(llm_factory="wf_worker_factories:research_model"),
                runs_dir={str(tmp_path / "runs")!r}, preload=True)
            async with StatefulAgentLoop(llm=research_llm(), dsn=":memory:") as loop:
                result = await create_workflow(
                    {{"name": "one", "root": leaf("a", "p")}}, parent_loop=loop, executor=executor).run()
            print(result.status, executor.zygote_pid, flush=True)
            os._exit(0)  # no aclose, no clean-up at all

        asyncio.run(main())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, **ENV}, capture_output=True, text=True, timeout=300
    )
    status, pid = out.stdout.split()
    assert status == "completed", out.stderr
    assert asyncio.run(_eventually(lambda: _gone(int(pid))))  # stdin EOF: the zygote left with its parent
