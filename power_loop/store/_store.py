"""`SessionStore`: the one persistence facade, over small repositories written against the storage port.

Each method hands over, in one line, to the repository owning the SQL of its concern (sessions,
messages, appends, compaction, leases, key/value state, notes, timers, follow-ups, statistics,
archives); they share one :class:`~power_loop.store._core.StoreContext` (database, table names, the
handle's remembered state rows). Every logical step is one transaction. The send hot path is
:meth:`SessionStore.append_messages` (one transaction = one thread hop on SQLite; see ``_append``)
and :meth:`SessionStore.load_active_messages` (one query). The tool-call history invariant is
enforced on every write (see ``_history``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ._append import Appender
from ._archive import ArchiveRepository
from ._background import BackgroundTaskMethods, BackgroundTaskRepository
from ._capabilities import DatabaseMaintenance
from ._compaction import CompactionRepository
from ._core import StoreContext, check_ints, check_session_id
from ._follow_ups import FollowUpMethods, FollowUpRepository
from ._hook_events import HookEventMethods, HookEventRepository, NewHookEvent
from ._inbox import InboxRepository
from ._lease import LeaseRepository, LeaseToken
from ._messages import MessageRepository
from ._notes import NoteRepository
from ._rows import (
    KEEP,
    AppendResult,
    CompactionRow,
    MessageRow,
    MessageState,
    NewMessage,
    NoteRow,
    RoundUsage,
    SendAccounting,
    SessionKind,
    SessionRow,
    SessionStateRow,
    SessionStatsRow,
    SubagentLifecycle,
    UsageRoundRow,
)
from ._schema import CURRENT_SCHEMA_VERSION, SchemaPolicy
from ._sessions import MAX_SPAWN_DEPTH, SessionRepository
from ._state import RuntimeStateRepository, SharedStateRepository
from ._stats import StatsRepository
from ._store_compat import (
    compaction_note,
    connect_store_db,
    published_pending,
    require_sqlite,
    same_pending,
    seqs_of,
)
from ._store_published import PublishedStoreMethods
from ._timer_methods import TimerMethods
from ._timers import TimerRepository
from ._tool_calls import ToolCallMethods, ToolCallRepository
from ._workflows import WorkflowJournalMethods, WorkflowJournalRepository

if TYPE_CHECKING:
    from ._port import Database

__all__ = ["SessionStore"]

_S = TypeVar("_S", bound="SessionStore")


class SessionStore(
    HookEventMethods,
    TimerMethods,
    BackgroundTaskMethods,
    WorkflowJournalMethods,
    ToolCallMethods,
    FollowUpMethods,
    PublishedStoreMethods,
):
    """Durable sessions, messages and per-session state over any :class:`Database`.

    Usually obtained from :func:`power_loop.store.open_store`; ``SessionStore(db, table_prefix=…)``
    wraps an already-open database whose schema is in place. ``t`` maps each logical table name to
    its prefixed name.
    """

    def __init__(
        self, db: Database, *, table_prefix: str = "pl_", max_spawn_depth: int = MAX_SPAWN_DEPTH
    ) -> None:
        ctx = StoreContext(db, table_prefix)
        self._db = db
        self._closed = False
        self.table_prefix = ctx.table_prefix
        self.t = ctx.t
        self._ctx = ctx
        self._sessions = sessions = SessionRepository(ctx, max_spawn_depth=max_spawn_depth)
        self._leases = leases = LeaseRepository(ctx, sessions)
        self._appender = appender = Appender(ctx, leases)
        self._messages = MessageRepository(ctx, sessions)
        self._compaction = CompactionRepository(ctx, appender)
        self._runtime_state = RuntimeStateRepository(ctx)
        self._shared_state = SharedStateRepository(ctx)
        self._notes = NoteRepository(ctx)
        self._timers = TimerRepository(ctx)
        self._follow_ups = follow_ups = FollowUpRepository(ctx)
        self.inbox = InboxRepository(ctx, appender, follow_ups)  # ids stored once (send(message_id=))
        self._tool_calls = ToolCallRepository(ctx)
        self._stats = StatsRepository(ctx)
        self._archive = ArchiveRepository(ctx, sessions)
        self._workflows = WorkflowJournalRepository(ctx)
        self._background = BackgroundTaskRepository(ctx)
        self._hook_event_repo = HookEventRepository(ctx)  # list/record_hook_events (HookEventMethods)
        self._maintenance = DatabaseMaintenance(db)

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        table_prefix: str = "pl_",
        schema: SchemaPolicy | str | None = None,
        max_spawn_depth: int = MAX_SPAWN_DEPTH,
        read_only: bool = False,
    ) -> SessionStore:
        """A store on the database ``dsn`` names, schema provisioned (what ``open_store`` does)."""
        db = await connect_store_db(dsn, table_prefix=table_prefix, schema=schema, read_only=read_only)
        return cls(db, table_prefix=table_prefix, max_spawn_depth=max_spawn_depth)

    @classmethod
    async def open(
        cls,
        path: str = ":memory:",
        *,
        max_spawn_depth: int = MAX_SPAWN_DEPTH,
        table_prefix: str = "pl_",
        schema: SchemaPolicy | str | None = None,
        create_schema: bool | None = None,
    ) -> SessionStore:
        """The published opener: a SQLite path (or ``:memory:``); ``create_schema`` is its old bool."""
        require_sqlite(path)
        if schema is None and create_schema is not None:
            schema = SchemaPolicy.AUTO_CREATE if create_schema else SchemaPolicy.VERIFY
        return await cls.connect(
            path, table_prefix=table_prefix, schema=schema, max_spawn_depth=max_spawn_depth
        )

    # -- properties and lifecycle ---------------------------------------------------------------

    @property
    def db(self) -> Database:
        """The underlying :class:`Database` (shared by every store opened on it)."""
        return self._db

    @property
    def schema_version(self) -> int:
        """The schema version this code writes (:data:`CURRENT_SCHEMA_VERSION`)."""
        return CURRENT_SCHEMA_VERSION

    @property
    def max_spawn_depth(self) -> int:
        """How deep sub-agent sessions may nest (an int >= 1; settable)."""
        return self._sessions.max_spawn_depth

    @max_spawn_depth.setter
    def max_spawn_depth(self, value: int) -> None:
        self._sessions.max_spawn_depth = value

    async def checkpoint(self, *, mode: str = "TRUNCATE") -> None:
        """Fold the SQLite WAL into the main file; a no-op on server databases."""
        await self._maintenance.checkpoint(mode=mode)

    async def vacuum(self, *, incremental: bool = True) -> None:
        """Return free SQLite pages to the file system; a no-op on server databases."""
        await self._maintenance.vacuum(incremental=incremental)

    async def backup(self, dest_path: str) -> None:
        """Write a consistent copy of a SQLite database to ``dest_path``."""
        await self._maintenance.backup(dest_path)

    async def close(self) -> None:
        """Close the underlying database (idempotent)."""
        if not self._closed:
            self._closed = True
            await self._db.close()

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- sessions -------------------------------------------------------------------------------

    async def create_session(
        self,
        *,
        system_prompt: str | None = None,
        model: str | None = None,
        config: Mapping[str, Any] | None = None,
        parent_session_id: str | None = None,
        spawn_tool_call_id: str | None = None,
        kind: SessionKind | str = SessionKind.ROOT,
        lifecycle: SubagentLifecycle | str = SubagentLifecycle.EPHEMERAL,
        metadata: Mapping[str, Any] | None = None,
        session_id: str | None = None,
    ) -> str:
        """Create a session and return its id (``"sess_" + 24 hex`` unless given).

        With ``parent_session_id`` the session is a sub-agent one level deeper than its parent;
        deeper than ``max_spawn_depth`` raises :class:`ConfigError`.
        """
        return await self._sessions.create(
            system_prompt=system_prompt,
            model=model,
            config=config,
            parent_session_id=parent_session_id,
            spawn_tool_call_id=spawn_tool_call_id,
            kind=kind,
            lifecycle=lifecycle,
            metadata=metadata,
            session_id=session_id,
        )

    async def get_session(self, session_id: str) -> SessionRow | None:
        """The session's row, or ``None`` for an unknown id."""
        check_session_id(session_id)
        return await self._sessions.get(session_id)

    async def list_sessions(self, *, limit: int = 100, offset: int = 0) -> list[SessionRow]:
        """Sessions, oldest first."""
        check_ints(limit=limit, offset=offset)
        return await self._sessions.list_sessions(limit=limit, offset=offset)

    async def list_children(self, parent_session_id: str) -> list[SessionRow]:
        """The direct sub-agent sessions of a session, oldest first."""
        check_session_id(parent_session_id)
        return await self._sessions.list_children(parent_session_id)

    async def close_session(self, session_id: str, *, cascade: bool = True) -> int:
        """Delete a session and every row it owns; return how many sessions were deleted.

        With ``cascade`` its ephemeral and linked sub-agents (recursively) go too; detached ones (and,
        without ``cascade``, all children) survive with no parent. Unknown ids delete nothing.
        """
        check_session_id(session_id)
        return len(await self._sessions.close(session_id, cascade=cascade))

    async def close_session_tree(self, session_id: str, *, cascade: bool = True) -> list[str]:
        """:meth:`close_session`, returning the ids of the deleted sessions (the session first)."""
        check_session_id(session_id)
        return await self._sessions.close(session_id, cascade=cascade)

    async def archive_session(self, session_id: str) -> None:
        """Mark a session archived (kept, but flagged as no longer in use)."""
        check_session_id(session_id)
        await self._sessions.archive(session_id)

    async def update_session_prompt(self, session_id: str, system_prompt: str | None) -> None:
        """Replace the session's system prompt (and bump ``prompt_version`` so cached windows notice)."""
        check_session_id(session_id)
        await self._sessions.update_prompt(session_id, system_prompt)

    async def merge_session_metadata(self, session_id: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Shallow-merge ``patch`` into the session metadata (a ``None`` value removes the key)."""
        check_session_id(session_id)
        return await self._sessions.merge_metadata(session_id, patch)

    # -- writing history ------------------------------------------------------------------------

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
        hook_events: Sequence[NewHookEvent] = (),
    ) -> AppendResult:
        """Append messages with contiguous seqs, in ONE transaction with everything that goes with them.

        ``begin_send`` starts a new send (``send_index + 1``). The pending tool-call blob is kept up
        to date; a write that would break the history invariant raises
        :class:`HistoryInvariantError` and writes nothing. ``consume_follow_ups`` deletes those queued
        follow-ups (all must still exist: exactly-once delivery), ``stats`` accumulates into the
        session statistics, ``round_usage`` records one round's token usage and ``hook_events`` the
        send's hook decisions (the hook audit trail).

        With ``lease`` (from :meth:`acquire_lease`) the write is fenced: unless the session's lease
        still has that token's epoch and holder it raises :class:`LeaseLostError` and writes nothing.
        """
        check_session_id(session_id)
        return await self._appender.append(
            session_id,
            messages,
            begin_send=begin_send,
            pending_interactions=pending_interactions,
            consume_follow_ups=consume_follow_ups,
            stats=stats,
            round_usage=round_usage,
            lease=lease,
            hook_events=hook_events,
        )

    async def append_message(
        self,
        session_id: str,
        *,
        role: str,
        content: str | list[Any] | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        tool_call_id: str | None = None,
        name: str | None = None,
        round_index: int | None = None,
        meta: dict[str, Any] | None = None,
        send_index: int | None = None,
    ) -> int:
        """Append one message (the published call shape); returns its seq. A user message starts a
        new send; ``send_index`` is accepted and ignored (the store numbers sends itself)."""
        message = NewMessage(role, content, name, tool_calls, tool_call_id, round_index, meta)
        result = await self.append_messages(session_id, [message], begin_send=role == "user")
        return result.last_seq

    async def get_pending(self, session_id: str) -> dict[str, Any] | None:
        """The pending tool-call blob in the published shape (with ``tool_call_ids``), or ``None``."""
        state = await self.get_state(session_id)
        return published_pending(state.pending if state is not None else None)

    async def set_pending(self, session_id: str, pending: Mapping[str, Any] | None) -> None:
        """Published call shape. The blob follows from the history here, so this only checks that
        ``pending`` agrees with it (``HistoryInvariantError`` otherwise, naming the real routes)."""
        state = await self.get_state(session_id)
        same_pending(state.pending if state is not None else None, pending)

    async def abort_pending(self, session_id: str, *, reason: str) -> int:
        """Answer every unresolved tool call with ``"<aborted: {reason}>"``; return how many."""
        check_session_id(session_id)
        return await self._appender.abort_pending(session_id, reason=reason)

    # -- reading history ------------------------------------------------------------------------

    async def get_state(self, session_id: str) -> SessionStateRow | None:
        """The session's state row (sequence counters, pending tool calls), or ``None``."""
        check_session_id(session_id)
        return await self._messages.get_state(session_id)

    async def load_window(
        self, session_id: str
    ) -> tuple[SessionRow, SessionStateRow, list[MessageRow]] | None:
        """The session row, its state and its active messages, read in one transaction (one hop on
        SQLite): what a loop needs to rebuild a session's window cold. ``None`` for an unknown session."""
        check_session_id(session_id)
        return await self._messages.load_window(session_id)

    async def load_active_messages(
        self, session_id: str, *, after_seq: int | None = None
    ) -> list[MessageRow]:
        """Active messages in seq order (optionally only those after ``after_seq``); one query."""
        check_session_id(session_id)
        check_ints(after_seq=after_seq)
        return await self._messages.load_active(session_id, after_seq=after_seq)

    async def load_all_messages(self, session_id: str) -> list[MessageRow]:
        """Every message of the session in seq order, whatever its state."""
        check_session_id(session_id)
        return await self._messages.load_all(session_id)

    async def load_send(self, session_id: str, send_index: int) -> list[MessageRow]:
        """The messages written by one send (any state), in seq order."""
        check_session_id(session_id)
        check_ints(send_index=send_index)
        return await self._messages.load_send(session_id, send_index)

    async def get_message(self, session_id: str, seq: int) -> MessageRow | None:
        """One message by seq (any state), or ``None``."""
        check_session_id(session_id)
        check_ints(seq=seq)
        return await self._messages.get(session_id, seq)

    async def count_messages(self, session_id: str) -> int:
        """How many messages the session has, in any state."""
        check_session_id(session_id)
        return await self._messages.count(session_id)

    # -- message states, compaction, retention --------------------------------------------------

    async def set_message_state(self, session_id: str, seqs: Sequence[int], state: MessageState | str) -> int:
        """Move messages forward (active → compacted_out → dropped); return how many changed.

        Moving backwards, naming an unknown seq, or leaving a tool call and its result split between
        active and inactive raises :class:`HistoryInvariantError` and changes nothing.
        """
        check_session_id(session_id)
        return await self._compaction.set_message_state(session_id, seqs, state)

    async def record_compaction(
        self,
        session_id: str,
        *,
        from_seq: int,
        to_seq: int,
        note: NewMessage | None = None,
        before_tokens: int | None = None,
        after_tokens: int | None = None,
        also_seqs: Sequence[int] = (),
        note_content: str | None = None,
        note_meta: Mapping[str, Any] | None = None,
        round_index: int | None = None,
        fold_seqs: Sequence[int] | None = None,
    ) -> CompactionRow:
        """Fold messages ``from_seq..to_seq`` in one transaction: mark the active ones
        ``compacted_out``, append ``note`` (the summary), record the compaction.

        ``also_seqs`` are further messages compacted out in the same transaction (e.g. the previous
        summary note, which a rolling fold replaces). The published spelling — ``note_content``,
        ``note_meta``, ``round_index``, ``fold_seqs`` — builds the note; the returned row also unpacks
        as the published ``(compact_seq, note_seq)``."""
        check_session_id(session_id)
        return await self._compaction.record(
            session_id,
            from_seq=from_seq,
            to_seq=to_seq,
            note=compaction_note(note, note_content, note_meta, round_index),
            before_tokens=before_tokens,
            after_tokens=after_tokens,
            also_seqs=seqs_of(fold_seqs, also_seqs),
        )

    async def list_compactions(self, session_id: str) -> list[CompactionRow]:
        """The session's compactions, oldest first."""
        check_session_id(session_id)
        return await self._compaction.list_compactions(session_id)

    async def prune_compacted_messages(
        self, session_id: str, *, keep_recent: int = 0, older_than_ms: int | None = None
    ) -> int:
        """Delete inactive (compacted-out or dropped) messages except the ``keep_recent`` newest (and,
        with ``older_than_ms``, only those stored before that epoch-ms time)."""
        check_session_id(session_id)
        check_ints(keep_recent=keep_recent, older_than_ms=older_than_ms)
        return await self._compaction.prune(session_id, keep_recent=keep_recent, older_than_ms=older_than_ms)

    # -- leases ---------------------------------------------------------------------------------

    async def acquire_lease(self, session_id: str, *, holder: str, ttl_s: float) -> LeaseToken:
        """Take the session's lease for ``ttl_s`` seconds.

        Succeeds when the lease is free, released, expired or already ``holder``'s (each success bumps
        the epoch). Raises :class:`SessionBusy` (with ``holder`` and ``expires_at_ms``) while another
        holder's lease is live, and :class:`SessionNotFoundError` for an unknown session.

        Two round trips when the session was leased before: one atomic conditional ``UPDATE`` takes
        the row (bumping the epoch) and one read returns the epoch it got. No transaction is needed:
        once taken, the row cannot change hands before the new expiry.
        """
        check_session_id(session_id)
        return await self._leases.acquire(session_id, holder=holder, ttl_s=ttl_s)

    async def renew_lease(self, token: LeaseToken, *, ttl_s: float) -> LeaseToken:
        """Extend a held lease to ``now + ttl_s`` (one statement); :class:`LeaseLostError` if it was
        taken over. A lease that expired but was not taken over is revived with the same epoch."""
        return await self._leases.renew(token, ttl_s=ttl_s)

    async def release_lease(self, token: LeaseToken) -> bool:
        """Give the lease up now (the epoch is kept); False if it was no longer ours."""
        return await self._leases.release(token)

    async def get_lease(self, session_id: str) -> LeaseToken | None:
        """The session's lease row (``holder`` is ``''`` once released), or None if never leased."""
        check_session_id(session_id)
        return await self._leases.get(session_id)

    # -- per-session runtime state and shared state ----------------------------------------------

    async def get_runtime_state(self, session_id: str, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key`` for the session, or ``default``."""
        check_session_id(session_id)
        return await self._runtime_state.get(session_id, key, default)

    async def set_runtime_state(self, session_id: str, key: str, value: Any) -> None:
        """Store a JSON-serialisable ``value`` under ``key`` (SessionNotFoundError if no session)."""
        check_session_id(session_id)
        await self._runtime_state.set(session_id, key, value)

    async def mutate_runtime_state(
        self, session_id: str, key: str, fn: Callable[[Any], Any], *, default: Any = None
    ) -> Any:
        """Atomically replace the value with ``fn(current)``; return the value now stored.

        ``fn`` runs inside the transaction (on SQLite, on the connection thread): keep it quick and
        free of I/O. Returning :data:`MUTATE_SKIP` leaves the value untouched.
        """
        check_session_id(session_id)
        return await self._runtime_state.mutate(session_id, key, fn, default=default)

    async def delete_runtime_state(self, session_id: str, key: str) -> bool:
        """Remove the value under ``key``; False if there was none."""
        check_session_id(session_id)
        return await self._runtime_state.delete(session_id, key)

    async def get_shared_state(self, owner: str, key: str, default: Any = None) -> Any:
        """The JSON value ``owner`` (any string, e.g. ``"blackboard:<id>"``) stores under ``key``."""
        return await self._shared_state.get(owner, key, default)

    async def set_shared_state(self, owner: str, key: str, value: Any) -> None:
        """Store a JSON-serialisable ``value`` under (``owner``, ``key``)."""
        await self._shared_state.set(owner, key, value)

    async def mutate_shared_state(
        self, owner: str, key: str, fn: Callable[[Any], Any], *, default: Any = None
    ) -> Any:
        """Atomic read-modify-write of a shared value (same contract as ``mutate_runtime_state``)."""
        return await self._shared_state.mutate(owner, key, fn, default=default)

    async def delete_shared_state(self, owner: str, key: str) -> bool:
        """Remove the shared value; False if there was none."""
        return await self._shared_state.delete(owner, key)

    # -- notes ----------------------------------------------------------------------------------

    async def add_note(self, session_id: str, content: str, *, pinned: bool = False) -> NoteRow:
        """Add a note to the session (ids count from 1 per session)."""
        check_session_id(session_id)
        return await self._notes.add(session_id, content, pinned=pinned)

    async def update_note(
        self, session_id: str, note_id: int, *, content: str | None = None, pinned: bool | None = None
    ) -> bool:
        """Change a note's content and/or pin; False if it does not exist."""
        check_session_id(session_id)
        check_ints(note_id=note_id)
        return await self._notes.update(session_id, note_id, content=content, pinned=pinned)

    async def delete_note(self, session_id: str, note_id: int) -> bool:
        """Delete a note; False if it does not exist."""
        check_session_id(session_id)
        check_ints(note_id=note_id)
        return await self._notes.delete(session_id, note_id)

    async def list_notes(self, session_id: str) -> list[NoteRow]:
        """The session's notes by id."""
        check_session_id(session_id)
        return await self._notes.list_notes(session_id)

    async def count_notes(self, session_id: str) -> int:
        """How many notes the session has."""
        check_session_id(session_id)
        return await self._notes.count(session_id)

    # -- statistics --------------------------------------------------------------

    async def get_session_stats(self, session_id: str) -> SessionStatsRow | None:
        """The session's cumulative accounting, or ``None`` for an unknown session."""
        check_session_id(session_id)
        return await self._stats.get(session_id)

    async def list_session_stats(self) -> list[SessionStatsRow]:
        """Every session's accounting, most recently updated first (ties by session id)."""
        return await self._stats.list_stats()

    async def list_usage_rounds(self, session_id: str) -> list[UsageRoundRow]:
        """Token usage per (send, round) of the session, in order."""
        check_session_id(session_id)
        return await self._stats.list_usage_rounds(session_id)

    # -- archives -------------------------------------------------------------------------------

    async def export_session(self, session_id: str) -> dict[str, Any]:
        """Every row of the session, as a JSON-serialisable archive (see ``power_loop.store._archive``)."""
        check_session_id(session_id)
        return await self._archive.export_session(session_id)

    async def import_session(
        self,
        data: Mapping[str, Any],
        *,
        new_session_id: str | None = None,
        parent_session_id: str | None = None,
    ) -> str:
        """Recreate an exported session (in one transaction); returns its id.

        Refuses (:class:`ArchiveError`) a malformed archive, one from a newer format version, and a
        target id that already exists. The imported session is a root session, or — with
        ``parent_session_id`` (which must exist) — a sub-agent session one level below that parent.
        """
        return await self._archive.import_session(
            data, new_session_id=new_session_id, parent_session_id=parent_session_id
        )
