"""The send hot path: :meth:`AppendMixin.append_messages` and the three ways it advances the state.

1. **Optimistic**, on every dialect: a store remembers the state row it last committed for each
   session (:class:`~power_loop.store._core.KnownState`). The new state is computed in Python and
   written by ONE ``UPDATE … WHERE state_version = ?`` that also locks the row. One row matched
   proves the memory exact, so nothing is read; none matched (another writer, a lost lease, a closed
   session) wrote nothing, and the append goes on with a reading path in the same transaction.
2. ``UPDATE … RETURNING`` where the dialect supports it (PostgreSQL, SQLite ≥ 3.35): lock, advance
   and read the row in one statement, then write the pending tool-call blob if it changed.
3. Lock, then update (MySQL, dialects without ``RETURNING``): ``SELECT … FOR UPDATE`` first.

All three write the same rows and raise the same errors (tests/store/test_append_paths.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError, HistoryInvariantError, SessionNotFoundError
from ._core import KnownState, dumps, now_ms
from ._history import advance_pending
from ._lease import LeaseMixin, LeaseToken
from ._port import Row, Transaction
from ._rows import KEEP, AppendResult, NewMessage, RoundUsage, SendAccounting, decode_json

__all__ = ["AppendMixin", "prepare_message"]

_Appended = tuple[AppendResult, KnownState]


def prepare_message(msg: NewMessage) -> tuple[Any, ...]:
    """Serialise one message once: the column values after (session_id, seq)."""
    content = msg.content
    as_json = 0
    # Content parts are stored as JSON, and so is text containing NUL (PostgreSQL TEXT refuses it).
    if content is not None and (not isinstance(content, str) or "\x00" in content):
        content, as_json = dumps(content), 1
    return (
        msg.role,
        msg.name,
        content,
        as_json,
        None if msg.tool_calls is None else dumps(msg.tool_calls),
        msg.tool_call_id,
        msg.round_index,
        "active",
        dumps(msg.meta) if msg.meta else None,
    )


class AppendMixin(LeaseMixin):
    """:meth:`append_messages` and the append machinery other writers of messages reuse."""

    async def append_messages(
        self,
        session_id: str,
        messages: Sequence[NewMessage],
        *,
        begin_send: bool = False,
        pending_interactions: Any = KEEP,
        consume_follow_ups: Sequence[int] = (),
        stats: SendAccounting | None = None,
        round_usage: RoundUsage | None = None,
        lease: LeaseToken | None = None,
    ) -> AppendResult:
        """Append messages with contiguous seqs, in ONE transaction with everything that goes with them.

        ``begin_send`` starts a new send (``send_index + 1``). The pending tool-call blob is kept up
        to date; a write that would break the history invariant raises
        :class:`HistoryInvariantError` and writes nothing. ``consume_follow_ups`` deletes those queued
        follow-ups (all must still exist: exactly-once delivery), ``stats`` accumulates into the
        session statistics and ``round_usage`` records one round's token usage.

        With ``lease`` (from :meth:`acquire_lease`) the write is fenced: unless the session's lease
        still has that token's epoch and holder it raises :class:`LeaseLostError` and writes nothing.
        """
        if lease is not None and lease.session_id != session_id:
            raise ConfigError(f"the lease is for session {lease.session_id}, not {session_id}")
        prepared = [prepare_message(m) for m in messages]
        consume = list(consume_follow_ups)
        max_round = max((m.round_index for m in messages if m.round_index is not None), default=None)
        known = self._known.get(session_id)

        async def unit(tx: Transaction) -> _Appended:
            if known is not None:
                done = await self._append_known(
                    tx,
                    session_id,
                    known,
                    messages,
                    prepared,
                    begin_send,
                    pending_interactions,
                    max_round,
                    consume,
                    stats,
                    round_usage,
                    lease,
                )
                if done is not None:
                    return done
            if self._returning:
                state, now = await self._advance_state(
                    tx, session_id, messages, begin_send, pending_interactions, max_round, lease
                )
                return await self._append_advanced(
                    tx,
                    session_id,
                    state,
                    now,
                    messages,
                    prepared,
                    pending_interactions,
                    consume,
                    stats,
                    round_usage,
                )
            state = await self._lock_state(tx, session_id)
            return await self._append_locked(
                tx,
                session_id,
                state,
                messages,
                prepared,
                begin_send,
                pending_interactions,
                max_round,
                consume,
                stats,
                round_usage,
                lease,
            )

        try:
            result, after = await self._db.transact(unit)
        except BaseException:
            # Whatever failed, the next append reads the row again.
            self._known.pop(session_id, None)
            raise
        self._remember(session_id, after)  # only now: the state it describes is committed
        return result

    async def _append_known(
        self,
        tx: Transaction,
        sid: str,
        known: KnownState,
        messages: Sequence[NewMessage],
        prepared: list[tuple[Any, ...]],
        begin_send: bool,
        interactions: Any,
        max_round: int | None,
        consume: Sequence[int],
        stats: SendAccounting | None,
        usage: RoundUsage | None,
        lease: LeaseToken | None,
    ) -> _Appended | None:
        """The optimistic append from the remembered state row; ``None`` (having written nothing)
        when that row is no longer the current one, or when the write would be refused: the
        reading path then decides on the row as it really is."""
        first = known.next_seq
        send_index = known.send_index + (1 if begin_send else 0)
        pending_text = known.pending_json
        old = decode_json(pending_text, "session_state", f"session_id={sid}") if pending_text else None
        try:
            pending, changed = advance_pending(
                old, messages, first_seq=first, send_index=send_index, interactions=interactions
            )
        except HistoryInvariantError:
            return None
        if changed:
            pending_text = dumps(pending) if pending is not None else None
        next_seq = first + len(prepared)
        round_index = known.round_index if max_round is None else max(known.round_index, max_round)
        now = now_ms()
        params = (next_seq, send_index, round_index, pending_text, now, sid, known.version)
        if lease is None:
            matched = await tx.execute(self._sql_update_known, params)
        else:
            matched = await tx.execute(
                self._sql_update_known_leased, (*params, sid, lease.epoch, lease.holder)
            )
        if not matched:
            return None
        if prepared:
            await tx.executemany(
                self._sql_insert_message,
                [(sid, first + i, *p, send_index, now) for i, p in enumerate(prepared)],
            )
        await self._append_extras(tx, sid, send_index, now, consume, stats, usage)
        waiting = known.follow_ups_waiting - len(consume)
        return (
            AppendResult(first, next_seq - 1, next_seq, send_index, pending, known.prompt_version, waiting),
            KnownState(
                known.version + 1,
                next_seq,
                send_index,
                round_index,
                pending_text,
                known.prompt_version,
                waiting,
            ),
        )

    async def _advance_state(
        self,
        tx: Transaction,
        sid: str,
        messages: Sequence[NewMessage],
        begin_send: bool,
        interactions: Any,
        max_round: int | None,
        lease: LeaseToken | None,
    ) -> tuple[Row, int]:
        """Lock the state row, reserve the messages' seqs, bump send/round and return the new row
        (and the timestamp written): one ``UPDATE … RETURNING`` instead of a locking read + update."""
        now = now_ms()
        params: tuple[Any, ...] = (len(messages), 1 if begin_send else 0, max_round, max_round, now, sid)
        if lease is None:
            rows = await tx.fetchall(self._sql_advance, params)
        else:
            rows = await tx.fetchall(self._sql_advance_leased, (*params, sid, lease.epoch, lease.holder))
        if rows:
            return rows[0], now
        # No row: an unknown session or (only with a lease) a failed fence. Rare, so read to tell,
        # and report as the locking path does: a write breaking the history invariant says so first.
        state = None if lease is None else await tx.fetchone(self._sql_get_state, (sid,))
        if lease is None or state is None:
            raise SessionNotFoundError(sid)
        text = state["pending_json"]
        advance_pending(
            decode_json(text, "session_state", f"session_id={sid}") if text else None,
            messages,
            first_seq=int(state["next_seq"]),
            send_index=int(state["send_index"]) + (1 if begin_send else 0),
            interactions=interactions,
        )
        raise await self._lease_lost(lease, tx)

    async def _append_advanced(
        self,
        tx: Transaction,
        sid: str,
        state: Row,
        now: int,
        messages: Sequence[NewMessage],
        prepared: list[tuple[Any, ...]],
        interactions: Any,
        consume: Sequence[int],
        stats: SendAccounting | None,
        usage: RoundUsage | None,
    ) -> _Appended:
        """The rest of an append after :meth:`_advance_state` (same writes as :meth:`_append_locked`).

        A write breaking the history invariant raises here, and the transaction's rollback undoes the
        advance too, so nothing is written."""
        next_seq = int(state["next_seq"])
        first = next_seq - len(prepared)
        send_index = int(state["send_index"])
        pending_text = state["pending_json"]
        old = decode_json(pending_text, "session_state", f"session_id={sid}") if pending_text else None
        pending, changed = advance_pending(
            old, messages, first_seq=first, send_index=send_index, interactions=interactions
        )
        if prepared:
            await tx.executemany(
                self._sql_insert_message,
                [(sid, first + i, *p, send_index, now) for i, p in enumerate(prepared)],
            )
        if changed:  # tool calls opened or answered, interactions set: plain turns skip this
            pending_text = dumps(pending) if pending is not None else None
            await tx.execute(self._sql_set_pending, (pending_text, sid))
        await self._append_extras(tx, sid, send_index, now, consume, stats, usage)
        prompt_version = int(state["prompt_version"])
        waiting = int(state["follow_ups_waiting"]) - len(consume)
        return (
            AppendResult(first, next_seq - 1, next_seq, send_index, pending, prompt_version, waiting),
            KnownState(
                int(state["state_version"]),
                next_seq,
                send_index,
                int(state["round_index"]),
                pending_text,
                prompt_version,
                waiting,
            ),
        )

    async def _append_locked(
        self,
        tx: Transaction,
        sid: str,
        state: Row,
        messages: Sequence[NewMessage],
        prepared: list[tuple[Any, ...]],
        begin_send: bool,
        interactions: Any,
        max_round: int | None,
        consume: Sequence[int],
        stats: SendAccounting | None,
        usage: RoundUsage | None,
        lease: LeaseToken | None = None,
    ) -> _Appended:
        """An append on the row :meth:`_lock_state` read (its ``state_version`` included)."""
        first = int(state["next_seq"])
        send_index = int(state["send_index"]) + (1 if begin_send else 0)
        pending_text = state["pending_json"]
        old = decode_json(pending_text, "session_state", f"session_id={sid}") if pending_text else None
        pending, changed = advance_pending(
            old, messages, first_seq=first, send_index=send_index, interactions=interactions
        )
        if changed:
            pending_text = dumps(pending) if pending is not None else None
        now = now_ms()
        if prepared:
            await tx.executemany(
                self._sql_insert_message,
                [(sid, first + i, *p, send_index, now) for i, p in enumerate(prepared)],
            )
        next_seq = first + len(prepared)
        round_index = int(state["round_index"])
        if max_round is not None and max_round > round_index:
            round_index = max_round
        if lease is None:
            await tx.execute(
                self._sql_update_state, (next_seq, send_index, round_index, pending_text, now, sid)
            )
        elif not await tx.execute(
            self._sql_update_state_leased,
            (next_seq, send_index, round_index, pending_text, now, sid, sid, lease.epoch, lease.holder),
        ):
            raise await self._lease_lost(lease, tx)
        await self._append_extras(tx, sid, send_index, now, consume, stats, usage)
        prompt_version = int(state["prompt_version"])
        waiting = int(state["follow_ups_waiting"]) - len(consume)
        return (
            AppendResult(first, next_seq - 1, next_seq, send_index, pending, prompt_version, waiting),
            KnownState(
                int(state["state_version"]) + 1,
                next_seq,
                send_index,
                round_index,
                pending_text,
                prompt_version,
                waiting,
            ),
        )

    async def _append_extras(
        self,
        tx: Transaction,
        sid: str,
        send_index: int,
        now: int,
        consume: Sequence[int],
        stats: SendAccounting | None,
        usage: RoundUsage | None,
    ) -> None:
        """What an append writes besides messages and state: consumed follow-ups, statistics, usage."""
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
                    now,
                ),
            )
