"""`ContextPipeline`: representation x fold strategy, memory and token budget — it *decides*.

The loop asks it, at a send boundary (the new user row is stored and is the last message of the
window), to :meth:`~ContextPipeline.advance` the cached window or :meth:`~ContextPipeline.attach_rows`
freshly read rows (the send that just finished gets its representation), whether and what to fold
(:meth:`~ContextPipeline.plan_fold`, :meth:`~ContextPipeline.run_fold`), and what memory
:meth:`~ContextPipeline.recall` brings back. Every LLM call of the send uses
:meth:`~ContextPipeline.request_messages` and :meth:`~ContextPipeline.observe`. The loop fires the
hooks, emits the events and commits the rows around these decisions (``docs/context.md`` §
"Engine integration"); nothing here writes the store.

The window is a pure function of the session's stored rows (active messages, the latest summary
note) and of durable session metadata (the estimator calibration), so a loop that has the window
cached and a loop that rebuilds it from the store produce identical requests, including after folds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..store import NewMessage
from ._decisions import (
    METADATA_KEY,
    CalibrationUpdate,
    FoldCommit,
    FoldFailure,
    FoldPlan,
    RepresentationSwitch,
)
from ._fold import FoldContext, FoldResult, FoldStrategy, LLMSummaryFold
from ._memory import MemoryProvider, MemorySnapshot, tag_as_memory
from ._notes import DEFAULT_NOTES_POLICY, NotesPolicy, register_note_tools
from ._recall import COMPACT_NOTE_NAME, is_compact_note, register_recall_tools
from ._representation import CompactView, Representation, SendView, VerbatimRepresentation, check_messages
from ._state import STATE_KEY, ContextState, RenderedCompact, RenderedSend, WindowLike, row_message
from ._tokens import TokenEstimator

if TYPE_CHECKING:
    from ..store import MessageRow, NoteRow
    from ..tools import ToolRegistry

__all__ = ["ContextPipeline"]

LoopMessage = dict[str, Any]


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
            compact = RenderedCompact(view, note.seq, self.representation.render_compact(view))
        groups: dict[int, list[MessageRow]] = {}
        for row in rows:
            if not is_compact_note(row):
                groups.setdefault(row.send_index if row.send_index is not None else 0, []).append(row)
        order = sorted(groups)
        sends: list[RenderedSend] = []
        for index in order:
            group = groups[index]
            raw = [row_message(r) for r in group]
            sends.append(RenderedSend(index, group[0].seq, group[-1].seq, raw, raw))
        current: RenderedSend | None = sends.pop() if sends else None
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

    def _render_send(self, send: RenderedSend, registry: ToolRegistry | None) -> list[LoopMessage]:
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

    # ------------------------------------------------------------------ the window at a send boundary

    def advance(self, window: WindowLike, registry: ToolRegistry | None = None) -> bool:
        """Warm path: the cached state plus exactly one new user message → the finished send is
        rendered. False when the cached state cannot be advanced (attach freshly read rows instead)."""
        state = window.extra.get(STATE_KEY)
        if not isinstance(state, ContextState) or state.rep_key != self.representation_key:
            return False
        msgs = window.messages
        n = len(state.prefix)
        if (
            len(msgs) < n + 1
            or window.send_index != state.current_index + 1
            or msgs[-1].get("role") != "user"
            or any(a is not b for a, b in zip(msgs, state.prefix, strict=False))
        ):
            return False
        previous = msgs[n:-1]
        user_seq = window.next_seq - 1
        if previous:
            send = RenderedSend(
                state.current_index, state.current_first_seq, user_seq - 1, list(previous), []
            )
            send.rendered = self._render_send(send, registry)
            state.finished.append(send)
        state.current_index = window.send_index
        state.current_first_seq = user_seq
        state.prefix = self._prefix(state)
        msgs[:] = [*state.prefix, msgs[-1]]
        state.ephemeral = []
        return True

    def attach_rows(
        self,
        window: WindowLike,
        rows: Sequence[MessageRow],
        session_metadata: Mapping[str, Any],
        *,
        registry: ToolRegistry | None = None,
    ) -> RepresentationSwitch | None:
        """Render ``window`` from the session's active ``rows`` and metadata (cold path).

        Returns the switch to record when the session was last shown with another representation
        (derived views need no data migration, only that one record), else ``None``.
        """
        meta = session_metadata.get(METADATA_KEY)
        meta = meta if isinstance(meta, dict) else {}
        messages, state = self.render_rows(rows, registry=registry, calibration=meta.get("calibration"))
        window.messages[:] = messages
        window.extra[STATE_KEY] = state
        recorded = meta.get("representation", "verbatim@1")
        key = self.representation_key
        if recorded == key:
            return None
        return RepresentationSwitch(recorded, key, {METADATA_KEY: {**meta, "representation": key}})

    # ------------------------------------------------------------------ every model call

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

    # ------------------------------------------------------------------ folding

    def plan_fold(
        self,
        window: WindowLike,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> FoldPlan | None:
        """Whether to fold: a plan when the window reaches the trigger and has sends to spare."""
        fold = self.fold
        state = window.extra.get(STATE_KEY)
        if fold is None or not isinstance(state, ContextState):
            return None
        budget = self.context_tokens
        before = state.estimator.estimate(window.messages, model, system_prompt=system_prompt, tools=tools)
        keep = max(1, int(fold.keep_last_sends))
        if before < int(budget * fold.trigger_ratio) or len(state.finished) <= keep:
            return None
        offered = tuple(s.send_index for s in state.finished[:-keep])
        return FoldPlan(before, budget, offered, model, system_prompt, tools)

    async def run_fold(
        self,
        plan: FoldPlan,
        window: WindowLike,
        *,
        session_id: str,
        llm: Any,
        notes: Sequence[NoteRow] = (),
        registry: ToolRegistry | None = None,
    ) -> FoldCommit | FoldFailure:
        """What to fold: run the strategy on the planned sends (bounded by ``fold_timeout_s``) and
        validate its result into a :class:`FoldCommit`, or say why nothing is folded."""
        fold = self.fold
        state = window.extra.get(STATE_KEY)
        assert fold is not None and isinstance(state, ContextState)
        foldable = state.finished[: len(plan.send_indexes)]
        context = FoldContext(
            session_id=session_id,
            sends=tuple(SendView(s.send_index, tuple(s.rendered)) for s in foldable),
            raw_sends=tuple(SendView(s.send_index, tuple(s.raw)) for s in foldable),
            representation=self.representation,
            prior_summary=state.compact.view.summary if state.compact is not None else None,
            llm=llm,
            tool_registry=registry,
            notes=tuple(notes),
            budget_tokens=plan.budget_tokens,
            current_tokens=plan.before_tokens,
            model=plan.model,
        )
        try:
            result = await asyncio.wait_for(fold.fold(context), timeout=self.fold_timeout_s)
        except asyncio.TimeoutError:
            return FoldFailure("failed", "timeout", f"timeout after {self.fold_timeout_s:g}s")
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            return FoldFailure("failed", text, text[:300])
        problem = _check_result(result, foldable)
        if problem is not None:
            return FoldFailure("skipped" if result is None else "failed", problem, problem)
        assert result is not None
        return self._fold_commit(plan, window, state, fold.fold_id, result)

    def _fold_commit(
        self, plan: FoldPlan, window: WindowLike, state: ContextState, fold_id: str, result: FoldResult
    ) -> FoldCommit:
        indexes = list(plan.send_indexes)
        count = len(indexes) if result.fold_through is None else 1 + indexes.index(result.fold_through)
        folded = state.finished[:count]
        view = CompactView(
            summary=result.summary.strip(),
            from_send=state.compact.view.from_send if state.compact is not None else folded[0].send_index,
            to_send=folded[-1].send_index,
        )
        rendered = self.representation.render_compact(view)
        after_prefix = [*rendered, *(m for s in state.finished[count:] for m in s.rendered)]
        current = window.messages[len(state.prefix) :]
        after = state.estimator.estimate(
            [*after_prefix, *current], plan.model, system_prompt=plan.system_prompt, tools=plan.tools
        )
        note = NewMessage(
            role="system",
            name=COMPACT_NOTE_NAME,
            content=view.summary,
            round_index=0,
            meta={
                "kind": "compact",
                "fold_id": fold_id,
                "from_send": view.from_send,
                "to_send": view.to_send,
                "representation": self.representation_key,
                **({"fold_meta": result.meta} if result.meta else {}),
            },
        )
        also = [*state.stale_notes, *([state.compact.note_seq] if state.compact is not None else [])]
        return FoldCommit(
            fold_id=fold_id,
            view=view,
            rendered=rendered,
            folded_sends=count,
            from_seq=folded[0].first_seq,
            to_seq=folded[-1].last_seq,
            note=note,
            after_tokens=after,
            also_seqs=tuple(also),
            note_ops=tuple(result.note_ops),
        )

    def apply_fold(self, window: WindowLike, commit: FoldCommit, note_seq: int) -> None:
        """Show a recorded fold in the cached window (its summary note was stored as ``note_seq``)."""
        state = window.extra[STATE_KEY]
        current = window.messages[len(state.prefix) :]
        state.compact = RenderedCompact(commit.view, note_seq, commit.rendered)
        state.finished = state.finished[commit.folded_sends :]
        state.stale_notes = []
        state.prefix = self._prefix(state)
        window.messages[:] = [*state.prefix, *current]

    # ------------------------------------------------------------------ memory and calibration

    def wants_recall(self, window: WindowLike) -> bool:
        """Whether this send recalls memory (a provider is set and the window is attached)."""
        return self.memory is not None and isinstance(window.extra.get(STATE_KEY), ContextState)

    async def recall(self, window: WindowLike, session_id: str) -> list[LoopMessage]:
        """What the memory provider brings back for this send (it may raise; nothing is kept yet)."""
        assert self.memory is not None
        return list(
            await self.memory.recall(
                messages=list(window.messages),
                session_id=session_id,
                budget_tokens=self.memory_budget_tokens,
            )
        )

    def keep_recalled(self, window: WindowLike, recalled: Sequence[LoopMessage]) -> int:
        """Make ``recalled`` this send's ephemeral memory (tagged); returns how many messages it is."""
        state = window.extra[STATE_KEY]
        state.ephemeral = tag_as_memory(recalled)
        return len(state.ephemeral)

    async def remember(
        self,
        window: WindowLike,
        session_id: str,
        *,
        status: str,
        final_text: str = "",
        rounds: int = 0,
    ) -> None:
        """Hand the finished send to the memory provider (no-op without one; it may raise)."""
        if self.memory is None:
            return
        snapshot = MemorySnapshot(
            session_id=session_id,
            messages=list(window.messages),
            final_text=final_text,
            rounds=rounds,
            status=status,
        )
        await self.memory.remember(snapshot=snapshot, session_id=session_id)

    def calibration_update(self, window: WindowLike) -> CalibrationUpdate | None:
        """The estimator calibration to persist when the send ends, if it changed."""
        state = window.extra.get(STATE_KEY)
        if not self.calibrate or not isinstance(state, ContextState):
            return None
        calibration = state.estimator.to_dict()
        if not calibration or calibration == state.persisted:
            return None
        return CalibrationUpdate(calibration, self.representation_key)

    def calibration_saved(self, window: WindowLike, update: CalibrationUpdate) -> None:
        """Note that ``update`` is persisted (the next send only writes a further change)."""
        window.extra[STATE_KEY].persisted = update.calibration


def _check_result(result: FoldResult | None, foldable: list[RenderedSend]) -> str | None:
    if result is None:
        return "fold strategy declined"
    if not isinstance(result, FoldResult):
        return f"fold strategy returned {type(result).__name__}, not FoldResult"
    if not isinstance(result.summary, str) or not result.summary.strip():
        return "fold strategy returned an empty summary"
    if result.fold_through is not None and result.fold_through not in [s.send_index for s in foldable]:
        return f"fold_through={result.fold_through} is not one of the offered sends"
    return None
