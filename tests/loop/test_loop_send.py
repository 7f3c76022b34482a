"""Sending: text turns, tool rounds, persistence across loops, statuses and errors."""

from __future__ import annotations

import asyncio
import threading

import pytest
from loop_helpers import check_history, make_tools

from power_loop import (
    AgentEventBus,
    AgentEventType,
    AgentLoopConfig,
    ConfigError,
    LLMRetryPolicy,
    LoopClosedError,
    SessionNotFoundError,
)
from power_loop.testing import ScriptedLLM


async def test_text_send_persists_and_reports(make_loop):
    llm = ScriptedLLM([ScriptedLLM.text("hello there")])
    loop = make_loop(llm=llm)
    sid = await loop.new_session(system_prompt="Be brief.")
    result = await loop.send("hi", sid)
    assert result.status == "completed"
    assert result.final_text == "hello there"
    assert result.rounds == 1
    assert result.usage["prompt_tokens"] == 10 and result.usage["completion_tokens"] == 5
    assert result.usage["calls"] == 1
    assert await loop.get_messages(sid) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello there"},
    ]
    request = llm.requests[0]
    assert request.system_prompt == "Be brief."
    assert request.messages == [{"role": "user", "content": "hi"}]
    assert request.tools is None
    stats = await loop.get_session_stats(sid)
    assert stats is not None and stats.sends == 1 and stats.llm_calls == 1
    assert stats.prompt_tokens == 10 and stats.completion_tokens == 5


async def test_a_new_loop_on_the_same_dsn_continues_the_session(make_loop):
    first = make_loop(llm=ScriptedLLM([ScriptedLLM.text("one")]))
    sid = await first.new_session()
    await first.send("first", sid)
    await first.aclose()

    llm = ScriptedLLM([ScriptedLLM.text("two")])
    second = make_loop(llm=llm)
    result = await second.send("second", sid)
    assert result.final_text == "two"
    assert llm.requests[0].messages == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": "second"},
    ]


async def test_tool_round_executes_and_feeds_the_result_back(make_loop):
    seen: list[str] = []

    def shout(x: str) -> str:
        seen.append(x)
        return x.upper()

    llm = ScriptedLLM([ScriptedLLM.tool_call("shout", {"x": "hey"}), ScriptedLLM.text("done")])
    loop = make_loop(llm=llm, tool_registry=make_tools(shout=shout))
    sid = await loop.new_session()
    result = await loop.send("go", sid)
    assert result.status == "completed" and result.final_text == "done"
    assert result.rounds == 2 and result.tool_calls == 1
    assert seen == ["hey"]
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert messages[2] == {
        "role": "tool",
        "content": "HEY",
        "tool_call_id": messages[1]["tool_calls"][0]["id"],
        "name": "shout",
    }
    assert llm.requests[1].messages[-1]["content"] == "HEY"
    assert llm.requests[0].tool_choice == "auto"
    assert [t["function"]["name"] for t in llm.requests[0].tools] == ["shout"]
    assert await loop.get_pending(sid) is None


async def test_a_rounds_calls_run_concurrently_and_results_keep_call_order(make_loop):
    a_started, b_started = threading.Event(), threading.Event()

    def slow_a(x: str) -> str:
        a_started.set()
        assert b_started.wait(5), "b never ran while a was running"
        return "A"

    async def fast_b(x: str) -> str:
        b_started.set()
        await asyncio.sleep(0)
        return "B"

    llm = ScriptedLLM(
        [ScriptedLLM.tool_calls([("slow_a", {"x": "1"}), ("fast_b", {"x": "2"})]), ScriptedLLM.text("ok")]
    )
    loop = make_loop(llm=llm, tool_registry=make_tools(slow_a=slow_a, fast_b=fast_b))
    sid = await loop.new_session()
    result = await loop.send("go", sid)
    assert result.status == "completed" and result.tool_calls == 2
    tool_rows = [m for m in await loop.get_messages(sid) if m["role"] == "tool"]
    assert [m["content"] for m in tool_rows] == ["A", "B"]


