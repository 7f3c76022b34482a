"""The round engine: one send, read top to bottom.

A *send* is one persisted user row plus every round it triggers. :func:`run_send` prepares the
window's context (the pipeline's decisions, acted on by :mod:`._context_driver`), runs the rounds
with the tool runtime context set, then ends the send (memory, calibration). A *round* is:

1. ``ROUND_START`` hook, delivery of queued follow-ups, budget check;
2. one LLM call (retry policy, cancellation race, streaming callbacks — :mod:`._model_call`);
3. the assistant message is committed — when it carries tool calls the store records them as *pending*
   in the same transaction (SPEC §2.4: history is valid by construction, not repaired later);
4. the round's tool calls run concurrently (bounded), each through the tool hooks (:mod:`._tool_batch`);
5. their results are committed in call order, which resolves the pending calls.

Every terminal path (:mod:`._terminal`) commits the send's accounting with its last write.
Cancellation at any await leaves every committed tool call answered (unfinished calls get a
``[cancelled: …]`` result). What the rounds share — counters, the commit path, events — is the
send's :class:`~._send_state.SendState`.
"""

from __future__ import annotations

import asyncio
from functools import cache, partial
from typing import TYPE_CHECKING, Any

from .. import events as P
from .. import hooks as H
from ..base import use_tool_runtime_context
from ..errors import CancellationRequested, LLMRetryExhausted, LLMTimeout, StructuredOutputError
from ..events import AgentEventType as ET
from ..hooks import HookDirective as HD
from ..hooks import HookPoint as HP
from ..llm import normalize_tool_call
from ..store import NewMessage
from ._model_call import call_llm
from ._reconcile import recovered_outputs
from ._send_state import SendState
from ._steer import SteerInterrupt
from ._terminal import budget_stop, cancelled, degraded, round_limit, terminal
from ._tool_batch import CANCELLED_TEXT, ToolBatch
from ._types import StatefulResult

if TYPE_CHECKING:
    from ..base import ToolRuntimeContext
    from ..events import AgentEventBus
    from ..llm import CancellationToken, LLMResponse
    from ..tools import ToolRegistry
    from ._cache import SessionWindow
    from ._context_driver import ContextDriver
    from ._send_state import EngineParts
    from ._types import StatefulResult

__all__ = ["SendRun", "run_send"]

STRUCTURED_REPAIR = (
    "Your previous answer is not a valid JSON object for the required schema ({problem}). "
    "Reply again with only the JSON object."
)
FOLLOW_UP_NAME = "follow_up"
STEER_NAME = "steer"


async def run_send(
    parts: EngineParts,
    session_id: str,
    window: SessionWindow,
    *,
    registry: ToolRegistry | None,
    context_registry: ToolRegistry | None,
    system_prompt: str,
    token: CancellationToken | None,
    runtime: ToolRuntimeContext,
    pending: dict[str, Any] | None = None,
    tap: AgentEventBus | None = None,
    new_send: bool = False,
    stop_token: CancellationToken | None = None,
) -> StatefulResult:
    """Run one send (``new_send``: its user row was just stored) or continue one (``pending``: the
    tool calls to re-execute first) on ``window``, with ``runtime`` set for the tool handlers.
    ``stop_token`` (the token `stop_job` cancels) is the send's token when ``token`` is None.

    ``registry`` holds the tools offered to the model; ``context_registry`` (the loop's full
    registry) is what the context pipeline renders and folds with.
    """
    steer = parts.steers.open(session_id, parts.config.stop_policy, parts.store, parts.lease)
    try:
        return await _run_send(
            SendState(
                parts,
                session_id,
                window,
                registry=registry,
                system_prompt=system_prompt,
                token=token,
                steer=steer,
                tap=tap,
                stop_token=stop_token,
            ),
            context_registry,
            runtime,
            pending,
            new_send,
        )
    finally:
        await parts.steers.close(steer)


