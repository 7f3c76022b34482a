"""Typed context objects handed to hook handlers, one class per :class:`HookPoint`.

Handlers read and mutate these in place (e.g. rewrite ``tool_args`` or set ``output`` before returning
``HookDirective.SKIP``). LLM-side values (messages, responses) are typed ``Any`` so this module stays
independent of ``power_loop.llm``: messages are OpenAI-shaped dicts, ``output`` on the LLM points is an
``LLMResponse``. The loop builds a ctx only when :meth:`AgentHooks.has` says a handler exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._points import HookDirective, HookPoint

__all__ = [
    "CTX_TYPES",
    "BaseHookCtx",
    "CompactAfterCtx",
    "CompactBeforeCtx",
    "LlmAfterCtx",
    "LlmBeforeCtx",
    "MemoryRecalledCtx",
    "MessageAppendCtx",
    "RoundDecideCtx",
    "RoundEndCtx",
    "RoundStartCtx",
    "SessionEndCtx",
    "SessionStartCtx",
    "TimerFireCtx",
    "ToolAfterCtx",
    "ToolBeforeCtx",
    "ToolErrorCtx",
    "ToolReconcileCtx",
    "ToolsBatchAfterCtx",
    "ToolsBatchBeforeCtx",
    "WorkflowStepEndCtx",
    "WorkflowStepStartCtx",
]


@dataclass(slots=True)
class BaseHookCtx:
    """Fields every ctx has. ``directive`` is set by a handler returning a :class:`HookDirective`.

    ``session_id`` (keyword-only) names the session being driven: hooks belong to a loop, and one loop
    drives many sessions concurrently, so a handler needs it to tell them apart.
    """

    round_index: int = 0
    directive: HookDirective = HookDirective.CONTINUE
    session_id: str | None = field(default=None, kw_only=True)


@dataclass(slots=True)
class SessionStartCtx(BaseHookCtx):
    """Start of every run (send / resume). ``messages`` may be replaced."""

    scope: str = "main"
    messages: list[Any] = field(default_factory=list, repr=False)
    stop_event: Any = None


@dataclass(slots=True)
class SessionEndCtx(BaseHookCtx):
    """Once per run, before the ``SESSION_ENDED`` event; ``reason`` is the end reason."""

    scope: str = "main"
    reason: str = ""
    messages: list[Any] = field(default_factory=list, repr=False)
    final_text: str | None = None


@dataclass(slots=True)
class TimerFireCtx(BaseHookCtx):
    """A durable timer is due. ``message`` (the injected text) is rewritable; ``postpone_s > 0`` re-arms."""

    session_id: str = ""
    timer_id: int = 0
    note: str = ""
    due_at: int = 0
    message: str = ""
    postpone_s: float = 0.0


@dataclass(slots=True)
class RoundStartCtx(BaseHookCtx):
    """Each round, before follow-ups are drained and before compaction. ``reason`` labels a BREAK."""

    messages: list[Any] = field(default_factory=list, repr=False)
    stop_event: Any = None
    reason: str = ""


@dataclass(slots=True)
class RoundEndCtx(BaseHookCtx):
    """End of each round."""

    messages: list[Any] = field(default_factory=list, repr=False)
    has_tools: bool = False
    response_text: str = ""
    used_todo: bool = False


@dataclass(slots=True)
class LlmBeforeCtx(BaseHookCtx):
    """Before the main LLM call; every input is editable. SHORT_CIRCUIT uses ``output`` (an ``LLMResponse``)."""

    messages: list[Any] = field(default_factory=list, repr=False)
    system_prompt: str = ""
    tools: list[dict[str, Any]] | None = None
    max_tokens: int = 8000
    temperature: float = 0.0
    output: Any = None
    # "auto" when tools are offered; set e.g. {"type": "function", "function": {"name": ...}} to force one.
    tool_choice: Any = None


@dataclass(slots=True)
class LlmAfterCtx(BaseHookCtx):
    """After a successful main LLM call; ``output`` (the ``LLMResponse``) may be replaced."""

    messages: list[Any] = field(default_factory=list, repr=False)
    output: Any = None


@dataclass(slots=True)
class RoundDecideCtx(BaseHookCtx):
    """The model returned tool calls, before dispatch. SKIP answers every call with ``output``."""

    messages: list[Any] = field(default_factory=list, repr=False)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    assistant_text: str = ""
    output: str = "[skipped by round_decide hook]"


@dataclass(slots=True)
class ToolsBatchBeforeCtx(BaseHookCtx):
    """Before a round's tool calls run. SKIP answers every call with ``output``."""

    messages: list[Any] = field(default_factory=list, repr=False)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    output: str = "[skipped by batch hook]"


@dataclass(slots=True)
class ToolsBatchAfterCtx(BaseHookCtx):
    """After a round's tool calls ran."""

    messages: list[Any] = field(default_factory=list, repr=False)
    used_todo: bool = False


