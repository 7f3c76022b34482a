"""Every hook directive the loop honours, and the event stream of a send."""

from __future__ import annotations

import pytest
from loop_helpers import check_history, make_tools

from power_loop import (
    AgentEventBus,
    AgentEventType,
    AgentHooks,
    AgentLoopConfig,
    ConfigError,
    HistoryInvariantError,
    HookDirective,
    HookPoint,
    LLMResponse,
)
from power_loop.testing import ScriptedLLM


def _loop(make_loop, script, **tools):
    hooks = AgentHooks()
    llm = ScriptedLLM(script)
    registry = make_tools(**tools) if tools else None
    return make_loop(llm=llm, hooks=hooks, tool_registry=registry), hooks, llm


async def test_hooks_registered_by_string_value_fire(make_loop):
    loop, hooks, _ = _loop(
        make_loop, [ScriptedLLM.tool_call("t", {"x": "a"}), ScriptedLLM.text("ok")], t=lambda x: x
    )
    seen: list[str] = []
    hooks.register("tool.before", lambda ctx: seen.append(ctx.tool_name))
    hooks.register("TOOL_AFTER", lambda ctx: seen.append(ctx.session_id))
    hooks.register(HookPoint.SESSION_END, lambda ctx: seen.append(f"end:{ctx.reason}"))
    sid = await loop.new_session()
    await loop.send("go", sid)
    assert seen == ["t", sid, "end:completed"]


async def test_hooks_are_per_loop(make_loop):
    a, hooks_a, _ = _loop(make_loop, [ScriptedLLM.text("a")])
    b, _, _ = _loop(make_loop, [ScriptedLLM.text("b")])
    fired: list[int] = []
    hooks_a.register(HookPoint.ROUND_START, lambda ctx: fired.append(1))
    await b.send("x", await b.new_session())
    assert fired == []
    await a.send("x", await a.new_session())
    assert fired == [1]


async def test_round_start_break_and_skip(make_loop):
    loop, hooks, llm = _loop(make_loop, [ScriptedLLM.text("never")])

    def stop(ctx):
        ctx.reason = "maintenance"
        return HookDirective.BREAK

    hooks.register(HookPoint.ROUND_START, stop)
    reasons: list[str] = []
    hooks.register(HookPoint.SESSION_END, lambda ctx: reasons.append(ctx.reason))
    sid = await loop.new_session()
    result = await loop.send("hi", sid)
    assert result.status == "completed" and llm.requests == []

    skip_loop, skip_hooks, skip_llm = _loop(make_loop, [ScriptedLLM.text("second round")])
    skip_hooks.register(
        HookPoint.ROUND_START, lambda ctx: HookDirective.SKIP if ctx.round_index == 0 else None
    )
    sid2 = await skip_loop.new_session()
    result = await skip_loop.send("hi", sid2)
    assert result.final_text == "second round" and result.rounds == 2 and len(skip_llm.requests) == 1


async def test_llm_before_short_circuit_and_edit(make_loop):
    loop, hooks, llm = _loop(make_loop, [ScriptedLLM.text("from model")])

    def edit(ctx):
        ctx.system_prompt = "edited prompt"
        ctx.temperature = 0.7

    hooks.register(HookPoint.LLM_BEFORE, edit)
    sid = await loop.new_session()
    await loop.send("hi", sid)
    assert llm.requests[0].system_prompt == "edited prompt" and llm.requests[0].temperature == 0.7

    forced_loop, forced_hooks, forced_llm = _loop(
        make_loop, [ScriptedLLM.tool_call("t", {"x": "a"}), ScriptedLLM.text("ok")], t=lambda x: x
    )

    def force(ctx):
        assert ctx.tool_choice == "auto"
        if ctx.round_index == 0:
            ctx.tool_choice = {"type": "function", "function": {"name": "t"}}

    forced_hooks.register(HookPoint.LLM_BEFORE, force)
    await forced_loop.send("hi", await forced_loop.new_session())
    assert forced_llm.requests[0].tool_choice == {"type": "function", "function": {"name": "t"}}
    assert forced_llm.requests[1].tool_choice == "auto"

    loop2, hooks2, llm2 = _loop(make_loop, [])

    def answer(ctx):
        ctx.output = LLMResponse(raw_text="cached answer")
        return HookDirective.SHORT_CIRCUIT

    hooks2.register(HookPoint.LLM_BEFORE, answer)
    sid2 = await loop2.new_session()
    result = await loop2.send("hi", sid2)
    assert result.final_text == "cached answer" and llm2.requests == []


