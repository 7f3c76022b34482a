"""The published ``AgentPipeline`` phase methods as standalone steps: ``prepare_round``, ``call_llm``
and ``execute_tool``.

Each does one step the way the engine does it (the same hook points and ctx classes, the same tool
execution and retry policy), for code that drives steps itself. ``AgentPipeline.run`` does not call
them: a run is one send of the engine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..hooks import (
    HookDirective,
    HookPoint,
    LlmAfterCtx,
    LlmBeforeCtx,
    RoundStartCtx,
    ToolAfterCtx,
    ToolBeforeCtx,
)
from ..llm import CancellationToken, LLMRequest, LLMResponse, with_retry
from ..tools import ToolRegistry, execute_tool_call

if TYPE_CHECKING:
    from ..hooks import AgentHooks
    from ..llm import CancellationLike, LLMService
    from ._types import AgentLoopConfig

__all__ = ["PipelineSteps"]


class PipelineSteps:
    """Mixed into ``AgentPipeline``: its published phase methods."""

    llm: LLMService
    config: AgentLoopConfig
    tool_registry: ToolRegistry | None
    hooks: AgentHooks
    session_id: str | None
    stop_event: CancellationLike
    #: Tool calls executed through :meth:`execute_tool` with ``count=True``.
    tool_calls: int

    async def prepare_round(self, round_index: int, *, messages: list[Any] | None = None) -> HookDirective:
        """Run the ``round.start`` hooks; returns their directive (``BREAK`` / ``SKIP`` / ``CONTINUE``).
        Raises ``CancellationRequested`` when the stop event is set."""
        CancellationToken.from_any(self.stop_event).raise_if_cancelled()
        ctx = RoundStartCtx(round_index=round_index, messages=messages or [], session_id=self.session_id)
        return await self.hooks.run(HookPoint.ROUND_START, ctx)

    async def call_llm(
        self,
        round_index: int,
        *,
        messages: Sequence[Mapping[str, Any]],
        system_prompt: str | None,
        tools: list[dict[str, Any]] | None,
        max_tokens: int | None,
        temperature: float | None,
    ) -> LLMResponse | None:
        """One model call: ``llm.before`` hooks (which may edit the request, ``SHORT_CIRCUIT`` with
        ``ctx.output`` or ``BREAK`` — then ``None``), the call under ``config.retry_policy``, then the
        ``llm.after`` hooks (which may replace the response)."""
        before = LlmBeforeCtx(
            round_index=round_index,
            messages=[dict(m) for m in messages],
            system_prompt=system_prompt or "",
            tools=tools,
            max_tokens=max_tokens if max_tokens is not None else 8000,
            temperature=temperature if temperature is not None else 0.0,
            tool_choice="auto" if tools else None,
            session_id=self.session_id,
        )
        directive = await self.hooks.run(HookPoint.LLM_BEFORE, before)
        if directive is HookDirective.BREAK:
            return None
        if directive is HookDirective.SHORT_CIRCUIT:
            response = before.output
            if not isinstance(response, LLMResponse):
                raise ConfigError("an llm.before hook short-circuited without an LLMResponse in ctx.output")
        else:
            request = LLMRequest(
                messages=before.messages,
                system_prompt=before.system_prompt or None,
                model=self.config.model,
                temperature=before.temperature,
                max_tokens=before.max_tokens,
                tools=before.tools or None,
                tool_choice=before.tool_choice,
                response_format=self.config.response_format,
            )
            policy = self.config.retry_policy
            if policy is None:
                response = await self.llm.complete(request)
            else:
                response = await with_retry(
                    lambda: self.llm.complete(request), policy=policy, token=self.stop_event
                )
        after = LlmAfterCtx(
            round_index=round_index, messages=before.messages, output=response, session_id=self.session_id
        )
        await self.hooks.run(HookPoint.LLM_AFTER, after)
        return after.output  # type: ignore[no-any-return]

    async def execute_tool(
        self, tool_name: str, tool_args: Mapping[str, Any], *, count: bool = True
    ) -> tuple[str, bool]:
        """Run one tool of the pipeline's registry as the loop does (arguments validated, errors and
        unknown tools returned as text, never raised): ``tool.before`` hooks (``SKIP`` answers with
        ``ctx.output``), the tool, ``tool.after`` hooks. Returns ``(output, failed)``."""
        CancellationToken.from_any(self.stop_event).raise_if_cancelled()
        call_id = f"call_{self.tool_calls + 1}"
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": tool_name, "arguments": json.dumps(dict(tool_args))},
        }
        before = ToolBeforeCtx(
            tool_call=call, tool_name=tool_name, tool_args=dict(tool_args), session_id=self.session_id
        )
        if await self.hooks.run(HookPoint.TOOL_BEFORE, before) is HookDirective.SKIP:
            return before.output, False
        if count:
            self.tool_calls += 1
        call["function"] = {"name": before.tool_name, "arguments": json.dumps(before.tool_args)}
        outcome = await execute_tool_call(self.tool_registry or ToolRegistry(), call)
        after = ToolAfterCtx(
            tool_call=call,
            tool_name=before.tool_name,
            tool_args=before.tool_args,
            output=outcome.output,
            failed=outcome.failed,
            session_id=self.session_id,
        )
        await self.hooks.run(HookPoint.TOOL_AFTER, after)
        return after.output, after.failed
