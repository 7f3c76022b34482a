"""The published ``SessionStore`` call shapes, on top of ours: opening by path or DSN, appending one
message, the pending blob as published, and compaction by note text.

Each keeps the store's guarantees: an append that would break the tool-call pairing still raises
``HistoryInvariantError``, and the pending blob cannot be set to anything but what the history says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, HistoryInvariantError, InvalidDSN
from ._history import pending_ids
from ._open import connect_database, is_sqlite_dsn
from ._rows import NewMessage
from ._schema import SchemaPolicy, ensure_schema, validate_table_prefix

if TYPE_CHECKING:
    from ._port import Database

__all__ = [
    "compaction_note",
    "connect_store_db",
    "published_pending",
    "require_sqlite",
    "same_pending",
    "seqs_of",
]


async def connect_store_db(
    dsn: str, *, table_prefix: str, schema: SchemaPolicy | str | None, read_only: bool
) -> Database:
    """The database a DSN names, with its schema provisioned (or verified); closed again on failure."""
    validate_table_prefix(table_prefix)
    policy = SchemaPolicy.VERIFY if read_only else SchemaPolicy.coerce(schema)
    db = await connect_database(dsn, read_only=read_only, snapshot=read_only)
    try:
        await ensure_schema(db, table_prefix, policy=policy)
    except BaseException:
        await db.close()
        raise
    return db


def require_sqlite(path: str) -> None:
    """``SessionStore.open`` takes SQLite only (as published); other DSNs go through ``open_store``."""
    if not isinstance(path, str) or not is_sqlite_dsn(path):
        raise InvalidDSN(
            f"SessionStore.open takes a SQLite path or ':memory:', got {path!r}; use open_store(dsn) "
            "for PostgreSQL or MySQL"
        )


def published_pending(pending: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Our pending blob in the published shape (``tool_call_ids`` added), or ``None``."""
    if not pending:
        return None
    return {**pending, "tool_call_ids": pending_ids(pending)}


def same_pending(current: Mapping[str, Any] | None, wanted: Mapping[str, Any] | None) -> None:
    """Raise unless ``wanted`` says what the history says is pending (the store derives it)."""
    have = pending_ids(current)
    want = [] if not wanted else [str(i) for i in wanted.get("tool_call_ids") or pending_ids(wanted)]
    if have != want:
        raise HistoryInvariantError(
            f"the pending tool calls follow from the history ({have or 'none'}), not from set_pending "
            f"({want or 'none'}); answer them by appending their tool results, or use abort_pending() / "
            "resume() on the loop"
        )


def compaction_note(
    note: NewMessage | None,
    note_content: str | None,
    note_meta: Mapping[str, Any] | None,
    round_index: int | None,
) -> NewMessage:
    """The summary row of a compaction: ``note`` (ours) or built from the published ``note_content``."""
    if note is not None:
        if note_content is not None:
            raise ConfigError("pass note= or note_content=, not both")
        return note
    if note_content is None:
        raise ConfigError("record_compaction needs note= (a NewMessage) or note_content= (its text)")
    return NewMessage(
        role="system",
        name="compact_note",
        content=note_content,
        round_index=round_index,
        meta=dict(note_meta or {}),
    )


def seqs_of(fold_seqs: Sequence[int] | None, also_seqs: Sequence[int]) -> Sequence[int]:
    """``also_seqs`` (ours) or the published ``fold_seqs``."""
    return also_seqs if fold_seqs is None else [*also_seqs, *fold_seqs]
