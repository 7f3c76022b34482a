"""The published SessionStore call shapes: open(path), append_message, get/set_pending, and
record_compaction(note_content=...) — on every backend, with the store's guarantees kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from power_loop.errors import ConfigError, HistoryInvariantError, InvalidDSN
from power_loop.store import MessageState, SessionStore, SubagentLifecycle, open_store


def _call(call_id: str) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": "t", "arguments": "{}"}}


async def test_open_takes_a_sqlite_path_only(tmp_path: Path) -> None:
    store = await SessionStore.open(str(tmp_path / "a.db"), table_prefix="x_")
    try:
        sid = await store.create_session()
        assert await store.get_session(sid) is not None and store.table_prefix == "x_"
    finally:
        await store.close()
    with pytest.raises(InvalidDSN, match="open_store"):
        await SessionStore.open("postgresql://u@localhost/db")
    with pytest.raises(Exception, match="schema"):  # create_schema=False: verify a fresh file
        await SessionStore.open(str(tmp_path / "fresh.db"), create_schema=False)
    with pytest.deprecated_call():
        store = await open_store(str(tmp_path / "b.db"), create_schema=True)
    await store.close()


async def test_append_message_and_the_published_pending_blob(store: SessionStore) -> None:
    sid = await store.create_session()
    assert await store.append_message(sid, role="user", content="hi") == 1
    seq = await store.append_message(sid, role="assistant", content="", tool_calls=[_call("a"), _call("b")])
    pending = await store.get_pending(sid)
    assert pending is not None and pending["assistant_seq"] == seq and pending["tool_call_ids"] == ["a", "b"]
    await store.set_pending(sid, pending)  # agreeing with the history is fine
    with pytest.raises(HistoryInvariantError, match="abort_pending"):
        await store.set_pending(sid, None)  # clearing it would leave calls unanswered
    with pytest.raises(HistoryInvariantError):
        await store.append_message(sid, role="user", content="too early")
    await store.append_message(sid, role="tool", content="1", tool_call_id="a", name="t")
    assert (await store.get_pending(sid))["tool_call_ids"] == ["b"]
    await store.append_message(sid, role="tool", content="2", tool_call_id="b", name="t")
    assert await store.get_pending(sid) is None
    await store.set_pending(sid, None)
    rows = await store.load_active_messages(sid)
    assert [r.role for r in rows] == ["user", "assistant", "tool", "tool"]


async def test_record_compaction_by_note_content(store: SessionStore) -> None:
    sid = await store.create_session()
    for i in range(3):
        await store.append_message(sid, role="user", content=f"q{i}")
        await store.append_message(sid, role="assistant", content=f"a{i}")
    compact_seq, note_seq = await store.record_compaction(
        sid, from_seq=1, to_seq=4, note_content="two exchanges about q0 and q1", round_index=0
    )
    assert compact_seq >= 1 and note_seq == 7
    active = await store.load_active_messages(sid)
    note = next(r for r in active if r.seq == note_seq)
    assert (note.role, note.name, note.content) == ("system", "compact_note", "two exchanges about q0 and q1")
    assert all(r.seq > 4 for r in active)
    with pytest.raises(ConfigError):
        await store.record_compaction(sid, from_seq=5, to_seq=6)


async def test_close_session_tree_names_what_it_deleted(store: SessionStore) -> None:
    root = await store.create_session()
    linked = await store.create_session(parent_session_id=root, lifecycle=SubagentLifecycle.LINKED)
    grandchild = await store.create_session(parent_session_id=linked)
    detached = await store.create_session(parent_session_id=root, lifecycle=SubagentLifecycle.DETACHED)
    assert await store.close_session_tree(root) == [root, linked, grandchild]
    kept = await store.get_session(detached)
    assert kept is not None and kept.parent_session_id is None
    assert await store.close_session_tree(root) == []
    assert await store.close_session(detached) == 1


async def test_deactivate_messages_drops_whole_pairs_only(store: SessionStore) -> None:
    sid = await store.create_session()
    await store.append_message(sid, role="user", content="q")
    await store.append_message(sid, role="assistant", content="", tool_calls=[_call("a")])
    await store.append_message(sid, role="tool", content="r", tool_call_id="a", name="t")
    await store.append_message(sid, role="assistant", content="done")
    with pytest.raises(HistoryInvariantError):
        await store.deactivate_messages(sid, [2])  # the call without its result
    assert await store.deactivate_messages(sid, [2, 3]) == 2
    assert [r.seq for r in await store.load_active_messages(sid)] == [1, 4]
    assert {r.seq: r.state for r in await store.load_all_messages(sid)}[2] is MessageState.DROPPED


async def test_record_usage_and_bump_session_stats(store: SessionStore) -> None:
    sid = await store.create_session()
    await store.append_message(sid, role="user", content="q")
    await store.record_usage(sid, round_index=0, prompt_tokens=10, completion_tokens=5, total_tokens=None)
    await store.record_usage(
        sid, round_index=0, prompt_tokens=12, completion_tokens=6, total_tokens=18, model="m"
    )
    await store.record_usage(sid, round_index=1, prompt_tokens=3, completion_tokens=1, total_tokens=None)
    rounds = await store.list_usage_rounds(sid)
    assert [(r.round_index, r.prompt_tokens, r.total_tokens, r.model) for r in rounds] == [
        (0, 12, 18, "m"),  # an upsert: the second record replaced the first
        (1, 3, 4, None),
    ]
    await store.bump_session_stats(sid, {"prompt_tokens": 15, "completion_tokens": 7, "calls": 2}, rounds=2)
    await store.bump_session_stats(sid, {"input_tokens": 1, "output_tokens": 1, "calls": 1}, tool_calls=3)
    stats = await store.get_session_stats(sid)
    assert stats is not None
    assert (stats.sends, stats.rounds, stats.llm_calls, stats.tool_calls) == (2, 2, 3, 3)
    assert (stats.prompt_tokens, stats.completion_tokens, stats.total_tokens) == (16, 8, 24)
    with pytest.raises(ConfigError):
        await store.bump_session_stats(sid, {"prompt_tokens": -1})


async def test_prune_timers_and_usage_rounds(store: SessionStore) -> None:
    sid = await store.create_session()
    await store.append_message(sid, role="user", content="q")
    timers = [await store.create_timer(sid, due_at=10**12 + i, note=f"n{i}") for i in range(3)]
    await store.cancel_timer(sid, timers[0].timer_id)
    assert await store.prune_timers(sid, older_than_ms=0) == 0  # nothing changed before the epoch
    assert await store.prune_timers(sid) == 1  # the cancelled one; armed timers stay
    assert [t.timer_id for t in await store.list_timers(sid)] == [timers[1].timer_id, timers[2].timer_id]
    assert await store.prune_timers(sid, statuses=("armed",)) == 2
    with pytest.raises(ConfigError):
        await store.prune_timers(sid, statuses=("gone",))
    for r in range(4):
        await store.record_usage(sid, round_index=r, prompt_tokens=1, completion_tokens=1, total_tokens=2)
    assert await store.prune_usage_rounds(sid, keep_last=1) == 3
    assert [r.round_index for r in await store.list_usage_rounds(sid)] == [3]
    assert await store.prune_usage_rounds(sid, older_than_ms=2**62) == 1


async def test_timer_methods_take_the_published_keywords(store: SessionStore) -> None:
    sid = await store.create_session()
    timer = await store.create_timer(sid, due_at=1_000, note="wake")
    assert timer.due_at == 1_000
    assert [t.timer_id for t in await store.due_timers(now=1_000)] == [timer.timer_id]
    assert await store.due_timers(now=999) == []
    assert await store.transition_timer(
        sid, timer.timer_id, from_status="armed", to_status="armed", due_at=5_000
    )
    assert (await store.get_timer(sid, timer.timer_id)).due_at == 5_000
    with pytest.raises(ConfigError, match="not both"):
        await store.create_timer(sid, due_at=1, due_at_ms=1, note="x")
    with pytest.raises(ConfigError, match="required"):
        await store.create_timer(sid, note="x")


async def test_list_session_stats_is_most_recently_updated_first(store: SessionStore) -> None:
    sids = [await store.create_session() for _ in range(3)]
    for sid in sids:
        await store.append_message(sid, role="user", content="q")
        await store.bump_session_stats(sid, {"calls": 1})
    table = f"{store.table_prefix}session_stats"
    for when, sid in zip(
        (2_000, 3_000, 1_000), sids, strict=True
    ):  # fixed stamps: no dependence on the clock
        await store.db.execute(f"UPDATE {table} SET updated_at = ? WHERE session_id = ?", (when, sid))
    listed = [s.session_id for s in await store.list_session_stats() if s.session_id in sids]
    assert listed == [sids[1], sids[0], sids[2]]


async def test_prune_compacted_messages_takes_a_cut_off(store: SessionStore) -> None:
    sid = await store.create_session()
    for i in range(3):
        await store.append_message(sid, role="user", content=f"q{i}")
        await store.append_message(sid, role="assistant", content=f"a{i}")
    await store.deactivate_messages(sid, [1, 2, 3, 4])
    table = f"{store.table_prefix}messages"
    for seq, when in ((1, 1_000), (2, 1_000), (3, 5_000), (4, 5_000)):  # fixed stamps, not the clock
        await store.db.execute(
            f"UPDATE {table} SET created_at = ? WHERE session_id = ? AND seq = ?", (when, sid, seq)
        )
    assert await store.prune_compacted_messages(sid, older_than_ms=2_000) == 2  # seqs 1, 2
    assert await store.prune_compacted_messages(sid, older_than_ms=2_000) == 0
    assert await store.prune_compacted_messages(sid, keep_recent=1, older_than_ms=9_000) == 1  # seq 3
    assert [r.seq for r in await store.load_all_messages(sid)] == [4, 5, 6]
