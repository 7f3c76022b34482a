"""The tool-call history invariant, enforced at write time (SPEC §2.4).

Pure functions over plain data, so the store can run them inside a transaction and tests can
exercise them directly. The *pending blob* records the assistant row whose tool calls are still
unanswered::

    {"assistant_seq": 7, "round_index": 2, "send_index": 3,
     "tool_calls": [<unanswered OpenAI tool_call dicts>], "pending_interactions": [...]}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import HistoryInvariantError
from ._rows import KEEP, NewMessage

__all__ = ["advance_pending", "check_active_window", "pending_ids"]


def pending_ids(pending: Mapping[str, Any] | None) -> list[str]:
    """Ids of the tool calls still waiting for a result, in call order."""
    if not pending:
        return []
    return [str(tc.get("id")) for tc in pending.get("tool_calls") or ()]


def _call_ids(tool_calls: Sequence[Any], seq: int) -> list[str]:
    ids: list[str] = []
    for tc in tool_calls:
        tc_id = tc.get("id") if isinstance(tc, Mapping) else None
        if not isinstance(tc_id, str) or not tc_id:
            raise HistoryInvariantError(
                f"assistant message #{seq}: every tool call needs a non-empty string 'id'"
            )
        if tc_id in ids:
            raise HistoryInvariantError(f"assistant message #{seq}: duplicate tool call id {tc_id!r}")
        ids.append(tc_id)
    return ids


def advance_pending(
    pending: dict[str, Any] | None,
    messages: Sequence[NewMessage],
    *,
    first_seq: int,
    send_index: int,
    interactions: Any = KEEP,
) -> tuple[dict[str, Any] | None, bool]:
    """Apply ``messages`` (to be written from ``first_seq``) to the pending blob.

    Returns ``(new_pending, changed)``. Raises :class:`HistoryInvariantError` if the messages would
    leave a tool result without its call, answer a call twice, or start a new turn while calls are
    unanswered. ``pending`` is not modified.
    """
    current = pending
    changed = False
    for offset, msg in enumerate(messages):
        seq = first_seq + offset
        role = msg.role
        if role == "tool":
            current = _answer_call(current, msg.tool_call_id, seq)
            changed = True
        elif role in ("user", "assistant"):
            if current is not None:
                raise HistoryInvariantError(
                    f"cannot append a {role} message (#{seq}) while tool call(s) "
                    f"{pending_ids(current)} have no result; answer or abort them first"
                )
            if role == "assistant" and msg.tool_calls:
                _call_ids(msg.tool_calls, seq)
                current = {
                    "assistant_seq": seq,
                    "round_index": msg.round_index,
                    "send_index": send_index,
                    "tool_calls": list(msg.tool_calls),
                    "pending_interactions": [],
                }
                changed = True
        elif not isinstance(role, str) or not role:
            raise HistoryInvariantError(f"message #{seq} has no role")
    if interactions is not KEEP:
        current = _attach_interactions(current, interactions)
        changed = changed or current is not None
    return current, changed


def _answer_call(current: dict[str, Any] | None, tc_id: Any, seq: int) -> dict[str, Any] | None:
    """The pending blob once tool message ``seq`` answered call ``tc_id`` (None: nothing left open)."""
    open_ids = pending_ids(current)
    if not isinstance(tc_id, str) or tc_id not in open_ids:
        raise HistoryInvariantError(
            f"tool message #{seq} answers tool call {tc_id!r}, which is not awaiting a result "
            f"(unanswered: {open_ids or 'none'})"
        )
    assert current is not None
    remaining = [tc for tc in current["tool_calls"] if tc.get("id") != tc_id]
    if not remaining:
        return None
    return {
        **current,
        "tool_calls": remaining,
        "pending_interactions": [
            i for i in current.get("pending_interactions") or () if i.get("tool_call_id") != tc_id
        ],
    }


def _attach_interactions(current: dict[str, Any] | None, interactions: Any) -> dict[str, Any] | None:
    """The pending blob with its interactions replaced by ``interactions`` (each on an open call)."""
    items = list(interactions or ())
    if items and current is None:
        raise HistoryInvariantError("pending interactions need unanswered tool calls to attach to")
    if current is None:
        return None
    open_set = set(pending_ids(current))
    for item in items:
        if not isinstance(item, Mapping) or item.get("tool_call_id") not in open_set:
            raise HistoryInvariantError(
                f"pending interaction {item!r} does not belong to an unanswered tool call"
            )
    return {**current, "pending_interactions": [dict(i) for i in items]}


def check_active_window(rows: Iterable[Mapping[str, Any]], pending: Mapping[str, Any] | None) -> None:
    """Check that the active messages pair every tool call with its result and vice versa.

    ``rows`` are the active messages in seq order with ``seq``, ``role``, ``tool_calls`` (decoded)
    and ``tool_call_id``. Calls listed in ``pending`` may lack results (a send is in progress).
    """
    exempt = set(pending_ids(pending))
    declared: dict[str, int] = {}
    answered: set[str] = set()
    for row in rows:
        if row["role"] == "assistant" and row["tool_calls"]:
            for tc in row["tool_calls"]:
                declared[str(tc.get("id"))] = int(row["seq"])
        elif row["role"] == "tool":
            tc_id = row["tool_call_id"]
            if tc_id not in declared:
                raise HistoryInvariantError(
                    f"tool result #{row['seq']} would stay active without its assistant call {tc_id!r}"
                )
            answered.add(tc_id)
    orphans = [i for i in declared if i not in answered and i not in exempt]
    if orphans:
        raise HistoryInvariantError(
            f"assistant tool call(s) {orphans} would stay active without their results"
        )