async def _run_send(
    state: SendState,
    context_registry: ToolRegistry | None,
    runtime: ToolRuntimeContext,
    pending: dict[str, Any] | None,
    new_send: bool,
) -> StatefulResult:
    parts, session_id, window, system_prompt = state.p, state.sid, state.window, state.system_prompt
    run = SendRun(state)
    driver = None
    if parts.context is not None:
        driver = _context_driver(parts, session_id, window, context_registry)
        if new_send:
            # A send boundary: the only place a fold may run (it covers whole earlier sends).
            await driver.begin_send(
                llm=parts.llm, system_prompt=system_prompt, tools=run.state.tools, model=parts.config.model
            )
        else:
            await driver.continue_send()
    with use_tool_runtime_context(runtime):
        result = await run.run(pending=pending)
    if driver is not None:
        await driver.end_send(status=result.status, final_text=result.final_text, rounds=result.rounds)
    return result


def _context_driver(
    parts: EngineParts, session_id: str, window: SessionWindow, registry: ToolRegistry | None
) -> ContextDriver:
    assert parts.context is not None
    return _driver_class()(
        parts.context, parts.store, session_id, window, hooks=parts.hooks, bus=parts.bus, registry=registry
    )


@cache
def _driver_class() -> type[ContextDriver]:
    # Imported on first use, not at the top: it loads ``power_loop.context``, which only loops
    # constructed with a context pipeline need, so the plain loop's import stays free of it.
    # Memoized because an import statement costs microseconds on every send.
    from ._context_driver import ContextDriver

    return ContextDriver


