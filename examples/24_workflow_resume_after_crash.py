"""Crash a workflow mid-run (SIGKILL of its process), then finish it with ``resume_run``, offline.

A child process runs a research workflow over five topics; its model hangs on the fourth topic, and
this process kills it there. A new loop then resumes the run from the journal: the three finished
researchers are replayed — not re-run — and only the rest call the model.

Run it: ``python examples/24_workflow_resume_after_crash.py``
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

from power_loop import LLMRequest, StatefulAgentLoop
from power_loop.testing import ScriptedLLM, ScriptedTurn
from power_loop.workflow import create_workflow, resume_run

SPEC = json.loads("""
{"name": "research", "root": {"type": "sequence", "steps": [
  {"type": "foreach", "id": "research", "as": "topic",
   "items": ["solar", "wind", "hydro", "geothermal", "tidal"], "max_concurrency": 1,
   "body": {"type": "agent", "id": "researcher", "input": "Research {{topic}}.",
            "spec": {"name": "researcher", "system_prompt": "You research {{topic}}."}}},
  {"type": "agent", "id": "writer", "input": "Summarise.", "inputs_from": ["research"],
   "spec": {"name": "writer", "system_prompt": "You write reports."}}
]}}
""")


def answer(request: LLMRequest) -> ScriptedTurn:
    prompt = request.system_prompt or ""
    if prompt.startswith("You research "):
        return ScriptedLLM.text(f"notes on {prompt.split()[2].rstrip('.')}")
    return ScriptedLLM.text(f"report from {str(request.messages[-1]['content']).count('notes on')} notes")


async def worker(work: Path) -> None:  # the doomed process: its model never answers for 'geothermal'
    async def hanging(request: LLMRequest) -> ScriptedTurn:
        if "geothermal" in (request.system_prompt or ""):
            print("hanging", flush=True)  # tell the parent process
            await asyncio.Event().wait()
        return answer(request)

    async with StatefulAgentLoop(llm=ScriptedLLM(responder=hanging), dsn=str(work / "wf.db")) as loop:
        parent = await loop.new_session()
        workflow = create_workflow(SPEC, parent_loop=loop, parent_session_id=parent)
        print(parent, workflow.run_id, flush=True)
        await workflow.run()


async def main(work: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = [sys.executable, __file__, "--worker", str(work)]
    proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=asyncio.subprocess.PIPE)
    parent, run_id = (await proc.stdout.readline()).decode().split()
    assert await proc.stdout.readline() == b"hanging\n"  # the child is stuck on its fourth leaf
    proc.kill()  # SIGKILL: no clean-up of any kind
    await proc.wait()
    print(f"killed the process running workflow run {run_id} (exit {proc.returncode})")
    llm = ScriptedLLM(responder=answer)
    async with StatefulAgentLoop(llm=llm, dsn=str(work / "wf.db")) as loop:
        result = await resume_run(loop, parent, run_id)
    print("replayed from the journal:", sorted(k for k, r in result.results.items() if r.replayed))
    print("model calls after the crash:", [r.system_prompt for r in llm.requests])
    print(result.summary())
    assert len(llm.requests) == 3  # geothermal, tidal, the writer


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        asyncio.run(worker(Path(sys.argv[2])))
    else:
        with tempfile.TemporaryDirectory() as tmp:  # removed afterwards: the example leaves nothing behind
            asyncio.run(main(Path(tmp)))