async def test_llm_before_break_ends_the_send_without_calling_the_model(make_loop):
    loop, hooks, llm = _loop(make_loop, [ScriptedLLM.text("never")])
    hooks.register(HookPoint.LLM_BEFORE, lambda ctx: HookDirective.BREAK)
    sid = await loop.new_session()
    result = await loop.send("hi", sid)
    assert result.status == "completed" and llm.requests == []
    assert await loop.get_messages(sid) == [{"role": "user", "content": "hi"}]


async def test_message_append_hooks_see_and_can_rewrite_every_persisted_message(make_loop):
    loop, hooks, llm = _loop(
        make_loop,
        [ScriptedLLM.tool_call("t", {"x": "a"}), ScriptedLLM.text("the password is hunter2")],
        t=lambda x: "token hunter2",
    )
    seen: list[str] = []

    def redact(ctx):
        seen.append(ctx.message["role"])
        if isinstance(ctx.message.get("content"), str):
            ctx.message = {**ctx.message, "content": ctx.message["content"].replace("hunter2", "***")}

    hooks.register("message.append", redact)
    sid = await loop.new_session()
    result = await loop.send("my password is hunter2", sid)
    assert seen == ["user", "assistant", "tool", "assistant"]
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert all("hunter2" not in (m["content"] or "") for m in messages)
    assert llm.requests[0].messages == [{"role": "user", "content": "my password is ***"}]
    assert result.final_text == "the password is hunter2"  # the caller still gets the model's answer


async def test_a_message_append_hook_cannot_break_history(make_loop):
    loop, hooks, _ = _loop(
        make_loop, [ScriptedLLM.tool_call("t", {"x": "a"}), ScriptedLLM.text("ok")], t=lambda x: x
    )

    def corrupt(ctx):
        if ctx.message["role"] == "tool":
            ctx.message = {**ctx.message, "tool_call_id": "call_bogus"}

    hooks.register(HookPoint.MESSAGE_APPEND, corrupt)
    sid = await loop.new_session()
    with pytest.raises(HistoryInvariantError):
        await loop.send("hi", sid)
    pending = await loop.get_pending(sid)
    assert pending is not None and len(pending["tool_calls"]) == 1  # refused write: nothing half-written
    assert await loop.abort_pending(sid) == 1


async def test_a_message_append_hook_must_keep_the_users_row_a_user_message(make_loop):
    loop, hooks, llm = _loop(make_loop, [ScriptedLLM.text("ok")])

    def to_assistant(ctx):
        if ctx.message["role"] == "user":
            ctx.message = {**ctx.message, "role": "assistant"}

    hooks.register(HookPoint.MESSAGE_APPEND, to_assistant)
    sid = await loop.new_session()
    with pytest.raises(ConfigError, match="user message"):
        await loop.send("hi", sid)
    assert await loop.get_messages(sid) == [] and llm.requests == []


async def test_llm_after_break_drops_tool_calls(make_loop):
    loop, hooks, _ = _loop(
        make_loop, [ScriptedLLM.tool_calls([("t", {"x": "a"})], text="thinking")], t=lambda x: x
    )
    hooks.register(HookPoint.LLM_AFTER, lambda ctx: HookDirective.BREAK)
    sid = await loop.new_session()
    result = await loop.send("hi", sid)
    assert result.status == "completed" and result.tool_calls == 0
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert messages[-1] == {"role": "assistant", "content": "thinking"}


