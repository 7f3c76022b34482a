"""`StatefulAgentLoop`: the handle applications hold.

It owns no authoritative state. Everything that matters is in the store; a new loop on the same DSN
continues any session. One loop drives many sessions concurrently; one session runs one send at a time.

The class is a facade: each public method checks its input, takes the session when it drives one, and
hands the work to a collaborator with one job —

* `StoreRef` (``_store_ref``): the shared store, or the owned one opened lazily from a DSN;
* `SessionGuard` (``_guard``): one driver per session (in-process lock, cross-process lease);
* `WindowCache` (``_cache``): each session's active window, validated by the store's sequence numbers;
* `Recovery` (``_recovery``): resume, heal, abort and human input for interrupted sends;
* `DeferredInput` (``_deferred``): follow-ups queued for a running send, durable timers; ``_inbox``: ids;
* the round engine (``_engine``), which runs one send's rounds; `send_events` (``_send_stream``),
  which turns a send into an event iterator; `SyncRunner` (``_sync``) for the ``*_sync`` methods.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from contextlib import aclosing, suppress
from functools import cache
from typing import TYPE_CHECKING, Any

from ..errors import LoopClosedError, SessionBusy, SessionNotFoundError
from ..events import AgentEventBus
from ..hooks import AgentHooks
from ..llm import CancellationToken
from . import _inbox as inbox
from ._cache import WindowCache, load_window, window_for_send
from ._config_context import ContextSource
from ._deferred import DeferredInput
from ._guard import SessionGuard
from ._jobs import LoopJobs
from ._messages import session_messages, user_content, user_row
from ._prompt import attach_skills, loop_system_prompt
from ._recovery import Continuation, Recovery
from ._reserved import fill_reserved_tools, registry_for
from ._steer import follow_up_kind
from ._store_ref import StoreRef
from ._sync import SyncRunner, blocking
from ._types import AgentLoopConfig, StatefulResult

if TYPE_CHECKING:
    from ..base import ToolRuntimeContext
    from ..tools import ToolRegistry
    from ._send_state import EngineParts

    ToolsArg = Sequence[str] | ToolRegistry | None
    from ..context import ContextPipeline
    from ..events import AgentEvent, AgentEventType
    from ..llm import CancellationLike, LLMService
    from ..store import HookEventRow, LeaseToken, SchemaPolicy, SessionStatsRow, SessionStore, TimerRow
    from ._cache import SessionWindow
    from ._hook_audit import HookAudit
    from ._jobs import Job
    from ._types import FollowUpQueued, LoopMessage

__all__ = ["StatefulAgentLoop"]


@cache
def _send_machinery() -> tuple[
    Callable[..., Awaitable[StatefulResult]], type[EngineParts], type[ToolRuntimeContext]
]:
    """The round engine and what only a running send needs, loaded once, at the first send:
    constructing (or importing) a loop needs none of it."""
    from ..base import ToolRuntimeContext
    from ._engine import run_send
    from ._send_state import EngineParts

    return run_send, EngineParts, ToolRuntimeContext


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
        self._stores = StoreRef(
            store,
            dsn=dsn,
            db_path=db_path,
            table_prefix=table_prefix,
            schema=schema,
            max_spawn_depth=max_spawn_depth,
        )
        self._cache = WindowCache(session_cache_size)
        self._guard = SessionGuard(lease_ttl_s)
        self._jobs = LoopJobs(self._guard)
        self._recovery = Recovery(self._cache, self._guard)
        # Sessions with follow-ups waiting: raised by `follow_up`, read and cleared by the round engine.
        self._follow_up_flags: set[str] = set()
        self._deferred = DeferredInput(self._stores, self._follow_up_flags)
        self._sync = SyncRunner()
        self._subsets: dict[tuple[str, ...], ToolRegistry] = {}
        self._closing = False
        self.llm = llm
        self.config = config if config is not None else AgentLoopConfig()
        self.tool_registry = tool_registry
        if tool_registry is not None:
            fill_reserved_tools(tool_registry)
        self._hooks = hooks if hooks is not None else AgentHooks()
        self._bus = event_bus if event_bus is not None else AgentEventBus()
        # Context handling (representation and fold, memory, recall/note tools): `context=`, else the
        # config's context fields; neither = the verbatim window, never folded.
        self._context_source = ContextSource(context, self.config)
        _ = self.context  # builds it now, so its tools are registered before the first send
        # Skills (AgentLoopConfig.skills_dir): listed in the system prompt, loaded by `load_skill`.
        self._skills, self.tool_registry = attach_skills(self.config.skills_dir, self.tool_registry)

    # ------------------------------------------------------------------ properties

    @property
    def context(self) -> ContextPipeline | None:
        """The context pipeline of the next send: ``context=`` if given, else the one the config's
        context fields describe (re-read when they change), else ``None``."""
        pipeline, fresh = self._context_source.current(self.config)
        if fresh and pipeline is not None and pipeline.tool_names():
            if self.tool_registry is None:
                from ..tools import ToolRegistry  # loaded with the context package anyway

                self.tool_registry = ToolRegistry()
            pipeline.register_tools(self.tool_registry)
        return pipeline

    @context.setter
    def context(self, pipeline: ContextPipeline | None) -> None:
        self._context_source = ContextSource(pipeline, self.config)
        _ = self.context

    @property
    def store(self) -> SessionStore | None:
        """The store in use; None until an owned store is opened (`ensure_store`)."""
        return self._stores.current

    @store.setter
    def store(self, store: SessionStore | None) -> None:
        self._stores.current = store

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
        return await self._stores.ensure()

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

    new_session_sync = blocking(new_session)

    async def close_session(self, session_id: str, *, cascade: bool = True) -> int:
        """Delete a session and its rows (linked sub-sessions too when ``cascade``); returns the count."""
        store = await self.ensure_store()
        try:
            async with self._guard.hold(session_id, store):
                self._cache.drop(session_id)
                return await store.close_session(session_id, cascade=cascade)
        except SessionNotFoundError:  # raised by the lease acquisition: nothing to close
            return 0

    async def prewarm(self, session_id: str) -> bool:
        """Load a session's window into the cache ahead of its next send (pure optimisation)."""
        store = await self.ensure_store()
        async with self._guard.hold(session_id, store, lease=False):
            try:
                self._cache.put(session_id, await load_window(store, session_id))
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
        message_id: str | None = None,
    ) -> StatefulResult:
        """Persist one user message and run rounds until a terminal status.

        Raises `SessionNotFoundError` for an unknown session and `SessionPendingError` when an earlier
        send was interrupted mid-tool-call (unless ``heal_pending=True``, which aborts those calls first).
        With ``message_id`` the message is stored once per session: a repetition returns the first
        send's outcome, finishing it through `resume` if it was interrupted (see ``_inbox``).
        """
        return await self._send(
            user_input,
            session_id,
            stop_event=stop_event,
            tools=tools,
            system_prompt=system_prompt,
            heal_pending=heal_pending,
            message_id=None if message_id is None else inbox.check_item_id(message_id),
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
        message_id: str | None = None,
    ) -> AsyncIterator[AgentEvent]:
        """Run one send and yield its events as they happen; the last one is ``send_completed``.

        The model call streams, so text deltas (``stream_delta``) and tool-call argument fragments
        (``tool_call_delta``) arrive live, followed by tool starts/results and round boundaries. The
        final ``send_completed`` event carries the `StatefulResult` as ``event.data.result``. ``events``
        limits which types are yielded (``send_completed`` always is). Leaving the iteration early or
        cancelling it cancels the send: open tool calls are answered and the session stays valid.
        ``message_id`` is `send`'s: a repeated id streams only what finishing the first send still takes.
        """
        message_id = None if message_id is None else inbox.check_item_id(message_id)

        def start(tap: AgentEventBus) -> Coroutine[Any, Any, StatefulResult]:
            return self._send(
                user_input,
                session_id,
                stop_event=stop_event,
                tools=tools,
                system_prompt=system_prompt,
                heal_pending=heal_pending,
                tap=tap,
                message_id=message_id,
            )

        # The round engine and the event stream load on first use: constructing a loop needs neither.
        from ._send_stream import send_events

        async with aclosing(send_events(start, session_id, events)) as stream:
            async for event in stream:
                yield event

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
        message_id: str | None = None,
    ) -> StatefulResult:
        self._check_open()
        content, name = user_content(user_input)
        store = await self.ensure_store()
        async with self._guard.hold(session_id, store):
            audit = self._audit()  # the user row's message.append decisions are recorded too
            user = await user_row(self._hooks if audit is None else audit.hooks, session_id, content, name)
            begun = await inbox.begin_once(
                store, self._recovery, self._guard, session_id, message_id, user, heal_pending
            )
            if isinstance(begun, (StatefulResult, Continuation)):  # a repeated id: the first send's outcome
                step = await self._continue(session_id, begun, stop_event, tap)
                return await inbox.finish_once(store, session_id, message_id, step)
            if begun.follow_ups_waiting:
                # Queued by another process, or before a restart: deliver at the first round boundary.
                self._follow_up_flags.add(session_id)
            window = await window_for_send(self._cache, store, session_id, begun, user)
            result = await self._run(
                session_id,
                window,
                tools=tools,
                system_prompt=system_prompt,
                stop_event=stop_event,
                tap=tap,
                new_send=True,
                audit=audit,
            )
            return await inbox.finish_once(store, session_id, message_id, result)

    send_sync = blocking(send)

    async def follow_up(
        self,
        user_input: str | LoopMessage,
        session_id: str,
        *,
        stop_event: CancellationLike = None,
        tools: ToolsArg = None,
        system_prompt: str | None = None,
        mode: str = "queue",
    ) -> StatefulResult | FollowUpQueued:
        """Deliver input to a running send at its next round boundary (stored durably: it survives a
        restart), or `send` it if none is running. ``mode="steer"`` interrupts the running send at its
        next safe point instead and continues it with this input (docs/steering.md)."""
        self._check_open()
        kind = follow_up_kind(mode)
        content, _ = user_content(user_input)
        if self._guard.busy(session_id):
            return await self._deferred.queue_follow_up(session_id, content, kind)
        try:
            return await self.send(
                user_input, session_id, stop_event=stop_event, tools=tools, system_prompt=system_prompt
            )
        except SessionBusy:
            # Another process drives the session (lease_ttl_s): its next append shows it the follow-up.
            return await self._deferred.queue_follow_up(session_id, content, kind)

    follow_up_sync = blocking(follow_up)

    def steer_event(self, session_id: str) -> asyncio.Event:
        """Set while a steer waits for this loop's running send of the session (for tools to poll)."""
        return self._deferred.steers.event(session_id)

    async def deliver(
        self,
        items: str | inbox.InboxItem | Sequence[str | inbox.InboxItem],
        session_id: str,
        *,
        item_id: str | None = None,
        enqueue_only: bool = False,
        stop_event: CancellationLike = None,
    ) -> StatefulResult | FollowUpQueued:
        """`send` one item if the session is free, else queue durably (``_inbox``); ids are stored once."""
        self._check_open()
        found = inbox.inbox_items(items, item_id)
        if not (enqueue_only or self._guard.busy(session_id)) and len(found) == 1:
            with suppress(SessionBusy):  # another process drives the session: queue for it (below)
                return await self.send(
                    found[0].content, session_id, stop_event=stop_event, message_id=found[0].item_id
                )
        return await inbox.queue_items(await self.ensure_store(), self._deferred, session_id, found)

    # ------------------------------------------------------------------ recovery & human input

    async def resume(self, session_id: str, *, stop_event: CancellationLike = None) -> StatefulResult:
        """Continue an interrupted send: re-execute its unanswered tool calls, then keep going."""
        self._check_open()
        store = await self.ensure_store()
        async with self._guard.hold(session_id, store):
            step = await self._recovery.resume(store, session_id)
            return await self._continue(session_id, step, stop_event)

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
        async with self._guard.hold(session_id, store):
            step = await self._recovery.submit_input(store, session_id, interaction_id, value)
            return await self._continue(session_id, step, stop_event)

    async def abort_pending(self, session_id: str, *, reason: str = "aborted") -> int:
        """Answer every unresolved tool call with ``<aborted: reason>``; returns how many."""
        store = await self.ensure_store()
        async with self._guard.hold(session_id, store):
            return await self._recovery.abort_pending(store, session_id, reason=reason)

    async def get_pending(self, session_id: str) -> dict[str, Any] | None:
        return await self._recovery.get_pending(await self.ensure_store(), session_id)

    # ------------------------------------------------------------------ reading

    async def get_messages(self, session_id: str, *, include_compacted: bool = False) -> list[LoopMessage]:
        """The session's messages as provider-shape dicts (active window, or every stored row)."""
        return await session_messages(await self.ensure_store(), session_id, include_compacted)

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

    async def list_hook_events(self, session_id: str, *, send_index: int | None = None) -> list[HookEventRow]:
        """The session's recorded hook decisions (``config.record_hook_events``), oldest first."""
        return await (await self.ensure_store()).list_hook_events(session_id, send_index=send_index)

    # ------------------------------------------------------------------ jobs & timers

    async def list_jobs(self, session_id: str) -> list[Job]:
        """What runs for the session: its send, background tasks, workflow runs, armed timers (``_jobs``)."""
        return await self._jobs.list_jobs(await self.ensure_store(), session_id)

    async def stop_job(self, session_id: str, job_id: str, *, reason: str = "") -> bool:
        """Stop a job by id (``send``, ``bg:<id>``, ``wf:<run_id>``, ``timer:<id>``): True when stopped
        or asked to stop, False when it had already ended; `JobNotFoundError` for an unknown id."""
        return await self._jobs.stop_job(await self.ensure_store(), session_id, job_id, reason)

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
        return await self._deferred.schedule_timer(
            session_id, delay_s=delay_s, due_at_ms=due_at_ms, note=note, interval_s=interval_s
        )

    async def cancel_timer(self, session_id: str, timer_id: int) -> bool:
        return await self._deferred.cancel_timer(session_id, timer_id)

    async def list_timers(self, session_id: str) -> list[TimerRow]:
        return await self._deferred.list_timers(session_id)

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self, *, drain_timeout_s: float = 30.0) -> None:
        """Graceful shutdown: refuse new sends, wait for running ones, drain events, close an owned store."""
        self._closing = True
        await self._guard.wait_idle(drain_timeout_s)
        await self._bus.drain(timeout=drain_timeout_s)
        store = self._stores.take_owned()
        if store is not None:
            try:
                await store.checkpoint()
            finally:
                await store.close()
        self._cache.clear()

    def close(self) -> None:
        """Synchronous close for code that used the ``*_sync`` API (closes an owned store)."""
        self._closing = True
        if self._sync.started:
            store = self._stores.take_owned()
            if store is not None:
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

    def _audit(self) -> HookAudit | None:
        """A send's hook audit trail, when ``config.record_hook_events`` asks for one."""
        if self.config.record_hook_events == "off":
            return None
        from ._hook_audit import HookAudit  # loaded only by loops that record

        return HookAudit(self._hooks, self.config.record_hook_events)

    def _lease_token(self, session_id: str) -> LeaseToken | None:
        return self._guard.lease_token(session_id)

    async def _continue(
        self,
        session_id: str,
        step: StatefulResult | Continuation,
        stop_event: CancellationLike,
        tap: AgentEventBus | None = None,
    ) -> StatefulResult:
        """Run a recovery step's rounds (the session is held), or return its waiting result as is."""
        if isinstance(step, StatefulResult):
            return step
        return await self._run(session_id, step.window, stop_event=stop_event, pending=step.pending, tap=tap)

    def _system_prompt(self, per_call: str | None, session: str | None, registry: ToolRegistry | None) -> str:
        return loop_system_prompt(self.config, self._skills, per_call, session, registry)

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
        audit: HookAudit | None = None,
    ) -> StatefulResult:
        run_send, engine_parts, runtime_context = _send_machinery()
        audit = audit or self._audit()
        store = self.store
        assert store is not None
        registry = registry_for(self.tool_registry, self._subsets, tools)
        prompt = self._system_prompt(system_prompt, window.system_prompt, registry)
        parts = engine_parts(
            store=store,
            llm=self.llm,
            config=self.config,
            hooks=self._hooks if audit is None else audit.hooks,
            bus=self._bus,
            follow_up_flags=self._follow_up_flags,
            steers=self._deferred.steers,
            lease=self._lease_token(session_id),
            context=self.context,
            audit=audit,
        )
        runtime = runtime_context(
            session_id=session_id, store=store, loop=self, config=self.config, send_index=window.send_index
        )
        token = CancellationToken.from_any(stop_event) if stop_event is not None else None
        try:
            async with self._jobs.running(session_id, token, store) as stop_token:
                result = await run_send(
                    parts,
                    session_id,
                    window,
                    registry=registry,
                    context_registry=self.tool_registry,
                    system_prompt=prompt,
                    token=token,
                    runtime=runtime,
                    pending=pending,
                    tap=tap,
                    new_send=new_send,
                    stop_token=stop_token,
                )
        except BaseException:
            self._cache.drop(session_id)
            raise
        finally:
            if audit is not None:
                await audit.flush(store, session_id)
        self._cache.put(session_id, window)
        return result
