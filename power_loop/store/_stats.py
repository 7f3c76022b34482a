"""Reading the accounting: cumulative per-session statistics and per-round token usage.

Both are written by appends (``append_messages(stats=..., round_usage=...)``, see ``_append``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._rows import SessionStatsRow, UsageRoundRow

if TYPE_CHECKING:
    from ._core import StoreContext

__all__ = ["StatsRepository"]

_STATS_COLS = (
    "session_id, sends, rounds, llm_calls, tool_calls, prompt_tokens, completion_tokens, "
    "cache_read_tokens, reasoning_tokens, total_tokens, first_send_at, last_send_at, updated_at"
)
_USAGE_COLS = (
    "session_id, send_index, round_index, prompt_tokens, completion_tokens, total_tokens, "
    "cache_read_tokens, reasoning_tokens, model, created_at, duration_ms, attempts"
)


class StatsRepository:
    """Reads of ``session_stats`` and ``usage_rounds``."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    async def get(self, session_id: str) -> SessionStatsRow | None:
        row = await self._ctx.db.fetchone(
            f"SELECT {_STATS_COLS} FROM {self._ctx.t['session_stats']} WHERE session_id = ?", (session_id,)
        )
        return None if row is None else SessionStatsRow(**row)

    async def list_stats(self) -> list[SessionStatsRow]:
        rows = await self._ctx.db.fetchall(
            f"SELECT {_STATS_COLS} FROM {self._ctx.t['session_stats']} ORDER BY updated_at DESC, session_id"
        )
        return [SessionStatsRow(**r) for r in rows]

    async def list_usage_rounds(self, session_id: str) -> list[UsageRoundRow]:
        rows = await self._ctx.db.fetchall(
            f"SELECT {_USAGE_COLS} FROM {self._ctx.t['usage_rounds']} WHERE session_id = ? "
            "ORDER BY send_index, round_index",
            (session_id,),
        )
        return [UsageRoundRow(**r) for r in rows]
