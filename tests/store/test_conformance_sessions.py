"""Conformance: sessions (every backend)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest

from power_loop.errors import ConfigError, SessionNotFoundError
from power_loop.store import (
    NewMessage,
    SessionKind,
    SessionStatus,
    SessionStore,
    SubagentLifecycle,
)


async def test_create_and_get_session(store: SessionStore) -> None:
    sid = await store.create_session(
        system_prompt="be brief", model="m1", config={"t": 0.5}, metadata={"owner": "ann"}
    )
    assert re.fullmatch(r"sess_[0-9a-f]{24}", sid)
    row = await store.get_session(sid)
    assert row is not None
    assert (row.system_prompt, row.model, row.config, row.metadata) == (
        "be brief",
        "m1",
        {"t": 0.5},
        {"owner": "ann"},
    )
    assert row.kind is SessionKind.ROOT and row.status is SessionStatus.ACTIVE
    assert row.lifecycle is SubagentLifecycle.EPHEMERAL and row.spawn_depth == 0
    assert row.created_at == row.updated_at > 0
    state = await store.get_state(sid)
    assert state is not None and (state.next_seq, state.send_index, state.pending) == (1, 0, None)
    stats = await store.get_session_stats(sid)
    assert stats is not None and stats.sends == 0


async def test_explicit_session_id_and_duplicate(store: SessionStore) -> None:
    assert await store.create_session(session_id="mine") == "mine"
    with pytest.raises(ConfigError, match="already exists"):
        await store.create_session(session_id="mine")
    with pytest.raises(ConfigError):
        await store.create_session(session_id="")


async def test_unknown_session_reads(store: SessionStore) -> None:
    assert await store.get_session("nope") is None
    assert await store.get_state("nope") is None
    with pytest.raises(SessionNotFoundError) as err:
        await store.append_messages("nope", [NewMessage("user", "x")])
    assert err.value.code == "session.not_found" and err.value.session_id == "nope"
    with pytest.raises(SessionNotFoundError):
        await store.update_session_prompt("nope", "x")
    with pytest.raises(SessionNotFoundError):
        await store.create_session(parent_session_id="nope")


async def test_subagent_depth_and_kind(store: SessionStore) -> None:
    store.max_spawn_depth = 2
    root = await store.create_session()
    child = await store.create_session(
        parent_session_id=root, spawn_tool_call_id="call_1", kind=SessionKind.ROOT
    )
    grandchild = await store.create_session(parent_session_id=child)
    c = await store.get_session(child)
    g = await store.get_session(grandchild)
    assert c is not None and g is not None
    assert (c.kind, c.spawn_depth, c.parent_session_id, c.spawn_tool_call_id) == (
        SessionKind.SUBAGENT,
        1,
        root,
        "call_1",
    )
    assert g.spawn_depth == 2
    with pytest.raises(ConfigError, match="max_spawn_depth"):
        await store.create_session(parent_session_id=grandchild)
    assert [r.session_id for r in await store.list_children(root)] == [child]
    with pytest.raises(ConfigError):
        store.max_spawn_depth = 0


async def test_list_sessions_paging(store: SessionStore) -> None:
    ids = [await store.create_session(session_id=f"s{i}") for i in range(5)]
    listed = [r.session_id for r in await store.list_sessions(limit=100)]
    assert sorted(listed) == sorted(ids)
    page = await store.list_sessions(limit=2, offset=1)
    assert len(page) == 2 and [r.session_id for r in page] == listed[1:3]


async def test_close_session_cascades_and_reparents(store: SessionStore) -> None:
    root = await store.create_session()
    eph = await store.create_session(parent_session_id=root)
    linked = await store.create_session(parent_session_id=root, lifecycle="linked")
    detached = await store.create_session(parent_session_id=root, lifecycle=SubagentLifecycle.DETACHED)
    deep = await store.create_session(parent_session_id=linked)
    for sid in (root, eph, deep, detached):
        await store.append_messages(sid, [NewMessage("user", "hi")], begin_send=True)
        await store.set_runtime_state(sid, "k", 1)
        await store.add_note(sid, "n")
        await store.create_timer(sid, due_at_ms=1, note="t")
        await store.enqueue_follow_up(sid, "f")
    other = await store.create_session()
    await store.append_messages(other, [NewMessage("user", "keep")])

    assert await store.close_session(root) == 4
    for gone in (root, eph, linked, deep):
        assert await store.get_session(gone) is None
        assert await store.get_state(gone) is None
        assert await store.count_messages(gone) == 0
        assert await store.get_runtime_state(gone, "k") is None
        assert await store.list_notes(gone) == []
        assert await store.list_timers(gone) == []
        assert await store.list_follow_ups(gone) == []
        assert await store.get_session_stats(gone) is None
    survivor = await store.get_session(detached)
    assert survivor is not None and survivor.parent_session_id is None
    assert await store.count_messages(detached) == 1
    assert await store.count_messages(other) == 1
    assert await store.close_session(root) == 0


async def test_close_session_without_cascade_orphans_children(store: SessionStore) -> None:
    root = await store.create_session()
    child = await store.create_session(parent_session_id=root)
    assert await store.close_session(root, cascade=False) == 1
    row = await store.get_session(child)
    assert row is not None and row.parent_session_id is None


async def test_prompt_metadata_archive(store: SessionStore) -> None:
    sid = await store.create_session(system_prompt="a", metadata={"x": 1, "y": 2})
    await store.update_session_prompt(sid, "b")
    merged = await store.merge_session_metadata(sid, {"y": None, "z": [1]})
    assert merged == {"x": 1, "z": [1]}
    await store.archive_session(sid)
    row = await store.get_session(sid)
    assert row is not None
    assert (row.system_prompt, row.metadata, row.status) == ("b", {"x": 1, "z": [1]}, SessionStatus.ARCHIVED)
    with pytest.raises(SessionNotFoundError):
        await store.merge_session_metadata("nope", {"a": 1})


async def test_second_handle_sees_committed_data(
    store: SessionStore, make_store: Callable[[], Awaitable[SessionStore]]
) -> None:
    sid = await store.create_session(system_prompt="durable")
    await store.append_messages(sid, [NewMessage("user", "hello")], begin_send=True)
    other = await make_store()
    row = await other.get_session(sid)
    assert row is not None and row.system_prompt == "durable"
    assert [m.content for m in await other.load_active_messages(sid)] == ["hello"]
    res = await other.append_messages(sid, [NewMessage("assistant", "hi")])
    assert res.first_seq == 2
    assert [m.content for m in await store.load_active_messages(sid)] == ["hello", "hi"]
