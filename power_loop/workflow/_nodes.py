"""The workflow node classes and the run budget (`WorkflowSpec` is in ``_spec``, parsing in ``_parse``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from ..agents import AgentSpec

__all__ = [
    "AgentNode",
    "BranchNode",
    "ForeachNode",
    "LoopNode",
    "LoopUntil",
    "ParallelNode",
    "RetryPolicy",
    "SequenceNode",
    "WorkflowBudget",
    "WorkflowNode",
    "child_nodes",
    "iter_nodes",
]

ON_ERROR = ("halt", "continue")
UNTIL_OPS = ("eq", "ne", "contains", "gt", "ge", "lt", "le", "truthy", "falsy")
MAX_LOOP_ITERATIONS = 10


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Per-leaf retry: up to ``max_attempts`` tries, waiting ``backoff_s * multiplier**(n-1)`` between."""

    max_attempts: int = 1
    backoff_s: float = 1.0
    multiplier: float = 2.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(self.backoff_s) * float(self.multiplier) ** (attempt - 1)

    def to_dict(self) -> dict[str, Any]:
        """The node as spec JSON (parses back into an equal node)."""
        return {"max_attempts": self.max_attempts, "backoff_s": self.backoff_s, "multiplier": self.multiplier}


@dataclass(frozen=True, slots=True)
class AgentNode:
    """A leaf: run ``spec`` on the rendered ``input`` (plus the texts of ``inputs_from``).

    ``continue_on_error``: a failure is recorded in the run's ``errors`` but does not stop the run.
    """

    type: ClassVar[str] = "agent"
    id: str
    spec: AgentSpec
    input: str = "{{input}}"
    inputs_from: tuple[str, ...] = ()
    output_schema: dict[str, Any] | None = None
    retry: RetryPolicy | None = None
    continue_on_error: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The node as spec JSON (parses back into an equal node)."""
        out: dict[str, Any] = {"type": self.type, "id": self.id, "spec": _spec_dict(self.spec)}
        out["input"] = self.input
        if self.inputs_from:
            out["inputs_from"] = list(self.inputs_from)
        if self.output_schema is not None:
            out["output_schema"] = dict(self.output_schema)
        if self.retry is not None:
            out["retry"] = self.retry.to_dict()
        if self.continue_on_error:
            out["continue_on_error"] = True
        return out


@dataclass(frozen=True, slots=True)
class SequenceNode:
    """Run ``steps`` one after another; stops early when the budget runs out or the run is cancelled."""

    type: ClassVar[str] = "sequence"
    steps: tuple[WorkflowNode, ...]
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The node as spec JSON (parses back into an equal node)."""
        return _with_id(self.id, {"type": self.type, "steps": [s.to_dict() for s in self.steps]})


@dataclass(frozen=True, slots=True)
class ParallelNode:
    """Run ``branches`` concurrently (at most ``max_concurrency`` at once)."""

    type: ClassVar[str] = "parallel"
    branches: tuple[WorkflowNode, ...]
    id: str | None = None
    max_concurrency: int = 5
    on_error: str = "halt"

    def to_dict(self) -> dict[str, Any]:
        """The node as spec JSON (parses back into an equal node)."""
        body: dict[str, Any] = {"type": self.type, "branches": [b.to_dict() for b in self.branches]}
        body.update(max_concurrency=self.max_concurrency, on_error=self.on_error)
        return _with_id(self.id, body)


@dataclass(frozen=True, slots=True)
class ForeachNode:
    """Run ``body`` once per item (``items`` or the list at ``items_from``), binding it to ``as_var``."""

    type: ClassVar[str] = "foreach"
    as_var: str
    body: WorkflowNode
    id: str | None = None
    items_from: str | None = None
    items: tuple[Any, ...] | None = None
    parallel: bool = True
    max_concurrency: int = 5
    on_error: str = "halt"

    def to_dict(self) -> dict[str, Any]:
        """The node as spec JSON (parses back into an equal node)."""
        out: dict[str, Any] = {"type": self.type, "as": self.as_var, "body": self.body.to_dict()}
        if self.items_from is not None:
            out["items_from"] = self.items_from
        if self.items is not None:
            out["items"] = list(self.items)
        out.update(parallel=self.parallel, max_concurrency=self.max_concurrency, on_error=self.on_error)
        return _with_id(self.id, out)


