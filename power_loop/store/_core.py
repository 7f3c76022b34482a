"""What the repositories behind :class:`~power_loop.store.SessionStore` share.

One :class:`StoreContext` per store handle: the :class:`Database`, the prefixed table names, the
handle's memory of committed state rows (:class:`KnownStates`) and access to ``session_state``, the
row every writer of a session locks first (so one session's writers serialise on it).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, InvalidSessionIdError, SessionNotFoundError
from ._port import Database, Row, Transaction
from ._rows import SessionStateRow, decode_pending
from ._schema import validate_table_prefix
from ._tables import SCHEMA_TABLES

if TYPE_CHECKING:
    from ._port import Database, Row, Transaction

__all__ = [
    "KnownState",
    "KnownStates",
    "StoreContext",
    "check_ints",
    "check_session_id",
    "storable_text",
    "utf8_safe",
    "dumps",
    "new_state_version",
    "now_ms",
    "state_row",
]

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


class KnownStates(dict[str, KnownState]):
    """One handle's remembered state rows by session id, bounded to ``KNOWN_STATES_MAX`` sessions.

    A plain dict underneath (``get`` and ``pop`` run on the send path); writers that change a state
    row without knowing its new value ``pop`` the session so the next append reads it again.
    """

    __slots__ = ()

    def remember(self, session_id: str, known: KnownState) -> None:
        """Remember ``known`` (only once its transaction committed) as the newest entry."""
        self.pop(session_id, None)
        self[session_id] = known
        if len(self) > KNOWN_STATES_MAX:
            del self[next(iter(self))]


# Control characters (NUL above all: PostgreSQL TEXT refuses it) have no place in an id.
_ID_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
MAX_SESSION_ID_LENGTH = 255


def check_session_id(session_id: Any) -> str:
    """``session_id`` if it is a usable id on every backend, else :class:`InvalidSessionIdError`.

    Checked before any SQL runs, so an id one backend would store and another refuse (NUL, lone
    surrogates, a non-string) fails the same way everywhere.
    """
    if (
        type(session_id) is not str
        or not session_id
        or len(session_id) > MAX_SESSION_ID_LENGTH
        or _ID_FORBIDDEN.search(session_id)
    ):
        shown = repr(session_id) if isinstance(session_id, str) else type(session_id).__name__
        raise InvalidSessionIdError(
            f"invalid session id {shown[:80]}: use a non-empty string of at most "
            f"{MAX_SESSION_ID_LENGTH} characters without control characters"
        )
    return session_id


_INT64 = 2**63


def check_ints(**values: Any) -> None:
    """Each value is ``None`` or an int (not a bool) a 64-bit column holds, else :class:`ConfigError`:
    every backend refuses the same values the same way (SQLite raised ``OverflowError``, PostgreSQL a
    driver error, MySQL compared silently)."""
    for name, value in values.items():
        if value is not None and (type(value) is not int or not -_INT64 <= value < _INT64):
            shown = repr(value) if type(value) is not int else "an integer beyond 64 bits"
            raise ConfigError(f"{name} must be an int that fits in 64 bits, got {shown[:60]}")


def utf8_safe(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (no lone surrogates, which every database driver refuses)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: Any) -> Any:
    """``text`` for a plain text column (notes, follow-ups, timer notes, prompts): NUL, which
    PostgreSQL refuses, and lone surrogates, which no driver encodes, become U+FFFD on every backend.
    Anything that is not a ``str`` is returned unchanged."""
    if isinstance(text, str) and not (text.isascii() and "\x00" not in text):
        return _UNSTORABLE.sub("\ufffd", text)
    return text


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_state_version() -> int:
    """Where a new session's ``state_version`` starts: random, so that a session closed and created
    again under the same id does not repeat the versions another store handle may remember."""
    return secrets.randbits(53)


def dumps(value: Any) -> str:
    """The one JSON encoding used for stored values (compact, UTF-8 kept as is).

    Text with lone surrogates (e.g. a model's ``"\\ud800"``) is written with ASCII escapes instead:
    it stays storable on every backend and decodes back to the same value.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if utf8_safe(text):
        return text
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def state_row(session_id: str, r: Row) -> SessionStateRow:
    """Decode a row read with :attr:`StoreContext.sql_get_state`."""
    pending = decode_pending(r["pending_json"], session_id)
    return SessionStateRow(
        session_id,
        int(r["next_seq"]),
        int(r["send_index"]),
        int(r["round_index"]),
        int(r["last_compact_seq"]),
        pending or None,
        int(r["prompt_version"]),
    )


class StoreContext:
    """The database, table names and ``session_state`` access one handle's repositories share."""

    __slots__ = ("db", "known", "sql_get_state", "sql_lock_state", "t", "table_prefix")

    def __init__(self, db: Database, table_prefix: str) -> None:
        self.db = db
        self.table_prefix = validate_table_prefix(table_prefix)
        self.t: dict[str, str] = {spec.name: table_prefix + spec.name for spec in SCHEMA_TABLES}
        # Per-session state rows this handle last wrote (only after their transaction committed).
        self.known = KnownStates()
        for_update = db.dialect.for_update
        sfx = f" {for_update}" if for_update else ""
        state = self.t["session_state"]
        self.sql_lock_state = (
            "SELECT next_seq, send_index, round_index, last_compact_seq, prompt_version, follow_ups_waiting, "
            f"pending_json, state_version FROM {state} WHERE session_id = ?{sfx}"
        )
        self.sql_get_state = (
            "SELECT session_id, next_seq, send_index, round_index, last_compact_seq, prompt_version, pending_json "
            f"FROM {state} WHERE session_id = ?"
        )

    async def lock_state(self, tx: Transaction, session_id: str) -> Row:
        """Lock and read the session's state row (serialises writers of one session)."""
        row = await tx.fetchone(self.sql_lock_state, (session_id,))
        if row is None:
            raise SessionNotFoundError(session_id)
        return row

    async def next_id(self, tx: Transaction, table: str, column: str, session_id: str) -> int:
        """Per-session ``MAX + 1`` id (call with the state row locked)."""
        row = await tx.fetchone(
            f"SELECT MAX({column}) AS top FROM {self.t[table]} WHERE session_id = ?", (session_id,)
        )
        top = None if row is None else row["top"]
        return 1 if top is None else int(top) + 1
