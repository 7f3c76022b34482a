"""The checks an archive passes before ``import_session`` writes any of it.

An archive is untrusted input: a hand-edited or truncated file must not become a session whose history
the loop would later send to a provider (a tool call without its result, an orphan result) or that
fails every send. Every problem found is collected, so one error lists them all.

Row checks: known columns, value types, integers within 0 … 2**63-1, text storable on every backend
(no lone surrogates; no NUL outside JSON-encoded content), binary columns as base64 (an
attachment's payload matching its sha256 hash), keys of at most 255 characters, known enum
values, valid JSON in JSON columns, no duplicate primary keys. Session checks: message seqs positive
and contiguous (a gap only where a compaction may have pruned messages), ``next_seq`` past every
message, and the active history replayed through the tool-call invariant, ending with exactly the
calls the pending blob lists as unanswered.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ._attachments import content_refs
from ._core import utf8_safe
from ._history import pending_ids
from ._port import TableSpec
from ._rows import MessageState, SessionKind, SessionStatus, SubagentLifecycle, TimerStatus

__all__ = ["duplicate_key_problems", "row_problems", "session_problems"]

_INT_MAX = 2**63 - 1
_KEY_MAX = 255
_ROLES = frozenset({"system", "user", "assistant", "tool"})
_ENUMS: dict[tuple[str, str], frozenset[str]] = {
    ("sessions", "status"): frozenset(s.value for s in SessionStatus),
    ("sessions", "kind"): frozenset(k.value for k in SessionKind),
    ("sessions", "lifecycle"): frozenset(lc.value for lc in SubagentLifecycle),
    ("messages", "role"): _ROLES,
    ("messages", "state"): frozenset(s.value for s in MessageState),
    ("timers", "status"): frozenset(s.value for s in TimerStatus),
}
# Binary columns travel as base64 text.
_PY_TYPES: dict[str, type] = {"key": str, "text": str, "enum": str, "int": int, "small": int, "blob": str}


def _blob_problem(table: TableSpec, value: str, row: Mapping[str, Any]) -> str | None:
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "is not valid base64"
    if table.name == "attachments" and row.get("hash") != hashlib.sha256(data).hexdigest():
        return "does not match the row's hash (sha256 of the payload)"
    return None


def _is_json_column(name: str, row: Mapping[str, Any]) -> bool:
    if name == "content":
        return bool(row.get("content_json"))
    return name.endswith("_json") and name != "content_json"


def _value_problem(table: TableSpec, name: str, type_: str, value: Any, row: Mapping[str, Any]) -> str | None:
    if isinstance(value, bool) or not isinstance(value, _PY_TYPES[type_]):
        return f"has the wrong type ({type(value).__name__}, expected {_PY_TYPES[type_].__name__})"
    if isinstance(value, int):
        return None if 0 <= value <= _INT_MAX else "is out of range (0 … 2**63-1)"
    assert isinstance(value, str)
    if type_ == "blob":
        return _blob_problem(table, value, row)
    if not utf8_safe(value):
        return "contains lone surrogates (not storable text)"
    if type_ == "key" and len(value) > _KEY_MAX:
        return f"is longer than {_KEY_MAX} characters"
    allowed = _ENUMS.get((table.name, name))
    if allowed is not None and value not in allowed:
        return f"has unknown value {value!r} (expected one of {sorted(allowed)})"
    if _is_json_column(name, row):
        try:
            json.loads(value)
        except (ValueError, RecursionError):
            return "is not valid JSON"
    elif "\x00" in value:
        return "contains NUL characters"
    return None


def row_problems(table: TableSpec, row: Any, index: int) -> list[str]:
    """What is wrong with one row of ``table`` (empty when it is importable)."""
    where = f"tables.{table.name}[{index}]"
    if not isinstance(row, Mapping):
        return [f"{where} is not an object"]
    columns = {c.name: c for c in table.columns}
    problems = []
    unknown = sorted(str(k) for k in set(row) - set(columns))
    if unknown:
        problems.append(f"{where} has unknown column(s) {unknown}")
    for col in table.columns:
        value = row.get(col.name)
        if value is None:
            if not col.nullable and col.default is None and col.name != "session_id":
                problems.append(f"{where} lacks required column {col.name!r}")
            continue
        problem = _value_problem(table, col.name, col.type, value, row)
        if problem:
            problems.append(f"{where}.{col.name} {problem}")
    return problems


def duplicate_key_problems(table: TableSpec, rows: list[dict[str, Any]]) -> list[str]:
    """Rows of one table that share a primary key (the session id is replaced on import)."""
    seen: set[tuple[Any, ...]] = set()
    problems = []
    for i, row in enumerate(rows):
        key = tuple(row.get(c) for c in table.primary_key if c != "session_id")
        if key and key in seen:
            problems.append(f"tables.{table.name}[{i}] duplicates primary key {list(key)}")
        seen.add(key)
    return problems


def _decoded(row: Mapping[str, Any], column: str) -> Any:
    text = row.get(column)
    return None if text is None else json.loads(text)


def _seq_problems(
    messages: list[dict[str, Any]], state: Mapping[str, Any], tables: Mapping[str, Any]
) -> list[str]:
    seqs = sorted(int(m["seq"]) for m in messages)
    problems = [f"message seq {s} is not positive" for s in seqs if s < 1]
    next_seq = state.get("next_seq", 1)
    if seqs and next_seq <= seqs[-1]:
        problems.append(f"session_state.next_seq {next_seq} is not past the last message seq {seqs[-1]}")
    # Pruning deletes compacted-out messages, so a gap is fine only where a compaction may have left one.
    covered = [(int(c["from_seq"]), int(c["to_seq"])) for c in tables.get("compactions", [])]
    last_compact = int(state.get("last_compact_seq") or 0)
    present = set(seqs)
    if seqs:
        gaps = [
            s
            for s in range(max(seqs[0], 1), seqs[-1])
            if s not in present and s > last_compact and not any(lo <= s <= hi for lo, hi in covered)
        ]
        if gaps:
            problems.append(f"message seqs have gap(s) at {gaps[:10]}")
    return problems


def _call_ids(calls: Any, seq: int) -> tuple[list[str], list[str]]:
    if not isinstance(calls, list):
        return [], [f"message #{seq}: tool_calls is not a list"]
    ids: list[str] = []
    for call in calls:
        call_id = call.get("id") if isinstance(call, Mapping) else None
        if not isinstance(call_id, str) or not call_id or call_id in ids:
            return ids, [f"message #{seq}: every tool call needs a unique non-empty string 'id'"]
        ids.append(call_id)
    return ids, []


def _replay(active: list[dict[str, Any]]) -> tuple[int | None, list[str], list[str]]:
    """Replay the active history: ``(assistant seq of the open calls, open call ids, problems)``."""
    open_ids: list[str] = []
    open_seq: int | None = None
    problems: list[str] = []
    for m in active:
        seq, role = int(m["seq"]), m["role"]
        if role == "tool":
            call_id = m.get("tool_call_id")
            if call_id not in open_ids:
                problems.append(
                    f"tool result #{seq} answers call {call_id!r}, which is not awaiting a result"
                )
            else:
                open_ids.remove(call_id)
        elif role in ("user", "assistant"):
            if open_ids:
                problems.append(
                    f"message #{seq} ({role}) follows tool call(s) {open_ids} that have no result"
                )
                open_ids = []
            if role == "assistant" and m.get("tool_calls_json") is not None:
                ids, bad = _call_ids(_decoded(m, "tool_calls_json"), seq)
                problems.extend(bad)
                open_ids, open_seq = ids, seq
        if m.get("tool_calls_json") is not None and role != "assistant":
            problems.append(f"message #{seq} ({role}) carries tool calls; only assistant messages may")
    return (open_seq if open_ids else None), open_ids, problems


def _pending_problems(pending: Any, open_seq: int | None, open_ids: list[str]) -> list[str]:
    if pending is not None and not isinstance(pending, Mapping):
        return ["session_state.pending_json is not an object"]
    if not pending:
        if open_ids:
            return [f"tool call(s) {open_ids} of message #{open_seq} have no result and are not pending"]
        return []
    calls, interactions = pending.get("tool_calls"), pending.get("pending_interactions") or []
    if not isinstance(calls, list) or not all(isinstance(c, Mapping) for c in calls):
        return ["session_state.pending_json.tool_calls is not a list of tool calls"]
    if not isinstance(interactions, list) or not all(isinstance(i, Mapping) for i in interactions):
        return ["session_state.pending_json.pending_interactions is not a list of objects"]
    problems = []
    listed = pending_ids(pending)
    if pending.get("assistant_seq") != open_seq or sorted(listed) != sorted(open_ids):
        problems.append(
            f"session_state.pending_json lists call(s) {listed} of message #{pending.get('assistant_seq')!r}, "
            f"but the history leaves {open_ids or 'none'} unanswered"
        )
    stray = [i.get("tool_call_id") for i in interactions if i.get("tool_call_id") not in listed]
    if stray:
        problems.append(f"session_state.pending_json has interactions for calls {stray} that are not pending")
    return problems


def session_problems(tables: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    """Cross-row checks of a session whose rows passed :func:`row_problems`."""
    state = tables["session_state"][0]
    messages = sorted(tables.get("messages", []), key=lambda m: int(m["seq"]))
    problems = _seq_problems(messages, state, tables)
    for m in messages:
        if m["role"] == "tool" and not isinstance(m.get("tool_call_id"), str):
            problems.append(f"tool result #{m['seq']} lacks its tool_call_id")
    active = [m for m in messages if m.get("state", "active") == "active"]
    open_seq, open_ids, replayed = _replay(active)
    problems.extend(replayed)
    problems.extend(_pending_problems(_decoded(state, "pending_json"), open_seq, open_ids))
    problems.extend(_attachment_problems(messages, tables.get("attachments", [])))
    return problems


def _attachment_problems(messages: list[dict[str, Any]], attachments: list[dict[str, Any]]) -> list[str]:
    """Every ``attachment:<sha256>`` a message refers to must travel in the archive."""
    have = {row.get("hash") for row in attachments}
    problems = []
    for m in messages:
        if m.get("content_json") and isinstance(m.get("content"), str):
            missing = sorted(content_refs(json.loads(m["content"])) - have)
            if missing:
                problems.append(f"message #{m['seq']} refers to attachment(s) not in the archive: {missing}")
    return problems
