"""The agent loop: `StatefulAgentLoop`, its configuration and results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_dir, lazy_getattr

if TYPE_CHECKING:
    from ._default_tools import DEFAULT_TOOL_HANDLERS, get_tool_definitions, validate_tool_args
    from ._inbox import InboxItem
    from ._jobs import Job
    from ._loop import (
        StatefulAgentLoop,
    )
    from ._phase import AgentRunner, PhaseContext, PhaseResult, phase
    from ._pipeline import AgentPipeline, MessageSink, NullSink, SQLiteSink
    from ._projectors import (
        BackgroundRuntimeProjector,
        ProjectionContext,
        RuntimeMessage,
        RuntimeProjector,
        TodoRuntimeProjector,
        default_runtime_projectors,
    )
    from ._prompt import (
        DEFAULT_AGENT_SYSTEM_PROMPT,
        format_tool_catalog,
    )
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
    from ._steer import StopPolicy, wait_or_steer
    from ._sync import (
        SyncCallInEventLoopError,
    )
    from ._timers import (
        TimerRunner,
        format_timer_message,
    )
    from ._types import (
        AgentLoopConfig,
        AgentLoopResult,
        FollowUpQueued,
        LoopMessage,
        LoopStatus,
        StatefulResult,
    )

__all__ = [
    "AgentPipeline",
    "AgentRunner",
    "MessageSink",
    "NullSink",
    "PhaseContext",
    "PhaseResult",
    "SQLiteSink",
    "phase",
    "DEFAULT_AGENT_SYSTEM_PROMPT",
    "AgentLoopConfig",
    "AgentLoopResult",
    "FollowUpQueued",
    "Job",
    "InboxItem",
    "LoopMessage",
    "LoopStatus",
    "StatefulAgentLoop",
    "StatefulResult",
    "StopPolicy",
    "SyncCallInEventLoopError",
    "TimerRunner",
    "format_timer_message",
    "format_tool_catalog",
    "wait_or_steer",
    "DEFAULT_TOOL_HANDLERS",
    "get_tool_definitions",
    "validate_tool_args",
    "ProjectionContext",
    "RuntimeMessage",
    "RuntimeProjector",
    "TodoRuntimeProjector",
    "default_runtime_projectors",
    "BUILTIN_SECTIONS",
    "DEFAULT_EXPLORE_SUBAGENT_SYSTEM_PROMPT",
    "DEFAULT_SUBAGENT_SYSTEM_PROMPT",
    "SectionRenderer",
    "SystemPromptBuilder",
    "SystemPromptContext",
    "build_agent_system_prompt",
    "build_explore_subagent_system_prompt",
    "build_subagent_system_prompt",
    "BackgroundRuntimeProjector",
]

# Every name loads with its module on first use: importing StatefulAgentLoop does not load the
# timer runner.
_MODULES: dict[str, tuple[str, ...]] = {
    "._loop": ("StatefulAgentLoop",),
    "._phase": ("AgentRunner", "PhaseContext", "PhaseResult", "phase"),
    "._pipeline": ("AgentPipeline", "MessageSink", "NullSink", "SQLiteSink"),
    "._jobs": ("Job",),
    "._inbox": ("InboxItem",),
    "._prompt": (
        "DEFAULT_AGENT_SYSTEM_PROMPT",
        "format_tool_catalog",
    ),
    "._steer": ("StopPolicy", "wait_or_steer"),
    "._sync": ("SyncCallInEventLoopError",),
    "._timers": (
        "TimerRunner",
        "format_timer_message",
    ),
    "._types": (
        "AgentLoopConfig",
        "AgentLoopResult",
        "FollowUpQueued",
        "LoopMessage",
        "LoopStatus",
        "StatefulResult",
    ),
    "._default_tools": (
        "DEFAULT_TOOL_HANDLERS",
        "get_tool_definitions",
        "validate_tool_args",
    ),
    "._projectors": (
        "ProjectionContext",
        "RuntimeMessage",
        "RuntimeProjector",
        "TodoRuntimeProjector",
        "default_runtime_projectors",
        "BackgroundRuntimeProjector",
    ),
    "._prompt_builder": (
        "BUILTIN_SECTIONS",
        "DEFAULT_EXPLORE_SUBAGENT_SYSTEM_PROMPT",
        "DEFAULT_SUBAGENT_SYSTEM_PROMPT",
        "SectionRenderer",
        "SystemPromptBuilder",
        "SystemPromptContext",
        "build_agent_system_prompt",
        "build_explore_subagent_system_prompt",
        "build_subagent_system_prompt",
    ),
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}
__getattr__ = lazy_getattr(__name__, _LAZY, globals())
__dir__ = lazy_dir(_LAZY, globals())
