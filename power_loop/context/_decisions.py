"""What a `ContextPipeline` decides, as plain values the loop acts on.

The pipeline never fires hooks, publishes events or writes the store: at a send boundary it answers
*what the window is* (rendered in place), *whether a recorded representation must change*
(:class:`RepresentationSwitch`), *whether and what to fold* (:class:`FoldPlan`), *what the fold
strategy produced* (:class:`FoldCommit` to record, or :class:`FoldFailure`) and, when a send ends,
*which calibration to persist* (:class:`CalibrationUpdate`). The loop runs the hooks around these,
emits the events and commits the rows; :class:`FoldOutcome` reports what happened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..store import CompactionRow, NewMessage
    from ._fold import NoteOp
    from ._representation import CompactView

__all__ = [
    "METADATA_KEY",
    "CalibrationUpdate",
    "FoldCommit",
    "FoldFailure",
    "FoldOutcome",
    "FoldPlan",
    "RepresentationSwitch",
]

LoopMessage = dict[str, Any]
METADATA_KEY = "power_loop.context"
"""Session metadata key holding the representation in force and the estimator calibration."""


@dataclass(frozen=True, slots=True)
class RepresentationSwitch:
    """The session was last shown with ``previous``; record ``current`` (``metadata`` is the patch)."""

    previous: str
    current: str
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FoldPlan:
    """The window is over its fold trigger: offer ``send_indexes`` (oldest first) to the strategy.

    ``before_tokens`` is the window's estimate against ``budget_tokens``; ``model``, ``system_prompt``
    and ``tools`` are the request shape the estimate was made for (the fold re-estimates with them).
    """

    before_tokens: int
    budget_tokens: int
    send_indexes: tuple[int, ...]
    model: str | None = None
    system_prompt: str | None = None
    tools: Sequence[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class FoldFailure:
    """The fold does not happen: ``status`` is ``"skipped"`` (the strategy declined) or ``"failed"``;
    ``reason`` goes into the :class:`FoldOutcome`, ``trigger`` into the status event (bounded)."""

    status: str
    reason: str
    trigger: str


@dataclass(frozen=True, slots=True)
class FoldCommit:
    """A validated fold to record in one transaction: sends ``from_seq..to_seq`` (and the stale
    summary notes ``also_seqs``) make way for ``note``; ``note_ops`` are applied after it commits."""

    fold_id: str
    view: CompactView
    rendered: list[LoopMessage]
    folded_sends: int
    from_seq: int
    to_seq: int
    note: NewMessage
    after_tokens: int
    also_seqs: tuple[int, ...] = ()
    note_ops: tuple[NoteOp, ...] = ()


@dataclass(frozen=True, slots=True)
class CalibrationUpdate:
    """A changed token-estimator calibration to persist in the session metadata at send end."""

    calibration: dict[str, Any]
    representation_key: str

    def metadata_patch(self, session_metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        """The ``merge_session_metadata`` patch, given the session's current metadata."""
        meta = session_metadata.get(METADATA_KEY) if session_metadata is not None else None
        meta = dict(meta) if isinstance(meta, dict) else {"representation": self.representation_key}
        meta["calibration"] = self.calibration
        return {METADATA_KEY: meta}


@dataclass(frozen=True, slots=True)
class FoldOutcome:
    """What the loop did about folding at a send boundary (``None`` when under budget)."""

    status: str  # "folded" | "skipped" | "failed"
    reason: str = ""
    before_tokens: int = 0
    after_tokens: int = 0
    from_send: int | None = None
    to_send: int | None = None
    compaction: CompactionRow | None = None
    notes_applied: int = 0
    note_problems: tuple[str, ...] = ()
