"""Subprocess leaves: the research workflow out of process, the launcher seam, timeouts, reaping."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
from wf_helpers import leaf, research_llm, research_spec

from power_loop.agents import AgentSpec
from power_loop.errors import ConfigError
from power_loop.loop import StatefulAgentLoop
from power_loop.workflow import (
    SubprocessExecutor,
    WorkerBootstrap,
    WorkerLauncher,
    cleanup_run,
    create_workflow,
    reap_runs,
    resume_run,
)

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ENV = {"PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), str(HERE)])}


class RecordingLauncher:
    """Wraps the worker in ``env PL_SANDBOXED=1`` (as bwrap/firejail would) and records each argv."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def build(
        self,
        *,
        base_argv: list[str],
        base_env: dict[str, str] | None,
        spec: AgentSpec,
        db_path: str,
        workspace_dir: str | None,
    ) -> tuple[list[str], dict[str, str] | None]:
        argv = ["env", "PL_SANDBOXED=1", *base_argv]
        self.calls.append(argv)
        return argv, base_env


class BrokenLauncher:
    def build(self, **kwargs: Any) -> tuple[list[str], dict[str, str] | None]:
        raise RuntimeError("bwrap: not installed")


def _executor(tmp_path: Path, factory: str, **kw: Any) -> SubprocessExecutor:
    bootstrap = WorkerBootstrap(llm_factory=f"wf_worker_factories:{factory}")
    return SubprocessExecutor(bootstrap=bootstrap, runs_dir=tmp_path / "runs", env=ENV, **kw)


async def test_research_workflow_with_subprocess_leaves(tmp_path: Path) -> None:
    launcher = RecordingLauncher()
    assert isinstance(launcher, WorkerLauncher)
    executor = _executor(tmp_path, "research_model", launcher=launcher)
    parent_llm = research_llm()
    async with StatefulAgentLoop(llm=parent_llm, dsn=str(tmp_path / "parent.db")) as loop:
        parent = await loop.new_session()
        wf = create_workflow(
            research_spec(["solar", "wind"]), parent_loop=loop, executor=executor, parent_session_id=parent
        )
        result = await wf.run()
        assert result.status == "completed", result.errors
        assert result.final is not None and result.final.text == "REPORT: notes on solar; notes on wind"
        assert parent_llm.requests == []  # every model call happened in a worker process
        assert len(launcher.calls) == 3
        assert all(
            c[:2] == ["env", "PL_SANDBOXED=1"] and c[-2:] == ["-m", "power_loop.workflow.worker"]
            for c in launcher.calls
        )
        # each leaf's own SQLite file, and its session copied into the parent store
        files = sorted(p.name.split("__")[0] for p in (tmp_path / "runs" / wf.run_id).glob("*.db"))
        assert files == ["researcher", "researcher", "writer"]
        store = await loop.ensure_store()
        sid = result.results["writer"].session_id
        assert sid is not None
        messages = await store.load_all_messages(sid)
        assert [m.role for m in messages] == ["user", "assistant"]
        row = await store.get_session(sid)
        assert row is not None and row.metadata["idempotency_key"] == f"{wf.run_id}:writer"
        driver = next(r for r in await store.list_workflow_records(parent, wf.run_id) if r.step_key == "@run")
        assert row.parent_session_id == driver.body["driver_sid"]  # closed with its run's parent

        # a resumed run adopts the imported sessions: no worker starts again
        again = await resume_run(loop, parent, wf.run_id, executor=executor)
        assert again.final is not None and again.final.text == result.final.text
        assert len(launcher.calls) == 3
    assert cleanup_run(tmp_path / "runs", wf.run_id) and not (tmp_path / "runs" / wf.run_id).exists()


async def test_a_failing_launcher_fails_the_leaf_and_runs_nothing(tmp_path: Path) -> None:
    executor = _executor(tmp_path, "research_model", launcher=BrokenLauncher())
    async with StatefulAgentLoop(llm=research_llm(), dsn=str(tmp_path / "parent.db")) as loop:
        result = await create_workflow(
            {"name": "one", "root": leaf("a", "p")}, parent_loop=loop, executor=executor
        ).run()
    assert result.status == "failed"
    assert "worker launcher failed" in (result.results["a"].error or "") and "bwrap" in (
        result.results["a"].error or ""
    )
    assert not list((tmp_path / "runs").rglob("*.db"))  # no worker ever ran


class LeakyLauncher:
    def build(self, **kwargs: Any) -> tuple[list[str], dict[str, str] | None]:
        raise RuntimeError("sandbox refused: Authorization: Bearer sk-live-0123456789abcdef")


async def test_a_leaf_failure_is_recorded_redacted(tmp_path: Path) -> None:
    executor = _executor(tmp_path, "research_model", launcher=LeakyLauncher())
    async with StatefulAgentLoop(llm=research_llm(), dsn=str(tmp_path / "parent.db")) as loop:
        result = await create_workflow(
            {"name": "one", "root": leaf("a", "p")}, parent_loop=loop, executor=executor
        ).run()
    error = result.results["a"].error or ""
    assert "sandbox refused" in error and "0123456789abcdef" not in error


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie nobody reaped yet has stopped running
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True


async def test_a_hanging_leaf_is_killed_with_its_whole_process_group(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    executor = _executor(tmp_path, "hanging_model", timeout_s=8, term_grace_s=1)
    executor.env = {**ENV, "WF_PIDS_FILE": str(pids_file)}
    async with StatefulAgentLoop(llm=research_llm(), dsn=str(tmp_path / "parent.db")) as loop:
        result = await create_workflow(
            {"name": "hang", "root": leaf("a", "p")}, parent_loop=loop, executor=executor
        ).run()
    assert result.status == "failed" and "timed out" in (result.results["a"].error or "")
    worker, grandchild = (int(p) for p in pids_file.read_text().split())
    for _ in range(100):  # init reaps the orphaned grandchild in its own time
        if _gone(worker) and _gone(grandchild):
            break
        await asyncio.sleep(0.2)
    assert _gone(worker) and _gone(grandchild)  # the grandchild ignored SIGTERM: SIGKILL got it


def test_bootstrap_validation_and_reap_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        WorkerBootstrap()  # no model
    with pytest.raises(ConfigError):
        WorkerBootstrap(llm_factory="not a path")
    boot = WorkerBootstrap(llm_factory="pkg.mod:make", tool_preset="core")
    assert WorkerBootstrap.from_dict(boot.to_dict()) == boot
    runs = tmp_path / "runs"
    for name, age in (("old", 7200), ("new", 10)):
        (runs / name).mkdir(parents=True)
        os.utime(runs / name, (time.time() - age, time.time() - age))
    assert reap_runs(runs, older_than_s=3600) == ["old"]
    assert sorted(p.name for p in runs.iterdir()) == ["new"]
