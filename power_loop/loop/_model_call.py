"""One model call of a round: the request, the ``LLM_BEFORE`` hook, attempts under the retry policy
(streamed when the send has a tap), the cancellation race, events and usage accounting."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from .. import events as P
from .. import hooks as H
from .. import store as S
from ..base import redact_secrets, schema_from_response_format
from ..events import AgentEventType as ET
from ..hooks import HookDirective as HD
from ..hooks import HookPoint as HP
from ..llm import (
    LLMRequest,
    LLMResponse,
    ModelCapabilities,
    capabilities_of,
    check_capabilities,
    complete_from_stream,
    with_retry,
)
from ._media import retain_images
from ._projectors import ProjectionContext, RuntimeMessage
from ._streaming import publish_tool_call_deltas, text_delta_callback

if TYPE_CHECKING:
    from ..events import LlmCallCompletedPayload
    from ..llm import LLMTokenUsage
    from ._send_state import SendState

__all__ = ["call_llm", "fit_request"]


async def call_llm(
    s: SendState, round_index: int, *, tools: list[dict[str, Any]] | None
) -> LLMResponse | None:
    """Call the model once for ``round_index`` (``None``: an ``llm.before`` hook broke the round)."""
    context = s.p.context
    request = await _build_request(s, round_index, tools)
    if s.p.hooks.has(HP.LLM_BEFORE):
        directive, short = await _llm_before(s, round_index, request)
        if directive is HD.BREAK:
            return None
        if short is not None:
            return short
    caps = capabilities_of(s.p.llm)
    answer_tool = fit_request(request, caps)
    check_capabilities(caps, request.messages, model=request.model or "")
    attempt = _Attempt(s, request, round_index)
    policy = s.retry_policy
    if policy is None:
        call: Awaitable[LLMResponse] = attempt(1)
    else:
        call = with_retry(attempt, policy=policy, token=s.token, on_retry=_on_retry(s, round_index))
    s.emit(ET.STREAM_STARTED, lambda: P.StreamStartedPayload(stream_id="main"), round_index=round_index)
    started = time.perf_counter()
    try:
        response = await s.steer.model_call(s.race(call))
    finally:
        s.emit(ET.STREAM_COMPLETED, lambda: P.StreamCompletedPayload(), round_index=round_index)
    s.llm_calls += 1
    if answer_tool is not None:
        _answer_from_tool(response, answer_tool)
    _account(s, response, round_index, int((time.perf_counter() - started) * 1000), attempt.calls)
    for notice in response.debug.get("notices") or ():
        # A provider fallback (e.g. a server that cannot stream tool calls): tell the application.
        s.emit(
            ET.SYSTEM_LOG,
            partial(P.SystemLogPayload, message=str(notice), level="warning"),
            round_index=round_index,
        )
    if context is not None:
        # Calibrates the token estimator with what the provider reported for this exact request.
        context.observe(
            s.window,
            model=request.model,
            messages=request.messages,
            prompt_tokens=response.token_usage.prompt_tokens,
            system_prompt=request.system_prompt,
            tools=request.tools,
        )
    return response


def fit_request(request: LLMRequest, caps: ModelCapabilities) -> str | None:
    """Shape ``request`` to what the model takes: no tools without tool support, and for a model
    without structured output the ``response_format`` becomes a forced answer tool (or, without
    tools either, is dropped: the loop's structured repair then works on the text). Returns the
    answer tool's name when one was added."""
    if not caps.tools:
        request.tools = None
        request.tool_choice = None
    if not request.response_format or caps.structured_output:
        return None
    spec = schema_from_response_format(request.response_format)
    request.response_format = None
    if spec is None or not caps.tools:
        return None
    answer = {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.full_description() or "Give the final answer as this structured object.",
            "parameters": dict(spec.schema),
        },
    }
    request.tools = [*(request.tools or ()), answer]
    # The only tool: force it. With others offered the model may still call them first.
    request.tool_choice = (
        {"type": "function", "function": {"name": spec.name}} if len(request.tools) == 1 else "required"
    )
    return spec.name