async def test_each_tool_result_row_records_its_own_run_time(make_loop):
    async def slow(x: str) -> str:
        await asyncio.sleep(0.3)
        return "slow"

    def quick(x: str) -> str:
        return "quick"

    llm = ScriptedLLM(
        [ScriptedLLM.tool_calls([("slow", {"x": "1"}), ("quick", {"x": "2"})]), ScriptedLLM.text("ok")]
    )
    loop = make_loop(llm=llm, tool_registry=make_tools(slow=slow, quick=quick))
    sid = await loop.new_session()
    assert (await loop.send("go", sid)).status == "completed"
    rows = [r for r in await loop.store.load_active_messages(sid) if r.role == "tool"]
    assert [r.name for r in rows] == ["slow", "quick"]
    slow_ms, quick_ms = (r.meta["duration_ms"] for r in rows)
    # Lower bounds only (the machine may be loaded); each row carries its own call's time.
    assert isinstance(slow_ms, int) and slow_ms >= 300
    assert isinstance(quick_ms, int) and 0 <= quick_ms
    assert all(r.meta == {"duration_ms": r.meta["duration_ms"]} for r in rows)
    # The messages handed to the model and returned by get_messages are unchanged.
    assert {"role": "tool", "content": "slow", "tool_call_id": rows[0].tool_call_id, "name": "slow"} in (
        await loop.get_messages(sid)
    )


@pytest.mark.parametrize(
    "turn, expected",
    [
        (ScriptedLLM.raw_arguments("shout", "{not json"), "JSON"),
        (ScriptedLLM.tool_call("shout", {"y": "no x"}), "x"),
        (ScriptedLLM.tool_call("shout", {"x": 5}), "string"),
        (ScriptedLLM.tool_call("nope", {"x": "a"}), "nope"),
    ],
)
async def test_bad_tool_calls_become_results_and_never_reach_the_handler(make_loop, turn, expected):
    calls: list[str] = []
    llm = ScriptedLLM([turn, ScriptedLLM.text("recovered")])
    loop = make_loop(llm=llm, tool_registry=make_tools(shout=lambda x: calls.append(x) or x))
    sid = await loop.new_session()
    result = await loop.send("go", sid)
    assert result.status == "completed" and result.final_text == "recovered"
    assert calls == []
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert expected in messages[2]["content"]


async def test_a_raising_handler_becomes_an_error_result(make_loop):
    def boom(x: str) -> str:
        raise RuntimeError("kaboom")

    llm = ScriptedLLM([ScriptedLLM.tool_call("boom", {"x": "a"}), ScriptedLLM.text("sorry")])
    loop = make_loop(llm=llm, tool_registry=make_tools(boom=boom))
    sid = await loop.new_session()
    result = await loop.send("go", sid)
    assert result.status == "completed"
    content = (await loop.get_messages(sid))[2]["content"]
    assert "RuntimeError" in content and "kaboom" in content


async def test_oversize_results_are_capped(make_loop):
    llm = ScriptedLLM([ScriptedLLM.tool_call("big", {"x": "a"}), ScriptedLLM.text("ok")])
    loop = make_loop(
        llm=llm,
        tool_registry=make_tools(big=lambda x: "y" * 5000),
        config=AgentLoopConfig(tool_result_max_chars=1000),
    )
    sid = await loop.new_session()
    await loop.send("go", sid)
    content = (await loop.get_messages(sid))[2]["content"]
    assert len(content) <= 1000 and "truncated" in content


async def test_tool_calls_without_a_registry_end_with_pending_tools(make_loop):
    loop = make_loop(llm=ScriptedLLM([ScriptedLLM.tool_call("anything", {"x": "a"})]))
    sid = await loop.new_session()
    result = await loop.send("go", sid)
    assert result.status == "pending_tools"
    assert [c["function"]["name"] for c in result.pending_tool_calls] == ["anything"]
    pending = await loop.get_pending(sid)
    assert pending is not None and pending["tool_calls"][0]["function"]["name"] == "anything"


