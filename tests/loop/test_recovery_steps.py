"""`Recovery` on its own: what it prepares for the loop, and what it refuses before writing anything.

The loop-level routes (resume re-executing calls, heal_pending, submit_input from another process) are
in ``test_loop_recovery.py``; here are the steps' own contracts, on every backend.
"""

from __future__ import annotations

from typing import Any

import pytest

from power_loop import StatefulResult
from power_loop.errors import InteractionNotFoundError, SessionNotFoundError, SessionPendingError
from power_loop.loop._cache import SessionWindow, WindowCache
from power_loop.loop._guard import SessionGuard
from power_loop.loop._recovery import HEAL_REASON, Continuation, Recovery
from power_loop.store import NewMessage, SessionStore


def _call(call_id: str, name: str = "ask") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


async def _pending_session(store: SessionStore, *call_ids: str, interactions: Any = ()) -> str:
    """A session whose last send stopped after the assistant asked for ``call_ids``."""
    sid = await store.create_session()
    await store.append_messages(sid, [NewMessage("user", "go", round_index=0)], begin_send=True)
    await store.append_messages(
        sid,
        [NewMessage("assistant", "", tool_calls=[_call(c) for c in call_ids], round_index=1)],
        pending_interactions=list(interactions),
    )
    return sid


def _recovery() -> tuple[Recovery, WindowCache]:
    cache = WindowCache(8)
    return Recovery(cache, SessionGuard()), cache


async def test_a_pending_session_refuses_a_new_user_row_and_writes_nothing(store: SessionStore) -> None:
    recovery, _ = _recovery()
    sid = await _pending_session(store, "c1", "c2")
    before = await store.count_messages(sid)
    with pytest.raises(SessionPendingError) as info:
        await recovery.begin_send(store, sid, NewMessage("user", "again", round_index=0), heal=False)
    assert [c["id"] for c in info.value.pending_tool_calls] == ["c1", "c2"]
    assert await store.count_messages(sid) == before


async def test_healing_answers_the_open_calls_then_appends_and_forgets_the_cached_window(
    store: SessionStore,
) -> None:
    recovery, cache = _recovery()
    sid = await _pending_session(store, "c1")
    cache.put(sid, SessionWindow(messages=[], next_seq=3, system_prompt=None))
    appended = await recovery.begin_send(store, sid, NewMessage("user", "again", round_index=0), heal=True)
    assert cache.stats()["entries"] == 0
    rows = await store.load_active_messages(sid)
    assert [(r.role, r.content) for r in rows[-2:]] == [
        ("tool", f"<aborted: {HEAL_REASON}>"),
        ("user", "again"),
    ]
    assert appended.pending is None and appended.first_seq == rows[-1].seq


async def test_an_unknown_session_is_not_found_and_a_clean_one_has_nothing_pending(
    store: SessionStore,
) -> None:
    recovery, _ = _recovery()
    with pytest.raises(SessionNotFoundError):
        await recovery.resume(store, "sess_missing")
    assert await recovery.get_pending(store, "sess_missing", missing_ok=True) is None
    sid = await store.create_session()
    assert await recovery.get_pending(store, sid) is None
    step = await recovery.resume(store, sid)
    assert isinstance(step, StatefulResult) and step.status == "nothing_to_resume"
    # A send cut before its answer (its user row is the last) is continued.
    await store.append_messages(sid, [NewMessage("user", "hi")], begin_send=True)
    step = await recovery.resume(store, sid)
    assert isinstance(step, Continuation) and step.pending is None


async def test_resume_continues_from_the_stored_window_with_the_open_calls(store: SessionStore) -> None:
    recovery, _ = _recovery()
    sid = await _pending_session(store, "c1")
    step = await recovery.resume(store, sid)
    assert isinstance(step, Continuation)
    assert [c["id"] for c in (step.pending or {})["tool_calls"]] == ["c1"]
    assert [m["role"] for m in step.window.messages] == ["user", "assistant"]


async def test_input_answers_one_interaction_and_continues_only_when_none_is_left(
    store: SessionStore,
) -> None:
    recovery, _ = _recovery()
    asks = [{"interaction_id": f"i{n}", "tool_call_id": f"c{n}", "tool_name": "ask"} for n in (1, 2)]
    sid = await _pending_session(store, "c1", "c2", interactions=asks)
    waiting = await recovery.resume(store, sid)
    assert isinstance(waiting, StatefulResult) and waiting.status == "waiting_for_input"
    with pytest.raises(InteractionNotFoundError):
        await recovery.submit_input(store, sid, "i9", "x")
    assert await store.count_messages(sid) == 2

    first = await recovery.submit_input(store, sid, "i1", {"colour": "blue"})
    assert isinstance(first, StatefulResult) and first.status == "waiting_for_input"
    assert [i["interaction_id"] for i in first.pending_interactions] == ["i2"]
    last = await recovery.submit_input(store, sid, "i2", "red")
    assert isinstance(last, Continuation) and last.pending is None
    assert [(m["role"], m.get("content")) for m in last.window.messages[-2:]] == [
        ("tool", '{"colour": "blue"}'),
        ("tool", "red"),
    ]


async def test_abort_pending_counts_the_answered_calls_and_forgets_the_cached_window(
    store: SessionStore,
) -> None:
    recovery, cache = _recovery()
    sid = await _pending_session(store, "c1", "c2")
    cache.put(sid, SessionWindow(messages=[], next_seq=3, system_prompt=None))
    assert await recovery.abort_pending(store, sid, reason="stop") == 2
    assert cache.stats()["entries"] == 0
    assert await recovery.get_pending(store, sid) is None
