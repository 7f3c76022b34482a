"""`DeferredInput`: follow-ups queued for a running send, and durable timers armed for later."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from power_loop import FollowUpQueued
from power_loop.errors import ConfigError
from power_loop.loop._deferred import DeferredInput
from power_loop.loop._store_ref import StoreRef


def _deferred(tmp_path: Path) -> tuple[DeferredInput, StoreRef, set[str]]:
    ref = StoreRef(
        None, dsn=str(tmp_path / "d.db"), db_path=None, table_prefix=None, schema=None, max_spawn_depth=None
    )
    flags: set[str] = set()
    return DeferredInput(ref, flags), ref, flags


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one"),
        ({"delay_s": 1, "due_at_ms": 1}, "exactly one"),
        ({"delay_s": 1, "note": "  "}, "non-blank note"),
        ({"delay_s": -1}, "delay_s"),
        ({"delay_s": 1, "interval_s": 0}, "interval_s"),
        ({"delay_s": 1, "interval_s": 1.5}, "interval_s"),
    ],
)
async def test_bad_timers_are_refused_before_the_store_is_opened(
    tmp_path: Path, kwargs: dict[str, Any], match: str
) -> None:
    deferred, ref, _ = _deferred(tmp_path)
    args: dict[str, Any] = {"delay_s": None, "due_at_ms": None, "note": "n", "interval_s": None, **kwargs}
    with pytest.raises(ConfigError, match=match):
        await deferred.schedule_timer("sess_x", **args)
    assert ref.current is None


async def test_timers_are_armed_listed_and_cancelled(tmp_path: Path) -> None:
    deferred, ref, _ = _deferred(tmp_path)
    store = await ref.ensure()
    try:
        sid = await store.create_session()
        before = time.time_ns() // 1_000_000
        later = await deferred.schedule_timer(sid, delay_s=60, due_at_ms=None, note="later", interval_s=None)
        after = time.time_ns() // 1_000_000
        assert before + 60_000 <= later.due_at <= after + 60_000
        soon = await deferred.schedule_timer(sid, delay_s=None, due_at_ms=before, note="soon", interval_s=5)
        assert soon.interval_s == 5
        assert [t.note for t in await deferred.list_timers(sid)] == ["soon", "later"]
        assert await deferred.cancel_timer(sid, soon.timer_id) is True
        assert await deferred.cancel_timer(sid, soon.timer_id) is False
        assert [t.timer_id for t in await deferred.list_timers(sid)] == [later.timer_id]
    finally:
        await store.close()


async def test_a_queued_follow_up_is_stored_and_flags_its_session(tmp_path: Path) -> None:
    deferred, ref, flags = _deferred(tmp_path)
    store = await ref.ensure()
    try:
        sid = await store.create_session()
        first = await deferred.queue_follow_up(sid, "one")
        second = await deferred.queue_follow_up(sid, "two")
        assert isinstance(second, FollowUpQueued)
        assert (first.queue_depth, second.queue_depth) == (1, 2) and second.item_id != first.item_id
        assert flags == {sid}
        assert [f.content for f in await store.list_follow_ups(sid)] == ["one", "two"]
    finally:
        await store.close()
