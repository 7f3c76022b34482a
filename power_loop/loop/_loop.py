"""`StatefulAgentLoop`: the handle applications hold.

It owns no authoritative state. Everything that matters is in the store; a new loop on the same DSN
continues any session. One loop drives many sessions concurrently; one session runs one send at a time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from ..base import ToolRuntimeContext
from ..errors import (
    ConfigError,
    HistoryInvariantError,
    InteractionNotFoundError,
    LoopClosedError,
    SessionBusy,
    SessionNotFoundError,
    SessionPendingError,
)
from ..events import AgentEvent, AgentEventBus, AgentEventType, SendCompletedPayload, resolve_event_type
from ..hooks import AgentHooks, HookPoint
from ..llm import CancellationLike, CancellationToken, LLMService
from ..store import (
    DEFAULT_DB_PATH,
    DEFAULT_TABLE_PREFIX,
    HeldLease,
    LeaseToken,
    NewMessage,
    SchemaPolicy,
    SessionStatsRow,
    SessionStore,
    TimerRow,
    hold_lease,
    new_holder_id,
    open_store,
)
from ..tools import ToolRegistry
from ._cache import SessionWindow, WindowCache
from ._engine import run_send
from ._messages import message_dict, row_to_message, run_message_hooks, user_content
from ._prompt import build_system_prompt
from ._reserved import fill_reserved_tools
from ._send_state import EngineParts
from ._sync import SyncRunner
from ._types import AgentLoopConfig, FollowUpQueued, LoopMessage, StatefulResult

if TYPE_CHECKING:
    from ..context import ContextPipeline

__all__ = ["StatefulAgentLoop"]

ToolsArg = Sequence[str] | ToolRegistry | None


class StatefulAgentLoop:
    """Durable LLM ⇄ tool loop over a `SessionStore`.

    Give either ``store=`` (shared, not closed by the loop) or a DSN (``dsn=`` / ``db_path=``; the loop
    opens it lazily on first use and owns it). Without either, ``./power_loop_sessions.db`` is used.

    ``lease_ttl_s`` (default None: off) makes every send, resume, input submission, abort_pending and
    close_session hold the session's cross-process lease: a second process driving the same session meanwhile gets
    `SessionBusy`; the lease is renewed every ``ttl/3`` while the send runs, released after it, and
    expires ``lease_ttl_s`` seconds after its holder dies. Every write of the send is fenced by the
    lease epoch, so a stalled holder whose lease was taken over gets `LeaseLostError` instead of
    interleaving its late writes.
    """

    def __init__(
        self,
        *,
        llm: LLMService,
        store: SessionStore | None = None,
        dsn: str | None = None,
        db_path: str | None = None,
        table_prefix: str | None = None,
        schema: SchemaPolicy | str | None = None,
        config: AgentLoopConfig | None = None,
        tool_registry: ToolRegistry | None = None,
        hooks: AgentHooks | None = None,
        event_bus: AgentEventBus | None = None,
        max_spawn_depth: int | None = None,
        session_cache_size: int = 256,
        lease_ttl_s: float | None = None,
        context: ContextPipeline | None = None,
    ) -> None:
        if store is not None and any(x is not None for x in (dsn, db_path, table_prefix, schema)):
            raise ConfigError("pass either store= or dsn/db_path/table_prefix/schema, not both")
        if dsn is not None and db_path is not None and dsn != db_path:
            raise ConfigError("dsn= and db_path= name different databases; pass one of them")
        if session_cache_size < 0:
            raise ConfigError("session_cache_size must be >= 0")
        if lease_ttl_s is not None and (
            isinstance(lease_ttl_s, bool) or not isinstance(lease_ttl_s, (int, float)) or not lease_ttl_s > 0
        ):
            raise ConfigError("lease_ttl_s must be None (no leases) or a number of seconds > 0")
        if max_spawn_depth is not None and (not isinstance(max_spawn_depth, int) or max_spawn_depth < 0):
            raise ConfigError("max_spawn_depth must be an int >= 0")
        self.llm = llm
        self.store: SessionStore | None = store
        self.config = config if config is not None else AgentLoopConfig()
        self.tool_registry = tool_registry
        if tool_registry is not None:
            fill_reserved_tools(tool_registry)
        self._hooks = hooks if hooks is not None else AgentHooks()
        self._bus = event_bus if event_bus is not None else AgentEventBus()
        self._dsn = dsn or db_path or DEFAULT_DB_PATH
        self._table_prefix = DEFAULT_TABLE_PREFIX if table_prefix is None else table_prefix
        self._schema = schema
        self._max_spawn_depth = max_spawn_depth
        self._owns_store = store is None
        if store is not None and max_spawn_depth is not None:
            store.max_spawn_depth = max_spawn_depth
        self._open_lock: asyncio.Lock | None = None
        self._cache = WindowCache(session_cache_size)
        self._locks: dict[str, asyncio.Lock] = {}
        self._follow_up_flags: set[str] = set()
        self._active = 0
        self._idle: asyncio.Event | None = None
        self._closing = False
        self._sync = SyncRunner()
        self._subsets: dict[tuple[str, ...], ToolRegistry] = {}
        # Context handling (representation and fold, memory, recall/note tools); None = verbatim, no folds.
        self.context = context
        if context is not None and context.tool_names():
            if self.tool_registry is None:
                self.tool_registry = ToolRegistry()
            context.register_tools(self.tool_registry)
        # Cross-process session leases (off by default): one holder id per loop instance.
        self._lease_ttl_s = lease_ttl_s
        self._lease_holder = new_holder_id() if lease_ttl_s is not None else ""
        self._leases: dict[str, HeldLease] = {}

    # ------------------------------------------------------------------ properties

    @property
    def hooks(self) -> AgentHooks:
        return self._hooks

    @property
    def event_bus(self) -> AgentEventBus:
        return self._bus

    @property
    def cache_stats(self) -> dict[str, int]:
        return self._cache.stats()

    # ------------------------------------------------------------------ store & sessions

    async def ensure_store(self) -> SessionStore:
        """Open the owned store if needed and return it."""
        if self.store is not None:
            return self.store
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self.store is None:
                kwargs: dict[str, Any] = {"table_prefix": self._table_prefix, "schema": self._schema}
                if self._max_spawn_depth is not None:
                    kwargs["max_spawn_depth"] = self._max_spawn_depth
                self.store = await open_store(self._dsn, **kwargs)
        return self.store

    async def new_session(
        self, *, metadata: dict[str, Any] | None = None, system_prompt: str | None = None
    ) -> str:
        """Create a root session and return its id."""
        self._check_open()
        store = await self.ensure_store()
        return await store.create_session(
            system_prompt=system_prompt or self.config.system_prompt,
            model=self.config.model,
            config=self.config.session_config(),
            metadata=metadata,
        )

    def new_session_sync(
        self, *, metadata: dict[str, Any] | None = None, system_prompt: str | None = None
    ) -> str:
        return self._sync.run(self.new_session(metadata=metadata, system_prompt=system_prompt))

    async def close_session(self, session_id: str, *, cascade: bool = True) -> int:
        """Delete a session and its rows (linked sub-sessions too when ``cascade``); returns the count."""
        store = await self.ensure_store()
        try:
            async with self._session(session_id):
                self._cache.drop(session_id)
                return await store.close_session(session_id, cascade=cascade)
        except SessionNotFoundError:  # raised by the lease acquisition: nothing to close
            return 0

    async def prewarm(self, session_id: str) -> bool:
        """Load a session's window into the cache ahead of its next send (pure optimisation)."""
        store = await self.ensure_store()
        async with self._session(session_id, lease=False):
            try:
                self._cache.put(session_id, await self._load_window(store, session_id))
            except SessionNotFoundError:
                return False
        return True

    # ------------------------------------------------------------------ sending

    async def send(
        self,
        user_input: str | LoopMessage,
        session_id: str,
        *,
        stop_event: CancellationLike = None,
        tools: ToolsArg = None,
        system_prompt: str | None = None,
        heal_pending: bool = False,
    ) -> StatefulResult:
        """Persist one user message and run rounds until a terminal status.

        Raises `SessionNotFoundError` for an unknown session and `SessionPendingError` when an earlier
        send was interrupted mid-tool-call (unless ``heal_pending=True``, which aborts those calls first).
        """
        return await self._send(
            user_input,
            session_id,
            stop_event=stop_event,
            tools=tools,
            system_prompt=system_prompt,
            heal_pending=heal_pending,
        )

    async def stream(
        self,
        user_input: str | LoopMessage,
        session_id: str,
        *,
        stop_event: CancellationLike = None,
        tools: ToolsArg = None,
        system_prompt: str | None = None,
        heal_pending: bool = False,
        events: Iterable[AgentEventType | str] | None = None,
    ) -> AsyncIterator[AgentEvent]:
        """Run one send and yield its events as they happen; the last one is ``send_completed``.

        The model call streams, so text deltas (``stream_delta``) and tool-call argument fragments
        (``tool_call_delta``) arrive live, followed by tool starts/results and round boundaries. The
        final ``send_completed`` event carries the `StatefulResult` as ``event.data.result``. ``events``
        limits which types are yielded (``send_completed`` always is). Leaving the iteration early or
        cancelling it cancels the send: open tool calls are answered and the session stays valid.
        """
        tap = AgentEventBus()
        queue: asyncio.Queue[AgentEvent | None] = asyncio.Queue()
        targets: list[AgentEventType | None] = (
            [None] if events is None else [resolve_event_type(t) for t in events]
        )
        for event_type in targets:
            tap.subscribe(event_type, queue.put_nowait)
        task = asyncio.ensure_future(
            self._send(
                user_input,
                session_id,
                stop_event=stop_event,
                tools=tools,
                system_prompt=system_prompt,
                heal_pending=heal_pending,
                tap=tap,
            )
        )
        task.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (item := await queue.get()) is not None:
                yield item
            result = task.result()
            yield AgentEvent(
                AgentEventType.SEND_COMPLETED,
                data=SendCompletedPayload(
                    status=result.status,
                    final_text=result.final_text,
                    rounds=result.rounds,
                    tool_calls=result.tool_calls,
                    result=result,
                ),
                session_id=session_id,
            )
        finally:
            if not task.done():
                task.cancel()
            # Wait for the send to finish its cleanup (answering open calls) before returning.
            await asyncio.gather(task, return_exceptions=True)

    async def _send(
        self,
        user_input: str | LoopMessage,
        session_id: str,
        *,
        stop_event: CancellationLike,
        tools: ToolsArg,
        system_prompt: str | None,
        heal_pending: bool,
        tap: AgentEventBus | None = None,
    ) -> StatefulResult:
        self._check_open()
        content, name = user_content(user_input)
        store = await self.ensure_store()
        async with self._session(session_id):
            user = NewMessage(role="user", content=content, name=name, round_index=0)
            if self._hooks.has(HookPoint.MESSAGE_APPEND):
                (user,) = await run_message_hooks(self._hooks, session_id, [user])
                if user.role != "user" or not isinstance(user.content, str):
                    raise ConfigError(
                        "a message.append hook must keep a user message a user message with text"
                    )
                content, name = user.content, user.name
            try:
                appended = await store.append_messages(
                    session_id, [user], begin_send=True, lease=self._lease_token(session_id)
                )
            except HistoryInvariantError:
                state = await store.get_state(session_id)
                pending = state.pending if state is not None else None
                if not pending:
                    raise
                if not heal_pending:
                    raise SessionPendingError(
                        session_id,
                        assistant_seq=int(pending.get("assistant_seq") or 0),
                        pending_tool_calls=list(pending.get("tool_calls") or []),
                    ) from None
                await store.abort_pending(session_id, reason="auto-healed by send(heal_pending=True)")
                self._cache.drop(session_id)
                appended = await store.append_messages(
                    session_id, [user], begin_send=True, lease=self._lease_token(session_id)
                )
            window = self._cache.get(
                session_id, expected_next_seq=appended.first_seq, prompt_version=appended.prompt_version
            )
            if appended.follow_ups_waiting:
                # Queued by another process, or before a restart: deliver at the first round boundary.
                self._follow_up_flags.add(session_id)
            if window is None:
                window = await self._load_window(store, session_id)
            else:
                window.messages.append(message_dict("user", content, name=name))
                window.next_seq = appended.next_seq
            window.send_index = appended.send_index
            return await self._run(
                session_id,
                window,
                tools=tools,
                system_prompt=system_prompt,
                stop_event=stop_event,
                tap=tap,
                new_send=True,
            )

    def send_sync(
        self,
        user_input: str | LoopMessage,
        session_id: str,
        *,
        stop_event: CancellationLike = None,
        tools: ToolsArg = None,
        system_prompt: str | None = None,
        heal_pending: bool = False,
    ) -> StatefulResult:
        """Blocking `send` for code without an event loop (runs on the loop's background thread)."""
        return self._sync.run(
            self.send(
                user_input,
                session_id,
                stop_event=stop_event,
                tools=tools,
                system_prompt=system_prompt,
                heal_pending=heal_pending,
            )
        )

    async def follow_up(
        self,
        user_input: str | LoopMessage,
        session_id: str,
        *,
        stop_event: CancellationLike = None,
        tools: ToolsArg = None,
        system_prompt: str | None = None,
    ) -> StatefulResult | FollowUpQueued:
        """Deliver input to a running send at its next round boundary, or `send` it if none is running.

        The queued input is stored durably: it survives a restart and is delivered by the next send.
        """
        self._check_open()
        content, _ = user_content(user_input)
        lock = self._locks.get(session_id)
        if lock is not None and lock.locked():
            return await self._queue_follow_up(session_id, content)
        try:
            return await self.send(
                user_input, session_id, stop_event=stop_event, tools=tools, system_prompt=system_prompt
            )
        except SessionBusy:
            # Another process drives the session (lease_ttl_s): it picks the follow-up up at its
            # next round boundary (every append tells it how many are waiting).
            return await self._queue_follow_up(session_id, content)

    async def _queue_follow_up(self, session_id: str, content: str) -> FollowUpQueued:
        store = await self.ensure_store()
        item_id = await store.enqueue_follow_up(session_id, content)
        self._follow_up_flags.add(session_id)
        depth = len(await store.list_follow_ups(session_id))
        return FollowUpQueued(session_id=session_id, queue_depth=depth, item_id=item_id)

    def follow_up_sync(
        self,
        user_input: str | LoopMessage,
        session_id: str,
        *,
        stop_event: CancellationLike = None,
        tools: ToolsArg = None,
        system_prompt: str | None = None,
    ) -> StatefulResult | FollowUpQueued:
        return self._sync.run(
            self.follow_up(
                user_input, session_id, stop_event=stop_event, tools=tools, system_prompt=system_prompt
            )
        )

    # ------------------------------------------------------------------ recovery & human input

    async def resume(self, session_id: str, *, stop_event: CancellationLike = None) -> StatefulResult:
        """Continue an interrupted send: re-execute its unanswered tool calls, then keep going."""
        self._check_open()
        store = await self.ensure_store()
        async with self._session(session_id):
            state = await store.get_state(session_id)
            if state is None:
                raise SessionNotFoundError(session_id)
            pending = state.pending
            if pending and pending.get("pending_interactions"):
                return StatefulResult(
                    session_id=session_id,
                    status="waiting_for_input",
                    pending_tool_calls=list(pending.get("tool_calls") or []),
                    pending_interactions=list(pending["pending_interactions"]),
                )
            window = await self._load_window(store, session_id)
            return await self._run(session_id, window, stop_event=stop_event, pending=pending or None)

    async def submit_input(
        self,
        session_id: str,
        interaction_id: str,
        value: Any,
        *,
        stop_event: CancellationLike = None,
    ) -> StatefulResult:
        """Answer a paused ``request_user_input`` call and continue the send (from any process)."""
        self._check_open()
        store = await self.ensure_store()
        async with self._session(session_id):
            state = await store.get_state(session_id)
            if state is None:
                raise SessionNotFoundError(session_id)
            pending = state.pending or {}
            interactions = list(pending.get("pending_interactions") or [])
            match = next((i for i in interactions if i.get("interaction_id") == interaction_id), None)
            if match is None:
                raise InteractionNotFoundError(session_id, interaction_id)
            answer = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            remaining = [i for i in interactions if i is not match]
            row = NewMessage(
                role="tool",
                content=answer,
                tool_call_id=str(match["tool_call_id"]),
                name=str(match.get("tool_name") or "request_user_input"),
                round_index=int(pending.get("round_index") or 0),
            )
            await store.append_messages(
                session_id, [row], pending_interactions=remaining, lease=self._lease_token(session_id)
            )
            self._cache.drop(session_id)
            window = await self._load_window(store, session_id)
            state = await store.get_state(session_id)
            still = state.pending if state is not None else None
            if still and still.get("pending_interactions"):
                return StatefulResult(
                    session_id=session_id,
                    status="waiting_for_input",
                    pending_tool_calls=list(still.get("tool_calls") or []),
                    pending_interactions=list(still["pending_interactions"]),
                )
            return await self._run(session_id, window, stop_event=stop_event, pending=still or None)

    async def abort_pending(self, session_id: str, *, reason: str = "aborted") -> int:
        """Answer every unresolved tool call with ``<aborted: reason>``; returns how many."""
        store = await self.ensure_store()
        async with self._session(session_id):
            self._cache.drop(session_id)
            return await store.abort_pending(session_id, reason=reason)

    async def get_pending(self, session_id: str) -> dict[str, Any] | None:
        store = await self.ensure_store()
        state = await store.get_state(session_id)
        if state is None:
            raise SessionNotFoundError(session_id)
        return state.pending

    # ------------------------------------------------------------------ reading

    async def get_messages(self, session_id: str, *, include_compacted: bool = False) -> list[LoopMessage]:
        """The session's messages as provider-shape dicts (active window, or every stored row)."""
        store = await self.ensure_store()
        if await store.get_session(session_id) is None:
            raise SessionNotFoundError(session_id)
        rows = await (
            store.load_all_messages(session_id)
            if include_compacted
            else store.load_active_messages(session_id)
        )
        return [row_to_message(row) for row in rows]

    async def get_session_stats(self, session_id: str) -> SessionStatsRow | None:
        return await (await self.ensure_store()).get_session_stats(session_id)

    async def list_session_stats(self) -> list[SessionStatsRow]:
        return await (await self.ensure_store()).list_session_stats()

    async def resolve_system_prompt(self, *, session_id: str | None = None) -> str:
        """The exact system prompt the next send would use."""
        session_prompt = None
        if session_id is not None:
            row = await (await self.ensure_store()).get_session(session_id)
            if row is None:
                raise SessionNotFoundError(session_id)
            session_prompt = row.system_prompt
        return self._system_prompt(None, session_prompt, self.tool_registry)

    # ------------------------------------------------------------------ timers

    async def schedule_timer(
        self,
        session_id: str,
        *,
        delay_s: float | None = None,
        due_at_ms: int | None = None,
        note: str,
        interval_s: int | None = None,
    ) -> TimerRow:
        """Arm a durable timer: exactly one of ``delay_s`` / ``due_at_ms``; ``interval_s`` makes it recur."""
        if (delay_s is None) == (due_at_ms is None):
            raise ConfigError("schedule_timer needs exactly one of delay_s= or due_at_ms=")
        if not isinstance(note, str) or not note.strip():
            raise ConfigError("schedule_timer needs a non-blank note")
        if interval_s is not None and (not isinstance(interval_s, int) or interval_s < 1):
            raise ConfigError("interval_s must be an int >= 1")
        if delay_s is not None:
            if delay_s < 0:
                raise ConfigError("delay_s must be >= 0")
            due_at_ms = time.time_ns() // 1_000_000 + int(delay_s * 1000)
        assert due_at_ms is not None
        store = await self.ensure_store()
        return await store.create_timer(session_id, due_at_ms=due_at_ms, note=note, interval_s=interval_s)

    async def cancel_timer(self, session_id: str, timer_id: int) -> bool:
        return await (await self.ensure_store()).cancel_timer(session_id, timer_id)

    async def list_timers(self, session_id: str) -> list[TimerRow]:
        return await (await self.ensure_store()).list_timers(session_id)

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self, *, drain_timeout_s: float = 30.0) -> None:
        """Graceful shutdown: refuse new sends, wait for running ones, drain events, close an owned store."""
        self._closing = True
        if self._active and self._idle is not None:
            try:
                await asyncio.wait_for(self._idle.wait(), timeout=drain_timeout_s)
            except asyncio.TimeoutError:
                pass
        await self._bus.drain(timeout=drain_timeout_s)
        if self._owns_store and self.store is not None:
            store, self.store = self.store, None
            try:
                await store.checkpoint()
            finally:
                await store.close()
        self._cache.clear()

    def close(self) -> None:
        """Synchronous close for code that used the ``*_sync`` API (closes an owned store)."""
        self._closing = True
        if self._sync.started:
            if self._owns_store and self.store is not None:
                store, self.store = self.store, None
                self._sync.run(store.close())
            self._sync.stop()
        self._cache.clear()

    async def __aenter__(self) -> StatefulAgentLoop:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closing:
            raise LoopClosedError("StatefulAgentLoop is closing; create a new loop to send more")

    @asynccontextmanager
    async def _session(self, session_id: str, *, lease: bool = True) -> AsyncIterator[None]:
        """Drive ``session_id`` exclusively: the in-process lock, plus (with ``lease_ttl_s``) the
        cross-process lease, renewed in the background while the block runs and released after."""
        lock = self._locks.get(session_id)
        if lock is None:
            lock = self._locks[session_id] = asyncio.Lock()
        self._active += 1
        if self._idle is None:
            self._idle = asyncio.Event()
        self._idle.clear()
        try:
            async with lock:
                if lease and self._lease_ttl_s is not None:
                    store = await self.ensure_store()
                    async with hold_lease(
                        store, session_id, ttl_s=self._lease_ttl_s, holder=self._lease_holder
                    ) as held:
                        self._leases[session_id] = held
                        try:
                            yield
                        finally:
                            del self._leases[session_id]
                else:
                    yield
        finally:
            self._active -= 1
            if (
                not lock.locked()
                and self._locks.get(session_id) is lock
                and not getattr(lock, "_waiters", None)
            ):
                del self._locks[session_id]
            if self._active == 0:
                self._idle.set()

    def _lease_token(self, session_id: str) -> LeaseToken | None:
        held = self._leases.get(session_id)
        return None if held is None else held.token

    async def _load_window(self, store: SessionStore, session_id: str) -> SessionWindow:
        loaded = await store.load_window(session_id)
        if loaded is None:
            raise SessionNotFoundError(session_id)
        session, state, rows = loaded
        return SessionWindow(
            messages=[row_to_message(row) for row in rows],
            next_seq=state.next_seq,
            system_prompt=session.system_prompt,
            send_index=state.send_index,
            prompt_version=state.prompt_version,
        )

    def _registry_for(self, tools: ToolsArg) -> ToolRegistry | None:
        if tools is None:
            return self.tool_registry
        if isinstance(tools, ToolRegistry):
            return fill_reserved_tools(tools)
        if isinstance(tools, str):
            raise ConfigError("tools= takes a list of tool names or a ToolRegistry, not a string")
        key = tuple(tools)
        base = self.tool_registry
        if base is None:
            raise ConfigError("tools= names tools but the loop has no tool_registry")
        subset = self._subsets.get(key)
        if subset is None:
            unknown = [name for name in key if not base.has(name)]
            if unknown:
                raise ConfigError(f"tools= names unknown tools: {', '.join(unknown)}")
            subset = self._subsets[key] = base.subset(key)
        return subset

    def _system_prompt(self, per_call: str | None, session: str | None, registry: ToolRegistry | None) -> str:
        return build_system_prompt(
            per_call=per_call,
            session=session,
            configured=self.config.system_prompt,
            registry=registry,
            inject_catalog=self.config.inject_tool_descriptions,
            catalog_header=self.config.tool_catalog_header,
        )

    async def _run(
        self,
        session_id: str,
        window: SessionWindow,
        *,
        tools: ToolsArg = None,
        system_prompt: str | None = None,
        stop_event: CancellationLike = None,
        pending: dict[str, Any] | None = None,
        tap: AgentEventBus | None = None,
        new_send: bool = False,
    ) -> StatefulResult:
        store = self.store
        assert store is not None
        registry = self._registry_for(tools)
        prompt = self._system_prompt(system_prompt, window.system_prompt, registry)
        parts = EngineParts(
            store=store,
            llm=self.llm,
            config=self.config,
            hooks=self._hooks,
            bus=self._bus,
            follow_up_flags=self._follow_up_flags,
            lease=self._lease_token(session_id),
            context=self.context,
        )
        runtime = ToolRuntimeContext(
            session_id=session_id, store=store, loop=self, config=self.config, send_index=window.send_index
        )
        try:
            result = await run_send(
                parts,
                session_id,
                window,
                registry=registry,
                context_registry=self.tool_registry,
                system_prompt=prompt,
                token=CancellationToken.from_any(stop_event) if stop_event is not None else None,
                runtime=runtime,
                pending=pending,
                tap=tap,
                new_send=new_send,
            )
        except BaseException:
            self._cache.drop(session_id)
            raise
        self._cache.put(session_id, window)
        return result
