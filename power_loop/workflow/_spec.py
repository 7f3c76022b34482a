"""`WorkflowSpec`: a validated workflow, with `parse_spec` / `validate_spec` over the grammar in ``_parse``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import SpecProblem, WorkflowSpecError
from ._nodes import (
    AgentNode,
    BranchNode,
    ForeachNode,
    LoopNode,
    ParallelNode,
    SequenceNode,
    WorkflowBudget,
    WorkflowNode,
)
from ._parse import check_spec

__all__ = ["WorkflowSpec", "parse_spec", "replayable_node_ids", "validate_spec"]


@dataclass(frozen=True, slots=True)
class WorkflowSpec:
    """A validated workflow: a ``name``, a ``root`` node, the run's ``input`` and optional ``budget``.

    Build one with :meth:`from_json` (strict: every problem is reported at once in a
    `WorkflowSpecError`); :meth:`to_dict` gives JSON that parses back into an equal spec.
    """

    name: str
    root: WorkflowNode
    input: str = ""
    budget: WorkflowBudget | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = None

    @classmethod
    def from_json(cls, payload: str | bytes | dict[str, Any] | WorkflowSpec) -> WorkflowSpec:
        """Parse a JSON text or a dict; raises `WorkflowSpecError` listing every problem."""
        return parse_spec(payload)

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON that `from_json` turns back into an equal spec."""
        out: dict[str, Any] = {"name": self.name, "root": self.root.to_dict(), "input": self.input}
        if self.budget is not None:
            out["budget"] = self.budget.to_dict()
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        if self.timeout_s is not None:
            out["timeout_s"] = self.timeout_s
        return out


def validate_spec(payload: str | bytes | Mapping[str, Any] | WorkflowSpec) -> list[SpecProblem]:
    """Every problem of ``payload`` (empty when it is a valid workflow spec); never raises."""
    if isinstance(payload, WorkflowSpec):
        return []
    return check_spec(payload)[1]


def parse_spec(payload: str | bytes | Mapping[str, Any] | WorkflowSpec) -> WorkflowSpec:
    """A `WorkflowSpec` from JSON text or a dict; raises `WorkflowSpecError` with every problem."""
    if isinstance(payload, WorkflowSpec):
        return payload
    parts, problems = check_spec(payload)
    if parts is None:
        raise WorkflowSpecError(problems or [SpecProblem("$", "invalid workflow spec")])
    return WorkflowSpec(*parts)


def replayable_node_ids(spec: WorkflowSpec) -> set[str]:
    """The ids of the nodes whose outcomes `resume_run` replays from the journal instead of running
    again: every ``agent`` leaf, also inside a ``foreach`` or ``loop`` body (replayed item by item)."""
    found: set[str] = set()
    pending: list[WorkflowNode] = [spec.root]
    while pending:
        node = pending.pop()
        if isinstance(node, AgentNode):
            found.add(node.id)
        elif isinstance(node, SequenceNode):
            pending.extend(node.steps)
        elif isinstance(node, ParallelNode):
            pending.extend(node.branches)
        elif isinstance(node, (ForeachNode, LoopNode)):
            pending.append(node.body)
        elif isinstance(node, BranchNode):
            pending.extend(node.cases.values())
            if node.default is not None:
                pending.append(node.default)
    return found
