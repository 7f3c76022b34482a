"""Crash a workflow mid-run (SIGKILL of its process), then finish it with ``resume_run``, offline.

A child process runs a research workflow over five topics; its model hangs on the fourth topic, and
this process kills it there. A new loop then resumes the run from the journal: the three finished
researchers are replayed — not re-run — and only the rest call the model.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from power_loop import StatefulAgentLoop
from power_loop.llm import LLMRequest
from power_loop.testing import ScriptedLLM, ScriptedTurn
from power_loop.workflow import create_workflow, resume_run

TOPICS = ["solar", "wind", "hydro", "geothermal", "tidal"]
SPEC = {
    "name": "research",
    "root": {
        "type": "sequence",
        "steps": [
            {
                "type": "foreach",
                "id": "research",
                "as": "topic",
                "items": TOPICS,
                "max_concurrency": 1,
                "body": {
                    "type": "agent",
                    "id": "researcher",
                    "spec": {"name": "researcher", "system_prompt": "You research {{topic}}."},
                    "input": "Research {{topic}}.",
                },
            },
            {
                "type": "agent",
                "id": "writer",
                "spec": {"name": "writer", "system_prompt": "You write reports."},
                "input": "Summarise.",
                "inputs_from": ["research"],
            },
        ],
    },
}


def answer(request: LLMRequest) -> ScriptedTurn:
    prompt = request.system_prompt or ""
    if prompt.startswith("You research "):
        return ScriptedLLM.text(f"notes on {prompt.split()[2].rstrip('.')}")
    return ScriptedLLM.text(f"report from {str(request.messages[-1]['content']).count('notes on')} notes")


async def worker(db: str, parent: str, work: Path) -> None:
    """The doomed process: its model never answers for 'geothermal'."""

    async def hanging(request: LLMRequest) -> ScriptedTurn:
        if "geothermal" in (request.system_prompt or ""):
            (work / "hanging").touch()
            await asyncio.Event().wait()
        return answer(request)

    async with StatefulAgentLoop(llm=ScriptedLLM(responder=hanging), dsn=db) as loop:
        workflow = create_workflow(SPEC, parent_loop=loop, parent_session_id=parent)
        (work / "run_id").write_text(workflow.run_id)
        await workflow.run()


def spawn(db: str, parent: str, work: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, __file__, "--worker", db, parent, str(work)], env=env)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work, db = Path(tmp), str(Path(tmp) / "wf.db")
        async with StatefulAgentLoop(llm=ScriptedLLM(), dsn=db) as loop:
            parent = await loop.new_session()
        proc = spawn(db, parent, work)
        while not (work / "hanging").exists():  # the child is stuck on its fourth leaf
            if proc.poll() is not None:
                raise SystemExit("worker exited early")
            await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        run_id = (work / "run_id").read_text()
        print(f"killed the process running workflow run {run_id} (exit {proc.returncode})")

        llm = ScriptedLLM(responder=answer)
        async with StatefulAgentLoop(llm=llm, dsn=db) as loop:
            result = await resume_run(loop, parent, run_id)
        replayed = sorted(k for k, r in result.results.items() if r.replayed)
        print("replayed from the journal:", replayed)
        print("model calls after the crash:", [r.system_prompt for r in llm.requests])
        print(result.summary())


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        asyncio.run(worker(sys.argv[2], sys.argv[3], Path(sys.argv[4])))
    else:
        asyncio.run(main())
