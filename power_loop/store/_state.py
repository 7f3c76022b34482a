"""Key/value state: per session (``session_runtime_state``) and per any owner (``shared_state``).

Values are JSON. Both kinds offer an atomic read-modify-write whose function runs inside the
transaction (on SQLite, on the connection thread): it must be quick and free of I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._core import StoreContext, dumps, now_ms
from ._rows import MUTATE_SKIP, decode_json

if TYPE_CHECKING:
    from ._port import Transaction

__all__ = ["SharedStateRepository", "RuntimeStateRepository"]


class RuntimeStateRepository:
    """``session_runtime_state``: JSON values by (session, key); writes lock the session's state row."""

    __slots__ = ("_ctx", "_sql_delete", "_sql_get", "_sql_put")

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        table = ctx.t["session_runtime_state"]
        self._sql_get = f"SELECT value_json FROM {table} WHERE session_id = ? AND state_key = ?"
        self._sql_put = ctx.db.dialect.upsert(
            table, ("session_id", "state_key"), ("value_json", "updated_at")
        )
        self._sql_delete = f"DELETE FROM {table} WHERE session_id = ? AND state_key = ?"

    async def get(self, session_id: str, key: str, default: Any) -> Any:
        row = await self._ctx.db.fetchone(self._sql_get, (session_id, key))
        if row is None or row["value_json"] is None:
            return default
        return decode_json(row["value_json"], "session_runtime_state", f"session_id={session_id}, key={key}")

    async def set(self, session_id: str, key: str, value: Any) -> None:
        text = dumps(value)

        async def unit(tx: Transaction) -> None:
            await self._ctx.lock_state(tx, session_id)
            await tx.execute(self._sql_put, (session_id, key, text, now_ms()))

        await self._ctx.db.transact(unit)

    async def mutate(self, session_id: str, key: str, fn: Callable[[Any], Any], *, default: Any) -> Any:
        async def unit(tx: Transaction) -> Any:
            await self._ctx.lock_state(tx, session_id)
            row = await tx.fetchone(self._sql_get, (session_id, key))
            current = default
            if row is not None and row["value_json"] is not None:
                current = decode_json(
                    row["value_json"], "session_runtime_state", f"session_id={session_id}, key={key}"
                )
            new = fn(current)
            if new is MUTATE_SKIP:
                return current
            await tx.execute(self._sql_put, (session_id, key, dumps(new), now_ms()))
            return new

        return await self._ctx.db.transact(unit)

    async def delete(self, session_id: str, key: str) -> bool:
        return await self._ctx.db.execute(self._sql_delete, (session_id, key)) > 0


class SharedStateRepository:
    """``shared_state``: JSON values by (owner, key), owned by no session (e.g. ``"blackboard:<id>"``)."""

    __slots__ = ("_ctx", "_sql_claim", "_sql_delete", "_sql_get", "_sql_put", "_sql_write")

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        table = ctx.t["shared_state"]
        upsert = ctx.db.dialect.upsert
        self._sql_get = f"SELECT value_json FROM {table} WHERE owner = ? AND state_key = ?"
        self._sql_put = upsert(table, ("owner", "state_key"), ("value_json", "updated_at"))
        # Upserting a placeholder (NULL value = absent) takes the row's write lock on every backend
        # at once; an INSERT-IGNORE-then-SELECT-FOR-UPDATE would deadlock concurrent MySQL callers.
        self._sql_claim = upsert(
            table, ("owner", "state_key"), ("updated_at",), insert_only_cols=("value_json",)
        )
        self._sql_write = (
            f"UPDATE {table} SET value_json = ?, updated_at = ? WHERE owner = ? AND state_key = ?"
        )
        self._sql_delete = f"DELETE FROM {table} WHERE owner = ? AND state_key = ?"

    async def get(self, owner: str, key: str, default: Any) -> Any:
        row = await self._ctx.db.fetchone(self._sql_get, (owner, key))
        if row is None or row["value_json"] is None:
            return default
        return decode_json(row["value_json"], "shared_state", f"owner={owner}, key={key}")

    async def set(self, owner: str, key: str, value: Any) -> None:
        await self._ctx.db.execute(self._sql_put, (owner, key, dumps(value), now_ms()))

    async def mutate(self, owner: str, key: str, fn: Callable[[Any], Any], *, default: Any) -> Any:
        async def unit(tx: Transaction) -> Any:
            now = now_ms()
            await tx.execute(self._sql_claim, (owner, key, now, None))
            row = await tx.fetchone(self._sql_get, (owner, key))
            current = default
            if row is not None and row["value_json"] is not None:
                current = decode_json(row["value_json"], "shared_state", f"owner={owner}, key={key}")
            new = fn(current)
            if new is MUTATE_SKIP:
                return current
            await tx.execute(self._sql_write, (dumps(new), now, owner, key))
            return new

        return await self._ctx.db.transact(unit)

    async def delete(self, owner: str, key: str) -> bool:
        return await self._ctx.db.execute(self._sql_delete, (owner, key)) > 0
