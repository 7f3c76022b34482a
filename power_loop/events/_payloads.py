"""Typed event payloads: one small dataclass per event type, every field defaulted.

The loop hands a payload object to :class:`AgentEvent` as ``data``; the dict form (``event.payload``,
``to_dict()``) is only built when a subscriber or a sink asks for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._payload_base import BaseEventPayload
from ._types import AgentEventType

__all__ = [
    "PAYLOAD_TYPES",
    "AgentErrorPayload",
    "AutoCompactStatusPayload",
    "BudgetExceededStatusPayload",
    "FollowUpDeliveredPayload",
    "HitRoundLimitStatusPayload",
    "InputRequestedPayload",
    "LlmCallCompletedPayload",
    "LlmCallStartedPayload",
    "LlmDegradedPayload",
    "LlmRetryAttemptedPayload",
    "LoopCancelledPayload",
    "MemoryFailedPayload",
    "MemoryRecalledPayload",
    "PhaseEventPayload",
    "RoundCompletedPayload",
    "RoundStartedPayload",
    "RoundToolsPresentPayload",
    "RoundUsageStatusPayload",
    "SendCompletedPayload",
    "SessionEndedPayload",
    "SessionStartedPayload",
    "StatusChangedPayload",
    "StreamCompletedPayload",
    "StreamDeltaPayload",
    "SteerInterruptedPayload",
    "StreamStartedPayload",
    "SubagentCompletedPayload",
    "SubagentLimitPayload",
    "SubagentTaskStartPayload",
    "SubagentTextPayload",
    "SystemLogPayload",
    "TimerFiredPayload",
    "TodoUpdatedPayload",
    "ToolCallCompletedPayload",
    "ToolCallDeltaPayload",
    "ToolCallFailedPayload",
    "ToolCallStartedPayload",
    "UsageUpdatedPayload",
    "UserNotificationPayload",
    "WorkflowEventPayload",
    "WorkflowStepPayload",
]


@dataclass(slots=True)
class SessionStartedPayload(BaseEventPayload):
    scope: str = "main"


@dataclass(slots=True)
class SessionEndedPayload(BaseEventPayload):
    """``reason``: completed, pending_tools, waiting_for_input, cancelled, budget_exceeded, degraded,
    hit_round_limit, hook_break, error, or a ROUND_START hook's reason."""

    reason: str = ""


@dataclass(slots=True)
class RoundStartedPayload(BaseEventPayload):
    round_index: int = 0


@dataclass(slots=True)
class RoundCompletedPayload(BaseEventPayload):
    round_index: int = 0
    has_tools: bool = False
    used_todo: bool = False


@dataclass(slots=True)
class RoundToolsPresentPayload(BaseEventPayload):
    has_tools: bool = False


@dataclass(slots=True)
class LlmCallStartedPayload(BaseEventPayload):
    """``call_id`` is ``"r<round>.a<attempt>"``."""

    call_id: str = ""
    round_index: int = 0
    attempt: int = 1
    model: str = ""


@dataclass(slots=True)
class LlmCallCompletedPayload(BaseEventPayload):
    """Outcome and token usage of this one call (not cumulative)."""

    call_id: str = ""
    round_index: int = 0
    attempt: int = 1
    model: str = ""
    duration_ms: float = 0.0
    success: bool = True
    error_type: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


@dataclass(slots=True)
class LlmRetryAttemptedPayload(BaseEventPayload):
    """``attempt`` is the 0-based index of the attempt that failed."""

    attempt: int = 0
    max_attempts: int = 0
    error_type: str = ""
    error_message: str = ""
    next_sleep_seconds: float = 0.0


@dataclass(slots=True)
class LlmDegradedPayload(BaseEventPayload):
    """``reason``: ``retry_exhausted`` or ``timeout``."""

    reason: str = ""
    attempts: int = 0
    error_type: str = ""
    error_message: str = ""


@dataclass(slots=True)
class LoopCancelledPayload(BaseEventPayload):
    reason: str = "cancelled"
    round_index: int | None = None


@dataclass(slots=True)
class MemoryRecalledPayload(BaseEventPayload):
    returned: int = 0
    injected: int = 0
    budget_tokens: int = 0


@dataclass(slots=True)
class MemoryFailedPayload(BaseEventPayload):
    """``phase``: ``recall`` or ``remember``."""

    phase: str = ""
    error_type: str = ""
    error_message: str = ""


@dataclass(slots=True)
class StreamStartedPayload(BaseEventPayload):
    stream_id: str = "main"


@dataclass(slots=True)
class StreamDeltaPayload(BaseEventPayload):
    """Used by both STREAM_DELTA and STREAM_THINK_DELTA (``is_think``)."""

    stream_id: str = "main"
    text: str = ""
    is_think: bool = False


