"""`StoreRef`: which store a loop uses, and whether the loop owns it.

A store given to the loop is shared: the loop never closes it. Otherwise the loop owns a store opened
lazily, on first use, from a DSN (``./power_loop_sessions.db`` by default), and closes it on shutdown.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..store import SchemaPolicy, SessionStore

__all__ = ["StoreRef"]


class StoreRef:
    """The loop's store: ``current`` is None until an owned store is opened by `ensure`."""

    __slots__ = ("_dsn", "_max_spawn_depth", "_open_lock", "_owns", "_schema", "_table_prefix", "current")

    def __init__(
        self,
        store: SessionStore | None,
        *,
        dsn: str | None,
        db_path: str | None,
        table_prefix: str | None,
        schema: SchemaPolicy | str | None,
        max_spawn_depth: int | None,
    ) -> None:
        if store is not None and any(x is not None for x in (dsn, db_path, table_prefix, schema)):
            raise ConfigError("pass either store= or dsn/db_path/table_prefix/schema, not both")
        if dsn is not None and db_path is not None and dsn != db_path:
            raise ConfigError("dsn= and db_path= name different databases; pass one of them")
        if max_spawn_depth is not None and (not isinstance(max_spawn_depth, int) or max_spawn_depth < 0):
            raise ConfigError("max_spawn_depth must be an int >= 0")
        if store is not None and max_spawn_depth is not None:
            store.max_spawn_depth = max_spawn_depth
        self.current = store
        self._owns = store is None
        self._dsn = dsn or db_path
        self._table_prefix = table_prefix
        self._schema = schema
        self._max_spawn_depth = max_spawn_depth
        self._open_lock: asyncio.Lock | None = None

    async def ensure(self) -> SessionStore:
        """The store, opening the owned one first if needed (concurrent callers open it once)."""
        if self.current is not None:
            return self.current
        # The store package (backends, schema, rows) loads when the first store is opened.
        from ..store import DEFAULT_DB_PATH, DEFAULT_TABLE_PREFIX, open_store

        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self.current is None:
                prefix = DEFAULT_TABLE_PREFIX if self._table_prefix is None else self._table_prefix
                kwargs: dict[str, Any] = {"table_prefix": prefix, "schema": self._schema}
                if self._max_spawn_depth is not None:
                    kwargs["max_spawn_depth"] = self._max_spawn_depth
                self.current = await open_store(self._dsn or DEFAULT_DB_PATH, **kwargs)
        return self.current

    def take_owned(self) -> SessionStore | None:
        """Detach and return the store if the loop owns an open one (the caller closes it)."""
        if not self._owns or self.current is None:
            return None
        store, self.current = self.current, None
        return store
