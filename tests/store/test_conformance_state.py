"""Conformance: runtime/shared state, notes and timers (every backend)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from power_loop.errors import ConfigError, SessionNotFoundError
from power_loop.store import MUTATE_SKIP, SessionStore


async def test_runtime_state_crud(store: SessionStore) -> None:
    sid = await store.create_session()
    assert await store.get_runtime_state(sid, "todo", default=[]) == []
    await store.set_runtime_state(sid, "todo", [{"t": "x", "done": False}])
    await store.set_runtime_state(sid, "n", None)
    assert await store.get_runtime_state(sid, "todo") == [{"t": "x", "done": False}]
    assert await store.get_runtime_state(sid, "n", default=5) is None  # a stored null is a value
    await store.set_runtime_state(sid, "todo", {"replaced": True})
    assert await store.get_runtime_state(sid, "todo") == {"replaced": True}
    assert await store.delete_runtime_state(sid, "todo") is True
    assert await store.delete_runtime_state(sid, "todo") is False
    assert await store.get_runtime_state(sid, "todo", default="gone") == "gone"
    with pytest.raises(SessionNotFoundError):
        await store.set_runtime_state("nope", "k", 1)


async def test_mutate_runtime_state_is_atomic_under_concurrency(store: SessionStore) -> None:
    sid = await store.create_session()

    def incr(v: int) -> int:
        return v + 1

    results = await asyncio.gather(
        *[store.mutate_runtime_state(sid, "n", incr, default=0) for _ in range(25)]
    )
    assert sorted(results) == list(range(1, 26))
    assert await store.get_runtime_state(sid, "n") == 25
    assert await store.mutate_runtime_state(sid, "n", lambda v: MUTATE_SKIP) == 25
    assert await store.get_runtime_state(sid, "n") == 25

    def boom(v: Any) -> Any:
        raise KeyError("no")

    with pytest.raises(KeyError):
        await store.mutate_runtime_state(sid, "n", boom)
    assert await store.get_runtime_state(sid, "n") == 25
    with pytest.raises(SessionNotFoundError):
        await store.mutate_runtime_state("nope", "n", incr, default=0)


async def test_shared_state(store: SessionStore) -> None:
    owner = "blackboard:b1"
    assert await store.get_shared_state(owner, "board", default={}) == {}
    await store.set_shared_state(owner, "board", {"a": 1})
    assert await store.get_shared_state(owner, "board") == {"a": 1}

    def add(entry: str) -> Any:
        def fn(board: dict[str, Any]) -> dict[str, Any]:
            return {**board, entry: True}

        return fn

    await asyncio.gather(
        *[store.mutate_shared_state(owner, "board", add(f"e{i}"), default={}) for i in range(10)]
    )
    board = await store.get_shared_state(owner, "board")
    assert set(board) == {"a", *(f"e{i}" for i in range(10))}
    # mutate of a missing key that skips leaves it absent
    assert await store.mutate_shared_state(owner, "other", lambda v: MUTATE_SKIP, default=7) == 7
    assert await store.get_shared_state(owner, "other", default="absent") == "absent"
    assert await store.delete_shared_state(owner, "board") is True
    assert await store.get_shared_state(owner, "board") is None


async def test_notes(store: SessionStore) -> None:
    sid = await store.create_session()
    n1 = await store.add_note(sid, "first")
    n2 = await store.add_note(sid, "second", pinned=True)
    assert (n1.note_id, n2.note_id, n2.pinned) == (1, 2, True)
    assert await store.update_note(sid, 1, content="FIRST") is True
    assert await store.update_note(sid, 2, pinned=False) is True
    assert await store.update_note(sid, 9, content="x") is False
    notes = await store.list_notes(sid)
    assert [(n.note_id, n.content, n.pinned) for n in notes] == [(1, "FIRST", False), (2, "second", False)]
    assert await store.count_notes(sid) == 2
    assert await store.delete_note(sid, 1) is True
    assert await store.delete_note(sid, 1) is False
    assert await store.count_notes(sid) == 1
    ids = await asyncio.gather(*[store.add_note(sid, f"c{i}") for i in range(8)])
    assert sorted(n.note_id for n in ids) == list(range(3, 11))
    with pytest.raises(SessionNotFoundError):
        await store.add_note("nope", "x")


async def test_timers_lifecycle(store: SessionStore) -> None:
    sid = await store.create_session()
    t1 = await store.create_timer(sid, due_at_ms=1_000, note="once")
    t2 = await store.create_timer(sid, due_at_ms=2_000, note="every", interval_s=60)
    t3 = await store.create_timer(sid, due_at_ms=10**15, note="far future")
    assert t3.timer_id == 3
    assert (t1.timer_id, t2.timer_id, t1.status, t2.interval_s) == (1, 2, "armed", 60)
    assert await store.get_timer(sid, 1) == t1
    assert await store.get_timer(sid, 99) is None
    due = await store.due_timers(now_ms=5_000)
    assert [(t.session_id, t.timer_id) for t in due if t.session_id == sid] == [(sid, 1), (sid, 2)]
    assert len(await store.due_timers(now_ms=5_000, limit=1)) == 1

    # CAS: exactly one of several concurrent claimers wins
    wins = await asyncio.gather(
        *[store.transition_timer(sid, 1, from_status="armed", to_status="firing") for _ in range(5)]
    )
    assert wins.count(True) == 1
    assert await store.finish_firing_timer(sid, 1) is True
    assert await store.finish_firing_timer(sid, 1) is False
    done = await store.get_timer(sid, 1)
    assert done is not None and (done.status, done.fire_count) == ("fired", 1) and done.last_fired_at

    assert await store.transition_timer(sid, 2, from_status="armed", to_status="firing")
    assert await store.finish_firing_timer(sid, 2)
    again = await store.get_timer(sid, 2)
    assert again is not None and again.status == "armed" and again.fire_count == 1
    assert again.last_fired_at is not None and again.due_at == again.last_fired_at + 60_000

    assert await store.transition_timer(sid, 3, from_status="armed", to_status="armed", due_at_ms=3_000)
    moved = await store.get_timer(sid, 3)
    assert moved is not None and moved.due_at == 3_000
    assert await store.cancel_timer(sid, 3) is True
    assert await store.cancel_timer(sid, 3) is False
    assert [t.timer_id for t in await store.list_timers(sid)] == [2]
    assert [t.timer_id for t in await store.list_timers(sid, statuses=("fired", "cancelled"))] == [1, 3]
    assert await store.list_timers(sid, statuses=()) == []
    with pytest.raises(ConfigError):
        await store.list_timers(sid, statuses=("bogus",))
    with pytest.raises(ConfigError):
        await store.create_timer(sid, due_at_ms=1, note="x", interval_s=0)
    with pytest.raises(SessionNotFoundError):
        await store.create_timer("nope", due_at_ms=1, note="x")