def _answer_from_tool(response: LLMResponse, name: str) -> None:
    """A call of the answer tool is the structured answer: its arguments become the text."""
    for call in response.get_tool_calls():
        if call["function"]["name"] == name:
            response.raw_text = call["function"]["arguments"]
            response.content_text = response.raw_text
            # The answer ends the turn: no tool calls remain, wherever the provider kept them.
            response.tool_calls = []
            response.raw_message = None
            response.raw_completion = None
            return


async def _build_request(s: SendState, round_index: int, tools: list[dict[str, Any]] | None) -> LLMRequest:
    """This round's request: the window (older images elided as configured), then the transient
    runtime messages."""
    cfg, context = s.cfg, s.p.context
    request = LLMRequest(
        messages=context.request_messages(s.window) if context is not None else list(s.window.messages),
        system_prompt=s.system_prompt,
        model=cfg.model,
        temperature=cfg.temperature,
        max_tokens=cfg.max_tokens,
        tools=tools,
        tool_choice="auto" if tools else None,
        response_format=s.response_format,
    )
    if cfg.image_retention_rounds is not None:
        request.messages = retain_images(request.messages, cfg.image_retention_rounds)
    if cfg.runtime_projectors:
        request.messages.extend(await _runtime_messages(s, round_index, request))
    return request


async def _runtime_messages(s: SendState, round_index: int, request: LLMRequest) -> list[dict[str, Any]]:
    """This round's transient messages from the configured projectors; a failing projector is
    reported (``system_log``, level error) and skipped, never failing the send."""
    names = tuple(str((t.get("function") or t).get("name", "")) for t in request.tools or ())
    context = ProjectionContext(tool_names=names, messages=request.messages)  # read-only by contract
    out: list[dict[str, Any]] = []
    for projector in s.cfg.runtime_projectors:
        try:
            produced = await projector.project(
                store=s.p.store, session_id=s.sid, round_index=round_index, context=context
            )
        except Exception as exc:
            text = f"runtime projector {type(projector).__name__} failed: {type(exc).__name__}: {exc}"
            s.emit(
                ET.SYSTEM_LOG,
                partial(P.SystemLogPayload, message=redact_secrets(text)[:500], level="error"),
                round_index=round_index,
            )
            continue
        out.extend(m.to_message() if isinstance(m, RuntimeMessage) else dict(m) for m in produced or ())
    return out


async def _llm_before(s: SendState, round_index: int, request: LLMRequest) -> tuple[HD, LLMResponse | None]:
    """Run the ``llm.before`` hook: its edits go into ``request``; a SHORT_CIRCUIT brings the answer."""
    ctx = H.LlmBeforeCtx(
        session_id=s.sid,
        round_index=round_index,
        messages=request.messages,
        system_prompt=request.system_prompt or "",
        tools=request.tools,
        max_tokens=request.max_tokens or 0,
        temperature=request.temperature or 0.0,
        tool_choice=request.tool_choice,
    )
    directive = await s.p.hooks.run(HP.LLM_BEFORE, ctx)
    if directive is HD.BREAK:
        return directive, None
    if directive is HD.SHORT_CIRCUIT:
        if not isinstance(ctx.output, LLMResponse):
            raise TypeError("an llm.before SHORT_CIRCUIT needs ctx.output to be an LLMResponse")
        return directive, ctx.output
    request.messages = ctx.messages
    request.system_prompt = ctx.system_prompt
    request.tools = ctx.tools
    request.tool_choice = (ctx.tool_choice or "auto") if ctx.tools else None
    request.max_tokens = ctx.max_tokens
    request.temperature = ctx.temperature
    return directive, None


