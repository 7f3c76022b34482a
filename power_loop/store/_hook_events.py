"""The hook audit trail: one ``hook_events`` row per hook decision that changed something.

The loop (``AgentLoopConfig.record_hook_events``) collects a send's decisions and hands them to the
append that writes the round (``append_messages(hook_events=...)``), so recording them costs no extra
round trip; what is left when the send ends goes through :meth:`HookEventMethods.record_hook_events`.
Rows are numbered per session (``seq``) under the session's locked state row, and carry the send
index of the append that wrote them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._core import StoreContext, check_ints, check_session_id, dumps, now_ms, storable_text
from ._port import Row, Transaction

if TYPE_CHECKING:
    from ._port import Row, Transaction

__all__ = ["HookEventMethods", "HookEventRepository", "HookEventRow", "NewHookEvent"]

_COLS = (
    "session_id, seq, send_index, round_index, point, hook, decision, changed_json, values_json, created_at"
)


@dataclass(frozen=True, slots=True)
class NewHookEvent:
    """One decision to record: at ``point`` the handler ``hook`` decided ``decision`` (``skip``,
    ``break``, ``short_circuit``, ``continue`` when it overrode an earlier handler, or ``rewrite``),
    rewriting the ctx fields ``changed``; ``values`` (the redacted new values) only in ``full`` mode."""

    round_index: int
    point: str
    hook: str
    decision: str
    changed: tuple[str, ...] = ()
    values: Mapping[str, Any] | None = None
    created_at: int = 0  # epoch ms; 0 = when written


@dataclass(frozen=True, slots=True)
class HookEventRow:
    """A stored hook decision (``seq`` counts from 1 per session; ``created_at`` is epoch ms)."""

    session_id: str
    seq: int
    send_index: int
    round_index: int
    point: str
    hook: str
    decision: str
    changed: tuple[str, ...]
    values: dict[str, Any] | None
    created_at: int


def _row(r: Row) -> HookEventRow:
    changed = r["changed_json"]
    values = r["values_json"]
    return HookEventRow(
        session_id=r["session_id"],
        seq=int(r["seq"]),
        send_index=int(r["send_index"]),
        round_index=int(r["round_index"]),
        point=r["point"],
        hook=r["hook"],
        decision=r["decision"],
        changed=tuple(_loads(changed) or ()),
        values=_loads(values),
        created_at=int(r["created_at"]),
    )


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class HookEventRepository:
    """Writes and reads of ``hook_events``."""

    __slots__ = ("_ctx", "_sql_insert")

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        self._sql_insert = f"INSERT INTO {ctx.t['hook_events']} ({_COLS}) VALUES ({', '.join('?' * 10)})"

    async def insert(
        self, tx: Transaction, session_id: str, send_index: int, events: Sequence[NewHookEvent], now: int
    ) -> None:
        """Write ``events`` in the caller's transaction (the session's state row is locked or updated)."""
        first = await self._ctx.next_id(tx, "hook_events", "seq", session_id)
        params = [
            (
                session_id,
                first + i,
                send_index,
                int(e.round_index),
                e.point,
                storable_text(e.hook),
                e.decision,
                dumps(list(e.changed)) if e.changed else None,
                None if e.values is None else storable_text(dumps(dict(e.values))),
                e.created_at or now,
            )
            for i, e in enumerate(events)
        ]
        await tx.executemany(self._sql_insert, params)

    async def record(self, session_id: str, events: Sequence[NewHookEvent]) -> int:
        """Write ``events`` on their own (one transaction), with the session's current send index."""
        if not events:
            return 0
        ctx = self._ctx

        async def unit(tx: Transaction) -> int:
            state = await ctx.lock_state(tx, session_id)
            await self.insert(tx, session_id, int(state["send_index"]), events, now_ms())
            return len(events)

        return await ctx.db.transact(unit)

    async def list_events(self, session_id: str, send_index: int | None) -> list[HookEventRow]:
        sql = f"SELECT {_COLS} FROM {self._ctx.t['hook_events']} WHERE session_id = ?"
        params: tuple[Any, ...] = (session_id,)
        if send_index is not None:
            sql += " AND send_index = ?"
            params = (session_id, send_index)
        rows = await self._ctx.db.fetchall(sql + " ORDER BY seq", params)
        return [_row(r) for r in rows]


class HookEventMethods:
    """The :class:`~power_loop.store.SessionStore` methods of the hook audit trail."""

    _hook_event_repo: HookEventRepository

    async def record_hook_events(self, session_id: str, events: Sequence[NewHookEvent]) -> int:
        """Store hook decisions outside an append (one transaction); returns how many.

        The loop hands a round's decisions to the append writing it (``append_messages(hook_events=)``)
        and uses this only for what is left when the send ends."""
        check_session_id(session_id)
        return await self._hook_event_repo.record(session_id, events)

    async def list_hook_events(self, session_id: str, *, send_index: int | None = None) -> list[HookEventRow]:
        """The session's recorded hook decisions in order (only send ``send_index``'s when given)."""
        check_session_id(session_id)
        check_ints(send_index=send_index)
        return await self._hook_event_repo.list_events(session_id, send_index)
