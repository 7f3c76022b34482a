"""Conformance: the message hot path, the history invariant and message states (every backend)."""

from __future__ import annotations

from typing import Any

import pytest

from power_loop.errors import HistoryInvariantError, SessionNotFoundError
from power_loop.store import (
    AppendResult,
    MessageState,
    NewMessage,
    RoundUsage,
    SendAccounting,
    SessionStore,
)


def call(cid: str, name: str = "f") -> dict[str, Any]:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": "{}"}}


async def tool_round(store: SessionStore, sid: str, *ids: str) -> AppendResult:
    return await store.append_messages(
        sid, [NewMessage("assistant", None, tool_calls=[call(i) for i in ids])]
    )


async def test_append_allocates_contiguous_seqs_and_sends(store: SessionStore) -> None:
    sid = await store.create_session()
    r1 = await store.append_messages(sid, [NewMessage("user", "a")], begin_send=True)
    assert (r1.first_seq, r1.last_seq, r1.next_seq, r1.send_index, r1.pending) == (1, 1, 2, 1, None)
    r2 = await store.append_messages(
        sid,
        [NewMessage("assistant", "b", round_index=0), NewMessage("system", "c", name="n", meta={"k": [1]})],
    )
    assert (r2.first_seq, r2.last_seq, r2.send_index) == (2, 3, 1)
    r3 = await store.append_messages(sid, [NewMessage("user", "d")], begin_send=True)
    assert (r3.first_seq, r3.send_index) == (4, 2)
    rows = await store.load_all_messages(sid)
    assert [(m.seq, m.role, m.content, m.send_index) for m in rows] == [
        (1, "user", "a", 1),
        (2, "assistant", "b", 1),
        (3, "system", "c", 1),
        (4, "user", "d", 2),
    ]
    assert rows[2].name == "n" and rows[2].meta == {"k": [1]} and rows[0].meta == {}
    assert all(m.state is MessageState.ACTIVE for m in rows)
    assert [m.seq for m in await store.load_send(sid, 1)] == [1, 2, 3]
    assert [m.seq for m in await store.load_active_messages(sid, after_seq=2)] == [3, 4]
    got = await store.get_message(sid, 2)
    assert got is not None and got.round_index == 0 and got.content == "b"
    assert await store.get_message(sid, 99) is None
    assert await store.count_messages(sid) == 4
    state = await store.get_state(sid)
    assert state is not None and (state.next_seq, state.send_index) == (5, 2)


async def test_content_json_and_unicode_roundtrip(store: SessionStore) -> None:
    sid = await store.create_session()
    parts = [{"type": "text", "text": "héllo ✓"}, {"type": "image_url", "image_url": {"url": "data:x"}}]
    await store.append_messages(sid, [NewMessage("user", parts), NewMessage("user", '["not", "parts"]')])
    rows = await store.load_active_messages(sid)
    assert rows[0].content == parts
    assert rows[1].content == '["not", "parts"]'


async def test_empty_append_can_begin_send(store: SessionStore) -> None:
    sid = await store.create_session()
    r = await store.append_messages(sid, [], begin_send=True)
    assert (r.first_seq, r.last_seq, r.next_seq, r.send_index) == (1, 0, 1, 1)


async def test_pending_blob_follows_tool_calls(store: SessionStore) -> None:
    sid = await store.create_session()
    await store.append_messages(sid, [NewMessage("user", "go")], begin_send=True)
    r = await store.append_messages(
        sid,
        [NewMessage("assistant", "calling", tool_calls=[call("c1", "a"), call("c2", "b")], round_index=3)],
    )
    assert r.pending == {
        "assistant_seq": 2,
        "round_index": 3,
        "send_index": 1,
        "tool_calls": [call("c1", "a"), call("c2", "b")],
        "pending_interactions": [],
    }
    state = await store.get_state(sid)
    assert state is not None and state.pending == r.pending and state.round_index == 3
    r = await store.append_messages(sid, [NewMessage("tool", "one", tool_call_id="c2")])
    assert r.pending is not None and [tc["id"] for tc in r.pending["tool_calls"]] == ["c1"]
    r = await store.append_messages(
        sid, [NewMessage("tool", "two", tool_call_id="c1"), NewMessage("assistant", "ok")]
    )
    assert r.pending is None
    state = await store.get_state(sid)
    assert state is not None and state.pending is None


@pytest.mark.parametrize(
    "bad",
    [
        [NewMessage("tool", "x", tool_call_id="zz")],
        [NewMessage("tool", "x", tool_call_id="c1"), NewMessage("tool", "x", tool_call_id="c1")],
        [NewMessage("user", "interrupting")],
        [NewMessage("assistant", "interrupting")],
        [NewMessage("tool", "x", tool_call_id=None)],
    ],
    ids=["unknown-id", "duplicate", "user-while-pending", "assistant-while-pending", "no-id"],
)
async def test_invariant_violations_write_nothing(store: SessionStore, bad: list[NewMessage]) -> None:
    sid = await store.create_session()
    await tool_round(store, sid, "c1", "c2")
    before = await store.get_state(sid)
    with pytest.raises(HistoryInvariantError) as err:
        await store.append_messages(sid, bad, begin_send=True)
    assert err.value.code == "history.invalid"
    assert await store.get_state(sid) == before
    assert await store.count_messages(sid) == 1


