"""The published SessionStore call shapes: open(path), append_message, get/set_pending, and
record_compaction(note_content=...) — on every backend, with the store's guarantees kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from power_loop.errors import ConfigError, HistoryInvariantError, InvalidDSN
from power_loop.store import SessionStore, open_store


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
