"""The worker process of `SubprocessExecutor`: ``python -m power_loop.workflow.worker``.

Reads one `WorkerJob` (JSON) from stdin, runs the leaf in its own loop over its own SQLite file,
and prints one line ``__POWERLOOP_WF_RESULT__ {"ok": true, "result": {...}, "archive": {...}}`` (or
``{"ok": false, "error", "traceback"}``); exits 0 or 1. ``archive`` is the leaf session's export, which
the parent imports into its own store so the audit log stays complete.
"""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from typing import Any

from ..agents import AgentSpec
from ..loop import StatefulAgentLoop
from ._leaf import InProcessExecutor
from ._worker_job import RESULT_PREFIX, WorkerBootstrap, WorkerJob

__all__ = ["job_frame", "main", "run_job"]


async def run_job(job: WorkerJob) -> dict[str, Any]:
    """Run ``job`` in this process; returns ``{"result": <leaf outcome>, "archive": <session export>}``."""
    bootstrap = WorkerBootstrap.from_dict(job.bootstrap)
    llm = bootstrap.build_llm()
    async with StatefulAgentLoop(llm=llm, dsn=job.db_path, tool_registry=bootstrap.build_registry()) as loop:
        driver = await loop.new_session(metadata={"kind": "wf_worker"})
        result = await InProcessExecutor().run_agent(
            AgentSpec.from_dict(job.spec),
            job.user_input,
            parent_loop=loop,
            driver_sid=driver,
            session_id=job.session_id,
            metadata=job.metadata,
        )
        store = await loop.ensure_store()
        archive = await store.export_session(job.session_id)
    return {"result": result, "archive": archive}


def job_frame(job_text: str) -> dict[str, Any]:
    """Run the `WorkerJob` JSON ``job_text`` here; the result frame (``{"ok": ...}``), never raising."""
    try:
        return {"ok": True, **asyncio.run(run_job(WorkerJob.from_json(job_text)))}
    except BaseException as exc:  # every failure is reported in the frame: the parent reads only that
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def main() -> int:
    """Entry point: one job from stdin, one framed result on stdout."""
    frame = job_frame(sys.stdin.read())
    sys.stdout.write(RESULT_PREFIX + json.dumps(frame, default=str) + "\n")
    sys.stdout.flush()
    return 0 if frame["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
