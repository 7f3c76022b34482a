"""A finished workflow run for the inspector tests: foreach items, a parallel pair with one failure,
a branch with an untaken case, a loop of two iterations, a ``<script>`` in a step's text and one long text ("show all")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from power_loop.llm import LLMRequest
from power_loop.loop import StatefulAgentLoop
from power_loop.testing import ScriptedLLM, ScriptedTurn
from power_loop.workflow import create_workflow

WF_SCRIPT = "<script>window.__pwned = 1</script><b>not bold</b>"
LONG_TEXT = "edited " + "x" * 900 + " END"


def _leaf(node_id: str, text: str, **extra: Any) -> dict[str, Any]:
    spec = {"name": node_id, "system_prompt": f"You are {node_id}."}
    return {"type": "agent", "id": node_id, "spec": spec, "input": text, **extra}


WF_SPEC: dict[str, Any] = {
    "name": "review",
    "input": "energy",
    "root": {
        "type": "sequence",
        "steps": [
            {
                "type": "foreach",
                "id": "research",
                "as": "topic",
                "items": ["solar", "wind"],
                "body": _leaf("researcher", "Research {{topic}}"),
            },
            {
                "type": "parallel",
                "branches": [_leaf("writer", "write"), _leaf("critic", "bad", continue_on_error=True)],
            },
            _leaf("decide", "decide"),
            {
                "type": "branch",
                "on": "decide",
                "cases": {"go": _leaf("editor", "edit"), "stop": _leaf("stopper", "stop")},
            },
            {
                "type": "loop",
                "id": "polish",
                "body": _leaf("polisher", "polish {{iteration}}"),
                "until": {"ref": "polisher", "op": "eq", "value": "done"},
            },
        ],
    },
}


def _reply(request: LLMRequest) -> ScriptedTurn:
    text = next(str(m.get("content")) for m in reversed(request.messages) if m.get("role") == "user")
    if text.startswith("Research "):
        return ScriptedLLM.text("notes on " + text.removeprefix("Research ").split()[0])
    if text.startswith("bad"):
        return ScriptedLLM.error(RuntimeError("critic broke"))
    if text.startswith("polish "):
        return ScriptedLLM.text("done" if text == "polish 2" else "again")
    replies = {"write": WF_SCRIPT, "decide": "go", "edit": LONG_TEXT}
    return ScriptedLLM.text(replies.get(text.split()[0], "?"))


@dataclass
class WorkflowScenario:
    dsn: str
    prefix: str
    parent: str = ""
    run_id: str = ""
    leaves: dict[str, str] = field(default_factory=dict)


async def build_workflow(sc: WorkflowScenario) -> WorkflowScenario:
    """Run ``WF_SPEC`` to its end under a fresh parent session."""
    async with StatefulAgentLoop(
        llm=ScriptedLLM(responder=_reply), dsn=sc.dsn, table_prefix=sc.prefix
    ) as loop:
        sc.parent = await loop.new_session()
        wf = create_workflow(WF_SPEC, parent_loop=loop, parent_session_id=sc.parent)
        result = await wf.run()
        assert result.status == "completed", result.errors
        sc.run_id = wf.run_id
        sc.leaves = {k: str(r.session_id) for k, r in result.results.items() if r.session_id}
    return sc
