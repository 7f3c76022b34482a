"""Run results (`AgentResult`, `WorkflowResult`) and the shared token budget (`SharedBudget`)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RUN_STATUSES", "AgentResult", "SharedBudget", "WorkflowResult", "add_usage"]

RUN_STATUSES = ("completed", "failed", "budget_exceeded", "cancelled")


def add_usage(total: dict[str, int], usage: Mapping[str, Any]) -> dict[str, int]:
    """Add every integer counter of ``usage`` into ``total`` (in place) and return it."""
    for key, value in usage.items():
        if isinstance(value, int) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
    return total


@dataclass(slots=True)
class AgentResult:
    """What one leaf (or a foreach's aggregate) produced. ``replayed`` = read from the journal."""

    node_id: str
    status: str
    text: str = ""
    payload: Any = None
    usage: dict[str, int] = field(default_factory=dict)
    session_id: str | None = None
    error: str | None = None
    attempts: int = 0
    replayed: bool = False

    @property
    def ok(self) -> bool:
        """True when the status is ``completed``."""
        return self.status == "completed"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what the journal stores)."""
        return {
            "node_id": self.node_id,
            "status": self.status,
            "text": self.text,
            "payload": self.payload,
            "usage": dict(self.usage),
            "session_id": self.session_id,
            "error": self.error,
            "attempts": self.attempts,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, replayed: bool = False) -> AgentResult:
        """The inverse of :meth:`to_dict`."""
        return cls(
            node_id=str(data["node_id"]),
            status=str(data["status"]),
            text=str(data.get("text") or ""),
            payload=data.get("payload"),
            usage={str(k): int(v) for k, v in dict(data.get("usage") or {}).items()},
            session_id=data.get("session_id"),
            error=data.get("error"),
            attempts=int(data.get("attempts") or 0),
            replayed=replayed,
        )


@dataclass(slots=True)
class WorkflowResult:
    """A whole run: its ``status`` (one of `RUN_STATUSES`), every step's result keyed by step key
    (``node_id`` or ``node_id:item``), the last leaf's result as ``final``, summed ``usage``, and the
    errors of failed leaves. ``run_id``/``parent_session_id`` name the journal (for `resume_run`)."""

    name: str
    status: str
    results: dict[str, AgentResult] = field(default_factory=dict)
    final: AgentResult | None = None
    usage: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    run_id: str | None = None
    parent_session_id: str | None = None

    @property
    def ok(self) -> bool:
        """True when the run completed and no leaf failed (``on_error="continue"`` failures count)."""
        return self.status == "completed" and not self.errors

    def summary(self) -> str:
        """A short human/model-readable account of the run."""
        head = f"workflow {self.name!r} run {self.run_id}: {self.status}"
        tokens = self.usage.get("total_tokens", 0)
        lines = [f"{head} ({len(self.results)} steps, {tokens} tokens)"]
        lines.extend(f"error: {e}" for e in self.errors)
        if self.final is not None:
            lines.append(f"final ({self.final.node_id}): {self.final.text}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what the journal stores)."""
        return {
            "name": self.name,
            "status": self.status,
            "run_id": self.run_id,
            "parent_session_id": self.parent_session_id,
            "results": {k: v.to_dict() for k, v in self.results.items()},
            "final": None if self.final is None else self.final.to_dict(),
            "usage": dict(self.usage),
            "errors": list(self.errors),
        }


class SharedBudget:
    """A soft token budget shared by every leaf of a run (thread-safe).

    Leaves are not interrupted; a new leaf starts only while :meth:`can_spawn` holds: fewer than
    ``max_tokens`` spent and more than ``stop_at_remaining_pct`` percent of it left.
    """

    def __init__(self, max_tokens: int, *, stop_at_remaining_pct: float = 0.0) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0:
            raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        if not 0.0 <= float(stop_at_remaining_pct) <= 100.0:
            raise ValueError(f"stop_at_remaining_pct must be in 0..100, got {stop_at_remaining_pct!r}")
        self.max_tokens = max_tokens
        self.stop_at_remaining_pct = float(stop_at_remaining_pct)
        self._spent = 0
        self._lock = threading.Lock()

    @property
    def spent(self) -> int:
        """Tokens committed so far."""
        return self._spent

    @property
    def remaining(self) -> int:
        """Tokens left (never negative)."""
        return max(0, self.max_tokens - self._spent)

    def can_spawn(self) -> bool:
        """Whether a new leaf may start."""
        with self._lock:
            left = self.max_tokens - self._spent
            return left > 0 and left * 100.0 > self.max_tokens * self.stop_at_remaining_pct

    def commit(self, usage: Mapping[str, Any]) -> None:
        """Count a finished leaf's ``total_tokens`` (prompt + completion when total is missing)."""
        total = usage.get("total_tokens")
        if not isinstance(total, int):
            total = int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
        with self._lock:
            self._spent += total

    def as_dict(self) -> dict[str, Any]:
        """The budget's state as a dict."""
        return {
            "max_tokens": self.max_tokens,
            "spent": self._spent,
            "remaining": self.remaining,
            "stop_at_remaining_pct": self.stop_at_remaining_pct,
        }
