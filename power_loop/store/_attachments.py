"""Binary payloads of content parts, stored once per session in ``{prefix}attachments``.

A message's base64 ``data:`` URLs (images in ``image_url`` parts, PDFs in ``file`` parts) are cut
out when it is written: the payload goes to the attachments table keyed by ``(session_id, sha256)``
(the same image sent fifty times is stored once) and the part keeps ``attachment:<sha256>;<mime>``. Reads
put the data URL back, so callers never see the reference. Attachments go with their session
(``close_session``), with ``prune_compacted_messages`` once no message refers to them, and travel
in exports.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ._core import StoreContext
from ._port import Dialect, Transaction
from ._rows import MessageRow

__all__ = [
    "REF_PREFIX",
    "AttachmentRepository",
    "Blob",
    "binary_binding",
    "content_refs",
    "extract_attachments",
]

REF_PREFIX = "attachment:"
Blob = tuple[str, str, bytes]
"""``(sha256 hex, mime type, payload)``."""


def binary_binding(dialect: Dialect) -> tuple[str, Callable[[bytes], Any]]:
    """``(placeholder, value converter)`` for a binary column: a dialect may declare
    ``binary_placeholder`` / ``binary_value`` (MySQL binds hex through ``UNHEX(?)``); else ``?`` and
    the bytes themselves."""
    placeholder = getattr(dialect, "binary_placeholder", "?")
    convert = getattr(dialect, "binary_value", None)
    return str(placeholder), convert if callable(convert) else bytes


def _slot(part: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(container key, field)`` holding the URL of an image or file part, else ``None``."""
    kind = part.get("type")
    if kind == "image_url" and isinstance(part.get("image_url"), Mapping):
        return "image_url", "url"
    if kind == "file" and isinstance(part.get("file"), Mapping):
        return "file", "file_data"
    return None


def _decode(url: str) -> tuple[str, bytes] | None:
    if not url.startswith("data:") or ";base64," not in url:
        return None
    header, encoded = url[5:].split(";base64,", 1)
    try:
        return header or "application/octet-stream", base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None  # not valid base64: stored verbatim, as the caller gave it


def extract_attachments(content: Any) -> tuple[Any, list[Blob]]:
    """``(content with data URLs replaced by references, the payloads)``; other content unchanged."""
    if not isinstance(content, list):
        return content, []
    blobs: list[Blob] = []
    out: list[Any] = []
    for part in content:
        slot = _slot(part) if isinstance(part, Mapping) else None
        url = part[slot[0]].get(slot[1]) if slot is not None else None
        decoded = _decode(url) if isinstance(url, str) else None
        if slot is None or decoded is None:
            out.append(part)
            continue
        digest = hashlib.sha256(decoded[1]).hexdigest()
        blobs.append((digest, decoded[0], decoded[1]))
        # The reference keeps the part's own type: the same bytes may come labelled differently.
        ref = f"{REF_PREFIX}{digest};{decoded[0]}"
        out.append({**part, slot[0]: {**part[slot[0]], slot[1]: ref}})
    return (out, blobs) if blobs else (content, [])


def content_refs(content: Any) -> set[str]:
    """The attachment hashes a stored content refers to."""
    refs: set[str] = set()
    if isinstance(content, list):
        for part in content:
            slot = _slot(part) if isinstance(part, Mapping) else None
            url = part[slot[0]].get(slot[1]) if slot is not None else None
            if isinstance(url, str) and url.startswith(REF_PREFIX):
                refs.add(url[len(REF_PREFIX) :].split(";", 1)[0])
    return refs


def _resolve(content: Any, blobs: Mapping[str, tuple[str, bytes]]) -> Any:
    out: list[Any] = []
    for part in content:
        slot = _slot(part) if isinstance(part, Mapping) else None
        url = part[slot[0]].get(slot[1]) if slot is not None else None
        ref = url[len(REF_PREFIX) :] if isinstance(url, str) and url.startswith(REF_PREFIX) else ""
        digest, _, mime = ref.partition(";")
        found = blobs.get(digest)
        if slot is None or found is None:
            out.append(part)  # a reference whose payload is gone stays a reference
            continue
        data_url = f"data:{mime or found[0]};base64,{base64.b64encode(found[1]).decode('ascii')}"
        out.append({**part, slot[0]: {**part[slot[0]], slot[1]: data_url}})
    return out


