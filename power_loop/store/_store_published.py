"""More published ``SessionStore`` call shapes: usage and statistics written on their own, dropping
messages, and retention of timers and usage rows.

Each goes through the same paths as the loop's writes (the appender's single transaction, the
message-state rules), so the guarantees are unchanged: dropping half of a tool-call pair still raises
``HistoryInvariantError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from ..errors import ConfigError
from ._core import check_ints, check_session_id
from ._rows import MessageState, RoundUsage, SendAccounting

if TYPE_CHECKING:
    from ._core import StoreContext
    from ._store import SessionStore

__all__ = ["PublishedStoreMethods"]

_TIMER_STATUSES = ("armed", "firing", "fired", "cancelled")


def _count(usage: Mapping[str, Any], *keys: str) -> int:
    """The first of ``keys`` present in ``usage`` as an int (0 when none is)."""
    for key in keys:
        value = usage.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"usage[{key!r}] must be a non-negative int, got {value!r}")
            return value
    return 0


def _store(methods: PublishedStoreMethods) -> SessionStore:
    return cast("SessionStore", methods)


class PublishedStoreMethods:
    """The :class:`~power_loop.store.SessionStore` methods kept for the published call shapes."""

    _ctx: StoreContext

    async def deactivate_messages(self, session_id: str, seqs: Sequence[int]) -> int:
        """Mark messages ``dropped`` (kept in the audit log, out of every window); returns how many
        changed. A tool call and its result must go together (``HistoryInvariantError``)."""
        return await _store(self).set_message_state(session_id, seqs, MessageState.DROPPED)

    async def record_usage(
        self,
        session_id: str,
        *,
        round_index: int,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        total_tokens: int | None,
        model: str | None = None,
    ) -> None:
        """Record (replace) the token usage of round ``round_index`` of the session's current send."""
        prompt, completion = prompt_tokens or 0, completion_tokens or 0
        usage = RoundUsage(
            round_index=round_index,
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=total_tokens or prompt + completion,
            model=model,
        )
        check_ints(round_index=round_index, prompt_tokens=prompt, completion_tokens=completion)
        await _store(self).append_messages(session_id, [], round_usage=usage)

    async def bump_session_stats(
        self, session_id: str, usage: Mapping[str, Any], *, rounds: int = 0, tool_calls: int = 0
    ) -> None:
        """Add one send to the session statistics: ``rounds``, ``tool_calls`` and the usage dict's
        ``prompt_tokens``, ``completion_tokens``, ``cache_read_tokens``, ``reasoning_tokens``,
        ``total_tokens`` (prompt + completion when absent) and ``calls`` (model calls)."""
        check_ints(rounds=rounds, tool_calls=tool_calls)
        prompt = _count(usage, "prompt_tokens", "input_tokens")
        completion = _count(usage, "completion_tokens", "output_tokens")
        stats = SendAccounting(
            sends=1,
            rounds=rounds,
            llm_calls=_count(usage, "calls"),
            tool_calls=tool_calls,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cache_read_tokens=_count(usage, "cache_read_tokens", "cache_read"),
            reasoning_tokens=_count(usage, "reasoning_tokens", "reasoning"),
            total_tokens=_count(usage, "total_tokens") or prompt + completion,
        )
        await _store(self).append_messages(session_id, [], stats=stats)

    async def prune_timers(
        self,
        session_id: str,
        *,
        statuses: Sequence[str] = ("fired", "cancelled"),
        older_than_ms: int | None = None,
    ) -> int:
        """Delete the session's timers in ``statuses`` (last changed before epoch-ms ``older_than_ms``
        when given); returns how many."""
        check_session_id(session_id)
        check_ints(older_than_ms=older_than_ms)
        wanted = list(dict.fromkeys(statuses))
        unknown = [s for s in wanted if s not in _TIMER_STATUSES]
        if unknown or not wanted:
            raise ConfigError(f"timer statuses must be some of {_TIMER_STATUSES}, got {list(statuses)!r}")
        sql = (
            f"DELETE FROM {self._ctx.t['timers']} WHERE session_id = ? "
            f"AND status IN ({', '.join('?' for _ in wanted)})"
        )
        params: list[Any] = [session_id, *wanted]
        if older_than_ms is not None:
            sql += " AND updated_at < ?"
            params.append(older_than_ms)
        return await self._ctx.db.execute(sql, params)

    async def prune_usage_rounds(
        self, session_id: str, *, keep_last: int | None = None, older_than_ms: int | None = None
    ) -> int:
        """Delete per-round usage rows: those recorded before epoch-ms ``older_than_ms`` and/or all but
        the ``keep_last`` newest. Session statistics are not changed. Returns how many."""
        check_session_id(session_id)
        check_ints(keep_last=keep_last, older_than_ms=older_than_ms)
        table = self._ctx.t["usage_rounds"]
        deleted = 0
        if older_than_ms is not None:
            deleted += await self._ctx.db.execute(
                f"DELETE FROM {table} WHERE session_id = ? AND created_at < ?", (session_id, older_than_ms)
            )
        if keep_last is not None:
            rows = await self._ctx.db.fetchall(
                f"SELECT send_index, round_index FROM {table} WHERE session_id = ? "
                "ORDER BY send_index DESC, round_index DESC",
                (session_id,),
            )
            for row in rows[keep_last:]:
                deleted += await self._ctx.db.execute(
                    f"DELETE FROM {table} WHERE session_id = ? AND send_index = ? AND round_index = ?",
                    (session_id, row["send_index"], row["round_index"]),
                )
        return deleted
