"""`HookAudit`: one send's hook audit trail (``AgentLoopConfig.record_hook_events``).

The send's hooks run through :meth:`AgentHooks.audited`, which reports every handler's decision that
changed something; they are kept here until the send's next store write takes them (the append of
the round, ``append_messages(hook_events=...)``: no extra round trip), and whatever is left when the
send ends is written once by :meth:`HookAudit.flush`. In ``"full"`` mode the new values are stored
redacted and capped exactly as the observability sinks write event payloads (:func:`sanitize`).
Loaded only by loops that record.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ..base import sanitize
from ..store import NewHookEvent

if TYPE_CHECKING:
    from ..hooks import AgentHooks, BaseHookCtx, HookDirective, HookPoint
    from ..store import SessionStore

__all__ = ["HookAudit"]

_log = logging.getLogger("power_loop.loop")


class HookAudit:
    """Collects one send's hook decisions; ``hooks`` is the audited view the send runs."""

    __slots__ = ("_events", "_full", "hooks")

    def __init__(self, hooks: AgentHooks, mode: str) -> None:
        self._full = mode == "full"
        self._events: list[NewHookEvent] = []
        self.hooks = hooks.audited(self._record)

    def _record(
        self,
        point: HookPoint,
        hook: str,
        ctx: BaseHookCtx,
        directive: HookDirective | None,
        changed: dict[str, Any],
    ) -> None:
        self._events.append(
            NewHookEvent(
                round_index=ctx.round_index,
                point=point.value,
                hook=hook,
                decision="rewrite" if directive is None else directive.value,
                changed=tuple(changed),
                values=sanitize(changed) if self._full else None,
                created_at=time.time_ns() // 1_000_000,
            )
        )

    def take(self) -> list[NewHookEvent]:
        """The decisions not written yet (the caller writes them)."""
        events, self._events = self._events, []
        return events

    async def flush(self, store: SessionStore, session_id: str) -> None:
        """Write what no append took (e.g. a ``session.end`` decision); a failure is logged, not raised:
        the send's own outcome matters more than its audit rows."""
        events = self.take()
        if not events:
            return
        try:
            await store.record_hook_events(session_id, events)
        except Exception:
            _log.warning(
                "could not record %d hook decision(s) of session %s", len(events), session_id, exc_info=True
            )