async def test_tool_row_without_pending_and_bad_calls(store: SessionStore) -> None:
    sid = await store.create_session()
    with pytest.raises(HistoryInvariantError):
        await store.append_messages(sid, [NewMessage("tool", "x", tool_call_id="c1")])
    with pytest.raises(HistoryInvariantError, match="duplicate"):
        await store.append_messages(sid, [NewMessage("assistant", None, tool_calls=[call("a"), call("a")])])
    with pytest.raises(HistoryInvariantError, match="id"):
        await store.append_messages(sid, [NewMessage("assistant", None, tool_calls=[{"type": "function"}])])
    assert await store.count_messages(sid) == 0


async def test_pending_interactions(store: SessionStore) -> None:
    sid = await store.create_session()
    await tool_round(store, sid, "c1", "c2")
    ask = {"interaction_id": "i1", "tool_call_id": "c1", "kind": "text", "prompt": "name?"}
    r = await store.append_messages(sid, [], pending_interactions=[ask])
    assert r.pending is not None and r.pending["pending_interactions"] == [ask]
    r = await store.append_messages(sid, [NewMessage("tool", "x", tool_call_id="c2")])
    assert r.pending is not None and r.pending["pending_interactions"] == [ask]  # KEEP
    with pytest.raises(HistoryInvariantError):
        await store.append_messages(sid, [], pending_interactions=[{"tool_call_id": "c2"}])
    r = await store.append_messages(sid, [NewMessage("tool", "Ann", tool_call_id="c1")])
    assert r.pending is None
    with pytest.raises(HistoryInvariantError):
        await store.append_messages(sid, [], pending_interactions=[ask])


async def test_abort_pending(store: SessionStore) -> None:
    sid = await store.create_session()
    assert await store.abort_pending(sid, reason="nothing") == 0
    await store.append_messages(sid, [NewMessage("user", "go")], begin_send=True)
    await store.append_messages(
        sid, [NewMessage("assistant", None, tool_calls=[call("c1", "x"), call("c2", "y")], round_index=1)]
    )
    await store.append_messages(sid, [NewMessage("tool", "done", tool_call_id="c1")])
    assert await store.abort_pending(sid, reason="crash") == 1
    last = (await store.load_active_messages(sid))[-1]
    assert (last.role, last.content, last.tool_call_id, last.name, last.round_index) == (
        "tool",
        "<aborted: crash>",
        "c2",
        "y",
        1,
    )
    state = await store.get_state(sid)
    assert state is not None and state.pending is None
    await store.append_messages(sid, [NewMessage("user", "next")], begin_send=True)
    with pytest.raises(SessionNotFoundError):
        await store.abort_pending("nope", reason="x")


async def test_follow_ups_consumed_exactly_once(store: SessionStore) -> None:
    sid = await store.create_session()
    a = await store.enqueue_follow_up(sid, "first")
    b = await store.enqueue_follow_up(sid, "second")
    assert b == a + 1
    assert [(f.item_id, f.content) for f in await store.list_follow_ups(sid)] == [(a, "first"), (b, "second")]
    consumed = await store.append_messages(sid, [NewMessage("user", "first")], consume_follow_ups=[a])
    assert consumed.follow_ups_waiting == 1  # every append reports what is still queued
    assert [f.item_id for f in await store.list_follow_ups(sid)] == [b]
    with pytest.raises(HistoryInvariantError, match="already delivered"):
        await store.append_messages(sid, [NewMessage("user", "first again")], consume_follow_ups=[a, b])
    assert [f.item_id for f in await store.list_follow_ups(sid)] == [b]  # rolled back
    assert await store.count_messages(sid) == 1
    c = await store.enqueue_follow_up(sid, "third")
    assert c > b  # ids never reused
    plain = await store.append_messages(sid, [NewMessage("assistant", "a")])
    assert plain.follow_ups_waiting == 2
    done = await store.append_messages(sid, [NewMessage("user", "both")], consume_follow_ups=[b, c])
    assert done.follow_ups_waiting == 0
    with pytest.raises(SessionNotFoundError):
        await store.enqueue_follow_up("nope", "x")


