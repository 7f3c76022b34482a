"""Workflow errors: an invalid spec (every problem at once) and a run that cannot go on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import PowerLoopError, SpecValidationError

__all__ = ["SpecProblem", "WorkflowRunError", "WorkflowSpecError"]


@dataclass(frozen=True, slots=True)
class SpecProblem:
    """One problem of a workflow spec: where (a JSON path such as ``$.root.steps[1].id``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        """``{"path", "message"}`` (what the ``validate_workflow`` tool returns)."""
        return {"path": self.path, "message": self.message}


class WorkflowSpecError(SpecValidationError):
    """A workflow spec is invalid; ``problems`` lists *every* problem found, each with its JSON path.

    Shares the code ``spec.invalid`` of `SpecValidationError` (a workflow spec is a declarative spec).
    """

    def __init__(self, problems: Sequence[SpecProblem]) -> None:
        self.problems: tuple[SpecProblem, ...] = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        super().__init__(
            f"invalid workflow spec ({count} problem{'s' if count != 1 else ''}):\n{lines}",
            field=self.problems[0].path if self.problems else None,
        )


class WorkflowRunError(PowerLoopError, RuntimeError):
    """A workflow run cannot continue: a branch with no matching case, an unresolved reference,
    a resumed run that does not exist."""

    code = "workflow.run_failed"
