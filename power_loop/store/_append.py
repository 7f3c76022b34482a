"""The send hot path: one :class:`AppendRequest`, written by one of three paths in one transaction.

1. **Optimistic**, on every dialect: a store remembers the state row it last committed for each
   session (:class:`~power_loop.store._core.KnownState`, the request's ``expected``). The new state
   is computed in Python and written by ONE ``UPDATE … WHERE state_version = ?`` that also locks the
   row. One row matched proves the memory exact, so nothing is read; none matched (another writer, a
   lost lease, a closed session) wrote nothing, and the append goes on with a reading path in the
   same transaction.
2. ``UPDATE … RETURNING`` where the dialect supports it (PostgreSQL, SQLite ≥ 3.35): lock, advance
   and read the row in one statement, then write the pending tool-call blob if it changed.
3. Lock, then update (MySQL, dialects without ``RETURNING``): ``SELECT … FOR UPDATE`` first.

All three write the same rows and raise the same errors (tests/store/test_append_paths.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, HistoryInvariantError, SessionNotFoundError
from ._append_request import AppendRequest
from ._attachments import AttachmentRepository
from ._core import KnownState, StoreContext, dumps, now_ms
from ._history import advance_pending, pending_ids
from ._hook_events import HookEventRepository, NewHookEvent
from ._lease import LeaseRepository, LeaseToken, lease_fence
from ._messages import MESSAGE_COLS
from ._port import Row, Transaction
from ._rows import AppendResult, NewMessage, RoundUsage, SendAccounting, decode_pending
from ._tool_calls import aborted_text, logged_states

if TYPE_CHECKING:
    from ._port import Row, Transaction

__all__ = ["Appender"]

_Appended = tuple[AppendResult, KnownState]
# What the advancing UPDATE returns: the state row after the update.
_ADVANCE_RETURNING = (
    " RETURNING next_seq, send_index, round_index, prompt_version, follow_ups_waiting, pending_json, "
    "state_version"
)


def _outcome(first: int, pending: dict[str, Any] | None, after: KnownState) -> _Appended:
    """The append's result, and the state row it leaves (to remember once committed)."""
    next_seq = after.next_seq
    return (
        AppendResult(
            first,
            next_seq - 1,
            next_seq,
            after.send_index,
            pending,
            after.prompt_version,
            after.follow_ups_waiting,
        ),
        after,
    )


#: The ``usage_rounds`` columns an append writes besides its key (in the order the values are passed).
_USAGE_VALUE_COLS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
    "model",
    "duration_ms",
    "attempts",
)


