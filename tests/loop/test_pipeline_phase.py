"""The published pipeline call shapes: ``phase`` / ``PhaseContext`` / ``PhaseResult`` / ``AgentRunner``,
``AgentPipeline.run(messages)`` on the one engine, and the message sinks."""

from __future__ import annotations

from typing import Any

import pytest

import power_loop as pl
from power_loop.errors import ConfigError
from power_loop.testing import ScriptedLLM


class Recorder(pl.NullSink):
    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    async def on_round_started(self, round_index: int) -> None:
        self.log.append(("round", round_index))

    async def on_message_appended(self, message: dict[str, Any], *, round_index: int | None = None) -> None:
        self.log.append(("append", message["role"], message.get("content")))

    def on_messages_inserted(self, index: int, messages: Any) -> None:
        self.log.append(("inserted", index, len(messages)))

    async def on_assistant_tool_calls(
        self, message: dict[str, Any], *, round_index: int | None = None
    ) -> None:
        self.log.append(("calls", [c["function"]["name"] for c in message["tool_calls"]]))

    async def on_round_ended(self, round_index: int) -> None:
        self.log.append(("end", round_index))


def _tools() -> pl.ToolRegistry:
    tools = pl.ToolRegistry()

    @tools.tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    return tools


async def test_phase_runs_hooks_and_events_around_the_step() -> None:
    runner = pl.AgentRunner()
    events: list[tuple[str, dict[str, Any]]] = []
    runner.event_bus.subscribe(None, lambda e: events.append((str(e.type), dict(e.payload))))
    runner.hooks.register(pl.HookPoint.ROUND_START, lambda c: {**c.values, "x": c.values["x"] + 1})
    runner.hooks.register(pl.HookPoint.ROUND_END, lambda c: {**c.values, "output": c.values["output"] * 10})

    @pl.phase(
        before=pl.HookPoint.ROUND_START,
        after="round.end",
        start_event="system_log",
        end_event=pl.AgentEventType.SYSTEM_LOG,
    )
    async def double(ctx: pl.PhaseContext) -> int:
        return int(ctx.values["x"]) * 2

    with runner.session(session_id="s1"):
        result = await double(pl.PhaseContext({"x": 1}, round_index=3, session_id="s1"))
    assert isinstance(result, pl.PhaseResult)
    # before: x 1 -> 2; step: 4; after: output * 10.
    assert (result.output, result.directive, result.values) == (40, pl.HookDirective.CONTINUE, {"x": 2})
    assert not (result.should_break or result.should_skip or result.is_short_circuit)
    assert events == [("system_log", {"x": 1}), ("system_log", {"x": 2})]


async def test_phase_directives_and_error_recovery() -> None:
    hooks, calls = pl.AgentHooks(), []

    class Steps:
        def __init__(self) -> None:
            self.hooks, self.bus = hooks, pl.AgentEventBus()

        @pl.phase(before=pl.HookPoint.TOOL_BEFORE, error=pl.HookPoint.TOOL_ERROR)
        def work(self, ctx: pl.PhaseContext) -> str:  # a sync step works too
            calls.append(ctx.values.get("mode"))
            if ctx.values.get("mode") == "fail":
                raise RuntimeError("boom")
            return "did it"

    def before(c: pl.HookContext) -> Any:
        mode = c.values.get("mode")
        if mode == "skip":
            return pl.HookDirective.SKIP
        if mode == "short":
            return pl.HookResult(pl.HookContext({"output": "cached"}), pl.HookDirective.SHORT_CIRCUIT)
        return None

    def on_error(c: pl.HookContext) -> Any:
        if c.values.get("recover"):
            return pl.HookResult(
                pl.HookContext({"output": f"recovered: {c.values['error_message']}"}), "skip"
            )
        return None

    hooks.register(pl.HookPoint.TOOL_BEFORE, before)
    hooks.register(pl.HookPoint.TOOL_ERROR, on_error)
    steps = Steps()
    skipped = await steps.work(pl.PhaseContext({"mode": "skip"}))
    assert skipped.should_skip and skipped.output is None
    short = await steps.work(pl.PhaseContext({"mode": "short"}))
    assert short.is_short_circuit and short.output == "cached"
    assert (await steps.work(pl.PhaseContext({"mode": "run"}))).output == "did it"
    assert calls == ["run"]  # skipped and short-circuited steps never ran
    recovered = await steps.work(pl.PhaseContext({"mode": "fail", "recover": True}))
    assert recovered.should_skip and recovered.output == "recovered: boom"
    with pytest.raises(RuntimeError, match="boom"):
        await steps.work(pl.PhaseContext({"mode": "fail"}))
    with pytest.raises(ConfigError):
        pl.phase(before="no.such.point")
    with pytest.raises(ConfigError):
        pl.phase(end_event="no_such_event")