class _Attempt:
    """One try of the request (``n`` counts from 1, as `with_retry` counts), between its
    ``llm_call_started`` and ``llm_call_completed`` events."""

    __slots__ = ("calls", "model", "on_text", "on_think", "request", "round_index", "s")

    def __init__(self, s: SendState, request: LLMRequest, round_index: int) -> None:
        self.s = s
        self.calls = 0  # attempts made
        self.request = request
        self.round_index = round_index
        self.model = request.model or ""
        self.on_text = text_delta_callback(s.emit, False, round_index) if s.wants(ET.STREAM_DELTA) else None
        self.on_think = (
            text_delta_callback(s.emit, True, round_index) if s.wants(ET.STREAM_THINK_DELTA) else None
        )

    async def __call__(self, n: int) -> LLMResponse:
        self.calls += 1
        s, round_index, model = self.s, self.round_index, self.model
        call_id = f"r{round_index}.a{n}"
        s.emit(
            ET.LLM_CALL_STARTED,
            lambda: P.LlmCallStartedPayload(call_id=call_id, round_index=round_index, attempt=n, model=model),
            round_index=round_index,
        )
        started = time.perf_counter()
        try:
            if s.tap is None:
                response = await s.p.llm.complete(
                    self.request, on_chunk_delta_text=self.on_text, on_chunk_think=self.on_think
                )
            else:
                # A tapped send streams, so tool-call argument fragments are published as they arrive.
                response = await complete_from_stream(
                    publish_tool_call_deltas(s.p.llm.stream(self.request), s.emit, s.wants, round_index),
                    on_chunk_delta_text=self.on_text,
                    on_chunk_think=self.on_think,
                    parse_json=self.request.parse_json,
                )
        except Exception as exc:
            s.emit(
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
        duration_ms = (time.perf_counter() - started) * 1000.0
        s.emit(
            ET.LLM_CALL_COMPLETED,
            lambda: _completed_payload(call_id, round_index, n, model, duration_ms, response.token_usage),
            round_index=round_index,
        )
        return response


def _completed_payload(
    call_id: str, round_index: int, attempt: int, model: str, duration_ms: float, usage: LLMTokenUsage
) -> LlmCallCompletedPayload:
    """The payload of a successful call, with the token counts of that call alone."""
    total = usage.total_tokens
    if total is None and usage.prompt_tokens is not None and usage.completion_tokens is not None:
        total = usage.prompt_tokens + usage.completion_tokens
    return P.LlmCallCompletedPayload(
        call_id=call_id,
        round_index=round_index,
        attempt=attempt,
        model=model,
        duration_ms=duration_ms,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=total,
    )


def _on_retry(s: SendState, round_index: int) -> Callable[[int, BaseException, float], None]:
    def on_retry(attempt: int, exc: BaseException, sleep_s: float) -> None:
        s.emit(
            ET.LLM_RETRY_ATTEMPTED,
            lambda: P.LlmRetryAttemptedPayload(
                attempt=attempt,
                max_attempts=s.retry_policy.max_attempts if s.retry_policy else 1,
                error_type=type(exc).__name__,
                error_message=redact_secrets(str(exc))[:500],  # redacted before the cut
                next_sleep_seconds=sleep_s,
            ),
            round_index=round_index,
        )

    return on_retry


def _account(s: SendState, response: LLMResponse, round_index: int, duration_ms: int, attempts: int) -> None:
    usage = response.token_usage.normalized()
    for key in s.usage:
        s.usage[key] += usage.get(key, 0)
    s.round_usage = S.RoundUsage(
        round_index=round_index,
        prompt_tokens=usage.get("prompt_tokens", 0),
        completion_tokens=usage.get("completion_tokens", 0),
        total_tokens=usage.get("total_tokens", 0),
        cache_read_tokens=usage.get("cache_read_tokens", 0),
        reasoning_tokens=usage.get("reasoning_tokens", 0),
        model=s.cfg.model,
        duration_ms=duration_ms,
        attempts=attempts,
    )
    if s.wants(ET.USAGE_UPDATED):
        s.emit(ET.USAGE_UPDATED, lambda: P.UsageUpdatedPayload(usage=dict(usage)), round_index=round_index)
