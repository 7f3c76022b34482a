"""Conformance: export/import archives (every backend)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from power_loop.errors import ArchiveError, CorruptRowError, SessionNotFoundError
from power_loop.store import NewMessage, RoundUsage, SendAccounting, SessionStore


def renamed(archive: dict[str, Any], sid: str) -> dict[str, Any]:
    out = copy.deepcopy(archive)
    out["session_id"] = sid
    for rows in out["tables"].values():
        for row in rows:
            row["session_id"] = sid
    return out


async def populated(store: SessionStore) -> str:
    sid = await store.create_session(system_prompt="sys", model="m", config={"a": 1}, metadata={"m": "é"})
    await store.append_messages(
        sid,
        [NewMessage("user", [{"type": "text", "text": "hi"}])],
        begin_send=True,
        stats=SendAccounting(sends=1),
    )
    await store.append_messages(
        sid,
        [
            NewMessage(
                "assistant",
                None,
                tool_calls=[{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                round_index=0,
            )
        ],
        round_usage=RoundUsage(0, prompt_tokens=3, total_tokens=3),
    )
    await store.append_messages(sid, [NewMessage("tool", "r", tool_call_id="c1", meta={"ms": 2})])
    await store.append_messages(sid, [NewMessage("assistant", "done")])
    await store.record_compaction(sid, from_seq=1, to_seq=1, note=NewMessage("system", "sum"))
    await store.set_runtime_state(sid, "todo", [1, 2])
    await store.add_note(sid, "note", pinned=True)
    await store.create_timer(sid, due_at_ms=5, note="t", interval_s=9)
    await store.enqueue_follow_up(sid, "later")
    return sid


async def test_export_import_export_is_lossless(store: SessionStore) -> None:
    sid = await populated(store)
    archive = await store.export_session(sid)
    assert archive["format"] == "power_loop.session" and archive["version"] == 1
    assert json.loads(json.dumps(archive)) == archive  # JSON-able
    assert {k for k, v in archive["tables"].items() if v} >= {
        "sessions",
        "session_state",
        "messages",
        "session_runtime_state",
        "session_stats",
        "usage_rounds",
        "timers",
        "notes",
        "follow_ups",
        "compactions",
    }
    new = await store.import_session(json.loads(json.dumps(archive)), new_session_id="copy1")
    assert new == "copy1"
    again = await store.export_session(new)
    assert again == renamed(archive, "copy1")
    assert [m.content for m in await store.load_active_messages(new)] == [
        m.content for m in await store.load_active_messages(sid)
    ]


async def test_import_keeps_archive_id_and_refuses_existing(store: SessionStore) -> None:
    sid = await populated(store)
    archive = await store.export_session(sid)
    with pytest.raises(ArchiveError, match="already exists"):
        await store.import_session(archive)
    await store.close_session(sid)
    assert await store.import_session(archive) == sid
    assert await store.export_session(sid) == archive


async def test_import_resets_lineage(store: SessionStore) -> None:
    root = await store.create_session()
    child = await store.create_session(parent_session_id=root, spawn_tool_call_id="c")
    new = await store.import_session(await store.export_session(child), new_session_id="solo")
    row = await store.get_session(new)
    assert row is not None and (row.parent_session_id, row.spawn_depth, row.kind.value) == (None, 0, "root")


async def test_import_under_a_parent(store: SessionStore) -> None:
    root = await store.create_session()
    source = await store.create_session()
    archive = await store.export_session(source)
    new = await store.import_session(archive, new_session_id="adopted", parent_session_id=root)
    row = await store.get_session(new)
    assert row is not None and (row.parent_session_id, row.spawn_depth, row.kind.value) == (
        root,
        1,
        "subagent",
    )
    with pytest.raises(ArchiveError, match="parent session"):
        await store.import_session(archive, new_session_id="orphan", parent_session_id="missing")
    assert await store.get_session("orphan") is None


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda a: a.update(version=2), "newer"),
        (lambda a: a.update(format="zip"), "not a power_loop"),
        (lambda a: a.update(version="1"), "version"),
        (lambda a: a.pop("tables"), "tables"),
        (lambda a: a["tables"].update(bogus=[]), "unknown table"),
        (lambda a: a["tables"]["messages"][0].update(extra=1), "unknown column"),
        (lambda a: a["tables"]["messages"][0].update(seq="one"), "wrong type"),
        (lambda a: a["tables"]["messages"][0].update(meta_json="{bad"), "JSON"),
        (lambda a: a["tables"]["sessions"].clear(), "exactly one row"),
        (lambda a: a["tables"]["messages"][0].pop("role"), "required column"),
    ],
    ids=[
        "newer",
        "format",
        "version-type",
        "no-tables",
        "unknown-table",
        "unknown-col",
        "type",
        "json",
        "no-session",
        "missing-col",
    ],
)
async def test_import_refuses_malformed(store: SessionStore, mutate: Any, match: str) -> None:
    sid = await store.create_session()
    await store.append_messages(sid, [NewMessage("user", "x", meta={"a": 1})])
    archive = await store.export_session(sid)
    mutate(archive)
    with pytest.raises(ArchiveError, match=match) as err:
        await store.import_session(archive, new_session_id="target")
    assert err.value.code == "store.archive_invalid"
    assert await store.get_session("target") is None
    with pytest.raises(ArchiveError):
        await store.import_session(["not", "a", "dict"])  # type: ignore[arg-type]


async def test_export_unknown_session(store: SessionStore) -> None:
    with pytest.raises(SessionNotFoundError):
        await store.export_session("nope")


async def test_corrupt_json_row_names_table_and_key(store: SessionStore) -> None:
    sid = await store.create_session()
    await store.append_messages(sid, [NewMessage("user", "x", meta={"a": 1})])
    await store.db.execute(
        f"UPDATE {store.t['messages']} SET meta_json = ? WHERE session_id = ?", ("{not json", sid)
    )
    with pytest.raises(CorruptRowError, match=r"messages.*seq=1") as err:
        await store.load_active_messages(sid)
    assert err.value.code == "store.corrupt_row"
    # A writer outside the store bumps state_version (else the store's remembered row stays current).
    await store.db.execute(
        f"UPDATE {store.t['session_state']} SET pending_json = ?, state_version = state_version + 1 "
        "WHERE session_id = ?",
        ("[", sid),
    )
    with pytest.raises(CorruptRowError, match="session_state"):
        await store.append_messages(sid, [NewMessage("user", "y")])
