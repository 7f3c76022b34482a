"""Acting on a `ContextPipeline`'s decisions: the hooks, events and store writes around them.

The pipeline decides (what the window is, whether and what to fold, what memory brings back); this
module does what follows from each decision, at the same points the engine always did it:

- at a send boundary (:meth:`ContextDriver.begin_send`): render the window (reading the store on a
  cold window and recording a representation switch), fold when over budget (``COMPACT_BEFORE`` /
  ``COMPACT_AFTER`` hooks, ``status_changed`` events, the compaction in one transaction, then the
  fold's note ops), recall memory (``MEMORY_RECALLED`` hook, ``memory_recalled`` event);
- when a send is continued (resume, submit_input): render the window if it is not yet;
- when a send ends (:meth:`ContextDriver.end_send`): memory ``remember``, the calibration persisted.

Memory providers run with the session's tool runtime context (``session_id`` and ``store``) so
:class:`~power_loop.context.NotesMemory` finds its store. A failing provider is reported with a
``memory_failed`` event and the send carries on.

This module imports :mod:`power_loop.context`; the send path loads it only for loops that have a
context pipeline, which keeps the context package off the plain loop's import path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import events as P
from .. import hooks as H
from ..base import ToolRuntimeContext, redact_secrets, use_tool_runtime_context
from ..context import STATE_KEY, FoldFailure, FoldOutcome, apply_note_ops
from ..errors import PowerLoopError, SessionNotFoundError
from ..hooks import HookDirective, HookPoint

if TYPE_CHECKING:
    from ..context import ContextPipeline, FoldCommit, FoldPlan
    from ..events import AgentEventBus
    from ..hooks import AgentHooks
    from ..store import SessionStore
    from ..tools import ToolRegistry
    from ._cache import SessionWindow

__all__ = ["ContextDriver"]


class ContextDriver:
    """One session's context handling during one send: asks ``pipeline``, then acts.

    ``registry`` is the loop's full tool registry (representations may consult tool definitions and
    a fold strategy may call tools); events go to ``bus`` only.
    """

    __slots__ = ("bus", "hooks", "pipeline", "registry", "sid", "store", "window")

    def __init__(
        self,
        pipeline: ContextPipeline,
        store: SessionStore,
        session_id: str,
        window: SessionWindow,
        *,
        hooks: AgentHooks,
        bus: AgentEventBus,
        registry: ToolRegistry | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.sid = session_id
        self.window = window
        self.hooks = hooks
        self.bus = bus
        self.registry = registry

    # ------------------------------------------------------------------ send boundaries

    async def begin_send(
        self,
        *,
        llm: Any,
        system_prompt: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        model: str | None = None,
    ) -> FoldOutcome | None:
        """At a send boundary: render, fold if over budget, recall memory. Mutates the window in place.

        The window must end with the new send's user message and its ``next_seq`` / ``send_index``
        must be current. Never raises for fold or memory failures.
        """
        pipeline = self.pipeline
        if not pipeline.advance(self.window, self.registry):
            await self._attach_from_store()
        outcome = None
        plan = pipeline.plan_fold(self.window, model=model, system_prompt=system_prompt, tools=tools)
        if plan is not None:
            outcome = await self._fold(plan, llm)
        await self._recall()
        return outcome

    async def continue_send(self) -> None:
        """For a window loaded to continue a send: render it (and recall) unless it already is."""
        if STATE_KEY not in self.window.extra:
            await self.attach()

    async def attach(self, *, recall: bool = True) -> None:
        """Render the window from the store without folding; ``recall`` re-runs memory recall."""
        await self._attach_from_store()
        if recall:
            await self._recall()

    async def end_send(self, *, status: str, final_text: str = "", rounds: int = 0) -> None:
        """When a send ends (any status): memory ``remember``, then persist a changed calibration."""
        pipeline = self.pipeline
        if pipeline.memory is not None:
            try:
                with use_tool_runtime_context(ToolRuntimeContext(session_id=self.sid, store=self.store)):
                    await pipeline.remember(
                        self.window, self.sid, status=status, final_text=final_text, rounds=rounds
                    )
            except Exception as exc:
                self._memory_failed("remember", exc)
        update = pipeline.calibration_update(self.window)
        if update is not None:
            session = await self.store.get_session(self.sid)
            patch = update.metadata_patch(session.metadata if session is not None else None)
            await self.store.merge_session_metadata(self.sid, patch)
            pipeline.calibration_saved(self.window, update)

    async def _attach_from_store(self) -> None:
        session = await self.store.get_session(self.sid)
        if session is None:
            raise SessionNotFoundError(self.sid)
        rows = await self.store.load_active_messages(self.sid)
        switch = self.pipeline.attach_rows(self.window, rows, session.metadata, registry=self.registry)
        if switch is not None:
            await self.store.merge_session_metadata(self.sid, switch.metadata)
            self.bus.emit(
                "status_changed",
                lambda: {"kind": "representation_switched", "from": switch.previous, "to": switch.current},
                session_id=self.sid,
            )

    # ------------------------------------------------------------------ folding

    async def _fold(self, plan: FoldPlan, llm: Any) -> FoldOutcome:
        before = plan.before_tokens
        if self.hooks.has(HookPoint.COMPACT_BEFORE):
            ctx = H.CompactBeforeCtx(session_id=self.sid, messages=self.window.messages)
            if await self.hooks.run(HookPoint.COMPACT_BEFORE, ctx) is HookDirective.SKIP:
                self._compact_status("skipped", "hook", before, before)
                return FoldOutcome("skipped", "compact.before hook", before, before)
        self._compact_status("started", "token_budget", before, 0)
        notes = await self.store.list_notes(self.sid)
        decision = await self.pipeline.run_fold(
            plan, self.window, session_id=self.sid, llm=llm, notes=notes, registry=self.registry
        )
        if isinstance(decision, FoldFailure):
            self._compact_status(decision.status, decision.trigger, before, before)
            return FoldOutcome(decision.status, decision.reason, before, before)
        return await self._record_fold(plan, decision)

    async def _record_fold(self, plan: FoldPlan, commit: FoldCommit) -> FoldOutcome:
        """Commit the fold (one transaction), show it in the window, then apply its note ops."""
        sid, window, before = self.sid, self.window, plan.before_tokens
        before_count = len(window.messages)
        try:
            row = await self.store.record_compaction(
                sid,
                from_seq=commit.from_seq,
                to_seq=commit.to_seq,
                note=commit.note,
                before_tokens=before,
                after_tokens=commit.after_tokens,
                also_seqs=commit.also_seqs,
            )
        except PowerLoopError as exc:
            reason = redact_secrets(f"{type(exc).__name__}: {exc}")
            self._compact_status("failed", reason[:300], before, before)
            return FoldOutcome("failed", reason, before, before)
        if row.note_seq != window.next_seq:
            # Someone else wrote to the session meanwhile: the store is the truth.
            rows = await self.store.load_active_messages(sid)
            self.pipeline.rebuild(window, rows, registry=self.registry)
            fresh = await self.store.get_state(sid)
            if fresh is not None:
                window.next_seq = fresh.next_seq
        else:
            self.pipeline.apply_fold(window, commit, row.note_seq)
            window.next_seq = row.note_seq + 1
        applied, problems = 0, list[str]()
        if commit.note_ops:
            applied, problems = await apply_note_ops(
                self.store, sid, commit.note_ops, policy=self.pipeline.notes_policy
            )
        if self.hooks.has(HookPoint.COMPACT_AFTER):
            ctx = H.CompactAfterCtx(
                session_id=sid,
                messages=window.messages,
                messages_before_count=before_count,
                messages_after_count=len(window.messages),
            )
            await self.hooks.run(HookPoint.COMPACT_AFTER, ctx)
        after, view = commit.after_tokens, commit.view
        self._compact_status("completed", "token_budget", before, after)
        return FoldOutcome(
            "folded",
            commit.fold_id,
            before,
            after,
            view.from_send,
            view.to_send,
            row,
            applied,
            tuple(problems),
        )

    # ------------------------------------------------------------------ memory

    async def _recall(self) -> None:
        pipeline, sid = self.pipeline, self.sid
        if not pipeline.wants_recall(self.window):
            return
        budget = pipeline.memory_budget_tokens
        try:
            with use_tool_runtime_context(ToolRuntimeContext(session_id=sid, store=self.store)):
                recalled = await pipeline.recall(self.window, sid)
        except Exception as exc:
            pipeline.keep_recalled(self.window, [])
            self._memory_failed("recall", exc)
            return
        returned = len(recalled)
        if self.hooks.has(HookPoint.MEMORY_RECALLED):
            ctx = H.MemoryRecalledCtx(session_id=sid, recalled=recalled, budget_tokens=budget)
            if await self.hooks.run(HookPoint.MEMORY_RECALLED, ctx) is HookDirective.SKIP:
                recalled = []
            else:
                recalled = list(ctx.recalled)
        injected = pipeline.keep_recalled(self.window, recalled)
        self.bus.emit(
            "memory_recalled",
            lambda: P.MemoryRecalledPayload(returned=returned, injected=injected, budget_tokens=budget),
            session_id=sid,
        )

    # ------------------------------------------------------------------ events

    def _compact_status(self, phase: str, trigger: str, before: int, after: int) -> None:
        self.bus.emit(
            "status_changed",
            lambda: P.AutoCompactStatusPayload(
                phase=phase, trigger=trigger, before_tokens=before, after_tokens=after
            ),
            session_id=self.sid,
        )

    def _memory_failed(self, phase: str, exc: BaseException) -> None:
        self.bus.emit(
            "memory_failed",
            lambda: P.MemoryFailedPayload(
                phase=phase, error_type=type(exc).__name__, error_message=redact_secrets(str(exc))[:500]
            ),
            session_id=self.sid,
        )
