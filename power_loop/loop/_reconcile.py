"""Effect-aware recovery: what `resume` does with each tool call an interrupted send left open.

Side-effecting calls are logged ``started`` before they run and ``finished`` with their output after
(``SessionStore.record_tool_calls_started`` / ``record_tool_call_finished``). On resume, per open call:

* a ``finished`` record: its logged output answers the call, nothing runs again (any effect class);
* ``started`` but not finished, effect ``"side_effect"``: never re-run blindly; the ``tool.reconcile``
  hook decides (by default the model is told the outcome is unknown; ``SHORT_CIRCUIT`` re-runs it);
* otherwise (never started, or ``"pure"`` / ``"idempotent"``): the call runs again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base import idempotency_key
from ..hooks import HookDirective as HD
from ..hooks import HookPoint as HP
from ..hooks import ToolReconcileCtx
from ._messages import call_args, call_name

if TYPE_CHECKING:
    from ..store import ToolCallRecord
    from ..tools import ToolEffect, ToolRegistry
    from ._send_state import SendState

__all__ = ["OUTCOME_UNKNOWN", "effect_of", "recovered_outputs"]

OUTCOME_UNKNOWN = (
    "[outcome unknown: this call was interrupted after it started and was not run again because it "
    "has side effects; check whether it took effect before repeating it]"
)


def effect_of(registry: ToolRegistry | None, name: str) -> ToolEffect:
    """The declared effect of tool ``name``; an unknown tool is ``"pure"`` (calling it only errors)."""
    entry = registry.get(name) if registry is not None else None
    return "pure" if entry is None else entry.definition.effect


async def recovered_outputs(
    s: SendState, calls: list[dict[str, Any]], assistant_seq: int, round_index: int
) -> dict[int, str]:
    """The outputs answering open calls without running them again, by call index."""
    records = {
        r.tool_call_id: r
        for r in await s.p.store.get_tool_call_records(s.sid)
        if r.assistant_seq == assistant_seq
    }
    outputs: dict[int, str] = {}
    for index, call in enumerate(calls):
        record = records.get(str(call.get("id")))
        if record is None:
            continue  # never started: running it now is its first run
        if record.status == "finished" and record.output is not None:
            outputs[index] = record.output
        elif effect_of(s.registry, call_name(call)) == "side_effect":
            output = await _reconcile(s, call, record, round_index)
            if output is not None:
                outputs[index] = output
    return outputs


async def _reconcile(
    s: SendState, call: dict[str, Any], record: ToolCallRecord, round_index: int
) -> str | None:
    """The ``tool.reconcile`` hook's answer for one call (None: run it again)."""
    if not s.p.hooks.has(HP.TOOL_RECONCILE):
        return OUTCOME_UNKNOWN
    ctx = ToolReconcileCtx(
        session_id=s.sid,
        round_index=round_index,
        tool_call=call,
        tool_name=call_name(call),
        tool_args=call_args(call),
        idempotency_key=idempotency_key(s.sid, record.tool_call_id, record.assistant_seq),
        started_at=record.started_at,
        output=OUTCOME_UNKNOWN,
    )
    if await s.p.hooks.run(HP.TOOL_RECONCILE, ctx) is HD.SHORT_CIRCUIT:
        return None
    return ctx.output
