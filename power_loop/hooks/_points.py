"""Hook points, directives and the table of which directive means something where.

The table :data:`ALLOWED_DIRECTIVES` is the single source of truth shared by the round engine (which
honours the directives), :meth:`AgentHooks.run` (which rejects the rest loudly) and ``docs/hooks.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType

from ..errors import ConfigError

__all__ = [
    "ALLOWED_DIRECTIVES",
    "HookDirective",
    "HookPoint",
    "allowed_directives",
    "resolve_hook_point",
]


class HookPoint(str, Enum):
    """Where in a send a hook runs. Values are the dotted names (``HookPoint.TOOL_BEFORE == "tool.before"``)."""

    SESSION_START = "session.start"
    SESSION_END = "session.end"
    ROUND_START = "round.start"
    ROUND_END = "round.end"
    LLM_BEFORE = "llm.before"
    LLM_AFTER = "llm.after"
    TOOLS_BATCH_BEFORE = "tools.batch.before"
    TOOLS_BATCH_AFTER = "tools.batch.after"
    TOOL_BEFORE = "tool.before"
    TOOL_AFTER = "tool.after"
    TOOL_ERROR = "tool.error"
    ROUND_DECIDE = "round.decide"
    COMPACT_BEFORE = "compact.before"
    COMPACT_AFTER = "compact.after"
    MESSAGE_APPEND = "message.append"
    MEMORY_RECALLED = "memory.recalled"
    TIMER_FIRE = "timer.fire"
    TOOL_RECONCILE = "tool.reconcile"
    WORKFLOW_STEP_START = "workflow.step_start"
    WORKFLOW_STEP_END = "workflow.step_end"

    def __str__(self) -> str:
        # ``str(HookPoint.TOOL_BEFORE)`` is the value, so a point formatted into a key or a log line is the
        # same string a user would type (the published package keyed handlers by "HookPoint.TOOL_BEFORE").
        return self.value


class HookDirective(str, Enum):
    """What a hook asks the loop to do next; see :data:`ALLOWED_DIRECTIVES` for where each is honoured."""

    CONTINUE = "continue"
    SKIP = "skip"
    BREAK = "break"
    SHORT_CIRCUIT = "short_circuit"

    def __str__(self) -> str:
        return self.value


_C = HookDirective.CONTINUE
_S = HookDirective.SKIP
_B = HookDirective.BREAK
_SC = HookDirective.SHORT_CIRCUIT

ALLOWED_DIRECTIVES: Mapping[HookPoint, frozenset[HookDirective]] = MappingProxyType(
    {
        HookPoint.SESSION_START: frozenset({_C}),
        HookPoint.SESSION_END: frozenset({_C}),
        HookPoint.ROUND_START: frozenset({_C, _B, _S}),
        HookPoint.ROUND_END: frozenset({_C}),
        HookPoint.LLM_BEFORE: frozenset({_C, _SC, _B}),
        HookPoint.LLM_AFTER: frozenset({_C, _B}),
        HookPoint.TOOLS_BATCH_BEFORE: frozenset({_C, _S}),
        HookPoint.TOOLS_BATCH_AFTER: frozenset({_C}),
        HookPoint.TOOL_BEFORE: frozenset({_C, _S}),
        HookPoint.TOOL_AFTER: frozenset({_C, _B}),
        HookPoint.TOOL_ERROR: frozenset({_C, _S, _SC}),
        HookPoint.ROUND_DECIDE: frozenset({_C, _S, _B}),
        HookPoint.COMPACT_BEFORE: frozenset({_C, _S}),
        HookPoint.COMPACT_AFTER: frozenset({_C}),
        HookPoint.MESSAGE_APPEND: frozenset({_C}),
        HookPoint.MEMORY_RECALLED: frozenset({_C, _S}),
        HookPoint.TIMER_FIRE: frozenset({_C, _S, _B}),
        HookPoint.TOOL_RECONCILE: frozenset({_C, _SC}),
        HookPoint.WORKFLOW_STEP_START: frozenset({_C, _S}),
        HookPoint.WORKFLOW_STEP_END: frozenset({_C}),
    }
)
"""Directives the loop honours at each point (``CONTINUE`` is always allowed)."""


def resolve_hook_point(point: HookPoint | str) -> HookPoint:
    """Accept a :class:`HookPoint`, its value (``"tool.before"``) or its name (``"TOOL_BEFORE"``).

    Raises :class:`~power_loop.errors.ConfigError` for anything else, listing the valid values.
    """
    if isinstance(point, HookPoint):
        return point
    if isinstance(point, str):
        try:
            return HookPoint(point)
        except ValueError:
            member = HookPoint.__members__.get(point)
            if member is not None:
                return member
    valid = ", ".join(p.value for p in HookPoint)
    raise ConfigError(f"unknown hook point {point!r}; expected a HookPoint or one of: {valid}")


def allowed_directives(point: HookPoint | str) -> frozenset[HookDirective]:
    """The directives that mean something at ``point`` (always includes ``CONTINUE``)."""
    return ALLOWED_DIRECTIVES[resolve_hook_point(point)]
