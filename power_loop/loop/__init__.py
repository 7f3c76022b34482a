"""The agent loop: `StatefulAgentLoop`, its configuration and results."""

from ._loop import StatefulAgentLoop
from ._prompt import DEFAULT_AGENT_SYSTEM_PROMPT, format_tool_catalog
from ._sync import SyncCallInEventLoopError
from ._timers import TimerRunner, format_timer_message
from ._types import (
    AgentLoopConfig,
    AgentLoopResult,
    FollowUpQueued,
    LoopMessage,
    LoopStatus,
    StatefulResult,
)

__all__ = [
    "DEFAULT_AGENT_SYSTEM_PROMPT",
    "AgentLoopConfig",
    "AgentLoopResult",
    "FollowUpQueued",
    "LoopMessage",
    "LoopStatus",
    "StatefulAgentLoop",
    "StatefulResult",
    "SyncCallInEventLoopError",
    "TimerRunner",
    "format_timer_message",
    "format_tool_catalog",
]