@dataclass(slots=True)
class ToolBeforeCtx(BaseHookCtx):
    """Per tool call; ``tool_name``/``tool_args`` are editable. SKIP answers the call with ``output``."""

    tool_call: dict[str, Any] = field(default_factory=dict)
    tool_name: str = ""
    tool_args: dict[str, Any] = field(default_factory=dict)
    output: str = "[skipped by hook]"


@dataclass(slots=True)
class ToolAfterCtx(BaseHookCtx):
    """Per tool call after its result (failures included); ``output``/``failed`` are replaceable."""

    tool_call: dict[str, Any] = field(default_factory=dict)
    tool_name: str = ""
    tool_args: dict[str, Any] = field(default_factory=dict)
    output: str = ""
    failed: bool = False


@dataclass(slots=True)
class ToolErrorCtx(BaseHookCtx):
    """A tool handler raised (validation errors do not come here; they become error results)."""

    tool_call: dict[str, Any] = field(default_factory=dict)
    tool_name: str = ""
    tool_args: dict[str, Any] = field(default_factory=dict)
    error: Exception | None = None
    error_message: str = ""
    output: str = ""


@dataclass(slots=True)
class CompactBeforeCtx(BaseHookCtx):
    """At round start before the fold strategy runs. SKIP skips folding this round."""

    messages: list[Any] = field(default_factory=list, repr=False)


@dataclass(slots=True)
class CompactAfterCtx(BaseHookCtx):
    """After a fold was applied."""

    messages: list[Any] = field(default_factory=list, repr=False)
    messages_before_count: int = 0
    messages_after_count: int = 0


@dataclass(slots=True)
class MessageAppendCtx(BaseHookCtx):
    """Every message the round engine appends; ``message`` may be replaced before it is written."""

    message: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class MemoryRecalledCtx(BaseHookCtx):
    """After ``MemoryProvider.recall``; filter/reorder ``recalled``. SKIP injects nothing."""

    recalled: list[Any] = field(default_factory=list)
    budget_tokens: int = 1500


@dataclass(slots=True)
class ToolReconcileCtx(BaseHookCtx):
    """On recovery, a side-effecting call that started but never finished (its process died).

    It is never re-run blindly: ``output`` (by default an "outcome unknown" notice) answers the model,
    unless a hook sets another ``output`` (e.g. after checking the external system with
    ``idempotency_key``) or answers ``SHORT_CIRCUIT`` to run the call again."""

    tool_call: dict[str, Any] = field(default_factory=dict)
    tool_name: str = ""
    tool_args: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str = ""
    started_at: int = 0
    output: str = ""


@dataclass(slots=True)
class WorkflowStepStartCtx(BaseHookCtx):
    """A workflow leaf is about to run (not when replayed from the journal). ``user_input`` is
    rewritable; SKIP skips the step (status ``skipped``, journaled). ``session_id`` is the run's driver."""

    run_id: str = ""
    step: str = ""
    node_id: str = ""
    spec: Any = None
    user_input: str = ""
    reason: str = ""


@dataclass(slots=True)
class WorkflowStepEndCtx(BaseHookCtx):
    """A workflow leaf finished, before its outcome is journaled. ``result`` (an ``AgentResult``) may be
    replaced; the replacement is what the journal, later steps and a resume see."""

    run_id: str = ""
    step: str = ""
    node_id: str = ""
    result: Any = None


CTX_TYPES: Mapping[HookPoint, type[BaseHookCtx]] = MappingProxyType(
    {
        HookPoint.SESSION_START: SessionStartCtx,
        HookPoint.SESSION_END: SessionEndCtx,
        HookPoint.ROUND_START: RoundStartCtx,
        HookPoint.ROUND_END: RoundEndCtx,
        HookPoint.LLM_BEFORE: LlmBeforeCtx,
        HookPoint.LLM_AFTER: LlmAfterCtx,
        HookPoint.TOOLS_BATCH_BEFORE: ToolsBatchBeforeCtx,
        HookPoint.TOOLS_BATCH_AFTER: ToolsBatchAfterCtx,
        HookPoint.TOOL_BEFORE: ToolBeforeCtx,
        HookPoint.TOOL_AFTER: ToolAfterCtx,
        HookPoint.TOOL_ERROR: ToolErrorCtx,
        HookPoint.ROUND_DECIDE: RoundDecideCtx,
        HookPoint.COMPACT_BEFORE: CompactBeforeCtx,
        HookPoint.COMPACT_AFTER: CompactAfterCtx,
        HookPoint.MESSAGE_APPEND: MessageAppendCtx,
        HookPoint.MEMORY_RECALLED: MemoryRecalledCtx,
        HookPoint.TIMER_FIRE: TimerFireCtx,
        HookPoint.TOOL_RECONCILE: ToolReconcileCtx,
        HookPoint.WORKFLOW_STEP_START: WorkflowStepStartCtx,
        HookPoint.WORKFLOW_STEP_END: WorkflowStepEndCtx,
    }
)
"""The ctx class the loop passes at each hook point."""
