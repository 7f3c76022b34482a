"""`ContextPipeline`: representation x fold strategy, memory and token budget, for the round engine.

The engine calls four things (see ``docs/context.md`` § "Engine integration"):

- :meth:`ContextPipeline.begin_send` at a send boundary (the new user row is stored and is the last
  message of the window): re-renders the window (the send that just finished gets its
  representation), folds whole earlier sends when over budget, and recalls memory;
- :meth:`ContextPipeline.request_messages` for every LLM call of the send (window + ephemeral memory);
- :meth:`ContextPipeline.observe` after every LLM call (calibrates the token estimator);
- :meth:`ContextPipeline.end_send` when the send ends (memory ``remember``, calibration persisted).

The window is a pure function of the session's stored rows (active messages, the latest summary
note) and of durable session metadata (the estimator calibration), so a loop that has the window
cached and a loop that rebuilds it from the store produce identical requests, including after folds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..base import ToolRuntimeContext, use_tool_runtime_context
from ..errors import ConfigError, PowerLoopError, SessionNotFoundError
from ..store import NewMessage
from ._fold import FoldContext, FoldResult, FoldStrategy, LLMSummaryFold
from ._memory import MemoryProvider, MemorySnapshot, tag_as_memory
from ._notes import DEFAULT_NOTES_POLICY, NotesPolicy, apply_note_ops, register_note_tools
from ._recall import COMPACT_NOTE_NAME, is_compact_note, register_recall_tools
from ._representation import CompactView, Representation, SendView, VerbatimRepresentation, check_messages
from ._tokens import TokenEstimator

if TYPE_CHECKING:
    from ..events import AgentEventBus
    from ..hooks import AgentHooks
    from ..store import CompactionRow, MessageRow, SessionStore
    from ..tools import ToolRegistry

__all__ = [
    "METADATA_KEY",
    "STATE_KEY",
    "ContextPipeline",
    "ContextState",
    "FoldOutcome",
    "WindowLike",
    "row_message",
]

LoopMessage = dict[str, Any]
STATE_KEY = "context"
"""Key of the pipeline's :class:`ContextState` in ``SessionWindow.extra``."""
METADATA_KEY = "power_loop.context"
"""Session metadata key holding the representation in force and the estimator calibration."""


class WindowLike(Protocol):
    """The engine's cached window (``power_loop.loop.SessionWindow`` fits)."""

    messages: list[dict[str, Any]]
    next_seq: int
    send_index: int
    extra: dict[str, Any]


def row_message(row: MessageRow) -> LoopMessage:
    """A stored row as the provider-shape dict the engine builds (same keys, same order)."""
    msg: LoopMessage = {"role": row.role, "content": row.content}
    if row.tool_calls:
        msg["tool_calls"] = row.tool_calls
    if row.tool_call_id is not None:
        msg["tool_call_id"] = row.tool_call_id
    if row.name is not None:
        msg["name"] = row.name
    return msg


@dataclass(slots=True)
class _Send:
    send_index: int
    first_seq: int
    last_seq: int
    raw: list[LoopMessage]
    rendered: list[LoopMessage]


@dataclass(slots=True)
class _Compact:
    view: CompactView
    note_seq: int
    rendered: list[LoopMessage]


@dataclass(slots=True)
class ContextState:
    """What the pipeline caches per session (in ``window.extra[STATE_KEY]``); rebuildable from the store."""

    rep_key: str
    compact: _Compact | None
    finished: list[_Send]
    current_index: int
    current_first_seq: int
    prefix: list[LoopMessage]
    estimator: TokenEstimator
    persisted: dict[str, Any]
    stale_notes: list[int] = field(default_factory=list)
    ephemeral: list[LoopMessage] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FoldOutcome:
    """What :meth:`ContextPipeline.begin_send` did about folding (``None`` when under budget)."""

    status: str  # "folded" | "skipped" | "failed"
    reason: str = ""
    before_tokens: int = 0
    after_tokens: int = 0
    from_send: int | None = None
    to_send: int | None = None
    compaction: CompactionRow | None = None
    notes_applied: int = 0
    note_problems: tuple[str, ...] = ()


