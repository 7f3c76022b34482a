"""The tool runtime context: which session, store and loop a tool handler is running for.

The round engine sets it (a ``contextvars.ContextVar``) around tool execution; handlers read it with
:func:`get_tool_runtime_context`. Context variables follow ``asyncio`` tasks and ``asyncio.to_thread``,
so both async and sync handlers see the value of the send that called them, and concurrent sends on
one loop never see each other's.

This module sits below the store and the loop, so it names what tools use of the loop as small
Protocols (:class:`ToolLoop`) instead of importing the loop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, Protocol, overload

from ..errors import ConfigError

__all__ = [
    "ScheduledTimer",
    "ToolEventEmitter",
    "ToolLoop",
    "ToolRuntimeContext",
    "get_tool_runtime_context",
    "idempotency_key",
    "use_tool_runtime_context",
]


class ToolEventEmitter(Protocol):
    """The part of an event bus a tool uses (``AgentEventBus`` fits): emit one event, built lazily."""

    def emit(
        self,
        event_type: str,
        data: Callable[[], Any] | None = None,
        *,
        session_id: str | None = None,
        source: str | None = None,
    ) -> object: ...


class ScheduledTimer(Protocol):
    """A timer as a tool reports it (``power_loop.store.TimerRow`` fits); ``due_at`` is epoch ms."""

    @property
    def timer_id(self) -> int: ...

    @property
    def due_at(self) -> int: ...


class ToolLoop(Protocol):
    """What tool handlers use of the loop running them (``StatefulAgentLoop`` fits)."""

    @property
    def event_bus(self) -> ToolEventEmitter: ...

    async def schedule_timer(
        self, session_id: str, *, delay_s: float | None = None, note: str, interval_s: int | None = None
    ) -> ScheduledTimer: ...


@dataclass(frozen=True, slots=True)
class ToolRuntimeContext:
    """What a tool handler may need about the send that called it.

    ``store`` is the session's ``power_loop.store.SessionStore`` and ``config`` the loop's
    ``AgentLoopConfig`` (typed ``Any`` because this module sits below both); ``loop`` is the running
    loop as far as tools may use it.
    """

    session_id: str
    store: Any = None
    loop: ToolLoop | None = None
    config: Any = None
    send_index: int | None = None
    # The id of the tool call being executed and the seq of the assistant message that made it (set
    # per call by the round engine).
    tool_call_id: str | None = None
    assistant_seq: int | None = None

    @property
    def idempotency_key(self) -> str | None:
        """A key stable across re-runs of this tool call (derived from the session, the call id and the
        assistant message that made it), to pass to external systems that deduplicate requests; None
        outside a tool call."""
        if self.tool_call_id is None:
            return None
        return idempotency_key(self.session_id, self.tool_call_id, self.assistant_seq)

    @property
    def has_session_store(self) -> bool:
        return self.store is not None


def idempotency_key(session_id: str, tool_call_id: str, assistant_seq: int | None = None) -> str:
    """The idempotency key of tool call ``tool_call_id`` of ``session_id`` (made by the assistant
    message at ``assistant_seq``: some models reuse call ids from turn to turn): ``pl-`` + 32 hex
    digits, a hash, so it fits the length limits of payment and queue APIs and reveals neither id."""
    text = f"{session_id}\x00{tool_call_id}\x00{'' if assistant_seq is None else assistant_seq}"
    return "pl-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


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