async def test_runner_scopes_nest_and_restore() -> None:
    outer, inner = pl.AgentRunner(), pl.AgentRunner(hooks=pl.AgentHooks())
    async with outer.session_async(session_id="a"):
        with inner.session(session_id="b"):
            assert pl.AgentPipeline(llm=ScriptedLLM([])).hooks is inner.hooks
        pipeline = pl.AgentPipeline(llm=ScriptedLLM([]))
        assert (pipeline.hooks, pipeline.bus, pipeline.session_id) == (outer.hooks, outer.event_bus, "a")
    assert pl.AgentPipeline(llm=ScriptedLLM([])).hooks is not outer.hooks


async def test_pipeline_runs_one_send_over_the_messages_and_feeds_the_sink() -> None:
    llm = ScriptedLLM([ScriptedLLM.tool_call("add", {"a": 2, "b": 3}), "It is 5."])
    sink = Recorder()
    pipeline = pl.AgentPipeline(llm=llm, config=pl.AgentLoopConfig(), tool_registry=_tools(), sink=sink)
    history = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "2 + 3?"},
    ]
    result = await pipeline.run(history)
    assert isinstance(result, pl.AgentLoopResult)
    assert (result.status, result.final_text, result.rounds, result.tool_calls) == (
        "completed",
        "It is 5.",
        2,
        1,
    )
    assert [m["role"] for m in result.messages] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert pipeline.send_index == 2  # the seeded exchange was send 1
    assert llm.requests[0].system_prompt.startswith("Be terse.")
    assert [m["content"] for m in llm.requests[0].messages] == ["hi", "hello", "2 + 3?"]
    assert sink.log == [
        ("inserted", 0, 2),
        ("append", "user", "2 + 3?"),
        ("round", 0),
        ("append", "assistant", ""),
        ("calls", ["add"]),
        ("append", "tool", "5"),
        ("end", 0),
        ("round", 1),
        ("append", "assistant", "It is 5."),
        ("end", 1),
    ]


async def test_sqlite_sink_mirrors_the_run_into_a_durable_session(tmp_path: Any) -> None:
    mirror = await pl.open_store(str(tmp_path / "mirror.db"))
    try:
        llm = ScriptedLLM([ScriptedLLM.tool_call("add", {"a": 1, "b": 1}), "2"])
        sink = pl.SQLiteSink(mirror, "sess_mirror")
        prior = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]
        result = await pl.AgentPipeline(llm=llm, tool_registry=_tools(), sink=sink).run(
            [*prior, {"role": "user", "content": "1 + 1?"}]
        )
        stored = await mirror.load_active_messages("sess_mirror")
        assert [(r.role, r.content) for r in stored] == [(m["role"], m["content"]) for m in result.messages]
        assert (await mirror.get_state("sess_mirror")).pending is None  # every call answered
    finally:
        await mirror.close()