@dataclass(slots=True)
class StreamCompletedPayload(BaseEventPayload):
    stream_id: str = "main"


@dataclass(slots=True)
class ToolCallDeltaPayload(BaseEventPayload):
    """A streamed fragment of a tool call; concatenating ``arguments_delta`` per ``index`` gives the JSON."""

    stream_id: str = "main"
    index: int = 0
    tool_call_id: str = ""
    name: str = ""
    arguments_delta: str = ""


@dataclass(slots=True)
class ToolCallStartedPayload(BaseEventPayload):
    name: str = ""
    tool_input: dict[str, Any] = field(default_factory=dict)
    tool_call_id: str = ""


@dataclass(slots=True)
class ToolCallCompletedPayload(BaseEventPayload):
    """The terminal event of every tool call, failed or not."""

    name: str = ""
    output: str = ""
    tool_input: dict[str, Any] = field(default_factory=dict)
    tool_call_id: str = ""
    failed: bool = False


@dataclass(slots=True)
class ToolCallFailedPayload(BaseEventPayload):
    """Emitted before TOOL_CALL_COMPLETED when a call failed."""

    name: str = ""
    output: str = ""
    tool_input: dict[str, Any] = field(default_factory=dict)
    tool_call_id: str = ""


@dataclass(slots=True)
class StatusChangedPayload(BaseEventPayload):
    """Base of the STATUS_CHANGED payloads; ``kind`` tells them apart."""

    kind: str = ""


@dataclass(slots=True)
class AutoCompactStatusPayload(StatusChangedPayload):
    kind: str = "auto_compact"
    phase: str = ""
    round_index: int = 0
    trigger: str = ""
    before_tokens: int = 0
    after_tokens: int = 0


@dataclass(slots=True)
class RoundUsageStatusPayload(StatusChangedPayload):
    kind: str = "round_usage"
    time_iso: str = ""
    round_index: int = 0
    round_number: int = 0
    max_rounds: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cache_read_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass(slots=True)
class HitRoundLimitStatusPayload(StatusChangedPayload):
    kind: str = "hit_round_limit"
    max_rounds: int = 0


@dataclass(slots=True)
class BudgetExceededStatusPayload(StatusChangedPayload):
    kind: str = "budget_exceeded"
    budget_tokens: int = 0
    spent_tokens: int = 0
    rounds: int = 0


@dataclass(slots=True)
class UsageUpdatedPayload(BaseEventPayload):
    """Normalised usage of one call (with the aliases ``input/output/cache_read/reasoning``)."""

    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class TimerFiredPayload(BaseEventPayload):
    """``outcome``: delivered, queued, skipped, cancelled, postponed or error."""

    timer_id: int = 0
    note: str = ""
    due_at: int = 0
    outcome: str = "delivered"


@dataclass(slots=True)
class TodoUpdatedPayload(BaseEventPayload):
    kind: str = "todo_snapshot"
    items: list[Any] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    rendered: str = ""
    text: str = ""


@dataclass(slots=True)
class UserNotificationPayload(BaseEventPayload):
    message: str = ""


@dataclass(slots=True)
class AgentErrorPayload(BaseEventPayload):
    error: str = ""
    error_type: str = ""
    details: str = ""


@dataclass(slots=True)
class SystemLogPayload(BaseEventPayload):
    message: str = ""
    level: str = "info"


@dataclass(slots=True)
class PhaseEventPayload(BaseEventPayload):
    """Free-form values; ``to_dict()`` is the values themselves."""

    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass(slots=True)
class SubagentTaskStartPayload(BaseEventPayload):
    task: str = ""
    preset: str = "core"
    sub_session_id: str = ""
    depth: int = 0


@dataclass(slots=True)
class SubagentTextPayload(BaseEventPayload):
    sub_session_id: str = ""
    status: str = ""
    rounds: int = 0
    final_text: str = ""


@dataclass(slots=True)
class SubagentLimitPayload(BaseEventPayload):
    sub_session_id: str = ""
    max_rounds: int = 0


@dataclass(slots=True)
class SubagentCompletedPayload(BaseEventPayload):
    sub_session_id: str = ""
    status: str = ""
    rounds: int = 0
    final_text: str = ""


@dataclass(slots=True)
class FollowUpDeliveredPayload(BaseEventPayload):
    """A queued follow-up became a user message at a round boundary."""

    item_id: str = ""
    text: str = ""
    round_index: int = 0


