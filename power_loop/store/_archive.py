"""Export/import of one session as a versioned, JSON-serialisable archive.

Format (version 1)::

    {"format": "power_loop.session", "version": 1, "session_id": "sess_…",
     "tables": {"sessions": [row, …], "session_state": [...], "messages": [...], …}}

Rows carry the raw column values (JSON columns stay JSON text), so an export → import → export round
trip is identical apart from the session id (and the lineage columns, reset on import: an imported
session is a root session).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ArchiveError, SessionNotFoundError
from ._archive_check import duplicate_key_problems, row_problems, session_problems
from ._attachments import binary_binding
from ._core import StoreContext, check_session_id, new_state_version
from ._port import TableSpec, Transaction
from ._tables import SCHEMA_TABLES

if TYPE_CHECKING:
    from ._sessions import SessionRepository

__all__ = ["ARCHIVE_FORMAT", "ARCHIVE_TABLES", "ARCHIVE_VERSION", "ArchiveRepository"]

ARCHIVE_FORMAT = "power_loop.session"
ARCHIVE_VERSION = 1
# Every per-session table; shared_state belongs to no session, a lease and a background task to a
# running process (and a file on its host), and the tool-call log to the recovery of one, so none of
# them is exported. Nor is session_state.state_version: an imported session starts afresh.
ARCHIVE_TABLES: tuple[TableSpec, ...] = tuple(
    TableSpec(t.name, tuple(c for c in t.columns if c.name != "state_version"), t.primary_key, t.indexes)
    for t in SCHEMA_TABLES
    if t.name not in ("shared_state", "session_leases", "background_tasks", "tool_call_log")
)
_SPECS = {t.name: t for t in ARCHIVE_TABLES}
_SINGLE_ROW = ("sessions", "session_state")
_LINEAGE = {"parent_session_id": None, "spawn_tool_call_id": None, "spawn_depth": 0, "kind": "root"}
_PROBLEMS_SHOWN = 20


def _rejected(problems: list[str]) -> ArchiveError:
    shown = "; ".join(problems[:_PROBLEMS_SHOWN])
    more = f"; and {len(problems) - _PROBLEMS_SHOWN} more" if len(problems) > _PROBLEMS_SHOWN else ""
    return ArchiveError(f"archive rejected, nothing was imported: {shown}{more}", problems=problems)


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
                tables[spec.name] = [_exported(spec, r) for r in rows]
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

    async def import_session(
        self, data: Mapping[str, Any], *, new_session_id: str | None, parent_session_id: str | None = None
    ) -> str:
        plan = _plan_import(data)
        t = self._ctx.t
        target = check_session_id(new_session_id if new_session_id is not None else data["session_id"])

        placeholder, binary = binary_binding(self._ctx.db.dialect)

        async def unit(tx: Transaction) -> str:
            if await self._sessions.exists(tx, target):
                raise ArchiveError(f"session {target} already exists; import with new_session_id=...")
            lineage = await self._lineage(tx, parent_session_id)
            for name, rows in plan:
                by_cols: dict[tuple[str, ...], list[list[Any]]] = {}
                for row in rows:
                    row = {**_imported(_SPECS[name], row, binary), "session_id": target}
                    if name == "sessions":
                        row.update(lineage)
                    elif name == "session_state":
                        row["state_version"] = new_state_version()
                    cols = tuple(k for k in row if row[k] is not None)
                    by_cols.setdefault(cols, []).append([row[c] for c in cols])
                blobs = set(_blob_columns(_SPECS[name]))
                for cols, values in by_cols.items():
                    marks = ", ".join(placeholder if c in blobs else "?" for c in cols)
                    await tx.executemany(
                        f"INSERT INTO {t[name]} ({', '.join(cols)}) VALUES ({marks})", values
                    )
            return target

        return await self._ctx.db.transact(unit)

    async def _lineage(self, tx: Transaction, parent: str | None) -> dict[str, Any]:
        if parent is None:
            return dict(_LINEAGE)
        row = await tx.fetchone(
            f"SELECT spawn_depth FROM {self._ctx.t['sessions']} WHERE session_id = ?", (parent,)
        )
        if row is None:
            raise ArchiveError(f"parent session {parent} does not exist")
        depth = int(row["spawn_depth"]) + 1
        return {
            "parent_session_id": parent,
            "spawn_tool_call_id": None,
            "spawn_depth": depth,
            "kind": "subagent",
        }


def _blob_columns(spec: TableSpec) -> list[str]:
    return [c.name for c in spec.columns if c.type == "blob"]


def _exported(spec: TableSpec, row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as JSON-ready values: binary columns (attachments) as base64 text."""
    out = dict(row)
    for name in _blob_columns(spec):
        if out.get(name) is not None:
            out[name] = base64.b64encode(bytes(out[name])).decode("ascii")
    return out


def _imported(spec: TableSpec, row: Mapping[str, Any], binary: Callable[[bytes], Any]) -> dict[str, Any]:
    """An archive row as column values: base64 text back to the dialect's binary value."""
    out = dict(row)
    for name in _blob_columns(spec):
        if isinstance(out.get(name), str):
            out[name] = binary(base64.b64decode(out[name]))
    return out


def _envelope_problems(data: Any) -> list[str]:
    if not isinstance(data, Mapping):
        return ["a session archive must be a JSON object"]
    if data.get("format") != ARCHIVE_FORMAT:
        return [f"not a power_loop session archive (format {data.get('format')!r})"]
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return [f"archive version {version!r} is not a positive integer"]
    if version > ARCHIVE_VERSION:
        return [f"archive version {version} is newer than this power_loop supports ({ARCHIVE_VERSION})"]
    problems = []
    if not isinstance(data.get("session_id"), str):
        problems.append("archive lacks a string 'session_id'")
    tables = data.get("tables")
    if not isinstance(tables, Mapping):
        return [*problems, "archive lacks the 'tables' object"]
    unknown = sorted(str(k) for k in set(tables) - set(_SPECS))
    if unknown:
        problems.append(f"archive has unknown table(s) {unknown}")
    return problems


def _plan_import(data: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """Validate an archive fully: its rows per table, in insertion order (or one ArchiveError
    listing every problem found)."""
    problems = _envelope_problems(data)
    if problems:
        raise _rejected(problems)
    plan: list[tuple[str, list[dict[str, Any]]]] = []
    for spec in ARCHIVE_TABLES:
        rows = data["tables"].get(spec.name, [])
        if not isinstance(rows, list):
            problems.append(f"tables.{spec.name} must be a list")
            continue
        if spec.name in _SINGLE_ROW and len(rows) != 1:
            problems.append(f"tables.{spec.name} must hold exactly one row, has {len(rows)}")
        found = [p for i, r in enumerate(rows) for p in row_problems(spec, r, i)]
        problems.extend(found)
        if not found:
            problems.extend(duplicate_key_problems(spec, rows))
        plan.append((spec.name, [dict(r) for r in rows] if not found else []))
    if not problems:
        problems = session_problems(dict(plan))
    if problems:
        raise _rejected(problems)
    return plan