class SendRun:
    """Drives the rounds of one send (or of a resumed send) to a terminal status."""

    def __init__(self, state: SendState) -> None:
        self.state = state
        self._repaired = False

    # ------------------------------------------------------------------ entry point

    async def run(self, *, pending: dict[str, Any] | None = None) -> StatefulResult:
        """Run rounds until a terminal status; with ``pending`` first re-execute those tool calls."""
        s = self.state
        hooks = s.p.hooks
        s.emit(ET.SESSION_STARTED, lambda: P.SessionStartedPayload(scope="main"))
        if hooks.has(HP.SESSION_START):
            await hooks.run(HP.SESSION_START, H.SessionStartCtx(session_id=s.sid, messages=s.window.messages))
        if pending:
            s.pending = pending
        try:
            result = await self._finish_pending(pending) if pending else None
            if result is None:
                result = await self._rounds()
        except (asyncio.CancelledError, Exception) as exc:
            if isinstance(exc, asyncio.CancelledError):
                await self._answer_open_on_cancel()
            else:
                s.emit(
                    ET.AGENT_ERROR,
                    partial(P.AgentErrorPayload, error=str(exc), error_type=type(exc).__name__),
                )
            s.emit(ET.SESSION_ENDED, lambda: P.SessionEndedPayload(reason="error"))
            raise
        if hooks.has(HP.SESSION_END):
            ctx = H.SessionEndCtx(
                session_id=s.sid,
                round_index=s.rounds,
                reason=result.status,
                messages=s.window.messages,
                final_text=result.final_text,
            )
            await hooks.run(HP.SESSION_END, ctx)
        reason = s.end_reason or result.status
        s.emit(ET.SESSION_ENDED, lambda: P.SessionEndedPayload(reason=reason))
        return result

    async def _answer_open_on_cancel(self) -> None:
        """The task was cancelled between two steps (each write completes): answer the calls it left
        open. If even that write fails the session stays pending, recoverable as after a crash."""
        s = self.state
        try:
            await s.answer_open(CANCELLED_TEXT)
        except Exception as exc:
            s.emit(
                ET.AGENT_ERROR, partial(P.AgentErrorPayload, error=str(exc), error_type=type(exc).__name__)
            )

    async def _finish_pending(self, pending: dict[str, Any]) -> StatefulResult | None:
        """Resume: re-execute the calls an interrupted send left unanswered, then continue."""
        s = self.state
        calls = [tc for tc in pending.get("tool_calls", []) if isinstance(tc, dict)]
        round_index = int(pending.get("round_index") or 0)
        s.rounds = round_index + 1
        if s.registry is None:
            rows = [s.tool_row(tc, "<aborted: no tools available on resume>", round_index) for tc in calls]
            await s.commit(rows)
            return None
        known = await recovered_outputs(s, calls, int(pending.get("assistant_seq") or 0), round_index)
        return await ToolBatch(s, round_index, calls, known).run()

    # ------------------------------------------------------------------ the round loop

    async def _rounds(self) -> StatefulResult:
        s = self.state
        for round_index in range(s.cfg.max_rounds):
            s.rounds = round_index + 1
            if s.token.is_cancelled():
                return await cancelled(s, round_index)
            if s.p.hooks.has(HP.ROUND_START):
                directive, reason = await self._round_start(round_index)
                if directive is HD.BREAK:
                    return await terminal(s, "completed", "", reason=reason or "hook_break")
                if directive is HD.SKIP:
                    continue
            s.emit(ET.ROUND_STARTED, partial(P.RoundStartedPayload, round_index=round_index))
            await self._deliver_follow_ups(round_index)
            if round_index > 0 and self._budget_exceeded():
                return await budget_stop(s)

            try:
                response = await call_llm(s, round_index, tools=s.tools)
            except SteerInterrupt:
                # Nothing of the call was stored: the next round starts with the steering text.
                s.steer.interrupted(s, round_index, "model_call", [])
                continue
            except CancellationRequested as exc:
                return await cancelled(s, round_index, exc.reason)
            except (LLMRetryExhausted, LLMTimeout) as exc:
                return await degraded(s, round_index, exc)
            if response is None:  # LLM_BEFORE hook broke the round
                return await terminal(s, "completed", "", reason="hook_break")
            text = response.text
            calls = [normalize_tool_call(tc) for tc in response.get_tool_calls()]
            if s.p.hooks.has(HP.LLM_AFTER) and await self._llm_after_breaks(round_index, response):
                await s.commit([s.assistant(text, round_index)], final=True)
                return s.result("completed", text)

            if calls:
                done = await self._tool_round(round_index, text, calls)
            else:
                done = await self._answer_round(round_index, text)
            if done is not None:
                return done
        return await round_limit(s)

    async def _round_start(self, round_index: int) -> tuple[HD, str]:
        s = self.state
        ctx = H.RoundStartCtx(session_id=s.sid, round_index=round_index, messages=s.window.messages)
        directive = await s.p.hooks.run(HP.ROUND_START, ctx)
        return directive, ctx.reason

    async def _llm_after_breaks(self, round_index: int, response: LLMResponse) -> bool:
        s = self.state
        ctx = H.LlmAfterCtx(
            session_id=s.sid, round_index=round_index, messages=s.window.messages, output=response
        )
        return await s.p.hooks.run(HP.LLM_AFTER, ctx) is HD.BREAK

    async def _answer_round(self, round_index: int, text: str) -> StatefulResult | None:
        """A round without tool calls: the answer (unless follow-ups or a structured repair need
        another round, which ``None`` asks for)."""
        s = self.state
        if s.sid in s.p.follow_up_flags:
            # An otherwise-terminal round: record the answer, then run another round for the input.
            await s.commit([s.assistant(text, round_index)])
            await self._round_completed(round_index, has_tools=False, text=text)
            return None
        output, problem = self._structured(text)
        if problem is not None and not self._repaired:
            # One repair round: show the model what was wrong and ask again.
            self._repaired = True
            repair = NewMessage(
                role="user",
                content=STRUCTURED_REPAIR.format(problem=problem),
                name="structured_output",
                round_index=round_index,
            )
            await s.commit([s.assistant(text, round_index), repair])
            await self._round_completed(round_index, has_tools=False, text=text)
            return None
        await s.commit([s.assistant(text, round_index)], final=True)
        await self._round_completed(round_index, has_tools=False, text=text)
        if problem is not None:
            from ..structured import parse_structured

            parse_structured(text, schema=s.spec)  # raises StructuredOutputError with detail
        return s.result("completed", text, output=output)

    async def _tool_round(
        self, round_index: int, text: str, calls: list[dict[str, Any]]
    ) -> StatefulResult | None:
        """A round with tool calls: commit them, run them (or the hooks' stand-in output), commit the
        results. ``None`` continues with the next round."""
        s = self.state
        s.emit(ET.ROUND_TOOLS_PRESENT, lambda: P.RoundToolsPresentPayload(has_tools=True))
        if s.registry is None:
            await s.commit([s.assistant(text, round_index, calls)], final=True)
            return s.result("pending_tools", text, pending_tool_calls=calls)
        skip_output, stop_after = None, False
        if s.p.hooks.has(HP.ROUND_DECIDE):
            skip_output, stop_after = await self._round_decide(round_index, text, calls)
        await s.commit([s.assistant(text, round_index, calls)])
        if skip_output is None and s.p.hooks.has(HP.TOOLS_BATCH_BEFORE):
            skip_output = await self._batch_before(round_index, calls)
        if skip_output is not None:
            await s.commit([s.tool_row(tc, skip_output, round_index) for tc in calls])
            if stop_after:
                await s.commit([], final=True)
                return s.result("completed", text)
            await self._round_completed(round_index, has_tools=True, text=text)
            return None

        batch = ToolBatch(s, round_index, calls)
        stopped = await batch.run()
        if stopped is not None:
            return stopped
        if s.steer.waiting:
            s.steer.interrupted(s, round_index, "tool_batch", batch.steered)
        if s.p.hooks.has(HP.TOOLS_BATCH_AFTER):
            ctx = H.ToolsBatchAfterCtx(session_id=s.sid, round_index=round_index, messages=s.window.messages)
            await s.p.hooks.run(HP.TOOLS_BATCH_AFTER, ctx)
        await self._round_completed(round_index, has_tools=True, text=text)
        if batch.broken:
            await s.commit([], final=True)
            return s.result("completed", text)
        return None

    async def _round_decide(
        self, round_index: int, text: str, calls: list[dict[str, Any]]
    ) -> tuple[str | None, bool]:
        """The ``round.decide`` hook: ``(stand-in output for every call or None, stop after it)``."""
        s = self.state
        ctx = H.RoundDecideCtx(
            session_id=s.sid,
            round_index=round_index,
            messages=s.window.messages,
            tool_calls=calls,
            assistant_text=text,
        )
        directive = await s.p.hooks.run(HP.ROUND_DECIDE, ctx)
        if directive is HD.SKIP:
            return ctx.output, False
        if directive is HD.BREAK:
            return ctx.output, True
        return None, False

    async def _batch_before(self, round_index: int, calls: list[dict[str, Any]]) -> str | None:
        s = self.state
        ctx = H.ToolsBatchBeforeCtx(
            session_id=s.sid, round_index=round_index, messages=s.window.messages, tool_calls=calls
        )
        return ctx.output if await s.p.hooks.run(HP.TOOLS_BATCH_BEFORE, ctx) is HD.SKIP else None

    async def _round_completed(self, round_index: int, *, has_tools: bool, text: str) -> None:
        s = self.state
        if s.p.hooks.has(HP.ROUND_END):
            ctx = H.RoundEndCtx(
                session_id=s.sid,
                round_index=round_index,
                messages=s.window.messages,
                has_tools=has_tools,
                response_text=text,
            )
            await s.p.hooks.run(HP.ROUND_END, ctx)
        s.emit(
            ET.ROUND_COMPLETED,
            lambda: P.RoundCompletedPayload(round_index=round_index, has_tools=has_tools),
            round_index=round_index,
        )

    # ------------------------------------------------------------------ follow-ups, budget, structure

    async def _deliver_follow_ups(self, round_index: int) -> None:
        s = self.state
        if s.sid not in s.p.follow_up_flags:
            return
        s.p.follow_up_flags.discard(s.sid)
        items = await s.p.store.list_follow_ups(s.sid)
        if not items:
            return
        body = "\n\n".join(item.content for item in items)
        # A steer is the user's new instruction: it is the next user message as written.
        steered = s.steer.took(items)
        message = NewMessage(
            role="user",
            content=body if steered else f"<follow_up>\n{body}\n</follow_up>",
            name=STEER_NAME if steered else FOLLOW_UP_NAME,
            round_index=round_index,
        )
        await s.commit([message], consume=[item.item_id for item in items])
        s.emit(
            ET.FOLLOW_UP_DELIVERED,
            lambda: P.FollowUpDeliveredPayload(
                item_id=",".join(str(item.item_id) for item in items), text=body, round_index=round_index
            ),
            round_index=round_index,
        )

    def _budget_exceeded(self) -> bool:
        s = self.state
        cap = s.cfg.max_tokens_per_run
        return cap is not None and s.usage["prompt_tokens"] + s.usage["completion_tokens"] >= cap

    def _structured(self, text: str) -> tuple[dict[str, Any] | None, str | None]:
        """``(object, None)`` when no schema is set or the answer is valid, else ``(None, problem)``."""
        spec = self.state.spec
        if spec is None:
            return None, None
        from ..structured import parse_structured

        try:
            return parse_structured(text, schema=spec), None
        except StructuredOutputError as exc:
            return None, f"{exc.reason}: {exc.detail}" if exc.detail else exc.reason
