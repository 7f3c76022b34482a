"""The per-session state a `ContextPipeline` caches with a window (rebuildable from the store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ._tokens import TokenEstimator

if TYPE_CHECKING:
    from ..store import MessageRow
    from ._representation import CompactView

__all__ = ["STATE_KEY", "ContextState", "RenderedCompact", "RenderedSend", "WindowLike", "row_message"]

LoopMessage = dict[str, Any]
STATE_KEY = "context"
"""Key of the pipeline's :class:`ContextState` in ``SessionWindow.extra``."""


class WindowLike(Protocol):
    """The engine's cached window (``power_loop.loop.SessionWindow`` fits)."""

    messages: list[dict[str, Any]]
    next_seq: int
    send_index: int
    extra: dict[str, Any]


def row_message(row: MessageRow) -> LoopMessage:
    """A stored row as the provider-shape dict the engine builds (same keys, same order)."""
    msg: LoopMessage = {"role": row.role, "content": row.content}
    if row.tool_calls:
        msg["tool_calls"] = row.tool_calls
    if row.tool_call_id is not None:
        msg["tool_call_id"] = row.tool_call_id
    if row.name is not None:
        msg["name"] = row.name
    return msg


@dataclass(slots=True)
class RenderedSend:
    """One finished send: its stored messages (``raw``) and how the representation shows them."""

    send_index: int
    first_seq: int
    last_seq: int
    raw: list[LoopMessage]
    rendered: list[LoopMessage]


@dataclass(slots=True)
class RenderedCompact:
    """The summary note in force (stored as ``note_seq``) and how the representation shows it."""

    view: CompactView
    note_seq: int
    rendered: list[LoopMessage]


@dataclass(slots=True)
class ContextState:
    """What the pipeline caches per session (in ``window.extra[STATE_KEY]``); rebuildable from the store."""

    rep_key: str
    compact: RenderedCompact | None
    finished: list[RenderedSend]
    current_index: int
    current_first_seq: int
    prefix: list[LoopMessage]
    estimator: TokenEstimator
    persisted: dict[str, Any]
    stale_notes: list[int] = field(default_factory=list)
    ephemeral: list[LoopMessage] = field(default_factory=list)
