"""The round engine: one send, read top to bottom.

A *send* is one persisted user row plus every round it triggers. A *round* is:

1. ``ROUND_START`` hook, delivery of queued follow-ups, budget check;
2. one LLM call (retry policy, cancellation race, streaming callbacks);
3. the assistant message is committed — when it carries tool calls the store records them as *pending*
   in the same transaction (SPEC §2.4: history is valid by construction, not repaired later);
4. the round's tool calls run concurrently (bounded), each through the tool hooks;
5. their results are committed in call order, which resolves the pending calls.

Every terminal path commits the send's accounting with its last write. Cancellation at any await leaves
every committed tool call answered (unfinished calls get a ``[cancelled: …]`` result).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from .. import events as P
from .. import hooks as C
from ..base import get_tool_runtime_context, use_tool_runtime_context
from ..errors import CancellationRequested, LLMRetryExhausted, LLMTimeout, StructuredOutputError
from ..events import AgentEventType as ET
from ..hooks import HookDirective as HD
from ..hooks import HookPoint as HP
from ..llm import (
    CancellationToken,
    LLMRequest,
    LLMResponse,
    complete_from_stream,
    normalize_tool_call,
    with_retry,
)
from ..store import KEEP, NewMessage, SendAccounting
from ..tools import HumanInputRequired, ToolOutcome, execute_tool_call
from ._messages import call_args, call_name, new_message_dict, row_to_message, run_message_hooks
from ._streaming import publish_tool_call_deltas, race_cancellation, text_delta_callback
from ._types import StatefulResult

if TYPE_CHECKING:
    from ..context import ContextPipeline
    from ..events import AgentEventBus
    from ..hooks import AgentHooks
    from ..llm import LLMService
    from ..store import LeaseToken, SessionStore
    from ..tools import ToolRegistry
    from ._cache import SessionWindow
    from ._types import AgentLoopConfig

__all__ = ["EngineParts", "SendRun"]

T = TypeVar("T")

STRUCTURED_REPAIR = (
    "Your previous answer is not a valid JSON object for the required schema ({problem}). "
    "Reply again with only the JSON object."
)
ROUND_LIMIT_NOTICE = (
    "[hit_round_limit] The round limit ({max_rounds}) for this request is reached. Do not call tools. "
    "Summarise what was done, what is left, and how to continue."
)
FOLLOW_UP_NAME = "follow_up"


@dataclass(slots=True)
class EngineParts:
    """What the engine borrows from its `StatefulAgentLoop`."""

    store: SessionStore
    llm: LLMService
    config: AgentLoopConfig
    hooks: AgentHooks
    bus: AgentEventBus
    follow_up_flags: set[str]
    lease: LeaseToken | None = None  # the session lease fencing every write of the send (if leasing)
    context: ContextPipeline | None = None  # representation and fold; None = the verbatim window


class SendRun:
    """Drives the rounds of one send (or of a resumed send) to a terminal status."""

    def __init__(
        self,
        parts: EngineParts,
        session_id: str,
        window: SessionWindow,
        *,
        registry: ToolRegistry | None,
        system_prompt: str,
        token: CancellationToken | None,
        tap: AgentEventBus | None = None,
    ) -> None:
        self.p = parts
        # A per-send bus (``loop.stream()``): also receives this send's events, and makes the model
        # call stream so tool-call argument deltas can be surfaced.
        self.tap = tap
        self.sid = session_id
        self.window = window
        self.registry = registry if registry is not None and registry.names() else None
        self.tools = self.registry.to_openai_tools() if self.registry is not None else None
        self.system_prompt = system_prompt
        # Without a cancellation source the LLM call and tool batch are awaited directly (no race tasks).
        self.cancellable = token is not None
        self.token = token if token is not None else CancellationToken.never()
        self.cfg = parts.config
        self.rounds = 0
        self.tool_call_count = 0
        self.llm_calls = 0
        self.usage = {
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cache_read_tokens": 0,
            "reasoning_tokens": 0,
            "total_tokens": 0,
        }
        self._accounted = False
        self._repaired = False
        self.spec = self.cfg.output_spec
        self.response_format = (
            self.spec.to_openai_response_format() if self.spec is not None else self.cfg.response_format
        )
        # A service may suggest its own retries (e.g. POWER_LOOP_MAX_RETRIES); the config wins.
        self.retry_policy = self.cfg.retry_policy or getattr(parts.llm, "default_retry_policy", None)
        self._batch_broken = False
        self.end_reason = ""

    # ------------------------------------------------------------------ entry points

    async def run(self, *, pending: dict[str, Any] | None = None) -> StatefulResult:
        """Run rounds until a terminal status; with ``pending`` first re-execute those tool calls."""
        self._emit(ET.SESSION_STARTED, lambda: P.SessionStartedPayload(scope="main"))
        if self.p.hooks.has(HP.SESSION_START):
            await self.p.hooks.run(
                HP.SESSION_START, C.SessionStartCtx(session_id=self.sid, messages=self.window.messages)
            )
        try:
            result = await self._drive(pending)
        except (asyncio.CancelledError, Exception) as exc:
            if not isinstance(exc, asyncio.CancelledError):
                self._emit(
                    ET.AGENT_ERROR,
                    partial(P.AgentErrorPayload, error=str(exc), error_type=type(exc).__name__),
                )
            self._emit(ET.SESSION_ENDED, lambda: P.SessionEndedPayload(reason="error"))
            raise
        if self.p.hooks.has(HP.SESSION_END):
            await self.p.hooks.run(
                HP.SESSION_END,
                C.SessionEndCtx(
                    session_id=self.sid,
                    round_index=self.rounds,
                    reason=result.status,
                    messages=self.window.messages,
                    final_text=result.final_text,
                ),
            )
        reason = self.end_reason or result.status
        self._emit(ET.SESSION_ENDED, lambda: P.SessionEndedPayload(reason=reason))
        return result

    async def _drive(self, pending: dict[str, Any] | None) -> StatefulResult:
        if pending:
            done = await self._finish_pending(pending)
            if done is not None:
                return done
        return await self._rounds()

    # ------------------------------------------------------------------ the round loop

    async def _rounds(self) -> StatefulResult:
        cfg = self.cfg
        hooks = self.p.hooks
        for round_index in range(cfg.max_rounds):
            self.rounds = round_index + 1
            if self.token.is_cancelled():
                return await self._cancelled(round_index)
            if hooks.has(HP.ROUND_START):
                ctx = C.RoundStartCtx(
                    session_id=self.sid, round_index=round_index, messages=self.window.messages
                )
                directive = await hooks.run(HP.ROUND_START, ctx)
                if directive is HD.BREAK:
                    return await self._terminal("completed", "", reason=ctx.reason or "hook_break")
                if directive is HD.SKIP:
                    continue
            self._emit(ET.ROUND_STARTED, partial(P.RoundStartedPayload, round_index=round_index))
            await self._deliver_follow_ups(round_index)
            if round_index > 0 and self._budget_exceeded():
                return await self._budget_stop()

            try:
                response = await self._call_llm(round_index, tools=self.tools)
            except CancellationRequested as exc:
                return await self._cancelled(round_index, exc.reason)
            except (LLMRetryExhausted, LLMTimeout) as exc:
                return await self._degraded(round_index, exc)
            if response is None:  # LLM_BEFORE hook broke the round
                return await self._terminal("completed", "", reason="hook_break")

            text = response.text
            calls = [normalize_tool_call(tc) for tc in response.get_tool_calls()]
            if hooks.has(HP.LLM_AFTER):
                ctx_after = C.LlmAfterCtx(
                    session_id=self.sid,
                    round_index=round_index,
                    messages=self.window.messages,
                    output=response,
                )
                if await hooks.run(HP.LLM_AFTER, ctx_after) is HD.BREAK:
                    await self._commit([self._assistant(text, round_index)], final=True)
                    return self._result("completed", text)

            if not calls:
                if self._follow_ups_waiting():
                    # An otherwise-terminal round: record the answer, then run another round for the input.
                    await self._commit([self._assistant(text, round_index)])
                    await self._round_completed(round_index, has_tools=False, text=text)
                    continue
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
                    await self._commit([self._assistant(text, round_index), repair])
                    await self._round_completed(round_index, has_tools=False, text=text)
                    continue
                await self._commit([self._assistant(text, round_index)], final=True)
                await self._round_completed(round_index, has_tools=False, text=text)
                if problem is not None:
                    from ..structured import parse_structured

                    parse_structured(text, schema=self.spec)  # raises StructuredOutputError with detail
                return self._result("completed", text, output=output)

            self._emit(ET.ROUND_TOOLS_PRESENT, lambda: P.RoundToolsPresentPayload(has_tools=True))
            if self.registry is None:
                await self._commit([self._assistant(text, round_index, calls)], final=True)
                return self._result("pending_tools", text, pending_tool_calls=calls)

            skip_output: str | None = None
            stop_after = False
            if hooks.has(HP.ROUND_DECIDE):
                decide = C.RoundDecideCtx(
                    session_id=self.sid,
                    round_index=round_index,
                    messages=self.window.messages,
                    tool_calls=calls,
                    assistant_text=text,
                )
                directive = await hooks.run(HP.ROUND_DECIDE, decide)
                if directive is HD.SKIP:
                    skip_output = decide.output
                elif directive is HD.BREAK:
                    skip_output, stop_after = decide.output, True

            await self._commit([self._assistant(text, round_index, calls)])
            if skip_output is None and hooks.has(HP.TOOLS_BATCH_BEFORE):
                batch = C.ToolsBatchBeforeCtx(
                    session_id=self.sid,
                    round_index=round_index,
                    messages=self.window.messages,
                    tool_calls=calls,
                )
                if await hooks.run(HP.TOOLS_BATCH_BEFORE, batch) is HD.SKIP:
                    skip_output = batch.output

            if skip_output is not None:
                await self._commit([self._tool_row(tc, skip_output, round_index) for tc in calls])
                if stop_after:
                    await self._commit([], final=True)
                    return self._result("completed", text)
                await self._round_completed(round_index, has_tools=True, text=text)
                continue

            outcome = await self._run_tools(round_index, calls)
            if outcome is not None:
                return outcome
            if hooks.has(HP.TOOLS_BATCH_AFTER):
                await hooks.run(
                    HP.TOOLS_BATCH_AFTER,
                    C.ToolsBatchAfterCtx(
                        session_id=self.sid, round_index=round_index, messages=self.window.messages
                    ),
                )
            await self._round_completed(round_index, has_tools=True, text=text)
            if self._batch_broken:
                await self._commit([], final=True)
                return self._result("completed", text)
        return await self._round_limit()

    # ------------------------------------------------------------------ the LLM call

    async def _call_llm(self, round_index: int, *, tools: list[dict[str, Any]] | None) -> LLMResponse | None:
        cfg = self.cfg
        context = self.p.context
        request = LLMRequest(
            messages=context.request_messages(self.window)
            if context is not None
            else list(self.window.messages),
            system_prompt=self.system_prompt,
            model=cfg.model,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            tools=tools,
            tool_choice="auto" if tools else None,
            response_format=self.response_format,
        )
        hooks = self.p.hooks
        if hooks.has(HP.LLM_BEFORE):
            ctx = C.LlmBeforeCtx(
                session_id=self.sid,
                round_index=round_index,
                messages=request.messages,
                system_prompt=request.system_prompt or "",
                tools=request.tools,
                max_tokens=request.max_tokens or 0,
                temperature=request.temperature or 0.0,
                tool_choice=request.tool_choice,
            )
            directive = await hooks.run(HP.LLM_BEFORE, ctx)
            if directive is HD.BREAK:
                return None
            if directive is HD.SHORT_CIRCUIT:
                if not isinstance(ctx.output, LLMResponse):
                    raise TypeError("an llm.before SHORT_CIRCUIT needs ctx.output to be an LLMResponse")
                return ctx.output
            request.messages = ctx.messages
            request.system_prompt = ctx.system_prompt
            request.tools = ctx.tools
            request.tool_choice = (ctx.tool_choice or "auto") if ctx.tools else None
            request.max_tokens = ctx.max_tokens
            request.temperature = ctx.temperature

        on_text = (
            text_delta_callback(self._emit, False, round_index) if self._wants(ET.STREAM_DELTA) else None
        )
        on_think = (
            text_delta_callback(self._emit, True, round_index) if self._wants(ET.STREAM_THINK_DELTA) else None
        )
        model = request.model or ""

        async def attempt(n: int) -> LLMResponse:  # n counts from 1, as with_retry counts
            call_id = f"r{round_index}.a{n}"
            self._emit(
                ET.LLM_CALL_STARTED,
                lambda: P.LlmCallStartedPayload(
                    call_id=call_id, round_index=round_index, attempt=n, model=model
                ),
                round_index=round_index,
            )
            started = time.perf_counter()
            try:
                if self.tap is None:
                    response = await self.p.llm.complete(
                        request, on_chunk_delta_text=on_text, on_chunk_think=on_think
                    )
                else:
                    response = await complete_from_stream(
                        publish_tool_call_deltas(
                            self.p.llm.stream(request), self._emit, self._wants, round_index
                        ),
                        on_chunk_delta_text=on_text,
                        on_chunk_think=on_think,
                        parse_json=request.parse_json,
                    )
            except Exception as exc:
                self._emit(
                    ET.LLM_CALL_COMPLETED,
                    partial(
                        P.LlmCallCompletedPayload,
                        call_id=call_id,
                        round_index=round_index,
                        attempt=n,
                        model=model,
                        duration_ms=(time.perf_counter() - started) * 1000.0,
                        success=False,
                        error_type=type(exc).__name__,
                    ),
                    round_index=round_index,
                )
                raise
            self._emit(
                ET.LLM_CALL_COMPLETED,
                lambda: P.LlmCallCompletedPayload(
                    call_id=call_id,
                    round_index=round_index,
                    attempt=n,
                    model=model,
                    duration_ms=(time.perf_counter() - started) * 1000.0,
                ),
                round_index=round_index,
            )
            return response

        policy = self.retry_policy
        if policy is None:
            call: Awaitable[LLMResponse] = attempt(1)
        else:
            call = with_retry(attempt, policy=policy, token=self.token, on_retry=self._on_retry(round_index))
        self._emit(
            ET.STREAM_STARTED, lambda: P.StreamStartedPayload(stream_id="main"), round_index=round_index
        )
        try:
            response = await self._race(call)
        finally:
            self._emit(ET.STREAM_COMPLETED, lambda: P.StreamCompletedPayload(), round_index=round_index)
        self.llm_calls += 1
        self._account(response, round_index)
        for notice in response.debug.get("notices") or ():
            # A provider fallback (e.g. a server that cannot stream tool calls): tell the application.
            self._emit(
                ET.SYSTEM_LOG,
                partial(P.SystemLogPayload, message=str(notice), level="warning"),
                round_index=round_index,
            )
        if context is not None:
            # Calibrates the token estimator with what the provider reported for this exact request.
            context.observe(
                self.window,
                model=request.model,
                messages=request.messages,
                prompt_tokens=response.token_usage.prompt_tokens,
                system_prompt=request.system_prompt,
                tools=request.tools,
            )
        return response

    def _on_retry(self, round_index: int) -> Callable[[int, BaseException, float], None]:
        def on_retry(attempt: int, exc: BaseException, sleep_s: float) -> None:
            self._emit(
                ET.LLM_RETRY_ATTEMPTED,
                lambda: P.LlmRetryAttemptedPayload(
                    attempt=attempt,
                    max_attempts=self.retry_policy.max_attempts if self.retry_policy else 1,
                    error_type=type(exc).__name__,
                    error_message=str(exc)[:500],
                    next_sleep_seconds=sleep_s,
                ),
                round_index=round_index,
            )

        return on_retry

    async def _race(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` unless the send's cancellation token fires first."""
        if not self.cancellable:
            return await awaitable
        return await race_cancellation(awaitable, self.token)

    def _account(self, response: LLMResponse, round_index: int) -> None:
        usage = response.token_usage.normalized()
        for key in self.usage:
            self.usage[key] += usage.get(key, 0)
        if self._wants(ET.USAGE_UPDATED):
            self._emit(
                ET.USAGE_UPDATED, lambda: P.UsageUpdatedPayload(usage=dict(usage)), round_index=round_index
            )

    def _structured(self, text: str) -> tuple[dict[str, Any] | None, str | None]:
        """``(object, None)`` when no schema is set or the answer is valid, else ``(None, problem)``."""
        if self.spec is None:
            return None, None
        from ..structured import parse_structured

        try:
            return parse_structured(text, schema=self.spec), None
        except StructuredOutputError as exc:
            return None, f"{exc.reason}: {exc.detail}" if exc.detail else exc.reason

    def _budget_exceeded(self) -> bool:
        cap = self.cfg.max_tokens_per_run
        return cap is not None and self.usage["prompt_tokens"] + self.usage["completion_tokens"] >= cap

    # ------------------------------------------------------------------ tools

    async def _run_tools(self, round_index: int, calls: list[dict[str, Any]]) -> StatefulResult | None:
        """Run one round's calls; commit their results. Returns a result when the send must stop."""
        self._batch_broken = False
        outputs: list[str | None] = [None] * len(calls)
        human: list[tuple[int, HumanInputRequired]] = []
        limit = asyncio.Semaphore(self.cfg.tool_concurrency)

        async def run_one(index: int, call: dict[str, Any]) -> None:
            async with limit:
                if self._batch_broken:
                    outputs[index] = "[skipped: tool.after hook stopped the batch]"
                    return
                try:
                    outputs[index] = await self._invoke(round_index, call)
                except HumanInputRequired as request:
                    human.append((index, request))

        tasks = [asyncio.ensure_future(run_one(i, call)) for i, call in enumerate(calls)]
        batch = asyncio.gather(*tasks)
        try:
            await self._race(batch)
        except CancellationRequested as exc:
            await self._answer_unfinished(calls, outputs, human, round_index, f"[cancelled: {exc.reason}]")
            return await self._cancelled(round_index, exc.reason, committed=True)
        except asyncio.CancelledError:
            # The caller cancelled us (e.g. a stream consumer left): answer what is open, durably.
            for task in tasks:
                task.cancel()
            await asyncio.shield(
                self._answer_unfinished(calls, outputs, human, round_index, "[cancelled: send was cancelled]")
            )
            raise
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.shield(
                self._answer_unfinished(calls, outputs, human, round_index, "[error: tool batch failed]")
            )
            raise

        rows = [
            self._tool_row(call, output, round_index)
            for call, output in zip(calls, outputs, strict=True)
            if output is not None
        ]
        if human:
            index, request = min(human, key=lambda pair: pair[0])
            waiting = [request.to_pending(tool_call_id=calls[index]["id"], tool_name=call_name(calls[index]))]
            # Other input requests in the same batch are superseded by the first one.
            rows.extend(
                self._tool_row(calls[i], "[skipped: superseded by a user-input request]", round_index)
                for i, _ in sorted(human, key=lambda pair: pair[0])[1:]
            )
            await self._commit(rows, final=True, interactions=waiting)
            first = waiting[0]
            self._emit(
                ET.INPUT_REQUESTED,
                lambda: P.InputRequestedPayload(
                    interaction_id=first["interaction_id"],
                    kind=first.get("kind", "text"),
                    prompt=first.get("prompt", ""),
                    options=list(first.get("options") or []),
                    tool_call_id=first["tool_call_id"],
                ),
                round_index=round_index,
            )
            return self._result(
                "waiting_for_input",
                "",
                pending_tool_calls=[calls[index]],
                pending_interactions=waiting,
            )
        await self._commit(rows)
        return None

    async def _answer_unfinished(
        self,
        calls: list[dict[str, Any]],
        outputs: list[str | None],
        human: list[tuple[int, HumanInputRequired]],
        round_index: int,
        text: str,
    ) -> None:
        rows = [
            self._tool_row(call, output if output is not None else text, round_index)
            for call, output in zip(calls, outputs, strict=True)
        ]
        await self._commit(rows)

    async def _invoke(self, round_index: int, call: dict[str, Any]) -> str:
        hooks = self.p.hooks
        name = call_name(call)
        args: dict[str, Any] | None = None
        if hooks.has(HP.TOOL_BEFORE):
            args = call_args(call)
            before = C.ToolBeforeCtx(
                session_id=self.sid, round_index=round_index, tool_call=call, tool_name=name, tool_args=args
            )
            if await hooks.run(HP.TOOL_BEFORE, before) is HD.SKIP:
                self._tool_events(round_index, call, name, args, before.output, failed=False)
                return before.output
            if (
                before.tool_name != name
                or before.tool_args is not args
                or before.tool_args != call_args(call)
            ):
                name, args = before.tool_name, before.tool_args
                call = {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)},
                }
        if self._wants(ET.TOOL_CALL_STARTED):
            shown = args if args is not None else call_args(call)
            self._emit(
                ET.TOOL_CALL_STARTED,
                lambda: P.ToolCallStartedPayload(name=name, tool_input=shown, tool_call_id=call["id"]),
                round_index=round_index,
            )
        assert self.registry is not None
        self.tool_call_count += 1
        outcome = await self._execute(call)
        output, failed = outcome.output, outcome.failed
        if failed and outcome.error is not None and hooks.has(HP.TOOL_ERROR):
            err = C.ToolErrorCtx(
                session_id=self.sid,
                round_index=round_index,
                tool_call=call,
                tool_name=name,
                tool_args=outcome.args,
                error=outcome.error if isinstance(outcome.error, Exception) else None,
                error_message=output,
                output="",
            )
            directive = await hooks.run(HP.TOOL_ERROR, err)
            if directive is HD.SKIP:
                output, failed = err.output or f"Error: {outcome.error}", False
            elif directive is HD.SHORT_CIRCUIT:
                retry = await self._execute(call)
                output, failed = retry.output, retry.failed
        if hooks.has(HP.TOOL_AFTER):
            after = C.ToolAfterCtx(
                session_id=self.sid,
                round_index=round_index,
                tool_call=call,
                tool_name=name,
                tool_args=outcome.args,
                output=output,
                failed=failed,
            )
            if await hooks.run(HP.TOOL_AFTER, after) is HD.BREAK:
                self._batch_broken = True
            output, failed = after.output, after.failed
        self._tool_events(round_index, call, name, outcome.args, output, failed=failed)
        return output

    async def _execute(self, call: dict[str, Any]) -> ToolOutcome:
        """Run one call, with its id in the tool runtime context (e.g. spawn_agent records it)."""
        assert self.registry is not None
        runtime = get_tool_runtime_context()
        if runtime is None:
            return await execute_tool_call(
                self.registry, call, max_result_chars=self.cfg.tool_result_max_chars
            )
        with use_tool_runtime_context(replace(runtime, tool_call_id=str(call["id"]))):
            return await execute_tool_call(
                self.registry, call, max_result_chars=self.cfg.tool_result_max_chars
            )

    def _tool_events(
        self, round_index: int, call: dict[str, Any], name: str, args: Any, output: str, *, failed: bool
    ) -> None:
        if failed and self._wants(ET.TOOL_CALL_FAILED):
            self._emit(
                ET.TOOL_CALL_FAILED,
                lambda: P.ToolCallFailedPayload(
                    name=name, output=output, tool_input=args, tool_call_id=call["id"]
                ),
                round_index=round_index,
            )
        if self._wants(ET.TOOL_CALL_COMPLETED):
            self._emit(
                ET.TOOL_CALL_COMPLETED,
                lambda: P.ToolCallCompletedPayload(
                    name=name, output=output, tool_input=args, tool_call_id=call["id"], failed=failed
                ),
                round_index=round_index,
            )

    async def _finish_pending(self, pending: dict[str, Any]) -> StatefulResult | None:
        """Resume: re-execute the calls an interrupted send left unanswered, then continue."""
        calls = [tc for tc in pending.get("tool_calls", []) if isinstance(tc, dict)]
        round_index = int(pending.get("round_index") or 0)
        self.rounds = round_index + 1
        if self.registry is None:
            rows = [
                self._tool_row(tc, "<aborted: no tools available on resume>", round_index) for tc in calls
            ]
            await self._commit(rows)
            return None
        return await self._run_tools(round_index, calls)

    # ------------------------------------------------------------------ follow-ups

    def _follow_ups_waiting(self) -> bool:
        return self.sid in self.p.follow_up_flags

    async def _deliver_follow_ups(self, round_index: int) -> None:
        if self.sid not in self.p.follow_up_flags:
            return
        self.p.follow_up_flags.discard(self.sid)
        items = await self.p.store.list_follow_ups(self.sid)
        if not items:
            return
        body = "\n\n".join(item.content for item in items)
        message = NewMessage(
            role="user",
            content=f"<follow_up>\n{body}\n</follow_up>",
            name=FOLLOW_UP_NAME,
            round_index=round_index,
        )
        await self._commit([message], consume=[item.item_id for item in items])
        self._emit(
            ET.FOLLOW_UP_DELIVERED,
            lambda: P.FollowUpDeliveredPayload(
                item_id=",".join(str(item.item_id) for item in items), text=body, round_index=round_index
            ),
            round_index=round_index,
        )

    # ------------------------------------------------------------------ terminal paths

    async def _terminal(self, status: str, text: str, *, reason: str) -> StatefulResult:
        self.end_reason = reason
        await self._commit([], final=True)
        return self._result(status, text)

    async def _cancelled(
        self, round_index: int, reason: str = "cancelled", *, committed: bool = False
    ) -> StatefulResult:
        reason = self.token.reason or reason
        self._emit(
            ET.LOOP_CANCELLED,
            lambda: P.LoopCancelledPayload(reason=reason, round_index=round_index),
            round_index=round_index,
        )
        await self._commit([], final=True)
        text = "[cancelled by user]" if reason == "cancelled" else f"[cancelled: {reason}]"
        return self._result("cancelled", text)

    async def _degraded(self, round_index: int, exc: LLMRetryExhausted | LLMTimeout) -> StatefulResult:
        kind = "timeout" if isinstance(exc, LLMTimeout) else "retry_exhausted"
        cause = exc.last_error if isinstance(exc, LLMRetryExhausted) else exc
        attempts = exc.attempts
        self._emit(
            ET.LLM_DEGRADED,
            lambda: P.LlmDegradedPayload(
                reason=kind,
                attempts=attempts,
                error_type=type(cause).__name__,
                error_message=str(cause)[:500],
            ),
            round_index=round_index,
        )
        text = f"[degraded: LLM {kind} — {type(cause).__name__}: {cause}]"
        await self._commit([self._assistant(text, round_index)], final=True)
        return self._result("degraded", text)

    async def _budget_stop(self) -> StatefulResult:
        cap = self.cfg.max_tokens_per_run or 0
        spent = self.usage["prompt_tokens"] + self.usage["completion_tokens"]
        self._emit(
            ET.STATUS_CHANGED,
            lambda: P.BudgetExceededStatusPayload(
                budget_tokens=cap, spent_tokens=spent, rounds=self.rounds - 1
            ),
        )
        self.rounds -= 1
        return await self._terminal("budget_exceeded", "[budget_exceeded]", reason="budget_exceeded")

    async def _round_limit(self) -> StatefulResult:
        max_rounds = self.cfg.max_rounds
        self._emit(ET.STATUS_CHANGED, lambda: P.HitRoundLimitStatusPayload(max_rounds=max_rounds))
        notice = NewMessage(
            role="user", content=ROUND_LIMIT_NOTICE.format(max_rounds=max_rounds), round_index=max_rounds
        )
        await self._commit([notice])
        try:
            # No tools on the summary call: an answer with tool calls could not be executed.
            response = await self._call_llm(max_rounds, tools=None)
            text = response.text if response is not None else ""
        except CancellationRequested as exc:
            return await self._cancelled(max_rounds, exc.reason)
        except (LLMRetryExhausted, LLMTimeout) as exc:
            return await self._degraded(max_rounds, exc)
        await self._commit([self._assistant(text, max_rounds)], final=True)
        return self._result("hit_round_limit", f"[hit_round_limit]\n{text}")

    # ------------------------------------------------------------------ persistence

    async def _commit(
        self,
        messages: list[NewMessage],
        *,
        final: bool = False,
        interactions: Any = KEEP,
        consume: list[int] | None = None,
    ) -> None:
        """One transaction: append ``messages`` (and the send's accounting when ``final``)."""
        stats = None
        if final and not self._accounted:
            self._accounted = True
            stats = SendAccounting(
                sends=1,
                rounds=self.rounds,
                llm_calls=self.llm_calls,
                tool_calls=self.tool_call_count,
                prompt_tokens=self.usage["prompt_tokens"],
                completion_tokens=self.usage["completion_tokens"],
                cache_read_tokens=self.usage["cache_read_tokens"],
                reasoning_tokens=self.usage["reasoning_tokens"],
                total_tokens=self.usage["total_tokens"]
                or self.usage["prompt_tokens"] + self.usage["completion_tokens"],
            )
        if not messages and stats is None and interactions is KEEP:
            return
        if messages and self.p.hooks.has(HP.MESSAGE_APPEND):
            messages = await run_message_hooks(self.p.hooks, self.sid, messages)
        window = self.window
        result = await self.p.store.append_messages(
            self.sid,
            messages,
            pending_interactions=interactions,
            consume_follow_ups=consume or (),
            stats=stats,
            lease=self.p.lease,
        )
        if messages and result.first_seq != window.next_seq:
            # Someone else wrote to this session: the store is the truth, reload the window.
            rows = await self.p.store.load_active_messages(self.sid)
            if self.p.context is not None:
                self.p.context.rebuild(window, rows)
            else:
                window.messages[:] = [row_to_message(row) for row in rows]
        else:
            window.messages.extend(new_message_dict(m) for m in messages)
        window.next_seq = result.next_seq
        if result.follow_ups_waiting:
            self.p.follow_up_flags.add(self.sid)

    def _assistant(
        self, text: str, round_index: int, calls: list[dict[str, Any]] | None = None
    ) -> NewMessage:
        return NewMessage(role="assistant", content=text, tool_calls=calls or None, round_index=round_index)

    def _tool_row(self, call: dict[str, Any], output: str, round_index: int) -> NewMessage:
        return NewMessage(
            role="tool",
            content=output,
            tool_call_id=call["id"],
            name=call_name(call),
            round_index=round_index,
        )

    # ------------------------------------------------------------------ results & events

    async def _round_completed(self, round_index: int, *, has_tools: bool, text: str) -> None:
        if self.p.hooks.has(HP.ROUND_END):
            ctx = C.RoundEndCtx(
                session_id=self.sid,
                round_index=round_index,
                messages=self.window.messages,
                has_tools=has_tools,
                response_text=text,
            )
            await self.p.hooks.run(HP.ROUND_END, ctx)
        self._emit(
            ET.ROUND_COMPLETED,
            lambda: P.RoundCompletedPayload(round_index=round_index, has_tools=has_tools),
            round_index=round_index,
        )

    def _result(
        self,
        status: str,
        text: str,
        *,
        pending_tool_calls: list[dict[str, Any]] | None = None,
        pending_interactions: list[dict[str, Any]] | None = None,
        output: dict[str, Any] | None = None,
    ) -> StatefulResult:
        usage = dict(self.usage)
        if self.llm_calls:
            usage["calls"] = self.llm_calls
            if not usage["total_tokens"]:
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return StatefulResult(
            session_id=self.sid,
            status=status,
            final_text=text,
            rounds=self.rounds,
            pending_tool_calls=pending_tool_calls or [],
            pending_interactions=pending_interactions or [],
            usage=usage if self.llm_calls else {},
            tool_calls=self.tool_call_count,
            output=output,
        )

    def _wants(self, event_type: ET) -> bool:
        return self.p.bus.wants(event_type) or (self.tap is not None and self.tap.wants(event_type))

    def _emit(
        self,
        event_type: ET,
        make: Callable[[], Any],
        *,
        round_index: int | None = None,
        stream_id: str | None = None,
    ) -> None:
        """Publish an event, building its payload only when someone listens (SPEC §9)."""
        tap = self.tap
        if tap is None:
            self.p.bus.emit(
                event_type, make, session_id=self.sid, round_index=round_index, stream_id=stream_id
            )
            return
        if not self._wants(event_type):
            return
        data = make()
        self.p.bus.emit(event_type, data, session_id=self.sid, round_index=round_index, stream_id=stream_id)
        tap.emit(event_type, data, session_id=self.sid, round_index=round_index, stream_id=stream_id)
