"""The published dict hook API: ``hooks.run(point, HookContext(...))`` and ``run_async``."""

from __future__ import annotations

import pytest

from power_loop import (
    AgentHooks,
    AsyncHookInSyncContext,
    HookContext,
    HookDirective,
    HookDirectiveError,
    HookManagerProtocol,
    HookPoint,
    HookResult,
    ToolBeforeCtx,
)


def test_dict_run_applies_each_return_shape_in_order() -> None:
    hooks = AgentHooks()
    seen: list[dict] = []
    hooks.register(HookPoint.TOOL_BEFORE, lambda c: seen.append(dict(c.values)), order=0)
    hooks.register(HookPoint.TOOL_BEFORE, lambda c: {**c.values, "b": 2}, order=1)  # dict: new values
    hooks.register(HookPoint.TOOL_BEFORE, lambda c: HookContext({**c.values, "c": 3}), order=2)
    hooks.register(HookPoint.TOOL_BEFORE, lambda c: HookDirective.SKIP, order=3)
    hooks.register(HookPoint.TOOL_BEFORE, lambda c: None, order=4)
    result = hooks.run(HookPoint.TOOL_BEFORE, HookContext({"a": 1}))
    assert isinstance(result, HookResult)
    assert result.context.values == {"a": 1, "b": 2, "c": 3} and result.directive is HookDirective.SKIP
    assert seen == [{"a": 1}]
    hooks.register("tool.before", lambda c: HookResult(HookContext({"z": 0}), HookDirective.BREAK), order=5)
    final = hooks.run("tool.before", HookContext())
    assert final.context.values == {"z": 0} and final.directive is HookDirective.BREAK
    assert hooks.run(HookPoint.ROUND_START, HookContext({"x": 1})) == HookResult(HookContext({"x": 1}))
    hooks.register(HookPoint.ROUND_END, lambda c: 42)
    with pytest.raises(HookDirectiveError):
        hooks.run(HookPoint.ROUND_END, HookContext())


async def test_run_async_awaits_and_sync_run_refuses_async_handlers() -> None:
    hooks = AgentHooks()

    async def add(c: HookContext) -> dict:
        return {**c.values, "async": True}

    hooks.register(HookPoint.LLM_AFTER, add)
    result = await hooks.run_async(HookPoint.LLM_AFTER, HookContext({"n": 1}))
    assert result.context.values == {"n": 1, "async": True}
    with pytest.raises(AsyncHookInSyncContext):
        hooks.run(HookPoint.LLM_AFTER, HookContext())


async def test_typed_run_is_unchanged_and_the_protocol_matches() -> None:
    hooks = AgentHooks()
    hooks.register(HookPoint.TOOL_BEFORE, lambda ctx: HookDirective.SKIP)
    ctx = ToolBeforeCtx(tool_name="t")
    assert await hooks.run(HookPoint.TOOL_BEFORE, ctx) is HookDirective.SKIP
    assert ctx.directive is HookDirective.SKIP
    assert isinstance(hooks, HookManagerProtocol)
