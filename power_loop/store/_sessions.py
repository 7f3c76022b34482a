"""Sessions: creation (with sub-agent lineage), lookup, listing, metadata, prompt and deletion."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, SessionNotFoundError
from ._core import StoreContext, check_session_id, dumps, new_state_version, now_ms, storable_text
from ._rows import SessionKind, SessionRow, SessionStatus, SubagentLifecycle, decode_enum, decode_json
from ._tables import SCHEMA_TABLES

if TYPE_CHECKING:
    from ._port import Database, Row, Transaction

__all__ = ["MAX_SPAWN_DEPTH", "SessionRepository", "session_row"]

MAX_SPAWN_DEPTH = 3
"""Default limit of sub-agent nesting: a spawn deeper than this is refused."""

SESSION_COLS = (
    "session_id, created_at, updated_at, system_prompt, model, config_json, status, kind, "
    "parent_session_id, spawn_tool_call_id, spawn_depth, lifecycle, metadata_json"
)
# Every table holding rows of a session (deleted with it), the sessions table last.
_SESSION_TABLES = (
    *(t.name for t in SCHEMA_TABLES if t.name not in ("sessions", "shared_state")),
    "sessions",
)


def session_row(r: Mapping[str, Any]) -> SessionRow:
    """Decode a ``sessions`` row read with the repository's columns."""
    key = f"session_id={r['session_id']}"
    return SessionRow(
        session_id=r["session_id"],
        created_at=int(r["created_at"]),
        updated_at=int(r["updated_at"]),
        system_prompt=r["system_prompt"],
        model=r["model"],
        config=decode_json(r["config_json"], "sessions", key) or {},
        status=decode_enum(SessionStatus, r["status"], "sessions", key),
        kind=decode_enum(SessionKind, r["kind"], "sessions", key),
        parent_session_id=r["parent_session_id"],
        spawn_tool_call_id=r["spawn_tool_call_id"],
        spawn_depth=int(r["spawn_depth"]),
        lifecycle=decode_enum(SubagentLifecycle, r["lifecycle"], "sessions", key),
        metadata=decode_json(r["metadata_json"], "sessions", key) or {},
    )