@pytest.mark.parametrize(
    "point", [HookPoint.ROUND_DECIDE, HookPoint.TOOLS_BATCH_BEFORE, HookPoint.TOOL_BEFORE]
)
async def test_skip_directives_answer_calls_without_running_them(make_loop, point):
    ran: list[str] = []
    loop, hooks, _ = _loop(
        make_loop,
        [ScriptedLLM.tool_call("t", {"x": "a"}), ScriptedLLM.text("ok")],
        t=lambda x: ran.append(x) or x,
    )

    def skip(ctx):
        ctx.output = "vetoed"
        return HookDirective.SKIP

    hooks.register(point, skip)
    sid = await loop.new_session()
    result = await loop.send("hi", sid)
    assert result.status == "completed" and ran == []
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert messages[2]["content"] == "vetoed"


async def test_round_decide_break_answers_and_stops(make_loop):
    loop, hooks, llm = _loop(make_loop, [ScriptedLLM.tool_call("t", {"x": "a"})], t=lambda x: x)
    hooks.register(HookPoint.ROUND_DECIDE, lambda ctx: HookDirective.BREAK)
    sid = await loop.new_session()
    result = await loop.send("hi", sid)
    assert result.status == "completed" and len(llm.requests) == 1
    check_history(await loop.get_messages(sid))


async def test_tool_before_can_rewrite_arguments(make_loop):
    got: list[str] = []
    loop, hooks, _ = _loop(
        make_loop,
        [ScriptedLLM.tool_call("t", {"x": "raw"}), ScriptedLLM.text("ok")],
        t=lambda x: got.append(x) or x,
    )

    def rewrite(ctx):
        ctx.tool_args = {"x": "rewritten"}

    hooks.register(HookPoint.TOOL_BEFORE, rewrite)
    sid = await loop.new_session()
    await loop.send("hi", sid)
    assert got == ["rewritten"]


async def test_tool_error_skip_and_short_circuit_retry(make_loop):
    attempts: list[int] = []

    def flaky(x: str) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first try fails")
        return "second try works"

    loop, hooks, _ = _loop(
        make_loop, [ScriptedLLM.tool_call("flaky", {"x": "a"}), ScriptedLLM.text("ok")], flaky=flaky
    )
    hooks.register(HookPoint.TOOL_ERROR, lambda ctx: HookDirective.SHORT_CIRCUIT)
    sid = await loop.new_session()
    await loop.send("hi", sid)
    assert len(attempts) == 2
    assert (await loop.get_messages(sid))[2]["content"] == "second try works"

    def always(x: str) -> str:
        raise RuntimeError("nope")

    loop2, hooks2, _ = _loop(
        make_loop, [ScriptedLLM.tool_call("always", {"x": "a"}), ScriptedLLM.text("ok")], always=always
    )

    def replace(ctx):
        ctx.output = "friendly fallback"
        return HookDirective.SKIP

    hooks2.register(HookPoint.TOOL_ERROR, replace)
    sid2 = await loop2.new_session()
    await loop2.send("hi", sid2)
    assert (await loop2.get_messages(sid2))[2]["content"] == "friendly fallback"


async def test_tool_after_rewrites_output_and_break_stops_the_batch(make_loop):
    loop, hooks, llm = _loop(
        make_loop,
        [ScriptedLLM.tool_calls([("t", {"x": "a"})])],
        t=lambda x: "original",
    )

    def after(ctx):
        ctx.output = "redacted"
        return HookDirective.BREAK

    hooks.register(HookPoint.TOOL_AFTER, after)
    sid = await loop.new_session()
    result = await loop.send("hi", sid)
    assert result.status == "completed" and len(llm.requests) == 1
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert messages[2]["content"] == "redacted"