@dataclass(slots=True)
class SteerInterruptedPayload(BaseEventPayload):
    """A steer reached the running send: ``interrupted`` is ``"model_call"`` (the call was cancelled,
    its output discarded) or ``"tool_batch"`` (the batch finished first; ``cancelled_tools`` names the
    interruptible calls a steer cancelled). ``item_id`` is the steering item's queue id; the steering
    text follows as the next user message (``follow_up_delivered``)."""

    interrupted: str = ""
    round_index: int = 0
    item_id: str = ""
    cancelled_tools: list[str] = field(default_factory=list)


@dataclass(slots=True)
class InputRequestedPayload(BaseEventPayload):
    """A tool paused the send for human input; answer with ``loop.submit_input``."""

    interaction_id: str = ""
    kind: str = "text"
    prompt: str = ""
    options: list[Any] = field(default_factory=list)
    tool_call_id: str = ""


@dataclass(slots=True)
class SendCompletedPayload(BaseEventPayload):
    """The end of a streamed send; ``result`` is the same `StatefulResult` that ``send`` returns."""

    status: str = ""
    final_text: str = ""
    rounds: int = 0
    tool_calls: int = 0
    result: Any = None


@dataclass(slots=True)
class WorkflowEventPayload(BaseEventPayload):
    """A workflow run started or completed (``status`` is ``running`` at the start)."""

    run_id: str = ""
    workflow: str = ""
    status: str = ""
    usage: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    resumed: bool = False


@dataclass(slots=True)
class WorkflowStepPayload(BaseEventPayload):
    """A workflow leaf started or finished; ``step_key`` adds the foreach item / loop iteration."""

    run_id: str = ""
    node_id: str = ""
    step_key: str = ""
    status: str = ""
    session_id: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    replayed: bool = False


_T = AgentEventType
PAYLOAD_TYPES: Mapping[AgentEventType, type[BaseEventPayload]] = MappingProxyType(
    {
        _T.SESSION_STARTED: SessionStartedPayload,
        _T.SESSION_ENDED: SessionEndedPayload,
        _T.ROUND_STARTED: RoundStartedPayload,
        _T.ROUND_COMPLETED: RoundCompletedPayload,
        _T.ROUND_TOOLS_PRESENT: RoundToolsPresentPayload,
        _T.LLM_CALL_STARTED: LlmCallStartedPayload,
        _T.LLM_CALL_COMPLETED: LlmCallCompletedPayload,
        _T.LLM_RETRY_ATTEMPTED: LlmRetryAttemptedPayload,
        _T.LLM_DEGRADED: LlmDegradedPayload,
        _T.LOOP_CANCELLED: LoopCancelledPayload,
        _T.MEMORY_RECALLED: MemoryRecalledPayload,
        _T.MEMORY_FAILED: MemoryFailedPayload,
        _T.STREAM_STARTED: StreamStartedPayload,
        _T.STREAM_DELTA: StreamDeltaPayload,
        _T.STREAM_THINK_DELTA: StreamDeltaPayload,
        _T.STREAM_COMPLETED: StreamCompletedPayload,
        _T.TOOL_CALL_STARTED: ToolCallStartedPayload,
        _T.TOOL_CALL_COMPLETED: ToolCallCompletedPayload,
        _T.TOOL_CALL_FAILED: ToolCallFailedPayload,
        _T.STATUS_CHANGED: StatusChangedPayload,
        _T.USAGE_UPDATED: UsageUpdatedPayload,
        _T.TIMER_FIRED: TimerFiredPayload,
        _T.TODO_UPDATED: TodoUpdatedPayload,
        _T.USER_NOTIFICATION: UserNotificationPayload,
        _T.AGENT_ERROR: AgentErrorPayload,
        _T.SYSTEM_LOG: SystemLogPayload,
        _T.SUBAGENT_TASK_START: SubagentTaskStartPayload,
        _T.SUBAGENT_TEXT: SubagentTextPayload,
        _T.SUBAGENT_LIMIT: SubagentLimitPayload,
        _T.SUBAGENT_COMPLETED: SubagentCompletedPayload,
        _T.TOOL_CALL_DELTA: ToolCallDeltaPayload,
        _T.FOLLOW_UP_DELIVERED: FollowUpDeliveredPayload,
        _T.STEER_INTERRUPTED: SteerInterruptedPayload,
        _T.INPUT_REQUESTED: InputRequestedPayload,
        _T.SEND_COMPLETED: SendCompletedPayload,
        _T.WORKFLOW_STARTED: WorkflowEventPayload,
        _T.WORKFLOW_COMPLETED: WorkflowEventPayload,
        _T.WORKFLOW_STEP_STARTED: WorkflowStepPayload,
        _T.WORKFLOW_STEP_COMPLETED: WorkflowStepPayload,
    }
)
"""The payload class the loop uses for each event type (STATUS_CHANGED: a ``StatusChangedPayload`` subclass)."""