class SessionRepository:
    """The ``sessions`` table (and the rows a new session starts with)."""

    __slots__ = ("_ctx", "_max_spawn_depth", "_sql_exists", "_sql_get")

    def __init__(self, ctx: StoreContext, *, max_spawn_depth: int) -> None:
        self._ctx = ctx
        self.max_spawn_depth = max_spawn_depth
        sessions = ctx.t["sessions"]
        self._sql_get = f"SELECT {SESSION_COLS} FROM {sessions} WHERE session_id = ?"
        self._sql_exists = f"SELECT 1 AS present FROM {sessions} WHERE session_id = ?"

    @property
    def max_spawn_depth(self) -> int:
        return self._max_spawn_depth

    @max_spawn_depth.setter
    def max_spawn_depth(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"max_spawn_depth must be an int >= 1, got {value!r}")
        self._max_spawn_depth = value

    async def fetch(self, q: Transaction | Database, session_id: str) -> Row | None:
        """The raw session row (decode with :func:`session_row`), inside a transaction or not."""
        return await q.fetchone(self._sql_get, (session_id,))

    async def exists(self, q: Transaction | Database, session_id: str) -> bool:
        return await q.fetchone(self._sql_exists, (session_id,)) is not None

    async def create(
        self,
        *,
        system_prompt: str | None,
        model: str | None,
        config: Mapping[str, Any] | None,
        parent_session_id: str | None,
        spawn_tool_call_id: str | None,
        kind: SessionKind | str,
        lifecycle: SubagentLifecycle | str,
        metadata: Mapping[str, Any] | None,
        session_id: str | None,
    ) -> str:
        sid = "sess_" + secrets.token_hex(12) if session_id is None else check_session_id(session_id)
        if parent_session_id is not None:
            check_session_id(parent_session_id)
        kind_value = SessionKind(kind).value
        lifecycle_value = SubagentLifecycle(lifecycle).value
        config_json = dumps(dict(config)) if config else None
        metadata_json = dumps(dict(metadata)) if metadata else None
        t = self._ctx.t

        async def unit(tx: Transaction) -> str:
            depth = 0
            kind_now = kind_value
            if parent_session_id is not None:
                parent = await tx.fetchone(
                    f"SELECT spawn_depth FROM {t['sessions']} WHERE session_id = ?", (parent_session_id,)
                )
                if parent is None:
                    raise SessionNotFoundError(parent_session_id)
                depth = int(parent["spawn_depth"]) + 1
                kind_now = SessionKind.SUBAGENT.value
                if depth > self._max_spawn_depth:
                    raise ConfigError(f"spawn depth {depth} exceeds max_spawn_depth={self._max_spawn_depth}")
            if session_id is not None and await self.exists(tx, sid):
                raise ConfigError(f"session {sid} already exists")
            now = now_ms()
            texts = (storable_text(system_prompt), storable_text(model))
            row = (sid, now, now, *texts, config_json, SessionStatus.ACTIVE.value, kind_now)
            lineage = (parent_session_id, spawn_tool_call_id, depth, lifecycle_value, metadata_json)
            await tx.execute(
                f"INSERT INTO {t['sessions']} ({SESSION_COLS}) VALUES ({', '.join('?' * 13)})",
                (*row, *lineage),
            )
            await tx.execute(
                f"INSERT INTO {t['session_state']} (session_id, updated_at, state_version) VALUES (?, ?, ?)",
                (sid, now, new_state_version()),
            )
            await tx.execute(
                f"INSERT INTO {t['session_stats']} (session_id, updated_at) VALUES (?, ?)", (sid, now)
            )
            return sid

        return await self._ctx.db.transact(unit)

    async def get(self, session_id: str) -> SessionRow | None:
        row = await self.fetch(self._ctx.db, session_id)
        return None if row is None else session_row(row)

    async def list_sessions(self, *, limit: int, offset: int) -> list[SessionRow]:
        rows = await self._ctx.db.fetchall(
            f"SELECT {SESSION_COLS} FROM {self._ctx.t['sessions']} ORDER BY created_at, session_id "
            "LIMIT ? OFFSET ?",
            (int(limit), int(offset)),
        )
        return [session_row(r) for r in rows]

    async def list_children(self, parent_session_id: str) -> list[SessionRow]:
        rows = await self._ctx.db.fetchall(
            f"SELECT {SESSION_COLS} FROM {self._ctx.t['sessions']} WHERE parent_session_id = ? "
            "ORDER BY created_at, session_id",
            (parent_session_id,),
        )
        return [session_row(r) for r in rows]

    async def close(self, session_id: str, *, cascade: bool) -> list[str]:
        """Delete the session (and, with ``cascade``, its non-detached descendants); the ids deleted."""
        t = self._ctx.t

        async def unit(tx: Transaction) -> list[str]:
            if not await self.exists(tx, session_id):
                return []
            doomed = [session_id]
            orphans: list[str] = []
            frontier = [session_id]
            while frontier:
                parent = frontier.pop()
                for child in await tx.fetchall(
                    f"SELECT session_id, lifecycle FROM {t['sessions']} WHERE parent_session_id = ?",
                    (parent,),
                ):
                    if cascade and child["lifecycle"] != SubagentLifecycle.DETACHED.value:
                        doomed.append(child["session_id"])
                        frontier.append(child["session_id"])
                    else:
                        orphans.append(child["session_id"])
            if orphans:
                now = now_ms()
                await tx.executemany(
                    f"UPDATE {t['sessions']} SET parent_session_id = NULL, updated_at = ? WHERE session_id = ?",
                    [(now, o) for o in orphans],
                )
            keys = [(s,) for s in doomed]
            for name in _SESSION_TABLES:
                await tx.executemany(f"DELETE FROM {t[name]} WHERE session_id = ?", keys)
            for s in doomed:
                self._ctx.known.pop(s, None)
            return doomed

        return await self._ctx.db.transact(unit)

    async def archive(self, session_id: str) -> None:
        count = await self._ctx.db.execute(
            f"UPDATE {self._ctx.t['sessions']} SET status = ?, updated_at = ? WHERE session_id = ?",
            (SessionStatus.ARCHIVED.value, now_ms(), session_id),
        )
        if not count:
            raise SessionNotFoundError(session_id)

    async def update_prompt(self, session_id: str, system_prompt: str | None) -> None:
        ctx = self._ctx

        async def unit(tx: Transaction) -> None:
            await ctx.lock_state(tx, session_id)
            await tx.execute(
                f"UPDATE {ctx.t['sessions']} SET system_prompt = ?, updated_at = ? WHERE session_id = ?",
                (storable_text(system_prompt), now_ms(), session_id),
            )
            await tx.execute(
                f"UPDATE {ctx.t['session_state']} SET prompt_version = prompt_version + 1, "
                "state_version = state_version + 1 WHERE session_id = ?",
                (session_id,),
            )

        ctx.known.pop(session_id, None)
        await ctx.db.transact(unit)

    async def merge_metadata(self, session_id: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        ctx = self._ctx
        sessions = ctx.t["sessions"]

        async def unit(tx: Transaction) -> dict[str, Any]:
            await ctx.lock_state(tx, session_id)
            row = await tx.fetchone(
                f"SELECT metadata_json FROM {sessions} WHERE session_id = ?", (session_id,)
            )
            if row is None:
                raise SessionNotFoundError(session_id)
            merged = dict(decode_json(row["metadata_json"], "sessions", f"session_id={session_id}") or {})
            for key, value in patch.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            await tx.execute(
                f"UPDATE {sessions} SET metadata_json = ?, updated_at = ? WHERE session_id = ?",
                (dumps(merged) if merged else None, now_ms(), session_id),
            )
            return merged

        return await ctx.db.transact(unit)
