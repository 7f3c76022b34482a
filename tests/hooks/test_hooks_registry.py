"""AgentHooks: registration by any spelling, isolation, ordering, directives, error policy."""

from __future__ import annotations

import asyncio
import sys
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_loop.errors import AsyncHookInSyncContext, ConfigError, HookDirectiveError, PowerLoopError
from power_loop.hooks import (
    ALLOWED_DIRECTIVES,
    CTX_TYPES,
    AgentHooks,
    BaseHookCtx,
    HookDirective,
    HookPoint,
    RoundStartCtx,
    ToolBeforeCtx,
    allowed_directives,
    resolve_hook_point,
)

ALL_POINTS = list(HookPoint)


def _spellings(point: HookPoint) -> list[HookPoint | str]:
    return [point, point.value, point.name]


@pytest.mark.parametrize("point", ALL_POINTS, ids=lambda p: p.value)
@pytest.mark.parametrize("spelling", ["enum", "value", "name"])
async def test_every_spelling_registers_and_fires(point: HookPoint, spelling: str) -> None:
    # Regression: the published package keyed handlers by str(enum), so "tool.before" never fired.
    key: HookPoint | str = {"enum": point, "value": point.value, "name": point.name}[spelling]
    hooks = AgentHooks()
    seen: list[BaseHookCtx] = []
    hooks.register(key, seen.append)
    ctx = CTX_TYPES[point]()
    for query in _spellings(point):
        assert hooks.has(query)
    assert await hooks.run(point, ctx) is HookDirective.CONTINUE
    assert await hooks.run(point.value, ctx) is HookDirective.CONTINUE
    assert hooks.run_sync(point.name, ctx) is HookDirective.CONTINUE
    assert seen == [ctx, ctx, ctx]


def test_point_values_and_names_match_published() -> None:
    assert len(HookPoint) == 20  # the published 17, tool.reconcile, workflow.step_start / step_end
    assert HookPoint.TOOL_BEFORE == "tool.before"
    assert HookPoint.TOOLS_BATCH_BEFORE.value == "tools.batch.before"
    assert str(HookPoint.TOOL_BEFORE) == "tool.before"
    assert [d.value for d in HookDirective] == ["continue", "skip", "break", "short_circuit"]
    assert resolve_hook_point("TIMER_FIRE") is HookPoint.TIMER_FIRE


@pytest.mark.parametrize("bad", ["tool_before", "HookPoint.TOOL_BEFORE", "", 3, None])
def test_unknown_point_is_config_error(bad: Any) -> None:
    hooks = AgentHooks()
    with pytest.raises(ConfigError) as info:
        hooks.register(bad, lambda ctx: None)
    assert info.value.code == "config.invalid"
    assert "tool.before" in str(info.value)  # lists the valid values
    assert len(hooks) == 0


def test_non_callable_handler_and_bad_order_rejected() -> None:
    hooks = AgentHooks()
    with pytest.raises(ConfigError):
        hooks.register("tool.before", "not callable")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        hooks.register("tool.before", lambda ctx: None, order=1.5)  # type: ignore[arg-type]
    assert not hooks.has("tool.before")


async def test_instances_are_isolated() -> None:
    a, b = AgentHooks(), AgentHooks()
    hits: list[str] = []
    a.register("tool.before", lambda ctx: hits.append("a"))
    assert a.has(HookPoint.TOOL_BEFORE)
    assert not b.has(HookPoint.TOOL_BEFORE)
    await b.run(HookPoint.TOOL_BEFORE, ToolBeforeCtx())
    assert hits == []
    await a.run(HookPoint.TOOL_BEFORE, ToolBeforeCtx())
    assert hits == ["a"]


async def test_order_then_registration_order() -> None:
    hooks = AgentHooks()
    calls: list[str] = []
    hooks.register("round.end", lambda ctx: calls.append("late"), order=10)
    hooks.register("round.end", lambda ctx: calls.append("first0"))
    hooks.register("round.end", lambda ctx: calls.append("early"), order=-5)
    hooks.register("round.end", lambda ctx: calls.append("second0"))
    await hooks.run("round.end", CTX_TYPES[HookPoint.ROUND_END]())
    assert calls == ["early", "first0", "second0", "late"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=-3, max_value=3), min_size=1, max_size=12))
