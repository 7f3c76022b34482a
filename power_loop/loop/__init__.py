"""The agent loop: `StatefulAgentLoop`, its configuration and results."""

from ._loop import StatefulAgentLoop
from ._prompt import DEFAULT_AGENT_SYSTEM_PROMPT, format_tool_catalog
from ._sync import SyncCallInEventLoopError
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
    "format_tool_catalog",
]