class ContextPipeline:
    """Context handling for a loop: how finished sends are shown (``representation``), how old ones
    are folded (``fold``; ``None`` never folds), what is recalled each send (``memory``).

    ``context_tokens`` is the prompt budget; a fold triggers when the estimated request reaches
    ``fold.trigger_ratio`` of it. ``fold_timeout_s`` bounds a fold; on timeout or error the send goes
    on unfolded and a ``STATUS_CHANGED(auto_compact, phase="failed")`` event says why. With
    ``calibrate`` the estimator learns chars-per-token per model from reported usage (persisted in
    the session metadata so every process decides folds the same way).
    """

    def __init__(
        self,
        *,
        representation: Representation | None = None,
        fold: FoldStrategy | None = None,
        memory: MemoryProvider | None = None,
        notes_policy: NotesPolicy = DEFAULT_NOTES_POLICY,
        note_tools: bool = False,
        context_tokens: int = 8000,
        fold_timeout_s: float = 120.0,
        memory_budget_tokens: int = 1500,
        calibrate: bool = True,
        estimator_factory: type[TokenEstimator] = TokenEstimator,
    ) -> None:
        rep = representation if representation is not None else VerbatimRepresentation()
        if not isinstance(rep, Representation):
            raise ConfigError(f"representation must implement Representation, got {type(rep).__name__}")
        if fold is not None and not isinstance(fold, FoldStrategy):
            raise ConfigError(f"fold must implement FoldStrategy, got {type(fold).__name__}")
        if memory is not None and not isinstance(memory, MemoryProvider):
            raise ConfigError(f"memory must implement MemoryProvider, got {type(memory).__name__}")
        if isinstance(context_tokens, bool) or not isinstance(context_tokens, int) or context_tokens < 1:
            raise ConfigError(f"context_tokens must be an int >= 1, got {context_tokens!r}")
        if not fold_timeout_s > 0:
            raise ConfigError(f"fold_timeout_s must be > 0, got {fold_timeout_s!r}")
        self.representation = rep
        self.fold = fold
        self.memory = memory
        self.notes_policy = notes_policy
        self.note_tools = note_tools
        self.context_tokens = context_tokens
        self.fold_timeout_s = float(fold_timeout_s)
        self.memory_budget_tokens = memory_budget_tokens
        self.calibrate = calibrate
        self._estimator_factory = estimator_factory

    @classmethod
    def default(cls) -> ContextPipeline:
        """Verbatim history folded by one summary call at 75 % of an 8,000-token budget."""
        return cls(fold=LLMSummaryFold())

    def __repr__(self) -> str:
        return f"ContextPipeline(representation={self.representation!r}, fold={self.fold!r}, memory={self.memory!r})"

    @property
    def representation_key(self) -> str:
        return f"{self.representation.kind}@{self.representation.version}"

    # ------------------------------------------------------------------ tools

    def tool_names(self) -> list[str]:
        """Tools this pipeline wants registered: recall tools when anything can hide detail, note tools on request."""
        names: list[str] = []
        if self.fold is not None or self.representation.kind != "verbatim":
            names += ["recall_send", "recall_compacted"]
        if self.note_tools:
            names += ["note_add", "note_update", "note_delete"]
        return names

    def register_tools(self, registry: ToolRegistry) -> list[str]:
        """Register :meth:`tool_names` into ``registry`` (a tool already there is left alone)."""
        wanted = self.tool_names()
        added: list[str] = []
        if "recall_send" in wanted and not (registry.has("recall_send") or registry.has("recall_compacted")):
            added += register_recall_tools(registry)
        if "note_add" in wanted and not any(
            registry.has(n) for n in ("note_add", "note_update", "note_delete")
        ):
            added += register_note_tools(registry, policy=self.notes_policy)
        return added

    # ------------------------------------------------------------------ building the window

    def render_rows(
        self, rows: Sequence[MessageRow], *, registry: ToolRegistry | None = None, calibration: Any = None
    ) -> tuple[list[LoopMessage], ContextState]:
        """The window for active ``rows`` (seq order) and the state to cache with it — a pure function."""
        estimator = self._estimator_factory()
        estimator.load_dict(calibration if isinstance(calibration, dict) else None)
        notes = [r for r in rows if is_compact_note(r)]
        compact = None
        if notes:
            note = notes[-1]
            meta = note.meta or {}
            last = int(meta.get("to_send", note.send_index or 0))
            view = CompactView(
                summary=str(note.content or ""),
                from_send=int(meta.get("from_send", last)),
                to_send=last,
            )
            compact = _Compact(view, note.seq, self.representation.render_compact(view))
        groups: dict[int, list[MessageRow]] = {}
        for row in rows:
            if not is_compact_note(row):
                groups.setdefault(row.send_index if row.send_index is not None else 0, []).append(row)
        order = sorted(groups)
        sends: list[_Send] = []
        for index in order:
            group = groups[index]
            raw = [row_message(r) for r in group]
            sends.append(_Send(index, group[0].seq, group[-1].seq, raw, raw))
        current: _Send | None = sends.pop() if sends else None
        for send in sends:
            send.rendered = self._render_send(send, registry)
        state = ContextState(
            rep_key=self.representation_key,
            compact=compact,
            finished=sends,
            current_index=current.send_index if current is not None else -1,
            current_first_seq=current.first_seq if current is not None else 0,
            prefix=[],
            estimator=estimator,
            persisted=dict(calibration) if isinstance(calibration, dict) else {},
            stale_notes=[n.seq for n in notes[:-1]],
        )
        state.prefix = self._prefix(state)
        return state.prefix + (current.raw if current is not None else []), state

    def _render_send(self, send: _Send, registry: ToolRegistry | None) -> list[LoopMessage]:
        rendered = self.representation.render_send(
            SendView(send.send_index, tuple(send.raw)), tool_registry=registry
        )
        if rendered is send.raw or self.representation.kind == "verbatim":
            return rendered
        problem = check_messages(rendered)
        if problem is not None:
            raise ConfigError(
                f"{self.representation!r} rendered send #{send.send_index} invalidly: {problem}"
            )
        return rendered

    @staticmethod
    def _prefix(state: ContextState) -> list[LoopMessage]:
        prefix: list[LoopMessage] = list(state.compact.rendered) if state.compact is not None else []
        for send in state.finished:
            prefix.extend(send.rendered)
        return prefix

    def rebuild(
        self, window: WindowLike, rows: Sequence[MessageRow], *, registry: ToolRegistry | None = None
    ) -> None:
        """Re-render ``window`` from freshly loaded active ``rows`` (e.g. after another writer was
        detected), keeping the calibration and the send's recalled memory."""
        old = window.extra.get(STATE_KEY)
        calibration = old.persisted if isinstance(old, ContextState) else None
        messages, state = self.render_rows(rows, registry=registry, calibration=calibration)
        if isinstance(old, ContextState):
            state.estimator = old.estimator
            state.ephemeral = old.ephemeral
        window.messages[:] = messages
        window.extra[STATE_KEY] = state

    def _advance(self, window: WindowLike, registry: ToolRegistry | None) -> ContextState | None:
        """Warm path: the cached state plus exactly one new user message → the finished send is rendered."""
        state = window.extra.get(STATE_KEY)
        if not isinstance(state, ContextState) or state.rep_key != self.representation_key:
            return None
        msgs = window.messages
        n = len(state.prefix)
        if (
            len(msgs) < n + 1
            or window.send_index != state.current_index + 1
            or msgs[-1].get("role") != "user"
            or any(a is not b for a, b in zip(msgs, state.prefix, strict=False))
        ):
            return None
        previous = msgs[n:-1]
        user_seq = window.next_seq - 1
        if previous:
            send = _Send(state.current_index, state.current_first_seq, user_seq - 1, list(previous), [])
            send.rendered = self._render_send(send, registry)
            state.finished.append(send)
        state.current_index = window.send_index
        state.current_first_seq = user_seq
        state.prefix = self._prefix(state)
        msgs[:] = [*state.prefix, msgs[-1]]
        state.ephemeral = []
        return state

    async def _cold(
        self,
        store: SessionStore,
        session_id: str,
        window: WindowLike,
        rows: Sequence[MessageRow] | None,
        registry: ToolRegistry | None,
        bus: AgentEventBus | None,
    ) -> ContextState:
        session = await store.get_session(session_id)
        if session is None:
            raise SessionNotFoundError(session_id)
        if rows is None:
            rows = await store.load_active_messages(session_id)
        meta = session.metadata.get(METADATA_KEY)
        meta = meta if isinstance(meta, dict) else {}
        messages, state = self.render_rows(rows, registry=registry, calibration=meta.get("calibration"))
        window.messages[:] = messages
        window.extra[STATE_KEY] = state
        recorded = meta.get("representation", "verbatim@1")
        if recorded != self.representation_key:
            # A representation switch: derived views need no data migration, only this one record.
            await store.merge_session_metadata(
                session_id, {METADATA_KEY: {**meta, "representation": self.representation_key}}
            )
            if bus is not None:
                key = self.representation_key
                bus.emit(
                    "status_changed",
                    lambda: {"kind": "representation_switched", "from": recorded, "to": key},
                    session_id=session_id,
                )
        return state

    # ------------------------------------------------------------------ engine entry points

    async def begin_send(
        self,
        store: SessionStore,
        session_id: str,
        window: WindowLike,
        *,
        llm: Any = None,
        registry: ToolRegistry | None = None,
        hooks: AgentHooks | None = None,
        bus: AgentEventBus | None = None,
        system_prompt: str | None = None,
        tools: Sequence[dict[str, Any]] | None = None,
        model: str | None = None,
        rows: Sequence[MessageRow] | None = None,
        budget_tokens: int | None = None,
    ) -> FoldOutcome | None:
        """At a send boundary: render, fold if over budget, recall memory. Mutates ``window`` in place.

        ``window.messages`` must end with the new send's user message and ``window.next_seq`` /
        ``window.send_index`` must be current. ``rows`` (the active rows, if the caller just loaded
        them) saves a query on a cold window. Never raises for fold or memory failures.
        """
        state = self._advance(window, registry)
        if state is None:
            state = await self._cold(store, session_id, window, rows, registry, bus)
        outcome = None
        if self.fold is not None:
            outcome = await self._maybe_fold(
                store,
                session_id,
                window,
                state,
                llm=llm,
                registry=registry,
                hooks=hooks,
                bus=bus,
                system_prompt=system_prompt,
                tools=tools,
                model=model,
                budget_tokens=budget_tokens,
            )
        await self._recall(store, session_id, window, hooks=hooks, bus=bus)
        return outcome

    async def attach(
        self,
        store: SessionStore,
        session_id: str,
        window: WindowLike,
        *,
        registry: ToolRegistry | None = None,
        hooks: AgentHooks | None = None,
        bus: AgentEventBus | None = None,
        rows: Sequence[MessageRow] | None = None,
        recall: bool = True,
    ) -> None:
        """For a window loaded to *continue* a send (resume, submit_input) or to prewarm: render it
        from the store without folding; ``recall`` re-runs memory recall for the continued send."""
        await self._cold(store, session_id, window, rows, registry, bus)
        if recall:
            await self._recall(store, session_id, window, hooks=hooks, bus=bus)

    def request_messages(self, window: WindowLike) -> list[LoopMessage]:
        """The message list of the next LLM request: the window, then this send's recalled memory."""
        state = window.extra.get(STATE_KEY)
        if isinstance(state, ContextState) and state.ephemeral:
            return [*window.messages, *state.ephemeral]
        return list(window.messages)

    def observe(
        self,
        window: WindowLike,
        *,
        model: str | None,
        messages: Sequence[dict[str, Any]],
        prompt_tokens: int | None,
        system_prompt: str | None = None,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """Feed one request and the prompt tokens the provider reported into the estimator."""
        state = window.extra.get(STATE_KEY)
        if self.calibrate and isinstance(state, ContextState):
            state.estimator.observe_request(
                model, messages, prompt_tokens=prompt_tokens, system_prompt=system_prompt, tools=tools
            )

    async def end_send(
        self,
        store: SessionStore,
        session_id: str,
        window: WindowLike,
        *,
        status: str,
        final_text: str = "",
        rounds: int = 0,
        bus: AgentEventBus | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """When a send ends (any status): ``memory.remember`` and persist a changed calibration."""
        state = window.extra.get(STATE_KEY)
        if self.memory is not None:
            snapshot = MemorySnapshot(
                session_id=session_id,
                messages=list(window.messages),
                final_text=final_text,
                rounds=rounds,
                status=status,
                metadata=dict(metadata or {}),
            )
            try:
                with use_tool_runtime_context(ToolRuntimeContext(session_id=session_id, store=store)):
                    await self.memory.remember(snapshot=snapshot, session_id=session_id)
            except Exception as exc:
                _memory_failed(bus, session_id, "remember", exc)
        if self.calibrate and isinstance(state, ContextState):
            calibration = state.estimator.to_dict()
            if calibration and calibration != state.persisted:
                session = await store.get_session(session_id)
                meta = session.metadata.get(METADATA_KEY) if session is not None else None
                meta = dict(meta) if isinstance(meta, dict) else {"representation": self.representation_key}
                meta["calibration"] = calibration
                await store.merge_session_metadata(session_id, {METADATA_KEY: meta})
                state.persisted = calibration

    # ------------------------------------------------------------------ folding

    def estimate(
        self,
        window: WindowLike,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> int:
        """Estimated prompt tokens of the window (what the fold trigger compares to the budget)."""
        state = window.extra.get(STATE_KEY)
        estimator = state.estimator if isinstance(state, ContextState) else self._estimator_factory()
        return estimator.estimate(window.messages, model, system_prompt=system_prompt, tools=tools)

    async def _maybe_fold(
        self,
        store: SessionStore,
        sid: str,
        window: WindowLike,
        state: ContextState,
        *,
        llm: Any,
        registry: ToolRegistry | None,
        hooks: AgentHooks | None,
        bus: AgentEventBus | None,
        system_prompt: str | None,
        tools: Sequence[dict[str, Any]] | None,
        model: str | None,
        budget_tokens: int | None,
    ) -> FoldOutcome | None:
        fold = self.fold
        assert fold is not None
        budget = budget_tokens if budget_tokens is not None else self.context_tokens
        before = state.estimator.estimate(window.messages, model, system_prompt=system_prompt, tools=tools)
        keep = max(1, int(fold.keep_last_sends))
        if before < int(budget * fold.trigger_ratio) or len(state.finished) <= keep:
            return None
        from .. import hooks as C
        from ..hooks import HookDirective, HookPoint

        if hooks is not None and hooks.has(HookPoint.COMPACT_BEFORE):
            ctx_before = C.CompactBeforeCtx(session_id=sid, messages=window.messages)
            if await hooks.run(HookPoint.COMPACT_BEFORE, ctx_before) is HookDirective.SKIP:
                _compact_status(bus, sid, "skipped", "hook", before, before)
                return FoldOutcome("skipped", "compact.before hook", before, before)
        _compact_status(bus, sid, "started", "token_budget", before, 0)
        foldable = state.finished[:-keep]
        notes = tuple(await store.list_notes(sid))
        context = FoldContext(
            session_id=sid,
            sends=tuple(SendView(s.send_index, tuple(s.rendered)) for s in foldable),
            raw_sends=tuple(SendView(s.send_index, tuple(s.raw)) for s in foldable),
            representation=self.representation,
            prior_summary=state.compact.view.summary if state.compact is not None else None,
            llm=llm,
            tool_registry=registry,
            notes=notes,
            budget_tokens=budget,
            current_tokens=before,
            model=model,
        )
        try:
            result = await asyncio.wait_for(fold.fold(context), timeout=self.fold_timeout_s)
        except asyncio.TimeoutError:
            _compact_status(bus, sid, "failed", f"timeout after {self.fold_timeout_s:g}s", before, before)
            return FoldOutcome("failed", "timeout", before, before)
        except Exception as exc:
            _compact_status(bus, sid, "failed", f"{type(exc).__name__}: {exc}"[:300], before, before)
            return FoldOutcome("failed", f"{type(exc).__name__}: {exc}", before, before)
        problem = _check_result(result, foldable)
        if problem is not None:
            _compact_status(bus, sid, "skipped" if result is None else "failed", problem, before, before)
            return FoldOutcome("skipped" if result is None else "failed", problem, before, before)
        assert result is not None
        count = (
            len(foldable)
            if result.fold_through is None
            else 1 + [s.send_index for s in foldable].index(result.fold_through)
        )
        folded = foldable[:count]
        view = CompactView(
            summary=result.summary.strip(),
            from_send=state.compact.view.from_send if state.compact is not None else folded[0].send_index,
            to_send=folded[-1].send_index,
        )
        rendered = self.representation.render_compact(view)
        remaining = state.finished[count:]
        after_prefix = [*rendered, *(m for s in remaining for m in s.rendered)]
        current = window.messages[len(state.prefix) :]
        after = state.estimator.estimate(
            [*after_prefix, *current], model, system_prompt=system_prompt, tools=tools
        )
        note = NewMessage(
            role="system",
            name=COMPACT_NOTE_NAME,
            content=view.summary,
            round_index=0,
            meta={
                "kind": "compact",
                "fold_id": fold.fold_id,
                "from_send": view.from_send,
                "to_send": view.to_send,
                "representation": self.representation_key,
                **({"fold_meta": result.meta} if result.meta else {}),
            },
        )
        also = list(state.stale_notes) + ([state.compact.note_seq] if state.compact is not None else [])
        before_count = len(window.messages)
        try:
            row = await store.record_compaction(
                sid,
                from_seq=folded[0].first_seq,
                to_seq=folded[-1].last_seq,
                note=note,
                before_tokens=before,
                after_tokens=after,
                also_seqs=also,
            )
        except PowerLoopError as exc:
            _compact_status(bus, sid, "failed", f"{type(exc).__name__}: {exc}"[:300], before, before)
            return FoldOutcome("failed", f"{type(exc).__name__}: {exc}", before, before)
        if row.note_seq != window.next_seq:
            # Someone else wrote to the session meanwhile: the store is the truth.
            self.rebuild(window, await store.load_active_messages(sid), registry=registry)
            fresh = await store.get_state(sid)
            if fresh is not None:
                window.next_seq = fresh.next_seq
        else:
            state.compact = _Compact(view, row.note_seq, rendered)
            state.finished = remaining
            state.stale_notes = []
            state.prefix = self._prefix(state)
            window.messages[:] = [*state.prefix, *current]
            window.next_seq = row.note_seq + 1
        applied, problems = 0, list[str]()
        if result.note_ops:
            applied, problems = await apply_note_ops(store, sid, result.note_ops, policy=self.notes_policy)
        if hooks is not None and hooks.has(HookPoint.COMPACT_AFTER):
            await hooks.run(
                HookPoint.COMPACT_AFTER,
                C.CompactAfterCtx(
                    session_id=sid,
                    messages=window.messages,
                    messages_before_count=before_count,
                    messages_after_count=len(window.messages),
                ),
            )
        _compact_status(bus, sid, "completed", "token_budget", before, after)
        return FoldOutcome(
            "folded", fold.fold_id, before, after, view.from_send, view.to_send, row, applied, tuple(problems)
        )

    # ------------------------------------------------------------------ memory

    async def _recall(
        self,
        store: SessionStore,
        sid: str,
        window: WindowLike,
        *,
        hooks: AgentHooks | None,
        bus: AgentEventBus | None,
    ) -> None:
        state = window.extra.get(STATE_KEY)
        if self.memory is None or not isinstance(state, ContextState):
            return
        budget = self.memory_budget_tokens
        try:
            with use_tool_runtime_context(ToolRuntimeContext(session_id=sid, store=store)):
                recalled = list(
                    await self.memory.recall(
                        messages=list(window.messages), session_id=sid, budget_tokens=budget
                    )
                )
        except Exception as exc:
            state.ephemeral = []
            _memory_failed(bus, sid, "recall", exc)
            return
        returned = len(recalled)
        if hooks is not None:
            from .. import hooks as C
            from ..hooks import HookDirective, HookPoint

            if hooks.has(HookPoint.MEMORY_RECALLED):
                ctx = C.MemoryRecalledCtx(session_id=sid, recalled=recalled, budget_tokens=budget)
                if await hooks.run(HookPoint.MEMORY_RECALLED, ctx) is HookDirective.SKIP:
                    recalled = []
                else:
                    recalled = list(ctx.recalled)
        state.ephemeral = tag_as_memory(recalled)
        if bus is not None:
            from .. import events as P

            injected = len(state.ephemeral)
            bus.emit(
                "memory_recalled",
                lambda: P.MemoryRecalledPayload(returned=returned, injected=injected, budget_tokens=budget),
                session_id=sid,
            )


def _check_result(result: FoldResult | None, foldable: list[_Send]) -> str | None:
    if result is None:
        return "fold strategy declined"
    if not isinstance(result, FoldResult):
        return f"fold strategy returned {type(result).__name__}, not FoldResult"
    if not isinstance(result.summary, str) or not result.summary.strip():
        return "fold strategy returned an empty summary"
    if result.fold_through is not None and result.fold_through not in [s.send_index for s in foldable]:
        return f"fold_through={result.fold_through} is not one of the offered sends"
    return None


def _compact_status(
    bus: AgentEventBus | None, sid: str, phase: str, trigger: str, before: int, after: int
) -> None:
    if bus is None:
        return
    from .. import events as P

    bus.emit(
        "status_changed",
        lambda: P.AutoCompactStatusPayload(
            phase=phase, trigger=trigger, before_tokens=before, after_tokens=after
        ),
        session_id=sid,
    )


def _memory_failed(bus: AgentEventBus | None, sid: str, phase: str, exc: BaseException) -> None:
    if bus is None:
        return
    from .. import events as P

    bus.emit(
        "memory_failed",
        lambda: P.MemoryFailedPayload(
            phase=phase, error_type=type(exc).__name__, error_message=str(exc)[:500]
        ),
        session_id=sid,
    )
