"""The agent loop: `StatefulAgentLoop`, its configuration and results."""

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr
from ._loop import StatefulAgentLoop
from ._projectors import (
    BackgroundRuntimeProjector,
    ProjectionContext,
    RuntimeMessage,
    RuntimeProjector,
    TodoRuntimeProjector,
    default_runtime_projectors,
)
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

if TYPE_CHECKING:
    from ._default_tools import DEFAULT_TOOL_HANDLERS, get_tool_definitions
    from ._prompt_builder import (
        BUILTIN_SECTIONS,
        DEFAULT_EXPLORE_SUBAGENT_SYSTEM_PROMPT,
        DEFAULT_SUBAGENT_SYSTEM_PROMPT,
        SectionRenderer,
        SystemPromptBuilder,
        SystemPromptContext,
        build_agent_system_prompt,
        build_explore_subagent_system_prompt,
        build_subagent_system_prompt,
    )

__all__ = [
    "DEFAULT_TOOL_HANDLERS",
    "get_tool_definitions",
    "ProjectionContext",
    "RuntimeMessage",
    "RuntimeProjector",
    "TodoRuntimeProjector",
    "BackgroundRuntimeProjector",
    "default_runtime_projectors",
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
    "BUILTIN_SECTIONS",
    "DEFAULT_EXPLORE_SUBAGENT_SYSTEM_PROMPT",
    "DEFAULT_SUBAGENT_SYSTEM_PROMPT",
    "SectionRenderer",
    "SystemPromptBuilder",
    "SystemPromptContext",
    "build_agent_system_prompt",
    "build_explore_subagent_system_prompt",
    "build_subagent_system_prompt",
]

# The prompt builder loads on first use: constructing and running a loop does not need it.
_LAZY = {
    name: "._prompt_builder"
    for name in (
        "BUILTIN_SECTIONS",
        "DEFAULT_EXPLORE_SUBAGENT_SYSTEM_PROMPT",
        "DEFAULT_SUBAGENT_SYSTEM_PROMPT",
        "SectionRenderer",
        "SystemPromptBuilder",
        "SystemPromptContext",
        "build_agent_system_prompt",
        "build_explore_subagent_system_prompt",
        "build_subagent_system_prompt",
    )
}

_LAZY.update({"DEFAULT_TOOL_HANDLERS": "._default_tools", "get_tool_definitions": "._default_tools"})

__getattr__ = lazy_getattr(__name__, _LAZY, globals())
