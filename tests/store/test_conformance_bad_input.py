"""Conformance: untrusted input reaches every backend the same way (issue 10) — session ids are
checked up front, text no driver can encode is stored losslessly, broken archives are refused whole,
and a violated key is ``store.integrity`` everywhere."""

from __future__ import annotations

import copy

import pytest

from power_loop.errors import ArchiveError, InvalidSessionIdError, StoreIntegrityError
from power_loop.store import NewMessage, SessionStore

CALL = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": "\\ud800"}'}}]


@pytest.mark.parametrize("bad", [7, b"s", "", "a\x00b", "s\ud800", "a\nb", "s" * 256])
async def test_invalid_session_ids_are_refused_before_any_sql(store: SessionStore, bad: object) -> None:
    with pytest.raises(InvalidSessionIdError):
        await store.get_session(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidSessionIdError):
        await store.create_session(session_id=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidSessionIdError):
        await store.append_messages(bad, [NewMessage("user", "x")])  # type: ignore[arg-type]


async def test_lone_surrogates_are_stored_losslessly(store: SessionStore) -> None:
    sid = await store.create_session(metadata={"k\udc80": "v\ud800"})
    await store.append_messages(sid, [NewMessage("user", "a\ud800b\x00")], begin_send=True)
    await store.append_messages(
        sid, [NewMessage("assistant", "\udfff", tool_calls=CALL, meta={"m": "\ud801"})]
    )
    await store.append_messages(sid, [NewMessage("tool", "r\udc00", tool_call_id="c1")])
    rows = await store.load_active_messages(sid)
    assert [r.content for r in rows] == ["a\ud800b\x00", "\udfff", "r\udc00"]
    assert rows[1].tool_calls == CALL and rows[1].meta == {"m": "\ud801"}
    session = await store.get_session(sid)
    assert session is not None and session.metadata == {"k\udc80": "v\ud800"}


async def test_integrity_errors_have_one_code(store: SessionStore) -> None:
    sid = await store.create_session()
    with pytest.raises(StoreIntegrityError) as info:
        await store.db.execute(
            f"INSERT INTO {store.t['sessions']} (session_id, created_at, updated_at) VALUES (?, ?, ?)",
            (sid, 1, 1),
        )
    assert info.value.code == "store.integrity"


async def test_a_broken_archive_is_refused_whole_with_every_problem(store: SessionStore) -> None:
    sid = await store.create_session()
    await store.append_messages(sid, [NewMessage("user", "q")], begin_send=True)
    await store.append_messages(sid, [NewMessage("assistant", None, tool_calls=CALL)])
    await store.append_messages(
        sid, [NewMessage("tool", "r", tool_call_id="c1"), NewMessage("assistant", "a")]
    )
    archive = await store.export_session(sid)
    broken = copy.deepcopy(archive)
    broken["tables"]["messages"] = [m for m in broken["tables"]["messages"] if m["role"] != "tool"]
    broken["tables"]["messages"][0]["role"] = "robot"
    broken["tables"]["session_state"][0]["next_seq"] = 1
    with pytest.raises(ArchiveError) as info:
        await store.import_session(broken, new_session_id="copy")
    problems = info.value.problems
    assert len(problems) == 1 and "robot" in problems[0]  # row problems first: the rest is not replayed
    broken["tables"]["messages"][0]["role"] = "user"
    with pytest.raises(ArchiveError) as info:
        await store.import_session(broken, new_session_id="copy")
    text = " ".join(info.value.problems)
    assert "next_seq 1" in text and "gap" in text and "no result" in text, info.value.problems
    assert await store.get_session("copy") is None
    assert await store.load_all_messages("copy") == []
    assert await store.import_session(archive, new_session_id="copy") == "copy"


async def test_plain_text_columns_take_any_text_the_same_way_everywhere(store: SessionStore) -> None:
    bad = "a\x00b\ud800c"
    sid = await store.create_session(system_prompt=bad, model=bad)
    note = await store.add_note(sid, bad)
    await store.enqueue_follow_up(sid, bad)
    timer = await store.create_timer(sid, due_at_ms=5, note=bad)
    fixed = "a\ufffdb\ufffdc"
    session = await store.get_session(sid)
    assert session is not None and (session.system_prompt, session.model) == (fixed, fixed)
    assert note.content == fixed and [n.content for n in await store.list_notes(sid)] == [fixed]
    assert [f.content for f in await store.list_follow_ups(sid)] == [fixed]
    assert timer.note == fixed and [t.note for t in await store.list_timers(sid)] == [fixed]
    await store.update_session_prompt(sid, "\udc00")
    assert (await store.get_session(sid)).system_prompt == "\ufffd"  # type: ignore[union-attr]


async def test_an_interrupted_session_exports_and_imports(store: SessionStore) -> None:
    two = [dict(CALL[0], id="c1"), dict(CALL[0], id="c2")]
    sid = await store.create_session()
    await store.append_messages(sid, [NewMessage("user", "q")], begin_send=True)
    await store.append_messages(sid, [NewMessage("assistant", None, tool_calls=two)])
    await store.append_messages(
        sid,
        [NewMessage("tool", "r", tool_call_id="c1")],
        pending_interactions=[{"tool_call_id": "c2", "interaction_id": "i1", "kind": "text"}],
    )
    new = await store.import_session(await store.export_session(sid), new_session_id="copy")
    state = await store.get_state(new)
    assert state is not None and state.pending is not None
    assert [c["id"] for c in state.pending["tool_calls"]] == ["c2"]
    assert state.pending["pending_interactions"][0]["interaction_id"] == "i1"