class Appender:
    """Writes messages: :meth:`append` (the three paths) and :meth:`abort_pending`."""

    __slots__ = (
        "_attachments",
        "_ctx",
        "_hook_events",
        "_leases",
        "_returning",
        "_sql_advance",
        "_sql_advance_leased",
        "_sql_bump_stats",
        "_sql_consume",
        "_sql_consumed",
        "_sql_insert",
        "_sql_set_pending",
        "_sql_update_known",
        "_sql_update_known_leased",
        "_sql_update_state",
        "_sql_update_state_leased",
        "_sql_usage",
    )

    def __init__(self, ctx: StoreContext, leases: LeaseRepository) -> None:
        self._ctx = ctx
        self._leases = leases
        t = ctx.t
        state = t["session_state"]
        # Every transaction writing session_state bumps state_version once (see KnownState); the
        # pending and follow-up updates below run in a transaction whose advance already did.
        update = (
            f"UPDATE {state} SET next_seq = ?, send_index = ?, round_index = ?, "
            "pending_json = ?, updated_at = ?, state_version = state_version + 1 WHERE session_id = ?"
        )
        self._sql_update_state = update
        # The optimistic append: the whole new state, written only over the remembered version.
        self._sql_update_known = update + " AND state_version = ?"
        # Where the dialect supports it, an append locks, advances and reads the state row in ONE
        # statement (see _advance_state).
        self._returning = bool(getattr(ctx.db.dialect, "supports_update_returning", False))
        advance = (
            f"UPDATE {state} SET next_seq = next_seq + ?, send_index = send_index + ?, "
            "round_index = CASE WHEN ? > round_index THEN ? ELSE round_index END, updated_at = ?, "
            "state_version = state_version + 1 WHERE session_id = ?"
        )
        self._sql_advance = advance + _ADVANCE_RETURNING
        # The fenced variants. The plain update runs after the state row is locked, so it sees any
        # takeover committed before the lock; the advancing UPDATE … RETURNING and the optimistic
        # version-checked UPDATE are the lock, and see any takeover committed before they began (a
        # takeover committing later, or while it waits for the row, is ordered after the write, as
        # one committing just after a plain update is).
        fence = lease_fence(t)
        self._sql_update_state_leased = self._sql_update_state + fence
        self._sql_update_known_leased = self._sql_update_known + fence
        self._sql_advance_leased = advance + fence + _ADVANCE_RETURNING
        self._sql_set_pending = f"UPDATE {state} SET pending_json = ? WHERE session_id = ?"
        self._attachments = AttachmentRepository(ctx)
        self._hook_events = HookEventRepository(ctx)
        self._sql_insert = f"INSERT INTO {t['messages']} ({MESSAGE_COLS}) VALUES ({', '.join('?' * 13)})"
        self._sql_bump_stats = (
            f"UPDATE {t['session_stats']} SET sends = sends + ?, rounds = rounds + ?, "
            "llm_calls = llm_calls + ?, tool_calls = tool_calls + ?, prompt_tokens = prompt_tokens + ?, "
            "completion_tokens = completion_tokens + ?, cache_read_tokens = cache_read_tokens + ?, "
            "reasoning_tokens = reasoning_tokens + ?, total_tokens = total_tokens + ?, "
            "first_send_at = COALESCE(first_send_at, ?), last_send_at = COALESCE(?, last_send_at), "
            "updated_at = ? WHERE session_id = ?"
        )
        self._sql_usage = ctx.db.dialect.upsert(
            t["usage_rounds"],
            ("session_id", "send_index", "round_index"),
            _USAGE_VALUE_COLS,
            insert_only_cols=("created_at",),
        )
        self._sql_consume = f"DELETE FROM {t['follow_ups']} WHERE session_id = ? AND item_id = ?"
        self._sql_consumed = (
            f"UPDATE {state} SET follow_ups_waiting = follow_ups_waiting - ? WHERE session_id = ?"
        )

    async def append(
        self,
        session_id: str,
        messages: Sequence[NewMessage],
        *,
        begin_send: bool,
        pending_interactions: Any,
        consume_follow_ups: Sequence[int],
        stats: SendAccounting | None,
        round_usage: RoundUsage | None,
        lease: LeaseToken | None,
        hook_events: Sequence[NewHookEvent] = (),
    ) -> AppendResult:
        if lease is not None and lease.session_id != session_id:
            raise ConfigError(f"the lease is for session {lease.session_id}, not {session_id}")
        known = self._ctx.known
        # Positional: this runs on every append, and keywords cost a frozen dataclass extra time.
        req = AppendRequest(
            session_id,
            messages,
            begin_send,
            pending_interactions,
            consume_follow_ups,
            stats,
            round_usage,
            lease,
            known.get(session_id),
            hook_events,
        )
        try:
            result, after = await self._ctx.db.transact(partial(self._write, req))
        except BaseException:
            # Whatever failed, the next append reads the row again.
            known.pop(session_id, None)
            raise
        known.remember(session_id, after)  # only now: the state it describes is committed
        return result

    async def _write(self, req: AppendRequest, tx: Transaction) -> _Appended:
        """The unit of work of :meth:`append`: the optimistic path, else a reading one."""
        if req.expected is not None:
            done = await self._append_known(tx, req, req.expected)
            if done is not None:
                return done
        if self._returning:
            state, now = await self._advance_state(tx, req)
            return await self._append_advanced(tx, req, state, now)
        return await self.append_locked(tx, req, await self._ctx.lock_state(tx, req.session_id))

    async def abort_pending(self, session_id: str, *, reason: str) -> int:
        ctx = self._ctx

        async def unit(tx: Transaction) -> int:
            state = await ctx.lock_state(tx, session_id)
            text = state["pending_json"]
            pending = decode_pending(text, session_id)
            if not pending:
                return 0
            names = {
                str(tc.get("id")): (tc.get("function") or {}).get("name") for tc in pending["tool_calls"]
            }
            seq = pending.get("assistant_seq")
            logged = {} if seq is None else await logged_states(tx, ctx.t["tool_call_log"], session_id, seq)
            msgs = [
                NewMessage(
                    role="tool",
                    content=aborted_text(reason, logged.get(tc_id)),
                    name=names.get(tc_id),
                    tool_call_id=tc_id,
                    round_index=pending.get("round_index"),
                    meta={"aborted": True},
                )
                for tc_id in pending_ids(pending)
            ]
            await self.append_locked(tx, AppendRequest(session_id, msgs), state)
            return len(msgs)

        ctx.known.pop(session_id, None)  # rare: the next append reads the row again
        return await ctx.db.transact(unit)

    async def _insert_rows(
        self, tx: Transaction, req: AppendRequest, first: int, send_index: int, now: int
    ) -> None:
        if req.rows:
            await tx.executemany(self._sql_insert, self._insert_params(req, first, send_index, now))
        if req.blobs:
            await self._attachments.put(tx, req.session_id, req.blobs, now)

    def _insert_params(
        self, req: AppendRequest, first: int, send_index: int, now: int
    ) -> list[tuple[Any, ...]]:
        sid = req.session_id
        return [(sid, first + i, *p, send_index, now) for i, p in enumerate(req.rows)]

    async def _append_known(self, tx: Transaction, req: AppendRequest, known: KnownState) -> _Appended | None:
        """The optimistic append from the remembered state row; ``None`` (having written nothing)
        when that row is no longer the current one, or when the write would be refused: the
        reading path then decides on the row as it really is."""
        sid = req.session_id
        first = known.next_seq
        send_index = known.send_index + (1 if req.begin_send else 0)
        pending_text = known.pending_json
        old = decode_pending(pending_text, sid)
        try:
            pending, changed = advance_pending(
                old, req.messages, first_seq=first, send_index=send_index, interactions=req.interactions
            )
        except HistoryInvariantError:
            return None
        if changed:
            pending_text = dumps(pending) if pending is not None else None
        next_seq = first + len(req.rows)
        max_round = req.max_round
        round_index = known.round_index if max_round is None else max(known.round_index, max_round)
        now = now_ms()
        params = (next_seq, send_index, round_index, pending_text, now, sid, known.version)
        lease = req.lease
        if lease is None:
            matched = await tx.execute(self._sql_update_known, params)
        else:
            matched = await tx.execute(
                self._sql_update_known_leased, (*params, sid, lease.epoch, lease.holder)
            )
        if not matched:
            return None
        await self._insert_rows(tx, req, first, send_index, now)
        await self._append_extras(tx, req, send_index, now)
        waiting = known.follow_ups_waiting - len(req.consume)
        after = KnownState(
            known.version + 1, next_seq, send_index, round_index, pending_text, known.prompt_version, waiting
        )
        return _outcome(first, pending, after)

    async def _advance_state(self, tx: Transaction, req: AppendRequest) -> tuple[Row, int]:
        """Lock the state row, reserve the messages' seqs, bump send/round and return the new row
        (and the timestamp written): one ``UPDATE … RETURNING`` instead of a locking read + update."""
        sid, lease, max_round = req.session_id, req.lease, req.max_round
        now = now_ms()
        params: tuple[Any, ...] = (
            len(req.messages),
            1 if req.begin_send else 0,
            max_round,
            max_round,
            now,
            sid,
        )
        if lease is None:
            rows = await tx.fetchall(self._sql_advance, params)
        else:
            rows = await tx.fetchall(self._sql_advance_leased, (*params, sid, lease.epoch, lease.holder))
        if rows:
            return rows[0], now
        # No row: an unknown session or (only with a lease) a failed fence. Rare, so read to tell,
        # and report as the locking path does: a write breaking the history invariant says so first.
        # A fenced-out writer learns that first: whatever it meant to write (e.g. results for calls
        # the new holder already answered) is moot, and LeaseLostError is what it must handle.
        state = None if lease is None else await tx.fetchone(self._ctx.sql_get_state, (sid,))
        if lease is None or state is None:
            raise SessionNotFoundError(sid)
        raise await self._leases.lost(lease, tx)

    async def _append_advanced(self, tx: Transaction, req: AppendRequest, state: Row, now: int) -> _Appended:
        """The rest of an append after :meth:`_advance_state` (same writes as :meth:`append_locked`).

        A write breaking the history invariant raises here, and the transaction's rollback undoes the
        advance too, so nothing is written."""
        sid = req.session_id
        next_seq = int(state["next_seq"])
        first = next_seq - len(req.rows)
        send_index = int(state["send_index"])
        pending_text = state["pending_json"]
        old = decode_pending(pending_text, sid)
        pending, changed = advance_pending(
            old, req.messages, first_seq=first, send_index=send_index, interactions=req.interactions
        )
        await self._insert_rows(tx, req, first, send_index, now)
        if changed:  # tool calls opened or answered, interactions set: plain turns skip this
            pending_text = dumps(pending) if pending is not None else None
            await tx.execute(self._sql_set_pending, (pending_text, sid))
        await self._append_extras(tx, req, send_index, now)
        waiting = int(state["follow_ups_waiting"]) - len(req.consume)
        round_index = int(state["round_index"])
        prompt_version = int(state["prompt_version"])
        version = int(state["state_version"])
        after = KnownState(version, next_seq, send_index, round_index, pending_text, prompt_version, waiting)
        return _outcome(first, pending, after)

    async def append_locked(self, tx: Transaction, req: AppendRequest, state: Row) -> _Appended:
        """An append on the row :meth:`StoreContext.lock_state` read (its ``state_version`` included)."""
        sid = req.session_id
        first = int(state["next_seq"])
        send_index = int(state["send_index"]) + (1 if req.begin_send else 0)
        pending_text = state["pending_json"]
        old = decode_pending(pending_text, sid)
        try:
            pending, changed = advance_pending(
                old, req.messages, first_seq=first, send_index=send_index, interactions=req.interactions
            )
        except HistoryInvariantError:
            await self._raise_if_fenced(tx, req.lease)
            raise
        if changed:
            pending_text = dumps(pending) if pending is not None else None
        now = now_ms()
        await self._insert_rows(tx, req, first, send_index, now)
        next_seq = first + len(req.rows)
        round_index = int(state["round_index"])
        if req.max_round is not None and req.max_round > round_index:
            round_index = req.max_round
        params = (next_seq, send_index, round_index, pending_text, now, sid)
        lease = req.lease
        if lease is None:
            await tx.execute(self._sql_update_state, params)
        elif not await tx.execute(self._sql_update_state_leased, (*params, sid, lease.epoch, lease.holder)):
            raise await self._leases.lost(lease, tx)
        await self._append_extras(tx, req, send_index, now)
        waiting = int(state["follow_ups_waiting"]) - len(req.consume)
        prompt_version = int(state["prompt_version"])
        version = int(state["state_version"]) + 1
        after = KnownState(version, next_seq, send_index, round_index, pending_text, prompt_version, waiting)
        return _outcome(first, pending, after)

    async def _raise_if_fenced(self, tx: Transaction, lease: LeaseToken | None) -> None:
        """Raise `LeaseLostError` when ``lease`` is no longer current: a fenced-out writer's refused
        write is reported as the lost lease, not as whatever else was wrong with it."""
        if lease is None:
            return
        lost = await self._leases.lost(lease, tx)
        if lost.current_epoch != lease.epoch or lost.current_holder != lease.holder:
            raise lost

    async def _append_extras(self, tx: Transaction, req: AppendRequest, send_index: int, now: int) -> None:
        """What an append writes besides messages and state: consumed follow-ups, statistics, usage,
        hook decisions."""
        sid, consume, stats, usage = req.session_id, req.consume, req.stats, req.usage
        if req.hook_events:
            await self._hook_events.insert(tx, sid, send_index, req.hook_events, now)
        for item_id in consume:
            if not await tx.execute(self._sql_consume, (sid, item_id)):
                raise HistoryInvariantError(
                    f"follow-up {item_id} of session {sid} was already delivered (or never queued)"
                )
        if consume:
            await tx.execute(self._sql_consumed, (len(consume), sid))
        if stats is not None:
            stamp = now if stats.sends else None
            await tx.execute(
                self._sql_bump_stats,
                (
                    stats.sends,
                    stats.rounds,
                    stats.llm_calls,
                    stats.tool_calls,
                    stats.prompt_tokens,
                    stats.completion_tokens,
                    stats.cache_read_tokens,
                    stats.reasoning_tokens,
                    stats.total_tokens,
                    stamp,
                    stamp,
                    now,
                    sid,
                ),
            )
        if usage is not None:
            await tx.execute(
                self._sql_usage,
                (
                    sid,
                    send_index,
                    usage.round_index,
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    usage.total_tokens,
                    usage.cache_read_tokens,
                    usage.reasoning_tokens,
                    usage.model,
                    usage.duration_ms,
                    usage.attempts,
                    now,
                ),
            )
