"""Optional capabilities a :class:`~power_loop.store.Database` may offer beyond the port."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Maintenance"]


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
