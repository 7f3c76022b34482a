"""How a send stops short of an answer: cancelled, degraded (the model failed), over its token
budget, at its round limit, or broken off by a hook. Each path commits the send's accounting with
its last write and returns the `StatefulResult`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import events as P
from ..base import redact_secrets
from ..errors import CancellationRequested, LLMRetryExhausted, LLMTimeout
from ..events import AgentEventType as ET
from ..store import NewMessage
from ._model_call import call_llm

if TYPE_CHECKING:
    from ._send_state import SendState
    from ._types import StatefulResult

__all__ = ["ROUND_LIMIT_NOTICE", "budget_stop", "cancelled", "degraded", "round_limit", "terminal"]

ROUND_LIMIT_NOTICE = (
    "[hit_round_limit] The round limit ({max_rounds}) for this request is reached. Do not call tools. "
    "Summarise what was done, what is left, and how to continue."
)


async def terminal(s: SendState, status: str, text: str, *, reason: str) -> StatefulResult:
    """End the send with ``status`` (``reason`` goes into the ``session_ended`` event)."""
    s.end_reason = reason
    await s.commit([], final=True)
    return s.result(status, text)


async def cancelled(s: SendState, round_index: int, reason: str = "cancelled") -> StatefulResult:
    reason = s.token.reason or reason
    s.emit(
        ET.LOOP_CANCELLED,
        lambda: P.LoopCancelledPayload(reason=reason, round_index=round_index),
        round_index=round_index,
    )
    await s.commit([], final=True)
    text = "[cancelled by user]" if reason == "cancelled" else f"[cancelled: {reason}]"
    return s.result("cancelled", text)


async def degraded(s: SendState, round_index: int, exc: LLMRetryExhausted | LLMTimeout) -> StatefulResult:
    kind = "timeout" if isinstance(exc, LLMTimeout) else "retry_exhausted"
    cause = exc.last_error if isinstance(exc, LLMRetryExhausted) else exc
    attempts = exc.attempts
    s.emit(
        ET.LLM_DEGRADED,
        lambda: P.LlmDegradedPayload(
            reason=kind,
            attempts=attempts,
            error_type=type(cause).__name__,
            error_message=redact_secrets(str(cause))[:500],  # redacted before the cut
        ),
        round_index=round_index,
    )
    # Nothing is stored as the answer: the model said nothing. The reason is in the result and event.
    await s.commit([], final=True)
    return s.result(
        "degraded", f"[degraded: LLM {kind} — {type(cause).__name__}: {redact_secrets(str(cause))}]"
    )


async def budget_stop(s: SendState) -> StatefulResult:
    cap = s.cfg.max_tokens_per_run or 0
    spent = s.usage["prompt_tokens"] + s.usage["completion_tokens"]
    s.emit(
        ET.STATUS_CHANGED,
        lambda: P.BudgetExceededStatusPayload(budget_tokens=cap, spent_tokens=spent, rounds=s.rounds - 1),
    )
    s.rounds -= 1
    return await terminal(s, "budget_exceeded", "[budget_exceeded]", reason="budget_exceeded")


async def round_limit(s: SendState) -> StatefulResult:
    """Every round was used: ask once more, without tools, for a summary of where things stand."""
    max_rounds = s.cfg.max_rounds
    s.emit(ET.STATUS_CHANGED, lambda: P.HitRoundLimitStatusPayload(max_rounds=max_rounds))
    notice = NewMessage(
        role="user", content=ROUND_LIMIT_NOTICE.format(max_rounds=max_rounds), round_index=max_rounds
    )
    await s.commit([notice])
    try:
        # No tools on the summary call: an answer with tool calls could not be executed.
        response = await call_llm(s, max_rounds, tools=None)
        text = response.text if response is not None else ""
    except CancellationRequested as exc:
        return await cancelled(s, max_rounds, exc.reason)
    except (LLMRetryExhausted, LLMTimeout) as exc:
        return await degraded(s, max_rounds, exc)
    await s.commit([s.assistant(text, max_rounds)], final=True)
    return s.result("hit_round_limit", f"[hit_round_limit]\n{text}")
