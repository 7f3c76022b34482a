"""Hooks: typed, per-loop interception points in the round engine.

``AgentHooks`` holds handlers per :class:`HookPoint`; each point receives its own ctx dataclass
(:data:`CTX_TYPES`) and may answer with a :class:`HookDirective` from :data:`ALLOWED_DIRECTIVES`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_dir, lazy_getattr
from ._legacy import HookContext, HookManagerProtocol, HookResult
from ._points import (
    ALLOWED_DIRECTIVES,
    HookDirective,
    HookPoint,
    allowed_directives,
    resolve_hook_point,
)
from ._registry import AgentHooks, HookAuditSink, HookHandler

if TYPE_CHECKING:
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
        WorkflowStepEndCtx,
        WorkflowStepStartCtx,
    )


__all__ = [
    "HookContext",
    "HookManagerProtocol",
    "HookResult",
    "ALLOWED_DIRECTIVES",
    "CTX_TYPES",
    "AgentHooks",
    "BaseHookCtx",
    "CompactAfterCtx",
    "CompactBeforeCtx",
    "HookAuditSink",
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
    "WorkflowStepEndCtx",
    "WorkflowStepStartCtx",
    "allowed_directives",
    "resolve_hook_point",
]

# The ctx classes load when the loop first builds a ctx (only for a point with a handler).
_LAZY = dict.fromkeys(
    (
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
    ),
    "._contexts",
)
__getattr__ = lazy_getattr(__name__, _LAZY, globals())
__dir__ = lazy_dir(_LAZY, globals())
