"""Hooks: typed, per-loop interception points in the round engine.

``AgentHooks`` holds handlers per :class:`HookPoint`; each point receives its own ctx dataclass
(:data:`CTX_TYPES`) and may answer with a :class:`HookDirective` from :data:`ALLOWED_DIRECTIVES`.
"""

from __future__ import annotations

from ._contexts import (
    CTX_TYPES,
    BaseHookCtx,
    CompactAfterCtx,
    CompactBeforeCtx,
    LlmAfterCtx,
    LlmBeforeCtx,
    MemoryRecalledCtx,
    MessageAppendCtx,
    RoundDecideCtx,
    RoundEndCtx,
    RoundStartCtx,
    SessionEndCtx,
    SessionStartCtx,
    TimerFireCtx,
    ToolAfterCtx,
    ToolBeforeCtx,
    ToolErrorCtx,
    ToolReconcileCtx,
    ToolsBatchAfterCtx,
    ToolsBatchBeforeCtx,
)
from ._points import (
    ALLOWED_DIRECTIVES,
    HookDirective,
    HookPoint,
    allowed_directives,
    resolve_hook_point,
)
from ._registry import AgentHooks, HookHandler

__all__ = [
    "ALLOWED_DIRECTIVES",
    "CTX_TYPES",
    "AgentHooks",
    "BaseHookCtx",
    "CompactAfterCtx",
    "CompactBeforeCtx",
    "HookDirective",
    "HookHandler",
    "HookPoint",
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
    "allowed_directives",
    "resolve_hook_point",
]
