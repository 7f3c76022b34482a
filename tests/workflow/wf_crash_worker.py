"""Subprocess of the kill-and-resume test: runs the research workflow until it is SIGKILLed.

argv: dsn, table_prefix, parent_session_id, work_dir. Writes ``run_id`` to ``work_dir/run_id``,
appends one line per model call to ``work_dir/calls`` and, for topics listed in ``work_dir/block``,
touches ``work_dir/blocked_<topic>`` and never answers (the test kills the process meanwhile).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from wf_helpers import research_reply, research_spec

from power_loop.llm import LLMRequest
from power_loop.loop import StatefulAgentLoop
from power_loop.testing import ScriptedLLM, ScriptedTurn
from power_loop.workflow import create_workflow

TOPICS = [f"t{i}" for i in range(6)]


def _log_call(path: Path, topic: str) -> None:
    with open(path, "a") as fh:  # durable before the model "answers": the test counts these lines
        fh.write(f"{topic}\n")
        fh.flush()
        os.fsync(fh.fileno())


async def main(dsn: str, prefix: str, parent: str, work: Path) -> None:
    blocked = set((work / "block").read_text().split())

    async def reply(request: LLMRequest) -> ScriptedTurn:
        topic = (request.system_prompt or "").removeprefix("You research ").rstrip(".")
        _log_call(work / "calls", topic)
        if topic in blocked:
            (work / f"blocked_{topic}").touch()
            await asyncio.Event().wait()  # hang until SIGKILL
        return research_reply(request)

    async with StatefulAgentLoop(llm=ScriptedLLM(responder=reply), dsn=dsn, table_prefix=prefix) as loop:
        wf = create_workflow(
            research_spec(TOPICS, max_concurrency=2), parent_loop=loop, parent_session_id=parent
        )
        (work / "run_id").write_text(wf.run_id)
        await wf.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])))
