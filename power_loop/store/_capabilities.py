"""Optional capabilities a :class:`~power_loop.store.Database` may offer beyond the port."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..errors import StoreError

if TYPE_CHECKING:
    from ._port import Database

__all__ = ["DatabaseMaintenance", "Maintenance"]


@runtime_checkable
class Maintenance(Protocol):
    """File-level maintenance (SQLite). Server databases have their own tools and do not offer it."""

    async def checkpoint(self, *, mode: str = "TRUNCATE") -> None:
        """Fold the write-ahead log back into the database file."""
        ...

    async def vacuum(self, *, incremental: bool = True) -> None:
        """Give free pages back to the file system (incrementally, or by rebuilding the file)."""
        ...

    async def backup(self, dest_path: str) -> None:
        """Write a consistent copy of the database to ``dest_path`` while it stays in use."""
        ...


class DatabaseMaintenance:
    """The store's maintenance calls, passed on to a database that offers :class:`Maintenance`."""

    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    async def checkpoint(self, *, mode: str) -> None:
        if isinstance(self._db, Maintenance):
            await self._db.checkpoint(mode=mode)

    async def vacuum(self, *, incremental: bool) -> None:
        if isinstance(self._db, Maintenance):
            await self._db.vacuum(incremental=incremental)

    async def backup(self, dest_path: str) -> None:
        if not isinstance(self._db, Maintenance):
            raise StoreError(
                f"backup() needs a SQLite store; use the {self._db.dialect.name} server's own "
                "backup tools (or export_session for single sessions)"
            )
        await self._db.backup(dest_path)
