"""Shared bits of the workflow tests: the README research workflow and a deterministic model."""

from __future__ import annotations

import re
from typing import Any

from power_loop.llm import LLMRequest
from power_loop.testing import ScriptedLLM, ScriptedTurn


def leaf(node_id: str, prompt: str, **extra: Any) -> dict[str, Any]:
    return {"type": "agent", "id": node_id, "spec": {"name": node_id, "system_prompt": prompt}, **extra}


def research_spec(topics: list[str], *, max_concurrency: int = 5) -> dict[str, Any]:
    """The published README's research workflow: researchers fanned out over a list, then a writer."""
    return {
        "name": "research",
        "input": "renewable energy",
        "root": {
            "type": "sequence",
            "steps": [
                {
                    "type": "foreach",
                    "id": "research",
                    "as": "topic",
                    "items": topics,
                    "max_concurrency": max_concurrency,
                    "body": leaf(
                        "researcher",
                        "You research {{topic}}.",
                        input="Research {{topic}} for a report on {{input}}.",
                    ),
                },
                leaf(
                    "writer",
                    "You write reports.",
                    input="Write the report on {{input}}.",
                    inputs_from=["research"],
                ),
            ],
        },
    }


def last_user(request: LLMRequest) -> str:
    return next(str(m.get("content")) for m in reversed(request.messages) if m.get("role") == "user")


def research_reply(request: LLMRequest) -> ScriptedTurn:
    """Researchers answer ``notes on <topic>``; the writer lists the notes it was given."""
    system = request.system_prompt or ""
    if system.startswith("You research "):
        topic = system.removeprefix("You research ").rstrip(".")
        return ScriptedLLM.text(f"notes on {topic}")
    notes = sorted(re.findall(r"notes on \w+", last_user(request)))
    return ScriptedLLM.text("REPORT: " + "; ".join(notes))


def research_llm() -> ScriptedLLM:
    return ScriptedLLM(responder=research_reply)