async def test_round_limit_makes_a_tool_free_summary_call(make_loop):
    summary = ScriptedLLM.text("summary of progress")

    def responder(request):
        return summary if request.tools is None else ScriptedLLM.tool_call("echo", {"x": "again"})

    llm = ScriptedLLM(responder=responder)
    loop = make_loop(
        llm=llm, tool_registry=make_tools(echo=lambda x: x), config=AgentLoopConfig(max_rounds=2)
    )
    sid = await loop.new_session()
    result = await loop.send("loop forever", sid)
    assert result.status == "hit_round_limit"
    assert result.final_text == "[hit_round_limit]\nsummary of progress"
    assert len(llm.requests) == 3 and llm.requests[-1].tools is None
    check_history(await loop.get_messages(sid))


async def test_token_budget_stops_at_a_round_boundary(make_loop):
    llm = ScriptedLLM(default=ScriptedLLM.tool_call("echo", {"x": "a"}))
    loop = make_loop(
        llm=llm, tool_registry=make_tools(echo=lambda x: x), config=AgentLoopConfig(max_tokens_per_run=20)
    )
    sid = await loop.new_session()
    result = await loop.send("go", sid)
    # Each call reports 15 tokens: round 1 spends 15, round 2 reaches 30 >= 20, round 3 never starts.
    assert result.status == "budget_exceeded" and result.final_text == "[budget_exceeded]"
    assert len(llm.requests) == 2
    check_history(await loop.get_messages(sid))


async def test_retry_exhaustion_degrades_and_stores_no_text_the_model_never_said(make_loop):
    policy = LLMRetryPolicy(max_attempts=2, backoff_initial=0.0, backoff_max=0.0, total_timeout=None)
    llm = ScriptedLLM(
        [ScriptedLLM.error(ConnectionError("down")), ScriptedLLM.error(ConnectionError("down"))]
    )
    loop = make_loop(llm=llm, config=AgentLoopConfig(retry_policy=policy))
    sid = await loop.new_session()
    result = await loop.send("hi", sid)
    assert result.status == "degraded"
    assert result.final_text.startswith("[degraded: LLM retry_exhausted")
    assert await loop.get_messages(sid) == [{"role": "user", "content": "hi"}]
    stats = await loop.get_session_stats(sid)
    assert stats is not None and stats.sends == 1
    # The send can be retried: resume asks the model again for the stored user turn.
    llm.push(ScriptedLLM.text("back"))
    again = await loop.resume(sid)
    assert again.status == "completed" and again.final_text == "back"
    check_history(await loop.get_messages(sid))


async def test_a_model_slower_than_the_total_timeout_degrades_with_reason_timeout(make_loop):
    policy = LLMRetryPolicy(max_attempts=3, backoff_initial=0.0, backoff_max=0.0, total_timeout=0.05)
    llm = ScriptedLLM([ScriptedLLM.delay(5.0, then=ScriptedLLM.text("too late"))])
    loop = make_loop(llm=llm, config=AgentLoopConfig(retry_policy=policy))
    sid = await loop.new_session()
    result = await asyncio.wait_for(loop.send("hi", sid), 5)
    assert result.status == "degraded" and result.final_text.startswith("[degraded: LLM timeout")
    messages = await loop.get_messages(sid)
    assert [m["role"] for m in messages] == ["user"]


async def test_retry_recovers_from_a_transient_error(make_loop):
    policy = LLMRetryPolicy(max_attempts=3, backoff_initial=0.0, backoff_max=0.0, total_timeout=None)
    llm = ScriptedLLM([ScriptedLLM.error(ConnectionError("blip")), ScriptedLLM.text("fine")])
    bus = AgentEventBus()
    calls = []
    bus.subscribe(
        AgentEventType.LLM_CALL_COMPLETED,
        lambda e: calls.append((e.data.call_id, e.data.attempt, e.data.success)),
    )
    loop = make_loop(llm=llm, config=AgentLoopConfig(retry_policy=policy), event_bus=bus)
    sid = await loop.new_session()
    assert (await loop.send("hi", sid)).final_text == "fine"
    assert calls == [("r0.a1", 1, False), ("r0.a2", 2, True)]