def test_ordering_property(orders: list[int]) -> None:
    hooks = AgentHooks()
    calls: list[int] = []
    for i, order in enumerate(orders):
        hooks.register("message.append", lambda ctx, i=i: calls.append(i), order=order)
    hooks.run_sync("message.append", CTX_TYPES[HookPoint.MESSAGE_APPEND]())
    assert calls == sorted(range(len(orders)), key=lambda i: (orders[i], i))


async def test_sync_and_async_handlers_share_and_mutate_ctx() -> None:
    hooks = AgentHooks()

    def rename(ctx: ToolBeforeCtx) -> None:
        ctx.tool_name = "renamed"

    async def add_arg(ctx: ToolBeforeCtx) -> None:
        await asyncio.sleep(0)
        ctx.tool_args["seen_name"] = ctx.tool_name

    class AsyncCallable:
        async def __call__(self, ctx: ToolBeforeCtx) -> HookDirective:
            ctx.output = "from object"
            return HookDirective.SKIP

    hooks.register("tool.before", rename)
    hooks.register("tool.before", add_arg)
    hooks.register("tool.before", AsyncCallable())
    ctx = ToolBeforeCtx(tool_name="orig")
    assert await hooks.run("tool.before", ctx) is HookDirective.SKIP
    assert ctx.tool_args == {"seen_name": "renamed"}
    assert ctx.output == "from object"
    assert ctx.directive is HookDirective.SKIP


async def test_last_non_none_directive_wins() -> None:
    hooks = AgentHooks()
    hooks.register("round.start", lambda ctx: HookDirective.BREAK)
    hooks.register("round.start", lambda ctx: None)
    ctx = RoundStartCtx()
    assert await hooks.run("round.start", ctx) is HookDirective.BREAK
    hooks.register("round.start", lambda ctx: HookDirective.SKIP)
    assert await hooks.run("round.start", RoundStartCtx()) is HookDirective.SKIP
    hooks.register("round.start", lambda ctx: HookDirective.CONTINUE)
    assert await hooks.run("round.start", RoundStartCtx()) is HookDirective.CONTINUE


async def test_all_handlers_run_even_after_a_directive() -> None:
    hooks = AgentHooks()
    ran: list[int] = []
    hooks.register("tool.before", lambda ctx: (ran.append(1), HookDirective.SKIP)[1])
    hooks.register("tool.before", lambda ctx: ran.append(2))
    assert await hooks.run("tool.before", ToolBeforeCtx()) is HookDirective.SKIP
    assert ran == [1, 2]


async def test_directive_string_value_is_accepted() -> None:
    hooks = AgentHooks()
    hooks.register("tool.before", lambda ctx: "skip")  # type: ignore[arg-type,return-value]
    assert await hooks.run("tool.before", ToolBeforeCtx()) is HookDirective.SKIP


EXPECTED_ALLOWED = {
    HookPoint.ROUND_START: {"break", "skip"},
    HookPoint.LLM_BEFORE: {"short_circuit", "break"},
    HookPoint.LLM_AFTER: {"break"},
    HookPoint.ROUND_DECIDE: {"skip", "break"},
    HookPoint.TOOLS_BATCH_BEFORE: {"skip"},
    HookPoint.TOOL_BEFORE: {"skip"},
    HookPoint.TOOL_ERROR: {"skip", "short_circuit"},
    HookPoint.TOOL_AFTER: {"break"},
    HookPoint.COMPACT_BEFORE: {"skip"},
    HookPoint.MEMORY_RECALLED: {"skip"},
    HookPoint.TIMER_FIRE: {"skip", "break"},
    HookPoint.TOOL_RECONCILE: {"short_circuit"},
    HookPoint.WORKFLOW_STEP_START: {"skip"},
}


@pytest.mark.parametrize("point", ALL_POINTS, ids=lambda p: p.value)
def test_allowed_directive_table(point: HookPoint) -> None:
    expected = {"continue"} | EXPECTED_ALLOWED.get(point, set())
    assert {d.value for d in allowed_directives(point)} == expected
    assert allowed_directives(point.value) is ALLOWED_DIRECTIVES[point]


