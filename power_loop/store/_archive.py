"""Export/import of one session as a versioned, JSON-serialisable archive.

Format (version 1)::

    {"format": "power_loop.session", "version": 1, "session_id": "sess_…",
     "tables": {"sessions": [row, …], "session_state": [...], "messages": [...], …}}

Rows carry the raw column values (JSON columns stay JSON text), so an export → import → export round
trip is identical apart from the session id (and the lineage columns, reset on import: an imported
session is a root session).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import ArchiveError, SessionNotFoundError
from ._core import StoreContext, new_state_version
from ._port import TableSpec, Transaction
from ._schema import SCHEMA_TABLES
from ._sessions import SessionRepository

__all__ = ["ARCHIVE_FORMAT", "ARCHIVE_TABLES", "ARCHIVE_VERSION", "ArchiveRepository"]

ARCHIVE_FORMAT = "power_loop.session"
ARCHIVE_VERSION = 1
# Every per-session table; shared_state belongs to no session, a lease to a running process and the
# tool-call log to the recovery of one, so none is exported. Nor is session_state.state_version: an imported session starts afresh.
ARCHIVE_TABLES: tuple[TableSpec, ...] = tuple(
    TableSpec(t.name, tuple(c for c in t.columns if c.name != "state_version"), t.primary_key, t.indexes)
    for t in SCHEMA_TABLES
    if t.name not in ("shared_state", "session_leases", "tool_call_log")
)
_SPECS = {t.name: t for t in ARCHIVE_TABLES}
_SINGLE_ROW = ("sessions", "session_state")
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "key": (str,),
    "text": (str,),
    "enum": (str,),
    "int": (int,),
    "small": (int,),
}
_LINEAGE = {"parent_session_id": None, "spawn_tool_call_id": None, "spawn_depth": 0, "kind": "root"}


def _validate_row(table: TableSpec, row: Any, index: int) -> dict[str, Any]:
    where = f"tables.{table.name}[{index}]"
    if not isinstance(row, Mapping):
        raise ArchiveError(f"{where} is not an object")
    columns = {c.name: c for c in table.columns}
    unknown = sorted(set(row) - set(columns))
    if unknown:
        raise ArchiveError(f"{where} has unknown column(s) {unknown}")
    for col in table.columns:
        value = row.get(col.name)
        if value is None:
            if not col.nullable and col.default is None and col.name != "session_id":
                raise ArchiveError(f"{where} lacks required column {col.name!r}")
            continue
        if isinstance(value, bool) or not isinstance(value, _PY_TYPES[col.type]):
            raise ArchiveError(f"{where}.{col.name} has the wrong type ({type(value).__name__})")
        if (col.type == "text" and col.name.endswith("_json")) or (
            col.name == "content" and row.get("content_json")
        ):
            try:
                json.loads(str(value))
            except ValueError:
                raise ArchiveError(f"{where}.{col.name} is not valid JSON") from None
    return dict(row)


class ArchiveRepository:
    """Reads and writes every per-session table at once: one transaction each way."""

    __slots__ = ("_ctx", "_sessions")

    def __init__(self, ctx: StoreContext, sessions: SessionRepository) -> None:
        self._ctx = ctx
        self._sessions = sessions

    async def export_session(self, session_id: str) -> dict[str, Any]:
        t = self._ctx.t

        async def unit(tx: Transaction) -> dict[str, Any]:
            tables: dict[str, list[dict[str, Any]]] = {}
            for spec in ARCHIVE_TABLES:
                cols = ", ".join(c.name for c in spec.columns)
                order = ", ".join(spec.primary_key)
                rows = await tx.fetchall(
                    f"SELECT {cols} FROM {t[spec.name]} WHERE session_id = ? ORDER BY {order}",
                    (session_id,),
                )
                tables[spec.name] = [dict(r) for r in rows]
            if not tables["sessions"]:
                raise SessionNotFoundError(session_id)
            return tables

        tables = await self._ctx.db.transact(unit)
        return {
            "format": ARCHIVE_FORMAT,
            "version": ARCHIVE_VERSION,
            "session_id": session_id,
            "tables": tables,
        }

    async def import_session(self, data: Mapping[str, Any], *, new_session_id: str | None) -> str:
        plan = _plan_import(data)
        t = self._ctx.t
        target = new_session_id if new_session_id is not None else data["session_id"]
        if not isinstance(target, str) or not target or len(target) > 255:
            raise ArchiveError(f"invalid target session id {target!r}")

        async def unit(tx: Transaction) -> str:
            if await self._sessions.exists(tx, target):
                raise ArchiveError(f"session {target} already exists; import with new_session_id=...")
            for name, rows in plan:
                by_cols: dict[tuple[str, ...], list[list[Any]]] = {}
                for row in rows:
                    row = {**row, "session_id": target}
                    if name == "sessions":
                        row.update(_LINEAGE)
                    elif name == "session_state":
                        row["state_version"] = new_state_version()
                    cols = tuple(k for k in row if row[k] is not None)
                    by_cols.setdefault(cols, []).append([row[c] for c in cols])
                for cols, values in by_cols.items():
                    await tx.executemany(
                        f"INSERT INTO {t[name]} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                        values,
                    )
            return target

        return await self._ctx.db.transact(unit)


def _plan_import(data: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """Validate an archive: its rows per table, in insertion order (or ArchiveError)."""
    if not isinstance(data, Mapping):
        raise ArchiveError("a session archive must be a JSON object")
    if data.get("format") != ARCHIVE_FORMAT:
        raise ArchiveError(f"not a power_loop session archive (format {data.get('format')!r})")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ArchiveError(f"archive version {version!r} is not a positive integer")
    if version > ARCHIVE_VERSION:
        raise ArchiveError(
            f"archive version {version} is newer than this power_loop supports ({ARCHIVE_VERSION})"
        )
    if not isinstance(data.get("session_id"), str):
        raise ArchiveError("archive lacks a string 'session_id'")
    tables = data.get("tables")
    if not isinstance(tables, Mapping):
        raise ArchiveError("archive lacks the 'tables' object")
    unknown = sorted(set(tables) - set(_SPECS))
    if unknown:
        raise ArchiveError(f"archive has unknown table(s) {unknown}")
    plan: list[tuple[str, list[dict[str, Any]]]] = []
    for spec in ARCHIVE_TABLES:
        rows = tables.get(spec.name, [])
        if not isinstance(rows, list):
            raise ArchiveError(f"tables.{spec.name} must be a list")
        if spec.name in _SINGLE_ROW and len(rows) != 1:
            raise ArchiveError(f"tables.{spec.name} must hold exactly one row, has {len(rows)}")
        plan.append((spec.name, [_validate_row(spec, r, i) for i, r in enumerate(rows)]))
    return plan
