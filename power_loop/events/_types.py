"""The event type enum."""

from __future__ import annotations

from enum import Enum

from ..errors import ConfigError

__all__ = ["AgentEventType", "resolve_event_type"]


class AgentEventType(str, Enum):
    """Kinds of :class:`AgentEvent`. Values are the lower-snake names (``"tool_call_started"``)."""

    SESSION_STARTED = "session_started"
    SESSION_ENDED = "session_ended"
    ROUND_STARTED = "round_started"
    ROUND_COMPLETED = "round_completed"
    ROUND_TOOLS_PRESENT = "round_tools_present"
    LLM_CALL_STARTED = "llm_call_started"
    LLM_CALL_COMPLETED = "llm_call_completed"
    LLM_RETRY_ATTEMPTED = "llm_retry_attempted"
    LLM_DEGRADED = "llm_degraded"
    LOOP_CANCELLED = "loop_cancelled"
    MEMORY_RECALLED = "memory_recalled"
    MEMORY_FAILED = "memory_failed"
    STREAM_STARTED = "stream_started"
    STREAM_DELTA = "stream_delta"
    STREAM_THINK_DELTA = "stream_think_delta"
    STREAM_COMPLETED = "stream_completed"
    TOOL_CALL_STARTED = "tool_call_started"
    TOOL_CALL_COMPLETED = "tool_call_completed"
    TOOL_CALL_FAILED = "tool_call_failed"
    STATUS_CHANGED = "status_changed"
    USAGE_UPDATED = "usage_updated"
    TIMER_FIRED = "timer_fired"
    TODO_UPDATED = "todo_updated"
    USER_NOTIFICATION = "user_notification"
    AGENT_ERROR = "agent_error"
    SYSTEM_LOG = "system_log"
    SUBAGENT_TASK_START = "subagent_task_start"
    SUBAGENT_TEXT = "subagent_text"
    SUBAGENT_LIMIT = "subagent_limit"
    SUBAGENT_COMPLETED = "subagent_completed"
    STEER_INTERRUPTED = "steer_interrupted"
    """A steer (``follow_up(mode="steer")``) interrupted the send's model call or followed its tool batch."""
    # Beyond the published set:
    TOOL_CALL_DELTA = "tool_call_delta"
    """A streamed fragment of a tool call's JSON arguments (before the call is complete)."""
    FOLLOW_UP_DELIVERED = "follow_up_delivered"
    """A queued follow-up was injected at a round boundary."""
    INPUT_REQUESTED = "input_requested"
    """A tool asked the human for input; the send ends with ``waiting_for_input``."""
    SEND_COMPLETED = "send_completed"
    """The last event of ``loop.stream()``: the send's final result."""
    WORKFLOW_STARTED = "workflow_started"
    """A workflow run began (or resumed) on the parent session (``power_loop.workflow``)."""
    WORKFLOW_COMPLETED = "workflow_completed"
    """A workflow run ended; the payload carries its status and summed usage."""
    WORKFLOW_STEP_STARTED = "workflow_step_started"
    """A workflow leaf started (one per foreach item / loop iteration)."""
    WORKFLOW_STEP_COMPLETED = "workflow_step_completed"
    """A workflow leaf finished, or was replayed from the run's journal (``replayed=True``)."""

    def __str__(self) -> str:
        return self.value


def resolve_event_type(event_type: AgentEventType | str) -> AgentEventType:
    """Accept an :class:`AgentEventType`, its value or its name; else :class:`~power_loop.errors.ConfigError`."""
    if isinstance(event_type, AgentEventType):
        return event_type
    if isinstance(event_type, str):
        try:
            return AgentEventType(event_type)
        except ValueError:
            member = AgentEventType.__members__.get(event_type)
            if member is not None:
                return member
    raise ConfigError(f"unknown event type {event_type!r}; see power_loop.events.AgentEventType")