COMBOS = [(p, d) for p in HookPoint for d in HookDirective]


@pytest.mark.parametrize(("point", "directive"), COMBOS, ids=lambda x: str(x))
async def test_every_point_directive_combination(point: HookPoint, directive: HookDirective) -> None:
    hooks = AgentHooks()
    hooks.register(point, lambda ctx: directive)
    ctx = CTX_TYPES[point]()
    if directive in ALLOWED_DIRECTIVES[point]:
        assert await hooks.run(point, ctx) is directive
        assert ctx.directive is directive
    else:
        with pytest.raises(HookDirectiveError) as info:
            await hooks.run(point, ctx)
        err = info.value
        assert err.code == "hook.invalid_directive"
        assert isinstance(err, PowerLoopError)
        assert err.hook_point == point.value
        assert "continue" in err.allowed
        assert directive.value in str(err)


async def test_directive_assigned_directly_on_ctx_is_checked() -> None:
    hooks = AgentHooks()

    def sneaky(ctx: BaseHookCtx) -> None:
        ctx.directive = HookDirective.BREAK

    hooks.register("tool.before", sneaky)
    with pytest.raises(HookDirectiveError) as info:
        await hooks.run("tool.before", ToolBeforeCtx())
    assert "sneaky" in str(info.value)


@pytest.mark.parametrize("value", [True, 1, "stop", {"directive": "skip"}])
async def test_non_directive_return_value_fails_loudly(value: object) -> None:
    hooks = AgentHooks()
    hooks.register("tool.before", lambda ctx: value)  # type: ignore[arg-type,return-value]
    with pytest.raises(HookDirectiveError):
        await hooks.run("tool.before", ToolBeforeCtx())


async def test_handler_exception_propagates_unchanged_with_note() -> None:
    hooks = AgentHooks()
    after: list[int] = []

    def boom(ctx: BaseHookCtx) -> None:
        raise KeyError("missing")

    hooks.register("tool.after", boom)
    hooks.register("tool.after", lambda ctx: after.append(1))
    with pytest.raises(KeyError) as info:
        await hooks.run("tool.after", CTX_TYPES[HookPoint.TOOL_AFTER]())
    assert after == []  # later handlers do not run for that invocation
    if sys.version_info >= (3, 11):
        notes = getattr(info.value, "__notes__", [])
        assert any("tool.after" in n and "boom" in n for n in notes)


def test_run_sync_rejects_async_handler_before_running_anything() -> None:
    hooks = AgentHooks()
    ran: list[int] = []

    async def slow(ctx: BaseHookCtx) -> None:
        ran.append(2)

    hooks.register("message.append", lambda ctx: ran.append(1))
    hooks.register("message.append", slow)
    with pytest.raises(AsyncHookInSyncContext) as info:
        hooks.run_sync("message.append", CTX_TYPES[HookPoint.MESSAGE_APPEND]())
    assert info.value.code == "hook.async_in_sync"
    assert isinstance(info.value, TypeError)
    assert ran == []


def test_run_sync_rejects_awaitable_from_plain_callable_without_leaking_coroutine() -> None:
    hooks = AgentHooks()

    async def inner(ctx: BaseHookCtx) -> None:
        return None

    hooks.register("message.append", lambda ctx: inner(ctx))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine was never awaited" would fail here
        with pytest.raises(AsyncHookInSyncContext):
            hooks.run_sync("message.append", CTX_TYPES[HookPoint.MESSAGE_APPEND]())


async def test_unregister_clear_has_handlers() -> None:
    hooks = AgentHooks()

    def h(ctx: BaseHookCtx) -> None:
        return None

    def g(ctx: BaseHookCtx) -> None:
        return None

    hooks.register("tool.before", h)
    hooks.register("TOOL_BEFORE", h, order=3)
    hooks.register("tool.after", g)
    assert hooks.handlers("tool.before") == (h, h)
    assert len(hooks) == 3
    assert hooks.unregister(HookPoint.TOOL_BEFORE, h) is True
    assert hooks.unregister("tool.before", h) is False
    assert not hooks.has("tool.before")
    assert hooks.has("tool.after")
    hooks.register("round.end", h)
    hooks.clear("tool.after")
    assert not hooks.has("tool.after") and hooks.has("round.end")
    hooks.clear()
    assert len(hooks) == 0
    assert not any(hooks.has(p) for p in HookPoint)