@dataclass(frozen=True, slots=True)
class BranchNode:
    """Run the case whose key equals ``str(value of on)``, else ``default``."""

    type: ClassVar[str] = "branch"
    on: str
    cases: dict[str, WorkflowNode]
    id: str | None = None
    default: WorkflowNode | None = None

    def to_dict(self) -> dict[str, Any]:
        """The node as spec JSON (parses back into an equal node)."""
        out: dict[str, Any] = {"type": self.type, "on": self.on}
        out["cases"] = {k: v.to_dict() for k, v in self.cases.items()}
        if self.default is not None:
            out["default"] = self.default.to_dict()
        return _with_id(self.id, out)


@dataclass(frozen=True, slots=True)
class LoopUntil:
    """A loop's exit test: ``value_of(ref) <op> value`` (``truthy``/``falsy`` take no value)."""

    ref: str
    op: str = "eq"
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        """The node as spec JSON (parses back into an equal node)."""
        return {"ref": self.ref, "op": self.op, "value": self.value}


@dataclass(frozen=True, slots=True)
class LoopNode:
    """Run ``body`` until ``until`` holds, at most ``max_iterations`` times (``{{iteration}}`` is 1-based).

    ``on_exhausted="fail"`` fails the run when the condition never held; ``"continue"`` goes on.
    """

    type: ClassVar[str] = "loop"
    id: str
    body: WorkflowNode
    until: LoopUntil
    max_iterations: int = 3
    on_exhausted: str = "fail"

    def to_dict(self) -> dict[str, Any]:
        """The node as spec JSON (parses back into an equal node)."""
        return {
            "type": self.type,
            "id": self.id,
            "body": self.body.to_dict(),
            "until": self.until.to_dict(),
            "max_iterations": self.max_iterations,
            "on_exhausted": self.on_exhausted,
        }


WorkflowNode = AgentNode | SequenceNode | ParallelNode | ForeachNode | BranchNode | LoopNode
"""Any node of a workflow tree."""


@dataclass(frozen=True, slots=True)
class WorkflowBudget:
    """A token budget for a whole run: no new leaf starts once fewer than ``stop_at_remaining_pct``
    percent of ``max_tokens`` remain (0 = only when exhausted)."""

    max_tokens: int
    stop_at_remaining_pct: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The node as spec JSON (parses back into an equal node)."""
        return {"max_tokens": self.max_tokens, "stop_at_remaining_pct": self.stop_at_remaining_pct}


def iter_nodes(node: WorkflowNode) -> Iterator[WorkflowNode]:
    """``node`` and every node below it, depth first."""
    yield node
    for child in child_nodes(node):
        yield from iter_nodes(child)


def child_nodes(node: WorkflowNode) -> tuple[WorkflowNode, ...]:
    """The nodes directly below ``node``."""
    if isinstance(node, SequenceNode):
        return node.steps
    if isinstance(node, ParallelNode):
        return node.branches
    if isinstance(node, (ForeachNode, LoopNode)):
        return (node.body,)
    if isinstance(node, BranchNode):
        rest = () if node.default is None else (node.default,)
        return (*node.cases.values(), *rest)
    return ()


def _with_id(node_id: str | None, body: dict[str, Any]) -> dict[str, Any]:
    return body if node_id is None else {**body, "id": node_id}


def _spec_dict(spec: AgentSpec) -> dict[str, Any]:
    # Only the fields that differ from AgentSpec's defaults: keeps specs round-tripped through the
    # journal (and shown to a model) short.
    full = spec.to_dict()
    defaults = AgentSpec(name="x", system_prompt="x").to_dict()
    return {k: v for k, v in full.items() if k in ("name", "system_prompt") or v != defaults[k]}
