"""The tool runtime context: which session and store a tool handler is running for.

The round engine sets it (a ``contextvars.ContextVar``) around tool execution; handlers read it with
:func:`get_tool_runtime_context`. Context variables follow ``asyncio`` tasks and ``asyncio.to_thread``,
so both async and sync handlers see the value of the send that called them, and concurrent sends on
one loop never see each other's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..store import SessionStore

__all__ = ["ToolRuntimeContext", "get_tool_runtime_context", "use_tool_runtime_context"]


@dataclass(frozen=True, slots=True)
class ToolRuntimeContext:
    """What a tool handler may need about the send that called it."""

    session_id: str
    store: SessionStore | None = None
    loop: Any = None
    config: Any = None
    send_index: int | None = None
    # The id of the tool call being executed (set per call by the round engine).
    tool_call_id: str | None = None

    @property
    def has_session_store(self) -> bool:
        return self.store is not None


_CURRENT: ContextVar[ToolRuntimeContext | None] = ContextVar("power_loop_tool_runtime", default=None)


@overload
def get_tool_runtime_context(*, required: Literal[True]) -> ToolRuntimeContext: ...


@overload
def get_tool_runtime_context(*, required: bool = False) -> ToolRuntimeContext | None: ...


def get_tool_runtime_context(*, required: bool = False) -> ToolRuntimeContext | None:
    """The context of the send running this tool; ``required=True`` raises ``ConfigError`` outside one."""
    ctx = _CURRENT.get()
    if ctx is None and required:
        raise ConfigError(
            "this tool needs a session: it must be called by StatefulAgentLoop (or inside "
            "use_tool_runtime_context(...))"
        )
    return ctx


@contextmanager
def use_tool_runtime_context(ctx: ToolRuntimeContext) -> Iterator[ToolRuntimeContext]:
    """Make ``ctx`` current for the enclosed code (and every task/thread it starts)."""
    token = _CURRENT.set(ctx)
    try:
        yield ctx
    finally:
        _CURRENT.reset(token)
