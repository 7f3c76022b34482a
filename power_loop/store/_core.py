"""Shared plumbing of :class:`~power_loop.store.SessionStore`: table names, SQL built once, row decoding."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from ..errors import ConfigError, SessionNotFoundError, StoreError
from ._capabilities import Maintenance
from ._port import Database, Row, Transaction
from ._rows import (
    MessageRow,
    MessageState,
    SessionKind,
    SessionRow,
    SessionStatus,
    SubagentLifecycle,
    decode_json,
)
from ._schema import CURRENT_SCHEMA_VERSION, SCHEMA_TABLES, validate_table_prefix

__all__ = [
    "ADVANCE_RETURNING",
    "MESSAGE_COLS",
    "SESSION_COLS",
    "KnownState",
    "StoreCore",
    "dumps",
    "new_state_version",
    "now_ms",
]

SESSION_COLS = (
    "session_id, created_at, updated_at, system_prompt, model, config_json, status, kind, "
    "parent_session_id, spawn_tool_call_id, spawn_depth, lifecycle, metadata_json"
)
MESSAGE_COLS = (
    "session_id, seq, role, name, content, content_json, tool_calls_json, tool_call_id, "
    "round_index, state, meta_json, send_index, created_at"
)


# What the advancing UPDATE returns: the state row after the update.
ADVANCE_RETURNING = (
    " RETURNING next_seq, send_index, round_index, prompt_version, follow_ups_waiting, pending_json, "
    "state_version"
)
# How many sessions' states one store remembers (see KnownState); the oldest is forgotten first.
KNOWN_STATES_MAX = 1024


@dataclass(frozen=True, slots=True)
class KnownState:
    """A session's state row as some committed transaction left it (``state_version`` included).

    Every transaction that changes ``session_state`` bumps ``state_version`` (once is enough: the
    row stays locked until the commit), so a (session, version) pair names one committed row; a
    session created again under a closed one's id starts at another, random, version. An append
    starting from a remembered row writes with ``WHERE state_version = version``: if it matches,
    the remembered values were the current ones; if not, nothing was written and the append reads.
    A handle remembers only rows whose transaction committed, and forgets one on any failure.
    """

    version: int
    next_seq: int
    send_index: int
    round_index: int
    pending_json: str | None
    prompt_version: int
    follow_ups_waiting: int


_S = TypeVar("_S", bound="StoreCore")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_state_version() -> int:
    """Where a new session's ``state_version`` starts: random, so that a session closed and created
    again under the same id does not repeat the versions another store handle may remember."""
    return secrets.randbits(53)


def dumps(value: Any) -> str:
    """The one JSON encoding used for stored values (compact, UTF-8 kept as is)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class StoreCore:
    """Construction, SQL text and helpers shared by the parts of the session store."""

    def __init__(self, db: Database, *, table_prefix: str = "pl_", max_spawn_depth: int = 3) -> None:
        self._db = db
        self.table_prefix = validate_table_prefix(table_prefix)
        self.max_spawn_depth = max_spawn_depth
        self.t: dict[str, str] = {spec.name: table_prefix + spec.name for spec in SCHEMA_TABLES}
        self._closed = False
        # Per-session state rows this handle last wrote (only after their transaction committed).
        self._known: dict[str, KnownState] = {}
        self._build_sql()

    # -- properties ----------------------------------------------------------------------------

    @property
    def db(self) -> Database:
        """The underlying :class:`Database` (shared by every store opened on it)."""
        return self._db

    @property
    def schema_version(self) -> int:
        return CURRENT_SCHEMA_VERSION

    @property
    def max_spawn_depth(self) -> int:
        return self._max_spawn_depth

    @max_spawn_depth.setter
    def max_spawn_depth(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"max_spawn_depth must be an int >= 1, got {value!r}")
        self._max_spawn_depth = value

    # -- SQL, built once -------------------------------------------------------------------------

    def _build_sql(self) -> None:
        t = self.t
        for_update = self._db.dialect.for_update
        sfx = f" {for_update}" if for_update else ""
        self._sql_lock_state = (
            "SELECT next_seq, send_index, round_index, last_compact_seq, prompt_version, follow_ups_waiting, "
            f"pending_json, state_version FROM {t['session_state']} WHERE session_id = ?{sfx}"
        )
        self._sql_get_state = (
            "SELECT session_id, next_seq, send_index, round_index, last_compact_seq, prompt_version, pending_json "
            f"FROM {t['session_state']} WHERE session_id = ?"
        )
        # Every transaction writing session_state bumps state_version once (see KnownState); the
        # pending and follow-up updates below run in a transaction whose advance already did.
        self._sql_update_state = (
            f"UPDATE {t['session_state']} SET next_seq = ?, send_index = ?, round_index = ?, "
            "pending_json = ?, updated_at = ?, state_version = state_version + 1 WHERE session_id = ?"
        )
        # The optimistic append: the whole new state, written only over the remembered version.
        self._sql_update_known = (
            f"UPDATE {t['session_state']} SET next_seq = ?, send_index = ?, round_index = ?, "
            "pending_json = ?, updated_at = ?, state_version = state_version + 1 "
            "WHERE session_id = ? AND state_version = ?"
        )
        # Where the dialect supports it, an append locks, advances and reads the state row in ONE
        # statement (see SessionStore._append_returning); _lease adds the fenced variant.
        self._returning = bool(getattr(self._db.dialect, "supports_update_returning", False))
        self._sql_advance_where = (
            f"UPDATE {t['session_state']} SET next_seq = next_seq + ?, send_index = send_index + ?, "
            "round_index = CASE WHEN ? > round_index THEN ? ELSE round_index END, updated_at = ?, "
            "state_version = state_version + 1 WHERE session_id = ?"
        )
        self._sql_advance = self._sql_advance_where + ADVANCE_RETURNING
        self._sql_set_pending = f"UPDATE {t['session_state']} SET pending_json = ? WHERE session_id = ?"
        self._sql_insert_message = (
            f"INSERT INTO {t['messages']} ({MESSAGE_COLS}) VALUES ({', '.join('?' * 13)})"
        )
        self._sql_active = (
            f"SELECT {MESSAGE_COLS} FROM {t['messages']} WHERE session_id = ? AND state = 'active' "
            "ORDER BY seq"
        )
        self._sql_active_after = (
            f"SELECT {MESSAGE_COLS} FROM {t['messages']} WHERE session_id = ? AND state = 'active' "
            "AND seq > ? ORDER BY seq"
        )
        self._sql_get_session = f"SELECT {SESSION_COLS} FROM {t['sessions']} WHERE session_id = ?"
        self._sql_bump_stats = (
            f"UPDATE {t['session_stats']} SET sends = sends + ?, rounds = rounds + ?, "
            "llm_calls = llm_calls + ?, tool_calls = tool_calls + ?, prompt_tokens = prompt_tokens + ?, "
            "completion_tokens = completion_tokens + ?, cache_read_tokens = cache_read_tokens + ?, "
            "reasoning_tokens = reasoning_tokens + ?, total_tokens = total_tokens + ?, "
            "first_send_at = COALESCE(first_send_at, ?), last_send_at = COALESCE(?, last_send_at), "
            "updated_at = ? WHERE session_id = ?"
        )
        self._sql_usage = self._db.dialect.upsert(
            t["usage_rounds"],
            ("session_id", "send_index", "round_index"),
            (
                "prompt_tokens",
                "completion_tokens",
                "total_tokens",
                "cache_read_tokens",
                "reasoning_tokens",
                "model",
            ),
            insert_only_cols=("created_at",),
        )
        self._sql_consume = f"DELETE FROM {t['follow_ups']} WHERE session_id = ? AND item_id = ?"
        self._sql_consumed = f"UPDATE {t['session_state']} SET follow_ups_waiting = follow_ups_waiting - ? WHERE session_id = ?"

    # -- helpers -------------------------------------------------------------------------------

    def _remember(self, session_id: str, known: KnownState) -> None:
        known_states = self._known
        known_states.pop(session_id, None)
        known_states[session_id] = known
        if len(known_states) > KNOWN_STATES_MAX:
            del known_states[next(iter(known_states))]

    async def _lock_state(self, tx: Transaction, session_id: str) -> Row:
        """Lock and read the session's state row (serialises writers of one session)."""
        row = await tx.fetchone(self._sql_lock_state, (session_id,))
        if row is None:
            raise SessionNotFoundError(session_id)
        return row

    async def _next_id(self, tx: Transaction, table: str, column: str, session_id: str) -> int:
        """Per-session ``MAX + 1`` id (call with the state row locked)."""
        row = await tx.fetchone(
            f"SELECT MAX({column}) AS top FROM {self.t[table]} WHERE session_id = ?", (session_id,)
        )
        top = None if row is None else row["top"]
        return 1 if top is None else int(top) + 1

    @staticmethod
    def _session_row(r: Mapping[str, Any]) -> SessionRow:
        key = f"session_id={r['session_id']}"
        return SessionRow(
            session_id=r["session_id"],
            created_at=int(r["created_at"]),
            updated_at=int(r["updated_at"]),
            system_prompt=r["system_prompt"],
            model=r["model"],
            config=decode_json(r["config_json"], "sessions", key) or {},
            status=SessionStatus(r["status"]),
            kind=SessionKind(r["kind"]),
            parent_session_id=r["parent_session_id"],
            spawn_tool_call_id=r["spawn_tool_call_id"],
            spawn_depth=int(r["spawn_depth"]),
            lifecycle=SubagentLifecycle(r["lifecycle"]),
            metadata=decode_json(r["metadata_json"], "sessions", key) or {},
        )

    @staticmethod
    def _message_row(r: Mapping[str, Any]) -> MessageRow:
        content = r["content"]
        tc = r["tool_calls_json"]
        meta = r["meta_json"]
        if r["content_json"] or tc is not None or meta is not None:
            key = f"session_id={r['session_id']}, seq={r['seq']}"
            if r["content_json"]:
                content = decode_json(content, "messages", key)
            tc = decode_json(tc, "messages", key)
            meta = decode_json(meta, "messages", key)
        return MessageRow(
            r["session_id"],
            r["seq"],
            r["role"],
            r["name"],
            content,
            tc,
            r["tool_call_id"],
            r["round_index"],
            MessageState(r["state"]),
            meta if meta is not None else {},
            r["created_at"],
            r["send_index"],
        )

    # -- lifecycle & maintenance -------------------------------------------------------------------

    async def checkpoint(self, *, mode: str = "TRUNCATE") -> None:
        """Fold the SQLite WAL into the main file; a no-op on server databases."""
        if isinstance(self._db, Maintenance):
            await self._db.checkpoint(mode=mode)

    async def vacuum(self, *, incremental: bool = True) -> None:
        """Return free SQLite pages to the file system; a no-op on server databases."""
        if isinstance(self._db, Maintenance):
            await self._db.vacuum(incremental=incremental)

    async def backup(self, dest_path: str) -> None:
        """Write a consistent copy of a SQLite database to ``dest_path``."""
        if not isinstance(self._db, Maintenance):
            raise StoreError(
                f"backup() needs a SQLite store; use the {self._db.dialect.name} server's own "
                "backup tools (or export_session for single sessions)"
            )
        await self._db.backup(dest_path)

    async def close(self) -> None:
        """Close the underlying database (idempotent)."""
        if not self._closed:
            self._closed = True
            await self._db.close()

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