async def test_events_of_a_tool_round_in_order_with_monotonic_seq(make_loop):
    bus = AgentEventBus()
    events = []
    bus.subscribe(None, events.append)
    llm = ScriptedLLM([ScriptedLLM.tool_call("t", {"x": "a"}), ScriptedLLM.text("ok")])
    loop = make_loop(llm=llm, event_bus=bus, tool_registry=make_tools(t=lambda x: x))
    sid = await loop.new_session()
    await loop.send("hi", sid)
    types = [e.type for e in events if e.type not in (AgentEventType.STREAM_DELTA,)]
    T = AgentEventType
    assert types == [
        T.SESSION_STARTED,
        T.ROUND_STARTED,
        T.STREAM_STARTED,
        T.LLM_CALL_STARTED,
        T.LLM_CALL_COMPLETED,
        T.STREAM_COMPLETED,
        T.USAGE_UPDATED,
        T.ROUND_TOOLS_PRESENT,
        T.TOOL_CALL_STARTED,
        T.TOOL_CALL_COMPLETED,
        T.ROUND_COMPLETED,
        T.ROUND_STARTED,
        T.STREAM_STARTED,
        T.LLM_CALL_STARTED,
        T.LLM_CALL_COMPLETED,
        T.STREAM_COMPLETED,
        T.USAGE_UPDATED,
        T.ROUND_COMPLETED,
        T.SESSION_ENDED,
    ]
    seqs = [e.seq for e in events]
    monos = [e.mono for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert monos == sorted(monos)
    assert all(e.session_id == sid for e in events)
    completed = next(e for e in events if e.type == T.TOOL_CALL_COMPLETED)
    assert (
        completed.data.name == "t"
        and completed.data.output == "a"
        and completed.data.tool_input == {"x": "a"}
    )
    deltas = "".join(e.data.text for e in events if e.type == T.STREAM_DELTA)
    assert deltas == "ok"


async def test_failed_tool_emits_failed_then_completed(make_loop):
    bus = AgentEventBus()
    events = []
    bus.subscribe(AgentEventType.TOOL_CALL_FAILED, events.append)
    bus.subscribe(AgentEventType.TOOL_CALL_COMPLETED, events.append)

    def bad(x: str) -> str:
        raise KeyError("missing")

    llm = ScriptedLLM([ScriptedLLM.tool_call("bad", {"x": "a"}), ScriptedLLM.text("ok")])
    loop = make_loop(llm=llm, event_bus=bus, tool_registry=make_tools(bad=bad))
    await loop.send("hi", await loop.new_session())
    assert [e.type for e in events] == [AgentEventType.TOOL_CALL_FAILED, AgentEventType.TOOL_CALL_COMPLETED]
    assert events[1].data.failed is True


async def test_llm_call_completed_carries_the_token_counts_of_that_call(make_loop):
    from power_loop import LLMTokenUsage

    bus = AgentEventBus()
    done = []
    bus.subscribe(AgentEventType.LLM_CALL_COMPLETED, done.append)
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call(
                "t", {"x": "a"}, usage=LLMTokenUsage(prompt_tokens=30, completion_tokens=7)
            ),
            ScriptedLLM.text(
                "ok", usage=LLMTokenUsage(prompt_tokens=41, completion_tokens=2, total_tokens=43)
            ),
        ]
    )
    loop = make_loop(llm=llm, event_bus=bus, tool_registry=make_tools(t=lambda x: x))
    sid = await loop.new_session()
    await loop.send("hi", sid)
    counts = [(e.data.prompt_tokens, e.data.completion_tokens, e.data.total_tokens) for e in done]
    assert counts == [(30, 7, 37), (41, 2, 43)]
    assert all(e.data.success for e in done)


async def test_each_round_records_its_token_usage_in_the_store(make_loop):
    from power_loop import LLMTokenUsage

    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call(
                "t", {"x": "a"}, usage=LLMTokenUsage(prompt_tokens=30, completion_tokens=7)
            ),
            ScriptedLLM.text("ok", usage=LLMTokenUsage(prompt_tokens=41, completion_tokens=2)),
            ScriptedLLM.text("again"),
        ]
    )
    loop = make_loop(llm=llm, tool_registry=make_tools(t=lambda x: x), config=AgentLoopConfig(model="m1"))
    sid = await loop.new_session()
    await loop.send("hi", sid)
    await loop.send("more", sid)
    rows = await (await loop.ensure_store()).list_usage_rounds(sid)
    assert [
        (r.send_index, r.round_index, r.prompt_tokens, r.completion_tokens, r.total_tokens) for r in rows
    ] == [
        (1, 0, 30, 7, 37),
        (1, 1, 41, 2, 43),
        (2, 0, 10, 5, 15),
    ]
    assert {r.model for r in rows} == {"m1"}
    assert all(r.attempts == 1 and r.duration_ms is not None and r.duration_ms >= 0 for r in rows)
