"""Row types, enums and small value objects of the session store.

All timestamps are integer milliseconds since the Unix epoch. JSON columns are decoded into Python
objects on read; a value that cannot be decoded raises :class:`~power_loop.errors.CorruptRowError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final, TypeVar

from ..errors import CorruptRowError

__all__ = [
    "KEEP",
    "MUTATE_SKIP",
    "AppendResult",
    "CompactionRow",
    "FollowUpRow",
    "MessageRow",
    "MessageState",
    "NewMessage",
    "NoteRow",
    "RoundUsage",
    "SendAccounting",
    "SessionKind",
    "SessionRow",
    "SessionStateRow",
    "SessionStatsRow",
    "SessionStatus",
    "SubagentLifecycle",
    "TimerRow",
    "TimerStatus",
    "UsageRoundRow",
    "decode_enum",
    "decode_json",
    "decode_pending",
]


_E = TypeVar("_E", bound=Enum)


class SessionKind(str, Enum):
    ROOT = "root"
    SUBAGENT = "subagent"


class SessionStatus(str, Enum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class SubagentLifecycle(str, Enum):
    """What happens to a sub-agent session when its parent is closed."""

    EPHEMERAL = "ephemeral"  # closed with the parent
    LINKED = "linked"  # closed with the parent, but meant to outlive the spawning send
    DETACHED = "detached"  # survives the parent (re-parented to no parent)


class MessageState(str, Enum):
    """Message states only ever move forward: active -> compacted_out -> dropped."""

    ACTIVE = "active"
    COMPACTED_OUT = "compacted_out"
    DROPPED = "dropped"


class TimerStatus(str, Enum):
    ARMED = "armed"
    FIRING = "firing"
    FIRED = "fired"
    CANCELLED = "cancelled"


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


KEEP: Final[Any] = _Sentinel("KEEP")
"""``append_messages(pending_interactions=KEEP)``: leave the pending interactions as they are."""

MUTATE_SKIP: Final[Any] = _Sentinel("MUTATE_SKIP")
"""Returned by a ``mutate_*_state`` function to leave the stored value untouched."""


def decode_json(text: str | None, table: str, key: str) -> Any:
    """Decode one JSON column; ``None`` stays ``None``. Bad JSON names the table and row key."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, TypeError) as exc:
        raise CorruptRowError(f"corrupt JSON in table {table!r} at {key}: {exc}") from exc


def decode_pending(text: str | None, session_id: str) -> dict[str, Any] | None:
    """Decode ``session_state.pending_json``; a blob of the wrong shape is a :class:`CorruptRowError`
    (every reader relies on ``tool_calls`` being a list of calls with string ids)."""
    if not text:
        return None
    pending = decode_json(text, "session_state", f"session_id={session_id}")
    if not pending:
        return None
    calls = pending.get("tool_calls") if isinstance(pending, dict) else None
    interactions = pending.get("pending_interactions") if isinstance(pending, dict) else None
    if (
        not isinstance(calls, list)
        or not all(isinstance(c, dict) and isinstance(c.get("id"), str) for c in calls)
        or not isinstance(interactions, (list, type(None)))
        or not all(isinstance(i, dict) for i in interactions or ())
    ):
        raise CorruptRowError(
            f"corrupt pending tool-call blob in table 'session_state' at session_id={session_id}: "
            "expected an object with a 'tool_calls' list of calls with string ids"
        )
    checked: dict[str, Any] = pending
    return checked


def decode_enum(enum: type[_E], value: Any, table: str, key: str) -> _E:
    """``enum(value)``; an unknown stored value is a :class:`CorruptRowError` naming the row."""
    try:
        return enum(value)
    except ValueError:
        raise CorruptRowError(f"unknown value {value!r} in table {table!r} at {key}") from None


@dataclass(slots=True)
class NewMessage:
    """A message to append. ``content`` may be text or a list of content parts (stored as JSON)."""

    role: str
    content: str | list[Any] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    round_index: int | None = None
    meta: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Outcome of one ``append_messages`` transaction."""

    first_seq: int
    last_seq: int
    next_seq: int
    send_index: int
    pending: dict[str, Any] | None
    prompt_version: int = 0
    # Follow-ups queued for the session and not delivered yet (by any process).
    follow_ups_waiting: int = 0


@dataclass(frozen=True, slots=True)
class SendAccounting:
    """Counters added to ``session_stats`` in the same transaction as an append."""

    sends: int = 0
    rounds: int = 0
    llm_calls: int = 0
    tool_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True, slots=True)
class RoundUsage:
    """Token usage of one LLM round, upserted into ``usage_rounds`` keyed by (send_index, round_index)."""

    round_index: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0
    model: str | None = None
    duration_ms: int | None = None  # the round's model call, all attempts
    attempts: int | None = None


@dataclass(frozen=True, slots=True)
class SessionRow:
    session_id: str
    created_at: int
    updated_at: int
    system_prompt: str | None
    model: str | None
    config: dict[str, Any]
    status: SessionStatus
    kind: SessionKind
    parent_session_id: str | None
    spawn_tool_call_id: str | None
    spawn_depth: int
    lifecycle: SubagentLifecycle
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MessageRow:
    session_id: str
    seq: int
    role: str
    name: str | None
    content: str | list[Any] | None
    tool_calls: list[dict[str, Any]] | None
    tool_call_id: str | None
    round_index: int | None
    state: MessageState
    meta: dict[str, Any]
    created_at: int
    send_index: int | None = None


@dataclass(frozen=True, slots=True)
class SessionStateRow:
    """The per-session cursor: next seq, current send/round and the pending tool-call blob."""

    session_id: str
    next_seq: int
    send_index: int
    round_index: int
    last_compact_seq: int
    pending: dict[str, Any] | None
    prompt_version: int = 0


@dataclass(frozen=True, slots=True)
class SessionStatsRow:
    session_id: str
    sends: int
    rounds: int
    llm_calls: int
    tool_calls: int
    prompt_tokens: int
    completion_tokens: int
    cache_read_tokens: int
    reasoning_tokens: int
    total_tokens: int
    first_send_at: int | None
    last_send_at: int | None
    updated_at: int


@dataclass(frozen=True, slots=True)
class UsageRoundRow:
    session_id: str
    send_index: int
    round_index: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cache_read_tokens: int
    reasoning_tokens: int
    model: str | None
    created_at: int
    duration_ms: int | None = None
    attempts: int | None = None


@dataclass(frozen=True, slots=True)
class TimerRow:
    """A durable timer; ``due_at``/``last_fired_at``/``created_at``/``updated_at`` are epoch ms."""

    session_id: str
    timer_id: int
    due_at: int
    note: str
    status: str
    interval_s: int | None
    fire_count: int
    last_fired_at: int | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class NoteRow:
    session_id: str
    note_id: int
    content: str
    pinned: bool
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class FollowUpRow:
    """A queued follow-up message, delivered exactly once at a round boundary (``kind="steer"``:
    it interrupts the running send at its next safe point)."""

    session_id: str
    item_id: int
    content: str
    created_at: int
    kind: str = "queue"


@dataclass(frozen=True, slots=True)
class CompactionRow:
    session_id: str
    compact_seq: int
    note_seq: int
    from_seq: int
    to_seq: int
    before_tokens: int | None
    after_tokens: int | None
    round_index: int | None
    created_at: int

    def __iter__(self) -> Iterator[int]:
        """Unpacks as the published ``record_compaction`` result: ``compact_seq, note_seq``."""
        return iter((self.compact_seq, self.note_seq))
