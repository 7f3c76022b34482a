"""Conformance: binary payloads of content parts live in the attachments table, once per session and
hash; messages keep references; export/import, pruning and deletion carry them (every backend)."""

from __future__ import annotations

import base64
import copy
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_loop.errors import ArchiveError
from power_loop.store import MessageState, NewMessage, SessionStore

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def image(data: bytes) -> dict[str, object]:
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    return {"type": "image_url", "image_url": {"url": url}}


def pdf(data: bytes) -> dict[str, object]:
    url = "data:application/pdf;base64," + base64.b64encode(data).decode()
    return {"type": "file", "file": {"filename": "a.pdf", "file_data": url}}


async def _raw(store: SessionStore, sql: str, *params: object) -> list[dict[str, object]]:
    return [dict(r) for r in await store.db.fetchall(sql, params)]


async def test_payloads_are_stored_once_and_read_back(store: SessionStore) -> None:
    sid = await store.create_session()
    content = [{"type": "text", "text": "look"}, image(PNG), pdf(b"%PDF-1.4 x")]
    for _ in range(3):
        await store.append_messages(sid, [NewMessage("user", content)], begin_send=True)
        await store.append_messages(sid, [NewMessage("assistant", "ok", round_index=0)])
    t = store.t
    rows = await _raw(store, f"SELECT hash, mime, size FROM {t['attachments']} WHERE session_id = ?", sid)
    assert sorted((r["mime"], r["size"]) for r in rows) == [("application/pdf", 10), ("image/png", len(PNG))]
    assert {r["hash"] for r in rows} == {
        hashlib.sha256(PNG).hexdigest(),
        hashlib.sha256(b"%PDF-1.4 x").hexdigest(),
    }
    stored = await _raw(store, f"SELECT content FROM {t['messages']} WHERE session_id = ? AND seq = 1", sid)
    text = str(stored[0]["content"])
    assert "attachment:" in text and "base64" not in text and len(text) < 400
    for row in await store.load_all_messages(sid):
        if row.role == "user":
            assert row.content == content
    assert (await store.get_message(sid, 1)).content == content  # type: ignore[union-attr]
    assert (await store.load_window(sid))[2][0].content == content  # type: ignore[index]


async def test_export_import_carries_attachments_and_validates_them(store: SessionStore) -> None:
    sid = await store.create_session()
    await store.append_messages(sid, [NewMessage("user", [image(PNG)])], begin_send=True)
    archive = await store.export_session(sid)
    (row,) = archive["tables"]["attachments"]
    assert base64.b64decode(row["data"]) == PNG
    new = await store.import_session(archive, new_session_id="att_copy")
    assert (await store.load_all_messages(new))[0].content == [image(PNG)]
    (copied,) = (await store.export_session(new))["tables"]["attachments"]
    assert {**copied, "session_id": sid} == row
    bad = copy.deepcopy(archive)
    bad["tables"]["attachments"][0]["data"] = base64.b64encode(b"other").decode()
    with pytest.raises(ArchiveError, match="hash"):
        await store.import_session(bad, new_session_id="att_bad")
    bad["tables"]["attachments"][0]["data"] = "not base64!"
    with pytest.raises(ArchiveError, match="base64"):
        await store.import_session(bad, new_session_id="att_bad")
    bad["tables"]["attachments"] = []
    with pytest.raises(ArchiveError, match="not in the archive"):
        await store.import_session(bad, new_session_id="att_bad")


async def test_pruned_with_their_messages_and_deleted_with_the_session(store: SessionStore) -> None:
    sid = await store.create_session()
    await store.append_messages(sid, [NewMessage("user", [image(PNG)])], begin_send=True)
    await store.append_messages(sid, [NewMessage("assistant", "a", round_index=0)])
    await store.append_messages(sid, [NewMessage("user", [image(PNG + b"2")])], begin_send=True)
    await store.set_message_state(sid, [1, 2], MessageState.COMPACTED_OUT)
    table = store.t["attachments"]
    assert len(await _raw(store, f"SELECT hash FROM {table} WHERE session_id = ?", sid)) == 2
    assert await store.prune_compacted_messages(sid) == 2
    left = await _raw(store, f"SELECT hash FROM {table} WHERE session_id = ?", sid)
    assert [r["hash"] for r in left] == [hashlib.sha256(PNG + b"2").hexdigest()]
    await store.close_session(sid)
    assert await _raw(store, f"SELECT hash FROM {table} WHERE session_id = ?", sid) == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.builds(lambda t: {"type": "text", "text": t}, st.text(max_size=20)),
            st.builds(image, st.binary(max_size=64)),
            st.builds(pdf, st.binary(max_size=64)),
            st.builds(
                lambda u: {"type": "image_url", "image_url": {"url": "https://x/" + u}}, st.text(max_size=8)
            ),
        ),
        max_size=6,
    )
)
def test_extract_then_resolve_is_the_identity(content: list[dict[str, object]]) -> None:
    from power_loop.store._attachments import _resolve, extract_attachments

    stored, blobs = extract_attachments(content)
    assert "base64" not in str(stored)
    assert _resolve(stored, {h: (m, b) for h, m, b in blobs}) == content