async def test_stats_and_round_usage(store: SessionStore) -> None:
    sid = await store.create_session()
    await store.append_messages(
        sid,
        [NewMessage("user", "q")],
        begin_send=True,
        stats=SendAccounting(sends=1),
    )
    await store.append_messages(
        sid,
        [NewMessage("assistant", "a", round_index=0)],
        stats=SendAccounting(
            rounds=1,
            llm_calls=1,
            prompt_tokens=10,
            completion_tokens=5,
            cache_read_tokens=2,
            reasoning_tokens=1,
            total_tokens=15,
            tool_calls=0,
        ),
        round_usage=RoundUsage(0, prompt_tokens=10, completion_tokens=5, total_tokens=15, model="m"),
    )
    await store.append_messages(
        sid, [], round_usage=RoundUsage(0, prompt_tokens=11, completion_tokens=6, total_tokens=17, model="m2")
    )
    st = await store.get_session_stats(sid)
    assert st is not None
    assert (st.sends, st.rounds, st.llm_calls, st.prompt_tokens, st.completion_tokens, st.total_tokens) == (
        1,
        1,
        1,
        10,
        5,
        15,
    )
    assert (st.cache_read_tokens, st.reasoning_tokens) == (2, 1)
    assert st.first_send_at is not None and st.last_send_at is not None
    usage = await store.list_usage_rounds(sid)
    assert [(u.send_index, u.round_index, u.prompt_tokens, u.model) for u in usage] == [(1, 0, 11, "m2")]
    assert sid in [s.session_id for s in await store.list_session_stats()]


async def test_set_message_state_forward_only(store: SessionStore) -> None:
    sid = await store.create_session()
    await store.append_messages(sid, [NewMessage("user", str(i)) for i in range(4)])
    assert await store.set_message_state(sid, [1, 2], MessageState.COMPACTED_OUT) == 2
    assert await store.set_message_state(sid, [1, 2], "compacted_out") == 0
    assert await store.set_message_state(sid, [2, 3], MessageState.DROPPED) == 2
    with pytest.raises(HistoryInvariantError, match="forward"):
        await store.set_message_state(sid, [1, 3], MessageState.ACTIVE)
    with pytest.raises(HistoryInvariantError, match="no message"):
        await store.set_message_state(sid, [99], MessageState.DROPPED)
    states = [m.state.value for m in await store.load_all_messages(sid)]
    assert states == ["compacted_out", "dropped", "dropped", "active"]
    assert [m.seq for m in await store.load_active_messages(sid)] == [4]


async def test_set_message_state_refuses_to_split_a_tool_call(store: SessionStore) -> None:
    sid = await store.create_session()
    await store.append_messages(sid, [NewMessage("user", "q")])
    await tool_round(store, sid, "c1")
    await store.append_messages(
        sid, [NewMessage("tool", "r", tool_call_id="c1"), NewMessage("assistant", "a")]
    )
    with pytest.raises(HistoryInvariantError, match="without their results"):
        await store.set_message_state(sid, [3], MessageState.DROPPED)
    with pytest.raises(HistoryInvariantError, match="without its assistant call"):
        await store.set_message_state(sid, [2], MessageState.DROPPED)
    assert await store.set_message_state(sid, [1, 2, 3], MessageState.COMPACTED_OUT) == 3
    # the assistant row of a pending call may not leave the window (its result would be orphaned)
    await tool_round(store, sid, "c2")
    with pytest.raises(HistoryInvariantError, match="awaits tool results"):
        await store.set_message_state(sid, [5], MessageState.COMPACTED_OUT)
    assert await store.set_message_state(sid, [4], MessageState.COMPACTED_OUT) == 1
    await store.append_messages(sid, [NewMessage("tool", "r2", tool_call_id="c2")])


async def test_record_compaction_and_prune(store: SessionStore) -> None:
    sid = await store.create_session()
    await store.append_messages(sid, [NewMessage("user", str(i)) for i in range(6)])
    row = await store.record_compaction(
        sid,
        from_seq=1,
        to_seq=4,
        note=NewMessage("system", "summary", meta={"kind": "compaction"}),
        before_tokens=100,
        after_tokens=10,
    )
    assert (row.compact_seq, row.note_seq, row.from_seq, row.to_seq) == (1, 7, 1, 4)
    assert await store.list_compactions(sid) == [row]
    assert [m.seq for m in await store.load_active_messages(sid)] == [5, 6, 7]
    state = await store.get_state(sid)
    assert state is not None and state.last_compact_seq == 4
    assert await store.prune_compacted_messages(sid, keep_recent=1) == 3
    assert [m.seq for m in await store.load_all_messages(sid)] == [4, 5, 6, 7]
    assert await store.prune_compacted_messages(sid) == 1
    assert await store.count_messages(sid) == 3


async def test_text_with_nul_and_control_characters_roundtrips(store: SessionStore) -> None:
    sid = await store.create_session()
    text = "bin\x00ary \x01\x1f tab\t é 😀"
    await store.append_messages(sid, [NewMessage("user", text, meta={"raw": text})])
    row = (await store.load_active_messages(sid))[0]
    assert row.content == text and row.meta == {"raw": text}
