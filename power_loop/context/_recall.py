"""Recall tools: read the original detail of folded or projected sends back from the audit log.

``recall_send(send_index)`` shows every stored message of one send (whatever its state);
``recall_compacted(query, from_seq, to_seq, limit)`` searches the messages folds have compacted out.
Both read the ``messages`` table, which no fold or representation ever rewrites.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..base import get_tool_runtime_context
from ..store import MessageState

if TYPE_CHECKING:
    from ..store import MessageRow, SessionStore
    from ..tools import ToolRegistry

__all__ = [
    "COMPACT_NOTE_NAME",
    "RECALL_TOOL_NAMES",
    "format_recalled",
    "is_compact_note",
    "recall_compacted",
    "recall_send",
    "register_recall_tools",
]

COMPACT_NOTE_NAME = "compact_note"
RECALL_TOOL_NAMES = ("recall_send", "recall_compacted")
_MAX_LIMIT = 50


def is_compact_note(row: MessageRow) -> bool:
    """True for the summary rows folds write (they are bookkeeping, not conversation)."""
    return row.role == "system" and row.name == COMPACT_NOTE_NAME


_MEDIA = {"image_url": "image", "image": "image", "file": "document", "document": "document"}
_MAX_RECALLED_IMAGES = 4


def _content_text(content: object) -> str:
    """A stored content as text: parts' text, images and documents as short markers (never base64)."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        pieces = []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                pieces.append(str(part.get("text", "")))
            elif kind in _MEDIA:
                pieces.append(f"[{_MEDIA[kind]}]")
            else:
                pieces.append(json.dumps(part, ensure_ascii=False))
        return "\n".join(pieces)
    return json.dumps(content, ensure_ascii=False)


def recalled_images(rows: Sequence[MessageRow], limit: int = _MAX_RECALLED_IMAGES) -> list[dict[str, object]]:
    """The image parts of ``rows`` (the first ``limit``): a recall shows them to the model again."""
    found: list[dict[str, object]] = []
    for row in rows:
        for part in row.content if isinstance(row.content, list) else ():
            if isinstance(part, dict) and part.get("type") in ("image_url", "image") and len(found) < limit:
                found.append(part)
    return found


def format_recalled(rows: Sequence[MessageRow], *, max_chars: int) -> str:
    """``[seq N · role · name · round R]`` blocks with each content (cut at ``max_chars``)."""
    blocks: list[str] = []
    for row in rows:
        head = [f"seq {row.seq}", row.role]
        if row.name:
            head.append(row.name)
        if row.round_index is not None:
            head.append(f"round {row.round_index}")
        content = _content_text(row.content)
        text = content
        if len(text) > max_chars:
            text = text[:max_chars] + f"\n… ({len(content)} characters in total)"
        lines = [f"[{' · '.join(head)}]"]
        if text:
            lines.append(text)
        if row.tool_calls:
            calls = [
                f"{(tc.get('function') or {}).get('name')}({(tc.get('function') or {}).get('arguments') or ''})"
                for tc in row.tool_calls
            ]
            lines.append("[tool_calls: " + "; ".join(calls) + "]")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


async def recall_send(store: SessionStore, session_id: str, send_index: int, *, max_chars: int = 8000) -> str:
    """Every stored message of send ``send_index`` (active, folded or dropped), oldest first."""
    rows = [r for r in await store.load_send(session_id, send_index) if not is_compact_note(r)]
    if not rows:
        return f"send #{send_index} has no messages"
    return f"send #{send_index} — {len(rows)} message(s):\n\n" + format_recalled(rows, max_chars=max_chars)


async def recall_compacted(
    store: SessionStore,
    session_id: str,
    *,
    query: str | None = None,
    from_seq: int | None = None,
    to_seq: int | None = None,
    limit: int = 20,
    max_chars: int = 2000,
) -> str:
    """Compacted-out messages, optionally filtered by a case-insensitive substring and a seq range;
    the most recent ``limit`` (at most 50) of them, oldest first."""
    limit = max(1, min(_MAX_LIMIT, int(limit)))
    needle = query.lower() if query else None
    matches: list[MessageRow] = []
    for row in await store.load_all_messages(session_id):
        if row.state is not MessageState.COMPACTED_OUT or is_compact_note(row):
            continue
        if (from_seq is not None and row.seq < from_seq) or (to_seq is not None and row.seq > to_seq):
            continue
        if needle is not None:
            haystack = _content_text(row.content)
            calls = json.dumps(row.tool_calls, ensure_ascii=False) if row.tool_calls else ""
            if needle not in (haystack or "").lower() and needle not in calls.lower():
                continue
        matches.append(row)
    shown = matches[-limit:]
    header = f"{len(shown)} of {len(matches)} compacted message(s)"
    if not shown:
        return header
    return header + ":\n\n" + format_recalled(shown, max_chars=max_chars)


def register_recall_tools(registry: ToolRegistry, *, overwrite: bool = False) -> list[str]:
    """Register ``recall_send`` and ``recall_compacted`` (they read the calling session's audit log)."""
    from ..tools import ToolDefinition, ToolHandlerResult

    async def recall_send_tool(send_index: int) -> ToolHandlerResult:
        ctx = get_tool_runtime_context(required=True)
        if ctx.store is None:
            return ToolHandlerResult(ok=False, content="Error: recall needs a session store")
        text = await recall_send(ctx.store, ctx.session_id, send_index)
        # Images of the recalled send come back as images (older ones may be out of the window).
        images = recalled_images(await ctx.store.load_send(ctx.session_id, send_index))
        return ToolHandlerResult(ok=True, content=text, parts=images)

    async def recall_compacted_tool(
        query: str | None = None, from_seq: int | None = None, to_seq: int | None = None, limit: int = 20
    ) -> ToolHandlerResult:
        ctx = get_tool_runtime_context(required=True)
        if ctx.store is None:
            return ToolHandlerResult(ok=False, content="Error: recall needs a session store")
        text = await recall_compacted(
            ctx.store, ctx.session_id, query=query, from_seq=from_seq, to_seq=to_seq, limit=limit
        )
        return ToolHandlerResult(ok=True, content=text)

    registry.register(
        ToolDefinition(
            "recall_send",
            "Show every original message of one earlier send (by its #N index), including tool calls "
            "and results that were summarised or folded away.",
            {
                "type": "object",
                "properties": {"send_index": {"type": "integer", "minimum": 0}},
                "required": ["send_index"],
                "additionalProperties": False,
            },
        ),
        recall_send_tool,
        overwrite=overwrite,
    )
    registry.register(
        ToolDefinition(
            "recall_compacted",
            "Search the original messages that were folded into a summary: optional case-insensitive "
            "text query and message sequence range; returns the most recent matches.",
            {
                "type": "object",
                "properties": {
                    "query": {"type": "string"},
                    "from_seq": {"type": "integer"},
                    "to_seq": {"type": "integer"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": _MAX_LIMIT},
                },
                "additionalProperties": False,
            },
        ),
        recall_compacted_tool,
        overwrite=overwrite,
    )
    return list(RECALL_TOOL_NAMES)
