"""Opening a store from a DSN: pick the backend, provision/verify the schema, return the facade."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidDSN, StoreDatabaseMissing, StoreUnavailable
from ._dsn import redact_dsn
from ._port import Database
from ._sqlite import SqliteDatabase

if TYPE_CHECKING:
    pass

__all__ = ["DEFAULT_DB_PATH", "DEFAULT_TABLE_PREFIX", "connect_database", "is_sqlite_dsn"]

DEFAULT_DB_PATH = "./power_loop_sessions.db"
DEFAULT_TABLE_PREFIX = "pl_"

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def _sqlite_path(dsn: str, *, create_dirs: bool = True) -> str:
    """Resolve a SQLite DSN or bare path to a file path (``:memory:`` for in-memory)."""
    m = _SCHEME_RE.match(dsn)
    if m is None:
        path = dsn
    else:
        rest = dsn[m.end() :]
        if rest in ("", ":memory:", "/:memory:"):
            return ":memory:"
        if not rest.startswith("/"):
            raise InvalidDSN(
                f"SQLite DSN {redact_dsn(dsn)!r} has a host part; use sqlite:///relative.db or "
                "sqlite:////absolute/path.db"
            )
        path = rest[1:]  # sqlite:///rel.db -> rel.db ; sqlite:////abs.db -> /abs.db
    if path in ("", ":memory:"):
        return ":memory:"
    expanded = Path(os.path.expanduser(path))
    if create_dirs:
        try:
            expanded.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a read-only directory, or a regular file where a directory should be
            raise StoreUnavailable(
                f"cannot create the directory of SQLite database {str(expanded)!r} "
                f"({exc.strerror or type(exc).__name__}); check that the path's directories exist or can be "
                "created and are writable"
            ) from None
    return str(expanded)


def _checked_sqlite_path(dsn: str, read_only: bool) -> str:
    path = _sqlite_path(dsn, create_dirs=not read_only)
    if read_only:
        if path == ":memory:":
            raise InvalidDSN("a read-only store needs a SQLite file; an in-memory database is always empty")
        if not Path(path).is_file():
            raise StoreDatabaseMissing(
                f"SQLite database file {path!r} does not exist; a read-only open never creates one "
                "(check the path in the DSN)"
            )
    return path


def is_sqlite_dsn(dsn: str) -> bool:
    """Whether ``dsn`` names a SQLite database (a path, ``:memory:`` or a ``sqlite://`` URL)."""
    m = _SCHEME_RE.match(dsn)
    return (m.group(1).lower().split("+", 1)[0] if m else "") in ("", "sqlite", "sqlite3")


async def connect_database(dsn: str, *, read_only: bool = False, snapshot: bool = False) -> Database:
    """Open the backend a DSN names (no schema work). Optional drivers are imported lazily.

    ``read_only``: SQLite opens an existing file read-only (a missing file raises
    ``StoreDatabaseMissing``); server backends connect as usual (the caller simply never writes).
    ``snapshot`` (SQLite, with ``read_only``): a one-shot read that creates not even ``-wal``/``-shm``
    files when no other connection has the database open (it then does not see later commits).
    """
    if not isinstance(dsn, str):
        raise InvalidDSN(f"store DSN must be a string, got {type(dsn).__name__}")
    if "\x00" in dsn or "%00" in dsn:  # no driver or file system takes a NUL
        raise InvalidDSN(f"store DSN {redact_dsn(dsn.replace(chr(0), '?'))[:200]!r} contains a NUL character")
    m = _SCHEME_RE.match(dsn)
    scheme = m.group(1).lower().split("+", 1)[0] if m else ""
    if scheme in ("", "sqlite", "sqlite3"):
        path = _checked_sqlite_path(dsn, read_only)
        return await SqliteDatabase.open(path, read_only=read_only, snapshot=snapshot)
    if scheme in ("postgresql", "postgres"):
        from ._postgres import connect_postgres

        pg = await connect_postgres(dsn)
        assert isinstance(pg, Database)
        return pg
    if scheme in ("mysql", "mariadb"):
        from ._mysql import connect_mysql

        my = await connect_mysql(dsn)
        assert isinstance(my, Database)
        return my
    raise InvalidDSN(
        f"unsupported store DSN scheme {scheme!r} in {redact_dsn(dsn)!r}; use a file path, "
        "':memory:', sqlite:///file.db, postgresql://user:pass@host/db or mysql://user:pass@host/db"
    )
