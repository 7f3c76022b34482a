"""Out-of-process leaves: `SubprocessExecutor` runs each leaf in its own OS process.

Per leaf: a fresh SQLite file under ``runs_dir/<run_id>/``, the job as JSON on stdin, one framed
result line on stdout. The process leads its own process group, so a timeout or a cancellation ends
the whole group (SIGTERM, then SIGKILL after ``term_grace_s``). A `WorkerLauncher` may wrap the
command line (a sandbox such as ``bwrap`` or ``firejail``); if it fails, the leaf fails — it never
runs unsandboxed instead. The leaf's session is imported into the parent store afterwards.

With ``preload=True`` the leaves are forked from one pre-started process instead (`ForkServer`, the
zygote ``python -m power_loop.workflow.zygote``), which skips the interpreter start-up and the imports;
each leaf is still a process group of its own with its own SQLite file, but no launcher can wrap it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from ..agents import AgentSpec
from ..base import redact_secrets
from ..errors import ConfigError
from ..llm import CancellationLike, CancellationToken
from ..loop import StatefulAgentLoop
from ..store import SessionStore
from ._forkserver import ForkServer, signal_group
from ._leaf import adopt_finished
from ._worker_job import RESULT_PREFIX, WorkerBootstrap, WorkerJob

__all__ = [
    "DirectWorkerLauncher",
    "SubprocessExecutor",
    "WorkerLauncher",
    "cleanup_run",
    "reap_runs",
]


@runtime_checkable
class WorkerLauncher(Protocol):
    """Builds the final command line and environment of a worker (the sandbox seam)."""

    def build(
        self,
        *,
        base_argv: list[str],
        base_env: dict[str, str] | None,
        spec: AgentSpec,
        db_path: str,
        workspace_dir: str | None,
    ) -> tuple[list[str], dict[str, str] | None]:
        """Return the ``(argv, env)`` to start the worker with (``env`` None = inherit); raise to refuse."""
        ...


class DirectWorkerLauncher:
    """The identity launcher: runs the worker as is."""

    def build(
        self,
        *,
        base_argv: list[str],
        base_env: dict[str, str] | None,
        spec: AgentSpec,
        db_path: str,
        workspace_dir: str | None,
    ) -> tuple[list[str], dict[str, str] | None]:
        """The identity: the command and environment unchanged."""
        return list(base_argv), base_env


def _failed(session_id: str, error: str) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "status": "failed",
        "final_text": "",
        "usage": {},
        "output": None,
        "error": redact_secrets(error),  # a worker's provider may have echoed its key
    }


class SubprocessExecutor:
    """Run each leaf with ``python -m power_loop.workflow.worker`` in a process group of its own.

    ``env`` None inherits this process's environment; a dict is laid over it. ``timeout_s`` bounds a
    leaf (None = no bound). ``delete_on_success`` removes a completed leaf's SQLite file.
    ``preload=True`` forks each leaf from one zygote process started on the first leaf, which has
    imported the worker once: no interpreter start-up per leaf, but no per-leaf `WorkerLauncher`
    either (a launcher other than `DirectWorkerLauncher` is a `ConfigError`). Close the executor
    (`aclose`, or ``async with``) to stop the zygote; it also exits when this process does.
    """

    def __init__(
        self,
        *,
        bootstrap: WorkerBootstrap,
        runs_dir: str | os.PathLike[str] | None = None,
        python_executable: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        term_grace_s: float = 3.0,
        delete_on_success: bool = False,
        launcher: WorkerLauncher | None = None,
        preload: bool = False,
    ) -> None:
        if preload and not hasattr(os, "fork"):
            raise ConfigError("SubprocessExecutor(preload=True) needs os.fork, which this platform lacks")
        if preload and launcher is not None and not isinstance(launcher, DirectWorkerLauncher):
            raise ConfigError(
                "SubprocessExecutor(preload=True) forks every leaf from one pre-started process, so a "
                "WorkerLauncher cannot wrap a leaf: use preload=False to sandbox each leaf"
            )
        self.bootstrap = bootstrap
        self.runs_dir = (
            Path(runs_dir) if runs_dir is not None else Path(tempfile.gettempdir()) / "power_loop_wf_runs"
        )
        self.python = python_executable or sys.executable
        self.env = dict(env) if env is not None else None
        self.timeout_s = timeout_s
        self.term_grace_s = term_grace_s
        self.delete_on_success = delete_on_success
        self.launcher: WorkerLauncher = launcher or DirectWorkerLauncher()
        self.preload = preload
        self._forkserver = ForkServer() if preload else None

    @property
    def zygote_pid(self) -> int | None:
        """With ``preload``: the pid of the running zygote process (None while there is none)."""
        return None if self._forkserver is None else self._forkserver.pid

    async def aclose(self) -> None:
        """Stop the zygote (``preload``); leaves already running finish. A no-op otherwise."""
        if self._forkserver is not None:
            await asyncio.to_thread(self._forkserver.close)

    async def __aenter__(self) -> SubprocessExecutor:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def run_agent(
        self,
        spec: AgentSpec,
        user_input: str,
        *,
        parent_loop: StatefulAgentLoop,
        driver_sid: str,
        session_id: str,
        metadata: Mapping[str, Any],
        stop_event: CancellationLike = None,
    ) -> dict[str, Any]:
        """Run one leaf in a worker process; its session is then imported into the parent store."""
        store = await parent_loop.ensure_store()
        adopted = await adopt_finished(store, spec, session_id)
        if adopted is not None:
            return {"session_id": session_id, "rounds": 0, **adopted}
        db_path = _leaf_db_path(self.runs_dir, metadata)
        job = WorkerJob(
            spec.to_dict(), user_input, db_path, session_id, dict(metadata), self.bootstrap.to_dict()
        )
        base_env = None if self.env is None else {**os.environ, **self.env}
        stop = CancellationToken.from_any(stop_event)
        if self._forkserver is not None:
            boot = json.dumps(self.bootstrap.to_dict())
            frame = await self._forkserver.run(
                [self.python, "-m", "power_loop.workflow.zygote", boot],
                base_env,
                job=job.to_json(),
                result_path=f"{db_path}.result",
                stop=stop,
                timeout_s=self.timeout_s,
                term_grace_s=self.term_grace_s,
            )
        else:
            frame = await self._launch(spec, job, base_env, stop)
        return await self._finish(frame, store, driver_sid, session_id, db_path)

    async def _launch(
        self, spec: AgentSpec, job: WorkerJob, base_env: dict[str, str] | None, stop: CancellationToken
    ) -> dict[str, Any]:
        try:
            argv, env = self.launcher.build(
                base_argv=[self.python, "-m", "power_loop.workflow.worker"],
                base_env=base_env,
                spec=spec,
                db_path=job.db_path,
                workspace_dir=self.bootstrap.workspace_dir,
            )
        except Exception as exc:  # a broken sandbox fails the leaf: never fall back to running unsandboxed
            return {"ok": False, "error": f"worker launcher failed: {type(exc).__name__}: {exc}"}
        return await self._run_process(argv, env, job.to_json(), stop)

    async def _finish(
        self, frame: dict[str, Any], store: SessionStore, driver_sid: str, session_id: str, db_path: str
    ) -> dict[str, Any]:
        """The leaf's outcome from the worker's frame; its session joins the parent store."""
        if not frame.get("ok"):
            return _failed(session_id, str(frame.get("error") or "worker failed"))
        archive = frame.get("archive")
        if isinstance(archive, dict):
            # the audit log stays complete: the leaf's session joins the parent store, under the driver
            await store.import_session(archive, new_session_id=session_id, parent_session_id=driver_sid)
            await store.merge_session_metadata(session_id, {"db_path": db_path})
        result: dict[str, Any] = dict(frame.get("result") or {})
        result.update(session_id=session_id, db_path=db_path)
        if result.get("status") == "completed" and self.delete_on_success:
            _remove(db_path)
        return result

    async def _run_process(
        self, argv: list[str], env: dict[str, str] | None, job: str, stop: CancellationToken
    ) -> dict[str, Any]:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,  # its own process group: a timeout ends everything it started
            )
        except OSError as exc:
            return {"ok": False, "error": f"cannot start worker {argv[0]!r}: {exc}"}
        talk = asyncio.ensure_future(proc.communicate(job.encode()))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            done, _ = await asyncio.wait(
                {talk, stopped}, timeout=self.timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stopped.cancel()
        if talk not in done:
            await self._end_group(proc)
            talk.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await talk
            why = "cancelled" if stop.is_cancelled() else f"timed out after {self.timeout_s}s"
            return {"ok": False, "error": f"worker {why}"}
        out, err = talk.result()
        return _frame(out.decode(errors="replace"), err.decode(errors="replace"), proc.returncode)

    async def _end_group(self, proc: asyncio.subprocess.Process) -> None:
        signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), self.term_grace_s)
        signal_group(proc.pid, signal.SIGKILL)  # also whatever the worker left running in its group
        await proc.wait()


def _leaf_db_path(runs_dir: Path, metadata: Mapping[str, Any]) -> str:
    run_dir = runs_dir / str(metadata.get("workflow_run_id") or "adhoc")
    run_dir.mkdir(parents=True, exist_ok=True)
    return str(run_dir / f"{metadata.get('workflow_node_id', 'leaf')}__{uuid.uuid4().hex[:8]}.db")


def _remove(path: str) -> None:
    Path(path).unlink(missing_ok=True)


def _frame(stdout: str, stderr: str, returncode: int | None) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            try:
                frame = json.loads(line[len(RESULT_PREFIX) :])
            except ValueError:
                break
            if isinstance(frame, dict):
                return frame
    tail = stderr.strip().splitlines()[-3:]
    return {"ok": False, "error": f"worker exited {returncode} without a result: {' | '.join(tail)}"}


def cleanup_run(runs_dir: str | os.PathLike[str], run_id: str) -> bool:
    """Delete one run's worker files; True when there was something to delete."""
    path = Path(runs_dir) / run_id
    if not path.is_dir():
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def reap_runs(
    runs_dir: str | os.PathLike[str], *, older_than_s: float, now: float | None = None
) -> list[str]:
    """Delete the run directories under ``runs_dir`` untouched for ``older_than_s``; returns their names."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    limit = (time.time() if now is None else now) - older_than_s
    reaped = []
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and entry.stat().st_mtime < limit:
            shutil.rmtree(entry, ignore_errors=True)
            reaped.append(entry.name)
    return reaped
