"""`Recovery`: what becomes of a send that stopped before its end, and of paused human input.

An interrupted send leaves *pending* tool calls in the session state (the store records them in the
same transaction as the assistant message that made them). From there a session can be resumed (the
calls run again), healed (the calls are answered ``<aborted: …>``, explicitly or by
``send(heal_pending=True)``), or, when a tool asked a human, continued with `submit_input`.

This module prepares; it never runs rounds. Every method is called while the loop holds the session
(`SessionGuard.hold`), and the continuing ones return a `Continuation` the loop runs under that hold,
or the `StatefulResult` to return as is when the session still waits for a human.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .. import store as S
from ..errors import (
    HistoryInvariantError,
    InteractionNotFoundError,
    SessionNotFoundError,
    SessionPendingError,
)
from ._cache import load_window
from ._types import StatefulResult

_T = TypeVar("_T")

if TYPE_CHECKING:
    from ..store import AppendResult, NewMessage, SessionStore
    from ._cache import SessionWindow, WindowCache
    from ._guard import SessionGuard

__all__ = ["HEAL_REASON", "NOTHING_TO_RESUME", "Continuation", "Recovery"]

HEAL_REASON = "auto-healed by send(heal_pending=True)"
NOTHING_TO_RESUME = "nothing_to_resume"


def _ended(messages: list[dict[str, Any]]) -> bool:
    """Whether the window holds no interrupted send: empty, or ending with a final assistant answer
    (an interrupted send ends with its user row or with tool results)."""
    if not messages:
        return True
    last = messages[-1]
    return last.get("role") == "assistant" and not last.get("tool_calls")


@dataclass(frozen=True, slots=True)
class Continuation:
    """Run the session's rounds from ``window``, first re-executing ``pending`` tool calls (if any)."""

    window: SessionWindow
    pending: dict[str, Any] | None


def _waiting(session_id: str, pending: dict[str, Any] | None) -> StatefulResult | None:
    """The ``waiting_for_input`` result while a human's answer is still outstanding, else None."""
    if not pending or not pending.get("pending_interactions"):
        return None
    return StatefulResult(
        session_id=session_id,
        status="waiting_for_input",
        pending_tool_calls=list(pending.get("tool_calls") or []),
        pending_interactions=list(pending["pending_interactions"]),
    )


class Recovery:
    """Resume, heal and human input for one loop (its window cache and session guard)."""

    __slots__ = ("_cache", "_guard")

    def __init__(self, cache: WindowCache, guard: SessionGuard) -> None:
        self._cache = cache
        self._guard = guard

    async def begin_send(
        self, store: SessionStore, session_id: str, user: NewMessage, *, heal: bool
    ) -> AppendResult:
        """Append a send's user row; pending tool calls refuse it (`SessionPendingError`) unless ``heal``,
        which answers them ``<aborted: …>`` first."""
        return await self.append_or_heal(
            store, session_id, lambda: self._append_user(store, session_id, user), heal=heal
        )

    async def append_or_heal(
        self, store: SessionStore, session_id: str, append: Callable[[], Awaitable[_T]], *, heal: bool
    ) -> _T:
        """Run ``append`` (a write beginning a send); when tool calls of an earlier send are pending it is
        refused (`SessionPendingError`) — or, with ``heal``, run again once they are answered aborted."""
        try:
            return await append()
        except HistoryInvariantError:
            pending = await self.get_pending(store, session_id, missing_ok=True)
            if not pending:
                raise
            if not heal:
                raise SessionPendingError(
                    session_id,
                    assistant_seq=int(pending.get("assistant_seq") or 0),
                    pending_tool_calls=list(pending.get("tool_calls") or []),
                ) from None
        await self.abort_pending(store, session_id, reason=HEAL_REASON)
        return await append()

    async def resume(self, store: SessionStore, session_id: str) -> StatefulResult | Continuation:
        """Continue an interrupted send from the stored window, re-executing its unanswered calls;
        a `StatefulResult` with status ``nothing_to_resume`` when the last send ended normally."""
        pending = await self.get_pending(store, session_id)
        waiting = _waiting(session_id, pending)
        if waiting is not None:
            return waiting
        window = await load_window(store, session_id)
        if not pending and _ended(window.messages):
            # The last send ended with an answer: asking the model again would add a second one.
            return StatefulResult(session_id=session_id, status=NOTHING_TO_RESUME)
        return Continuation(window, pending or None)

    async def submit_input(
        self, store: SessionStore, session_id: str, interaction_id: str, value: Any
    ) -> StatefulResult | Continuation:
        """Answer one paused ``request_user_input`` call; continue once no other answer is awaited."""
        pending = await self.get_pending(store, session_id) or {}
        interactions = list(pending.get("pending_interactions") or [])
        match = next((i for i in interactions if i.get("interaction_id") == interaction_id), None)
        if match is None:
            raise InteractionNotFoundError(session_id, interaction_id)
        row = S.NewMessage(
            role="tool",
            content=value if isinstance(value, str) else json.dumps(value, ensure_ascii=False),
            tool_call_id=str(match["tool_call_id"]),
            name=str(match.get("tool_name") or "request_user_input"),
            round_index=int(pending.get("round_index") or 0),
        )
        remaining = [i for i in interactions if i is not match]
        await store.append_messages(
            session_id, [row], pending_interactions=remaining, lease=self._guard.lease_token(session_id)
        )
        self._cache.drop(session_id)
        window = await load_window(store, session_id)
        still = await self.get_pending(store, session_id, missing_ok=True)
        waiting = _waiting(session_id, still)
        if waiting is not None:
            return waiting
        return Continuation(window, still or None)

    async def abort_pending(self, store: SessionStore, session_id: str, *, reason: str) -> int:
        """Answer every unresolved tool call with ``<aborted: reason>``; returns how many."""
        self._cache.drop(session_id)
        return await store.abort_pending(session_id, reason=reason)

    @staticmethod
    async def get_pending(
        store: SessionStore, session_id: str, *, missing_ok: bool = False
    ) -> dict[str, Any] | None:
        """The session's raw pending blob (None when nothing is pending).

        An unknown session raises `SessionNotFoundError`, or reads as nothing pending with ``missing_ok``.
        """
        state = await store.get_state(session_id)
        if state is None:
            if missing_ok:
                return None
            raise SessionNotFoundError(session_id)
        return state.pending

    async def _append_user(self, store: SessionStore, session_id: str, user: NewMessage) -> AppendResult:
        # The lease token is read at each write: the background renewal replaces it while the send runs.
        return await store.append_messages(
            session_id, [user], begin_send=True, lease=self._guard.lease_token(session_id)
        )
