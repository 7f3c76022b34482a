"""Bounded, read-only queries behind the inspector's JSON API.

Every statement carries a ``LIMIT`` (keyset pagination on indexed keys where the schema has one), so a
page costs the same on a store with a million messages as on an empty one. Rows are turned into plain
JSON-ready dicts here; long text is clipped (the client asks for one full row on "show all").

The queries go through the public :class:`~power_loop.store.Database` port rather than
``SessionStore`` methods because those load whole lists (all messages, all notes) — right for a loop,
wrong for a page over a store of any size.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from ...errors import CorruptRowError, SessionNotFoundError
from ...store import Database
from ._workflows import WorkflowQueries

__all__ = ["CLIP_CHARS", "MAX_PAGE", "InspectorQueries", "clip"]

MAX_PAGE = 500  # no request reads more rows of one table than this
CLIP_CHARS = 4000  # text longer than this is clipped in listings ("show all" fetches the row)
_SIDE_LIMIT = 200  # notes, follow-ups, timers, folds, children shown on a session page
_MAX_DESCENDANTS = 500

_SESSION_COLS = (
    "s.session_id, s.created_at, s.updated_at, s.model, s.status, s.kind, s.parent_session_id, "
    "s.spawn_depth, s.lifecycle, st.sends, st.total_tokens, st.last_send_at, st.updated_at AS stats_at, "
    "CASE WHEN ss.pending_json IS NULL THEN 0 ELSE 1 END AS has_pending, l.expires_at_ms"
)
_MESSAGE_COLS = (
    "seq, role, name, content, content_json, tool_calls_json, tool_call_id, round_index, state, "
    "meta_json, send_index, created_at"
)


def _page(limit: int) -> int:
    return max(1, min(int(limit), MAX_PAGE))


def _decode(text: Any, where: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise CorruptRowError(f"corrupt JSON at {where}: {exc}") from exc


def clip(value: Any, limit: int = CLIP_CHARS) -> tuple[Any, bool]:
    """``value`` with every string longer than ``limit`` cut; the flag says whether anything was cut."""
    if isinstance(value, str):
        return (value[:limit], True) if len(value) > limit else (value, False)
    if isinstance(value, list):
        out, cut = [], False
        for item in value:
            v, c = clip(item, limit)
            out.append(v)
            cut = cut or c
        return out, cut
    if isinstance(value, dict):
        res: dict[str, Any] = {}
        cut = False
        for key, item in value.items():
            res[key], c = clip(item, limit)
            cut = cut or c
        return res, cut
    return value, False


class InspectorQueries:
    """The read side of the inspector over any :class:`~power_loop.store.Database` and table prefix."""

    def __init__(self, db: Database, prefix: str) -> None:
        self._db = db
        self._p = prefix
        self.workflows = WorkflowQueries(prefix, self._rows)

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._db.fetchall(sql, params)]

    def _session_from(self) -> str:
        p = self._p
        return (
            f"FROM {p}sessions s LEFT JOIN {p}session_stats st ON st.session_id = s.session_id "
            f"LEFT JOIN {p}session_state ss ON ss.session_id = s.session_id "
            f"LEFT JOIN {p}session_leases l ON l.session_id = s.session_id"
        )

    @staticmethod
    def _session_json(row: dict[str, Any], now_ms: int) -> dict[str, Any]:
        expires = row.pop("expires_at_ms", None)
        pending = bool(row.pop("has_pending", 0))
        stats_at = row.pop("stats_at", None)
        running = expires is not None and int(expires) > now_ms
        if row.get("status") == "archived":
            status = "archived"
        else:
            status = "running" if running else ("pending" if pending else "idle")
        row["state"] = status
        row["last_activity"] = max(int(row["updated_at"]), int(stats_at or 0))
        row["sends"] = int(row.get("sends") or 0)
        row["total_tokens"] = int(row.get("total_tokens") or 0)
        return row

    async def list_sessions(
        self, *, q: str = "", cursor: str | None = None, limit: int = 50
    ) -> dict[str, Any]:
        """One page of sessions, newest first: roots with their descendants nested, or search hits.

        ``cursor`` is the opaque ``next`` of the previous page (keyset: ``created_at`` and id).
        """
        n = _page(limit)
        now = int(time.time() * 1000)
        where: list[str] = []
        params: list[Any] = []
        if q:
            needle = f"%{q.lower()}%"
            where.append(
                "(LOWER(s.session_id) LIKE ? OR LOWER(COALESCE(s.model, '')) LIKE ? "
                "OR LOWER(COALESCE(s.metadata_json, '')) LIKE ?)"
            )
            params += [needle, needle, needle]
        else:
            where.append("s.parent_session_id IS NULL")
        if cursor:
            created, _, sid = cursor.partition(":")
            where.append("(s.created_at < ? OR (s.created_at = ? AND s.session_id < ?))")
            params += [int(created), int(created), sid]
        sql = (
            f"SELECT {_SESSION_COLS} {self._session_from()} WHERE {' AND '.join(where)} "
            "ORDER BY s.created_at DESC, s.session_id DESC LIMIT ?"
        )
        rows = await self._rows(sql, [*params, n + 1])
        more = len(rows) > n
        rows = [self._session_json(r, now) for r in rows[:n]]
        if not q:
            await self._nest(rows, now)
        last = rows[-1] if rows else None
        nxt = f"{last['created_at']}:{last['session_id']}" if more and last else None
        return {"sessions": rows, "next": nxt, "limit": n}

    async def _nest(self, roots: list[dict[str, Any]], now: int) -> None:
        """Attach ``children`` (sub-agents, workflow leaves) level by level, at most 500 in all."""
        level = roots
        budget = _MAX_DESCENDANTS
        while level and budget > 0:
            by_id = {r["session_id"]: r for r in level}
            for r in level:
                r["children"] = []
            marks = ", ".join("?" * len(by_id))
            sql = (
                f"SELECT {_SESSION_COLS} {self._session_from()} WHERE s.parent_session_id IN ({marks}) "
                "ORDER BY s.created_at, s.session_id LIMIT ?"
            )
            found = [self._session_json(r, now) for r in await self._rows(sql, [*by_id, budget])]
            budget -= len(found)
            for child in found:
                by_id[child["parent_session_id"]]["children"].append(child)
            level = found

    async def session(self, session_id: str, *, counts: bool = True) -> dict[str, Any]:
        """Everything on a session page except its messages (each list bounded).

        ``counts=False`` skips counting the messages (an index scan, ~0.1 s per million): the page's
        live poll asks for counts only when new messages arrived.
        """
        p, sid, now = self._p, session_id, int(time.time() * 1000)
        head = await self._rows(
            f"SELECT {_SESSION_COLS}, s.system_prompt, s.config_json, s.metadata_json, s.spawn_tool_call_id "
            f"{self._session_from()} WHERE s.session_id = ? LIMIT 1",
            [sid],
        )
        if not head:
            raise SessionNotFoundError(f"session not found: {session_id}")
        info = self._session_json(head[0], now)
        info["config"] = _decode(info.pop("config_json"), f"{p}sessions.config_json")
        info["metadata"] = _decode(info.pop("metadata_json"), f"{p}sessions.metadata_json")
        meta = info["metadata"] if isinstance(info["metadata"], dict) else None
        state = await self._rows(
            f"SELECT next_seq, send_index, round_index, last_compact_seq, pending_json, updated_at "
            f"FROM {p}session_state WHERE session_id = ? LIMIT 1",
            [sid],
        )
        if state:
            state[0]["pending"] = clip(_decode(state[0].pop("pending_json"), f"{p}session_state"))[0]
        stats = await self._rows(f"SELECT * FROM {p}session_stats WHERE session_id = ? LIMIT 1", [sid])
        numbers: dict[str, int | None] = {"n": None, "active": None}
        if counts:
            (row,) = await self._rows(
                f"SELECT COUNT(*) AS n, SUM(CASE WHEN state = 'active' THEN 1 ELSE 0 END) AS active "
                f"FROM {p}messages WHERE session_id = ?",
                [sid],
            )
            numbers = {k: int(row[k] or 0) for k in numbers}
        return {
            "session": info,
            "state": state[0] if state else None,
            "stats": stats[0] if stats else None,
            "messages": numbers,
            "notes": await self._side(f"SELECT * FROM {p}notes WHERE session_id = ? ORDER BY note_id", sid),
            "follow_ups": await self._side(
                f"SELECT * FROM {p}follow_ups WHERE session_id = ? ORDER BY item_id", sid
            ),
            "timers": await self._side(
                f"SELECT * FROM {p}timers WHERE session_id = ? ORDER BY timer_id DESC", sid
            ),
            "folds": await self._folds(sid),
            "hook_events": await self._hook_events(sid),
            "usage": await self._usage(sid),
            "workflow_runs": await self.workflows.runs_for(sid, meta, info["parent_session_id"]),
            "workflow_step": await self.workflows.step_of(meta, info["parent_session_id"]),
            "children": [
                self._session_json(r, now)
                for r in await self._rows(
                    f"SELECT {_SESSION_COLS} {self._session_from()} WHERE s.parent_session_id = ? "
                    "ORDER BY s.created_at LIMIT ?",
                    [sid, _SIDE_LIMIT],
                )
            ],
        }

    async def _side(self, sql: str, sid: str) -> list[dict[str, Any]]:
        rows = await self._rows(sql + " LIMIT ?", [sid, _SIDE_LIMIT])
        return [clip(r)[0] for r in rows]

    async def _hook_events(self, sid: str) -> list[dict[str, Any]]:
        """The hook audit trail (``AgentLoopConfig.record_hook_events``), newest first (values redacted)."""
        return await self._side(
            f"SELECT * FROM {self._p}hook_events WHERE session_id = ? ORDER BY seq DESC", sid
        )

    async def _folds(self, sid: str) -> list[dict[str, Any]]:
        folds = await self._side(
            f"SELECT * FROM {self._p}compactions WHERE session_id = ? ORDER BY compact_seq DESC", sid
        )
        if folds:
            notes = {m["seq"]: m for m in await self._message_rows(sid, [f["note_seq"] for f in folds])}
            for fold in folds:
                note = notes.get(fold["note_seq"])
                fold["summary"] = note["content"] if note else None
        return folds

    async def _usage(self, sid: str) -> list[dict[str, Any]]:
        """Token usage per send (summed over its rounds), oldest first, of the newest 2000 rounds."""
        rows = await self._rows(
            f"SELECT send_index, round_index, prompt_tokens, completion_tokens, total_tokens, model, "
            "duration_ms, attempts "
            f"FROM {self._p}usage_rounds WHERE session_id = ? ORDER BY send_index DESC, round_index DESC "
            "LIMIT ?",
            [sid, 2000],
        )
        sends: dict[int, dict[str, Any]] = {}
        for r in reversed(rows):
            send = int(r["send_index"])
            s = sends.setdefault(
                send,
                {
                    "send_index": send,
                    "rounds": 0,
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "per_round": [],
                },
            )
            prompt, completion = int(r["prompt_tokens"] or 0), int(r["completion_tokens"] or 0)
            s["rounds"] += 1
            s["prompt_tokens"] += prompt
            s["completion_tokens"] += completion
            s["per_round"].append(
                {
                    "round_index": int(r["round_index"]),
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "model": r["model"],
                    "duration_ms": r["duration_ms"],
                    "attempts": r["attempts"],
                }
            )
        return [sends[k] for k in sorted(sends)]

    async def _message_rows(self, sid: str, seqs: Sequence[int]) -> list[dict[str, Any]]:
        if not seqs:
            return []
        marks = ", ".join("?" * len(seqs))
        rows = await self._rows(
            f"SELECT {_MESSAGE_COLS} FROM {self._p}messages WHERE session_id = ? AND seq IN ({marks}) LIMIT ?",
            [sid, *seqs, len(seqs)],
        )
        return [self._message_json(r, sid, full=False) for r in rows]

    def _message_json(self, row: dict[str, Any], sid: str, *, full: bool) -> dict[str, Any]:
        where = f"{self._p}messages[{sid}#{row['seq']}]"
        content = row["content"]
        if row.pop("content_json"):
            content = _decode(content, where)
        row["content"] = content
        row["tool_calls"] = _decode(row.pop("tool_calls_json"), where)
        row["meta"] = _decode(row.pop("meta_json"), where) or {}
        if not full:
            clipped, cut = clip({k: row[k] for k in ("content", "tool_calls", "meta")})
            row.update(clipped)
            row["truncated"] = cut
        return row

    async def messages(
        self, session_id: str, *, before: int | None = None, after: int | None = None, limit: int = 200
    ) -> dict[str, Any]:
        """A page of messages by ``seq``: the newest (``before``: older than it) or those after ``after``."""
        n = _page(limit)
        base = f"SELECT {_MESSAGE_COLS} FROM {self._p}messages WHERE session_id = ?"
        if after is not None:
            rows = await self._rows(base + " AND seq > ? ORDER BY seq LIMIT ?", [session_id, after, n + 1])
            more = len(rows) > n
            rows = rows[:n]
        else:
            bound = before if before is not None else 2**62
            rows = await self._rows(
                base + " AND seq < ? ORDER BY seq DESC LIMIT ?", [session_id, bound, n + 1]
            )
            more = len(rows) > n
            rows = rows[:n][::-1]
        return {
            "messages": [self._message_json(r, session_id, full=False) for r in rows],
            "more": more,
            "limit": n,
        }

    async def message(self, session_id: str, seq: int) -> dict[str, Any]:
        """One message in full (the raw JSON view and "show all")."""
        rows = await self._rows(
            f"SELECT {_MESSAGE_COLS} FROM {self._p}messages WHERE session_id = ? AND seq = ? LIMIT 1",
            [session_id, seq],
        )
        if not rows:
            raise SessionNotFoundError(f"no message #{seq} in session {session_id}")
        return self._message_json(rows[0], session_id, full=True)