async def test_without_a_retry_policy_a_provider_error_propagates_and_history_stays_valid(make_loop):
    llm = ScriptedLLM([ScriptedLLM.error(ValueError("bad request"))])
    loop = make_loop(llm=llm)
    sid = await loop.new_session()
    with pytest.raises(ValueError, match="bad request"):
        await loop.send("hi", sid)
    assert await loop.get_messages(sid) == [{"role": "user", "content": "hi"}]


async def test_unknown_session_and_bad_input(make_loop):
    loop = make_loop(llm=ScriptedLLM())
    with pytest.raises(SessionNotFoundError) as info:
        await loop.send("hi", "sess_missing")
    assert info.value.code == "session.not_found"
    sid = await loop.new_session()
    with pytest.raises(ConfigError):
        await loop.send(42, sid)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        await loop.send({"role": "assistant", "content": "x"}, sid)
    assert await loop.get_messages(sid) == []


async def test_per_call_overrides_do_not_change_stored_state(make_loop):
    llm = ScriptedLLM(default=ScriptedLLM.text("ok"))
    registry = make_tools(a=lambda x: x, b=lambda x: x)
    loop = make_loop(llm=llm, tool_registry=registry)
    sid = await loop.new_session(system_prompt="session prompt")
    await loop.send("1", sid, system_prompt="call prompt", tools=["b"])
    await loop.send("2", sid)
    assert llm.requests[0].system_prompt.startswith("call prompt")
    assert [t["function"]["name"] for t in llm.requests[0].tools] == ["b"]
    assert llm.requests[1].system_prompt.startswith("session prompt")
    assert [t["function"]["name"] for t in llm.requests[1].tools] == ["a", "b"]
    assert await loop.resolve_system_prompt(session_id=sid) == llm.requests[1].system_prompt
    with pytest.raises(ConfigError):
        await loop.send("3", sid, tools=["missing"])


async def test_closed_loop_refuses_new_sends(make_loop):
    loop = make_loop(llm=ScriptedLLM(default=ScriptedLLM.text("ok")))
    sid = await loop.new_session()
    await loop.aclose()
    with pytest.raises(LoopClosedError) as info:
        await loop.send("hi", sid)
    assert isinstance(info.value, RuntimeError)


async def test_many_sessions_run_concurrently_on_one_loop(make_loop):
    llm = ScriptedLLM(default=ScriptedLLM.text("ok"))
    loop = make_loop(llm=llm)
    sids = [await loop.new_session() for _ in range(10)]
    results = await asyncio.gather(*(loop.send(f"m{i}", sid) for i, sid in enumerate(sids)))
    assert all(r.status == "completed" for r in results)
    for i, sid in enumerate(sids):
        assert await loop.get_messages(sid) == [
            {"role": "user", "content": f"m{i}"},
            {"role": "assistant", "content": "ok"},
        ]


async def test_one_session_runs_one_send_at_a_time(make_loop):
    gate = asyncio.Event()
    first_running = asyncio.Event()
    order: list[str] = []

    async def responder(request):
        order.append(request.messages[-1]["content"])
        if request.messages[-1]["content"] == "first":
            first_running.set()
            await gate.wait()
        return ScriptedLLM.text("ok")

    loop = make_loop(llm=ScriptedLLM(responder=responder))
    sid = await loop.new_session()
    first = asyncio.create_task(loop.send("first", sid))
    await first_running.wait()  # not a sleep: the first send may take any time to reach the model
    second = asyncio.create_task(loop.send("second", sid))
    await asyncio.sleep(0.01)
    assert order == ["first"]
    gate.set()
    await asyncio.gather(first, second)
    messages = await loop.get_messages(sid)
    assert [m["content"] for m in messages] == ["first", "ok", "second", "ok"]
