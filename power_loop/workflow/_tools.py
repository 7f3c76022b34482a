"""LLM-facing workflow tools: ``create_workflow``, ``validate_workflow`` and ``workflow_status``.

A model writes the spec itself; a bad spec comes back as the list of problems (each with its JSON
path) so the model can fix it and call again. Creating a workflow from inside a running workflow
(a leaf's tool call) is refused: workflows do not nest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..base import get_tool_runtime_context
from ..loop import StatefulAgentLoop
from ..tools import ToolDefinition, ToolRegistry
from ._api import create_workflow, get_workflow, list_workflows
from ._engine import in_workflow
from ._errors import SpecProblem, WorkflowSpecError
from ._spec import validate_spec

__all__ = ["WORKFLOW_TOOL_NAMES", "register_workflow_tools"]

WORKFLOW_TOOL_NAMES = ("create_workflow", "validate_workflow", "workflow_status")

_GRAMMAR = (
    "A spec is {name, root, input?, budget?: {max_tokens}}. Nodes: "
    '{"type":"agent","id","spec":{"name","system_prompt","tools"?,"max_rounds"?},"input"?,"inputs_from"?,'
    '"output_schema"?:{"name","schema"},"retry"?:{"max_attempts","backoff_s"}}; '
    '{"type":"sequence","steps":[...]}; {"type":"parallel","branches":[...],"on_error"?:"halt"|"continue"}; '
    '{"type":"foreach","id"?,"as":"var","items":[...] or "items_from":"node.key","body":node}; '
    '{"type":"branch","on":"node.key","cases":{"value":node},"default"?}; '
    '{"type":"loop","id","body","until":{"ref","op","value"},"max_iterations"?}. '
    "{{input}}, {{var}}, {{node_id}} and {{node_id.key}} are substituted in an agent's input and system_prompt."
)
_SPEC_PARAM = {"type": "object", "description": "The workflow spec. " + _GRAMMAR}

CREATE_WORKFLOW_DEFINITION = ToolDefinition(
    name="create_workflow",
    description=(
        "Run a multi-agent workflow you describe as a JSON spec and return its result. An invalid spec "
        "is not run: you get every problem with its JSON path, fix them and call again."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "spec": _SPEC_PARAM,
            "input": {"type": "string", "description": "The run's {{input}} (overrides spec.input)."},
            "detached": {
                "type": "boolean",
                "description": "Run in the background; you are woken with 'workflow:run:<id> <status>' when it ends.",
            },
        },
    },
    required_params=("spec",),
)
VALIDATE_WORKFLOW_DEFINITION = ToolDefinition(
    name="validate_workflow",
    description="Check a workflow spec without running it: 'valid', or every problem with its JSON path.",
    input_schema={"type": "object", "properties": {"spec": _SPEC_PARAM}},
    required_params=("spec",),
)
WORKFLOW_STATUS_DEFINITION = ToolDefinition(
    name="workflow_status",
    description="The workflow runs of this session (no run_id), or one run's state (detail adds every step).",
    input_schema={
        "type": "object",
        "properties": {"run_id": {"type": "string"}, "detail": {"type": "boolean"}},
    },
)


def _problems_text(problems: list[SpecProblem]) -> str:
    lines = "\n".join(f"- {p.path}: {p.message}" for p in problems)
    return f"Error: invalid workflow spec ({len(problems)} problem(s)); fix them and call again:\n{lines}"


def _leaf_tool_problems(node: Any, path: str, registry: ToolRegistry | None) -> list[SpecProblem]:
    """Leaves whitelisting tools the calling loop does not have (caught before anything runs)."""
    if not isinstance(node, Mapping):
        return []
    problems: list[SpecProblem] = []
    spec = node.get("spec")
    if node.get("type") == "agent" and isinstance(spec, Mapping) and isinstance(spec.get("tools"), list):
        for i, name in enumerate(spec["tools"]):
            if isinstance(name, str) and (registry is None or not registry.has(name)):
                problems.append(
                    SpecProblem(f"{path}.spec.tools[{i}]", f"no tool named {name!r} is available")
                )
    for key in ("steps", "branches"):
        for i, child in enumerate(node.get(key) or []):
            problems.extend(_leaf_tool_problems(child, f"{path}.{key}[{i}]", registry))
    for key in ("body", "default"):
        problems.extend(_leaf_tool_problems(node.get(key), f"{path}.{key}", registry))
    cases = node.get("cases")
    for case, child in cases.items() if isinstance(cases, Mapping) else ():
        problems.extend(_leaf_tool_problems(child, f"{path}.cases.{case}", registry))
    return problems


def _all_problems(spec: Any) -> list[SpecProblem]:
    """The grammar's problems, then — inside a loop — tools a leaf names that the loop lacks."""
    problems = validate_spec(spec)
    ctx = get_tool_runtime_context()
    if (
        not problems
        and ctx is not None
        and isinstance(ctx.loop, StatefulAgentLoop)
        and isinstance(spec, Mapping)
    ):
        problems = _leaf_tool_problems(spec.get("root"), "$.root", ctx.loop.tool_registry)
    return problems


def _context() -> tuple[StatefulAgentLoop, str] | str:
    ctx = get_tool_runtime_context()
    if ctx is None or not isinstance(ctx.loop, StatefulAgentLoop):
        return "Error: workflow tools can only run inside a StatefulAgentLoop send."
    return ctx.loop, ctx.session_id


async def _create(spec: Mapping[str, Any], input: str | None = None, detached: bool = False) -> str:
    if in_workflow():
        return "Error: create_workflow is refused inside a running workflow (workflows do not nest)."
    found = _context()
    if isinstance(found, str):
        return found
    loop, session_id = found
    data = dict(spec) if isinstance(spec, Mapping) else spec
    if input is not None and isinstance(data, dict):
        data["input"] = input
    problems = _all_problems(data)
    if problems:
        return _problems_text(problems)
    try:
        workflow = create_workflow(data, parent_loop=loop, parent_session_id=session_id)
    except WorkflowSpecError as exc:
        return _problems_text(list(exc.problems))
    if detached:
        handle = await workflow.start(detached=True)
        return (
            f"Started detached workflow {workflow.spec.name!r} as run {handle.run_id}; you will be woken "
            f"with 'workflow:run:{handle.run_id} <status>' when it ends (workflow_status shows progress)."
        )
    result = await workflow.run()
    return result.summary()


async def _validate(spec: Mapping[str, Any]) -> str:
    problems = _all_problems(spec)
    return "valid" if not problems else _problems_text(problems)


async def _status(run_id: str | None = None, detail: bool = False) -> str:
    found = _context()
    if isinstance(found, str):
        return found
    loop, session_id = found
    if run_id is None:
        return json.dumps(await list_workflows(loop, session_id), default=str)
    info = await get_workflow(loop, session_id, run_id, detail=detail)
    return json.dumps(info, default=str) if info is not None else f"Error: no workflow run {run_id!r}"


def register_workflow_tools(registry: ToolRegistry, *, overwrite: bool = False) -> None:
    """Add ``create_workflow``, ``validate_workflow`` and ``workflow_status`` to ``registry``.

    Workflows created by the model are owned (journaled) by the session whose send called the tool.
    """
    registry.register(CREATE_WORKFLOW_DEFINITION, _create, overwrite=overwrite)
    registry.register(VALIDATE_WORKFLOW_DEFINITION, _validate, overwrite=overwrite)
    registry.register(WORKFLOW_STATUS_DEFINITION, _status, overwrite=overwrite)