async def test_pipeline_on_a_store_keeps_the_session_and_delivers_follow_ups() -> None:
    store = await pl.open_store(":memory:")
    try:
        queued = [["also say bye"], []]
        llm = ScriptedLLM(["hello and bye"])
        pipeline = pl.AgentPipeline(
            llm=llm,
            store=store,
            session_id="sess_kept",
            drain_follow_ups=lambda: queued.pop(0) if queued else [],
        )
        result = await pipeline.run([{"role": "user", "content": "hi"}])
        assert result.status == "completed"
        # The follow-up drained at round 0 went into the same request, after the user message.
        assert [m["content"] for m in llm.requests[0].messages] == [
            "hi",
            "<follow_up>\nalso say bye\n</follow_up>",
        ]
        rows = await store.load_active_messages("sess_kept")
        assert [r.role for r in rows] == ["user", "user", "assistant"]
        with pytest.raises(ConfigError, match="already exists"):
            await pl.AgentPipeline(llm=llm, store=store, session_id="sess_kept").run(
                [{"role": "user", "content": "x"}]
            )
    finally:
        await store.close()


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "assistant", "content": "x"}],
        [
            {"role": "user", "content": "a"},
            {"role": "system", "content": "s"},
            {"role": "user", "content": "b"},
        ],
    ],
)
async def test_pipeline_refuses_input_it_cannot_send(messages: list[dict[str, Any]]) -> None:
    with pytest.raises(ConfigError):
        await pl.AgentPipeline(llm=ScriptedLLM([])).run(messages)


def test_sinks_satisfy_the_protocol() -> None:
    assert isinstance(pl.NullSink(), pl.MessageSink)
    assert isinstance(Recorder(), pl.MessageSink)


async def test_the_published_phase_methods_run_one_step_each() -> None:
    hooks = pl.AgentHooks()
    seen: list[str] = []
    hooks.register(pl.HookPoint.TOOL_BEFORE, lambda c: seen.append(f"before {c.tool_name}"))

    def after(c: pl.ToolAfterCtx) -> None:
        c.output = f"[{c.output}]"

    hooks.register(pl.HookPoint.TOOL_AFTER, after)
    llm = ScriptedLLM(["first", "second"])
    pipeline = pl.AgentPipeline(llm=llm, tool_registry=_tools(), hooks=hooks, session_id="s")
    assert await pipeline.prepare_round(0) is pl.HookDirective.CONTINUE
    assert await pipeline.execute_tool("add", {"a": 2, "b": 2}) == ("[4]", False)
    output, failed = await pipeline.execute_tool("add", {"a": "x"}, count=False)
    assert failed and "add" in output  # bad arguments come back as text, as in the loop
    output, failed = await pipeline.execute_tool("nope", {})
    assert failed and "nope" in output
    assert seen == ["before add", "before add", "before nope"] and pipeline.tool_calls == 2
    response = await pipeline.call_llm(
        0,
        messages=[{"role": "user", "content": "hi"}],
        system_prompt="Be brief.",
        tools=None,
        max_tokens=50,
        temperature=0.2,
    )
    assert response is not None and response.text == "first"
    request = llm.requests[0]
    assert (request.system_prompt, request.max_tokens, request.temperature) == ("Be brief.", 50, 0.2)

    def short(c: pl.LlmBeforeCtx) -> pl.HookDirective:
        c.output = pl.LLMResponse(raw_text="cached")
        return pl.HookDirective.SHORT_CIRCUIT

    hooks.register(pl.HookPoint.LLM_BEFORE, short)
    cached = await pipeline.call_llm(
        1, messages=[], system_prompt=None, tools=None, max_tokens=None, temperature=None
    )
    assert cached is not None and cached.text == "cached" and len(llm.requests) == 1
    stopped = pl.AgentPipeline(llm=llm, stop_event=lambda: True)
    with pytest.raises(pl.CancellationRequested):
        await stopped.execute_tool("add", {"a": 1, "b": 1})