async def test_decorator_form() -> None:
    hooks = AgentHooks()

    @hooks.on("tool.before", order=-1)
    def deny(ctx: ToolBeforeCtx) -> HookDirective | None:
        return HookDirective.SKIP if ctx.tool_name == "rm" else None

    assert deny(ToolBeforeCtx(tool_name="rm")) is HookDirective.SKIP  # returned unchanged
    assert await hooks.run("tool.before", ToolBeforeCtx(tool_name="ls")) is HookDirective.CONTINUE
    assert await hooks.run("tool.before", ToolBeforeCtx(tool_name="rm")) is HookDirective.SKIP
    with pytest.raises(ConfigError):
        hooks.on("nope")


async def test_handler_registered_during_run_does_not_join_that_run() -> None:
    hooks = AgentHooks()
    calls: list[str] = []

    def adder(ctx: BaseHookCtx) -> None:
        calls.append("adder")
        hooks.register("round.end", lambda c: calls.append("new"))

    hooks.register("round.end", adder)
    await hooks.run("round.end", CTX_TYPES[HookPoint.ROUND_END]())
    assert calls == ["adder"]
    await hooks.run("round.end", CTX_TYPES[HookPoint.ROUND_END]())
    assert calls == ["adder", "adder", "new"]


async def test_run_without_handlers_returns_ctx_directive() -> None:
    hooks = AgentHooks()
    assert not hooks.has("llm.before")
    assert await hooks.run("llm.before", CTX_TYPES[HookPoint.LLM_BEFORE]()) is HookDirective.CONTINUE


async def test_published_typed_runner_names() -> None:
    hooks = AgentHooks()
    hooks.register("tool.before", lambda ctx: HookDirective.SKIP)
    ctx = ToolBeforeCtx()
    assert await hooks.run_typed_async("tool.before", ctx) is None
    assert ctx.directive is HookDirective.SKIP
    ctx2 = ToolBeforeCtx()
    hooks.run_typed(HookPoint.TOOL_BEFORE, ctx2)
    assert ctx2.directive is HookDirective.SKIP


async def test_an_audited_view_reports_each_changing_handler() -> None:
    from power_loop.hooks import LlmBeforeCtx

    hooks = AgentHooks()
    seen: list[tuple[str, str, Any, dict[str, Any]]] = []
    view = hooks.audited(
        lambda point, name, ctx, directive, changed: seen.append((point.value, name, directive, changed))
    )

    def looks(ctx: ToolBeforeCtx) -> None:
        assert ctx.tool_name == "bash"

    def rewrites(ctx: ToolBeforeCtx) -> None:
        ctx.tool_args["cmd"] = "ls -l"  # in place: still seen

    def vetoes(ctx: ToolBeforeCtx) -> HookDirective:
        ctx.output = "no"
        return HookDirective.SKIP

    for handler in (looks, rewrites, vetoes):
        hooks.register(HookPoint.TOOL_BEFORE, handler)  # registered on the base: the view sees it
    ctx = ToolBeforeCtx(tool_name="bash", tool_args={"cmd": "ls"})
    assert await view.run(HookPoint.TOOL_BEFORE, ctx) is HookDirective.SKIP
    assert [(p, n.rsplit(".", 1)[-1], d, c) for p, n, d, c in seen] == [
        ("tool.before", "rewrites", None, {"tool_args": {"cmd": "ls -l"}}),
        ("tool.before", "vetoes", HookDirective.SKIP, {"output": "no"}),
    ]
    # Appending to a message list is seen; the plain registry reports nothing and costs nothing.
    seen.clear()
    view.register(HookPoint.LLM_BEFORE, lambda c: c.messages.append({"role": "user", "content": "x"}))
    await view.run(HookPoint.LLM_BEFORE, LlmBeforeCtx(messages=[]))
    assert [c for *_, c in seen] == [{"messages": [{"role": "user", "content": "x"}]}]
    await hooks.run(HookPoint.LLM_BEFORE, LlmBeforeCtx(messages=[]))
    assert len(seen) == 1
