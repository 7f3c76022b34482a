"""A research workflow, offline: researchers fanned out over a list, then a writer (power_loop.workflow).

The spec is plain JSON; ``{{topic}}`` and ``{{input}}`` are filled in each leaf's input and system
prompt. Every leaf's outcome is journaled as it finishes, so ``resume_run`` could finish the run after
a crash (see 24_workflow_resume_after_crash.py). A scripted model stands in for a real one.

Run it::

    python examples/23_workflow_research.py
"""

from __future__ import annotations

import asyncio
import json
import re

from power_loop import StatefulAgentLoop
from power_loop.events import AgentEventType
from power_loop.llm import LLMRequest
from power_loop.testing import ScriptedLLM, ScriptedTurn
from power_loop.workflow import WorkflowSpecError, create_workflow, get_workflow

# A workflow spec is plain JSON (a file, a database row, an API payload).
SPEC = json.loads("""
{"name": "research", "input": "renewable energy", "root": {"type": "sequence", "steps": [
  {"type": "foreach", "id": "research", "as": "topic", "items": ["solar", "wind", "hydro"], "max_concurrency": 3,
   "body": {"type": "agent", "id": "researcher", "input": "Research {{topic}} for a report on {{input}}.",
            "spec": {"name": "researcher", "system_prompt": "You research {{topic}}. Be factual."}}},
  {"type": "agent", "id": "writer", "input": "Write a report on {{input}} from the notes below.",
   "inputs_from": ["research"], "spec": {"name": "writer", "system_prompt": "You write short reports."}}
]}}
""")


def model(request: LLMRequest) -> ScriptedTurn:
    """Researchers answer with a note on their topic; the writer joins the notes it was given."""
    prompt = request.system_prompt or ""
    if prompt.startswith("You research "):
        topic = prompt.split()[2].rstrip(".")
        return ScriptedLLM.text(f"{topic}: cheap, growing fast")
    notes = re.findall(r"^(\w+): (.*)$", str(request.messages[-1]["content"]), re.M)
    return ScriptedLLM.text("Report — " + "; ".join(f"{t} is {what}" for t, what in notes))


async def main() -> None:
    try:
        create_workflow({"name": "broken", "root": {"type": "agent", "spec": {}}}, parent_loop=None)  # type: ignore[arg-type]
    except WorkflowSpecError as exc:
        print(
            "a bad spec is refused with every problem:", [f"{p.path}: {p.message[:40]}" for p in exc.problems]
        )

    async with StatefulAgentLoop(llm=ScriptedLLM(responder=model), dsn=":memory:") as loop:
        loop.event_bus.subscribe(
            AgentEventType.WORKFLOW_STEP_COMPLETED,
            lambda e: print(f"  step {e.payload['step_key']}: {e.payload['status']}"),
        )
        parent = await loop.new_session()
        result = await create_workflow(SPEC, parent_loop=loop, parent_session_id=parent).run()
        print(result.summary())
        journal = await get_workflow(loop, parent, result.run_id or "")
        assert journal is not None and journal["status"] == "completed"
        print("journal:", journal["status"], journal["steps"])


if __name__ == "__main__":
    asyncio.run(main())