class AttachmentRepository:
    """Writes, reads and prunes ``attachments`` rows."""

    __slots__ = ("_binary", "_ctx", "_sql_put", "_table")

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        self._table = ctx.t["attachments"]
        # ``data`` last: its placeholder is the VALUES list's last one.
        cols = ("session_id", "hash", "mime", "size", "created_at", "data")
        placeholder, self._binary = binary_binding(ctx.db.dialect)
        sql = ctx.db.dialect.insert_ignore(self._table, cols)
        cut = sql.rindex("?")
        self._sql_put = sql[:cut] + placeholder + sql[cut + 1 :]

    async def put(self, tx: Transaction, session_id: str, blobs: Iterable[Blob], now: int) -> None:
        """Store payloads not stored yet for the session (a repeated hash is a no-op)."""
        unique = {digest: (mime, data) for digest, mime, data in blobs}
        params = [(session_id, d, m, len(b), now, self._binary(b)) for d, (m, b) in unique.items()]
        if params:
            await tx.executemany(self._sql_put, params)

    async def fetch(self, session_id: str, hashes: Iterable[str]) -> dict[str, tuple[str, bytes]]:
        wanted = sorted(set(hashes))
        found: dict[str, tuple[str, bytes]] = {}
        for start in range(0, len(wanted), 100):
            chunk = wanted[start : start + 100]
            rows = await self._ctx.db.fetchall(
                f"SELECT hash, mime, data FROM {self._table} WHERE session_id = ? "
                f"AND hash IN ({', '.join('?' * len(chunk))})",
                (session_id, *chunk),
            )
            for r in rows:
                found[str(r["hash"])] = (str(r["mime"]), bytes(r["data"]))
        return found

    async def resolve(self, rows: Sequence[MessageRow]) -> list[MessageRow]:
        """``rows`` with every attachment reference turned back into its data URL."""
        wanted: dict[str, set[str]] = {}
        for row in rows:
            refs = content_refs(row.content)
            if refs:
                wanted.setdefault(row.session_id, set()).update(refs)
        if not wanted:
            return list(rows)
        blobs = {sid: await self.fetch(sid, refs) for sid, refs in wanted.items()}
        return [
            replace(row, content=_resolve(row.content, blobs[row.session_id]))
            if row.session_id in blobs and content_refs(row.content)
            else row
            for row in rows
        ]

    async def list_for_export(self, session_id: str) -> list[dict[str, Any]]:
        rows = await self._ctx.db.fetchall(
            f"SELECT hash, mime, data, created_at FROM {self._table} WHERE session_id = ? ORDER BY hash",
            (session_id,),
        )
        return [
            {
                "hash": str(r["hash"]),
                "mime": str(r["mime"]),
                "data": base64.b64encode(bytes(r["data"])).decode("ascii"),
                "created_at": int(r["created_at"]),
            }
            for r in rows
        ]

    async def prune_unreferenced(self, tx: Transaction, session_id: str) -> int:
        """Delete the session's payloads no remaining message refers to."""
        msgs = self._ctx.t["messages"]
        stored = await tx.fetchall(f"SELECT hash FROM {self._table} WHERE session_id = ?", (session_id,))
        if not stored:
            return 0
        rows = await tx.fetchall(
            f"SELECT content FROM {msgs} WHERE session_id = ? AND content_json = 1 AND content LIKE ?",
            (session_id, f"%{REF_PREFIX}%"),
        )
        used: set[str] = set()
        for r in rows:
            for part_ref in _refs_in_text(str(r["content"])):
                used.add(part_ref)
        doomed = [(session_id, str(r["hash"])) for r in stored if str(r["hash"]) not in used]
        if doomed:
            await tx.executemany(f"DELETE FROM {self._table} WHERE session_id = ? AND hash = ?", doomed)
        return len(doomed)


def _refs_in_text(text: str) -> set[str]:
    """Hashes referenced in a stored JSON content (a cheap scan: 64 hex digits after the prefix)."""
    refs: set[str] = set()
    start = text.find(REF_PREFIX)
    while start >= 0:
        candidate = text[start + len(REF_PREFIX) : start + len(REF_PREFIX) + 64]
        if len(candidate) == 64 and all(c in "0123456789abcdef" for c in candidate):
            refs.add(candidate)
        start = text.find(REF_PREFIX, start + 1)
    return refs
