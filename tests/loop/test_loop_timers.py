"""`TimerRunner`: durable timers fired into their sessions, on every backend."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from loop_helpers import check_history, make_tools

from power_loop import AgentEvent, AgentEventType, ConfigError, HookDirective, HookPoint
from power_loop.hooks import TimerFireCtx
from power_loop.loop import TimerRunner, format_timer_message
from power_loop.testing import ScriptedLLM, VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    """Wall-clock time (``clock.epoch_ms()``) that only moves when a test advances it."""
    return VirtualClock(wall_start=time.time_ns() // 1_000_000 / 1000, autojump=False)


def collect_timer_events(loop: Any) -> list[AgentEvent]:
    events: list[AgentEvent] = []
    loop.event_bus.subscribe(AgentEventType.TIMER_FIRED, events.append)
    return events


def outcomes(events: list[AgentEvent]) -> list[str]:
    return [e.payload["outcome"] for e in events]


def last_user_text(llm: ScriptedLLM) -> str:
    return [m for m in llm.last_request.messages if m["role"] == "user"][-1]["content"]


async def test_a_one_shot_timer_fires_once_and_the_model_sees_its_message(make_loop, clock):
    llm = ScriptedLLM(default=ScriptedLLM.text("woke up"))
    loop = make_loop(llm=llm)
    events = collect_timer_events(loop)
    sid = await loop.new_session()
    timer = await loop.schedule_timer(sid, due_at_ms=clock.epoch_ms() + 5_000, note="check the build")
    runner = TimerRunner(loop, clock=clock.epoch_ms)

    assert await runner.scan_once() == 0  # not due yet
    assert llm.requests == []
    clock.advance(5)
    assert await runner.scan_once() == 1
    assert await runner.scan_once() == 0

    expected = (
        f"<timer id={timer.timer_id}>\nYour scheduled wake-up has fired. "
        "Your note to yourself was:\ncheck the build\n</timer>"
    )
    assert format_timer_message(timer) == expected
    assert len(llm.requests) == 1 and last_user_text(llm) == expected
    row = await (await loop.ensure_store()).get_timer(sid, timer.timer_id)
    assert row is not None and (row.status, row.fire_count, row.last_fired_at) == (
        "fired",
        1,
        clock.epoch_ms(),
    )
    assert await loop.list_timers(sid) == []
    check_history(await loop.get_messages(sid))
    assert len(events) == 1 and events[0].session_id == sid
    assert events[0].payload == {
        "timer_id": timer.timer_id,
        "note": "check the build",
        "due_at": timer.due_at,
        "outcome": "delivered",
    }


async def test_a_recurring_timer_rearms_from_its_fire_time(make_loop, clock):
    llm = ScriptedLLM(default=ScriptedLLM.text("ok"))
    loop = make_loop(llm=llm)
    sid = await loop.new_session()
    timer = await loop.schedule_timer(sid, due_at_ms=clock.epoch_ms(), note="poll", interval_s=60)
    store = await loop.ensure_store()
    runner = TimerRunner(loop, clock=clock.epoch_ms)

    clock.advance(7)  # fired late: the next period counts from the actual fire time
    assert await runner.scan_once() == 1
    row = await store.get_timer(sid, timer.timer_id)
    assert row is not None and (row.status, row.fire_count, row.due_at) == (
        "armed",
        1,
        clock.epoch_ms() + 60_000,
    )

    clock.advance(59)
    assert await runner.scan_once() == 0
    clock.advance(1)
    assert await runner.scan_once() == 1
    row = await store.get_timer(sid, timer.timer_id)
    assert row is not None and (row.status, row.fire_count) == ("armed", 2)
    assert len(llm.requests) == 2


async def test_a_timer_cancelled_before_it_is_due_never_fires(make_loop, clock):
    llm = ScriptedLLM()
    loop = make_loop(llm=llm)
    sid = await loop.new_session()
    timer = await loop.schedule_timer(sid, due_at_ms=clock.epoch_ms() + 1_000, note="never")
    assert await loop.cancel_timer(sid, timer.timer_id) is True
    clock.advance(10)
    assert await TimerRunner(loop, clock=clock.epoch_ms).scan_once() == 0
    assert llm.requests == []
    row = await (await loop.ensure_store()).get_timer(sid, timer.timer_id)
    assert row is not None and row.status == "cancelled"


async def test_the_hook_sees_the_timer_and_can_rewrite_the_message(make_loop, clock):
    llm = ScriptedLLM(default=ScriptedLLM.text("ok"))
    loop = make_loop(llm=llm)
    seen: list[TimerFireCtx] = []

    def hook(ctx: TimerFireCtx) -> None:
        seen.append(ctx)
        ctx.message = f"custom wake-up for {ctx.note}"

    loop.hooks.register(HookPoint.TIMER_FIRE, hook)
    sid = await loop.new_session()
    timer = await loop.schedule_timer(sid, due_at_ms=clock.epoch_ms(), note="deploy")
    assert await TimerRunner(loop, clock=clock.epoch_ms).scan_once() == 1
    assert len(seen) == 1
    ctx = seen[0]
    assert (ctx.session_id, ctx.timer_id, ctx.note, ctx.due_at) == (
        sid,
        timer.timer_id,
        "deploy",
        timer.due_at,
    )
    assert last_user_text(llm) == "custom wake-up for deploy"


@pytest.mark.parametrize("interval_s", [None, 30])
async def test_hook_skip_drops_this_firing(make_loop, clock, interval_s):
    llm = ScriptedLLM()
    loop = make_loop(llm=llm)
    events = collect_timer_events(loop)
    loop.hooks.register(HookPoint.TIMER_FIRE, lambda ctx: HookDirective.SKIP)
    sid = await loop.new_session()
    timer = await loop.schedule_timer(sid, due_at_ms=clock.epoch_ms(), note="skip me", interval_s=interval_s)
    assert await TimerRunner(loop, clock=clock.epoch_ms).scan_once() == 1
    assert llm.requests == []
    assert outcomes(events) == ["skipped"]
    row = await (await loop.ensure_store()).get_timer(sid, timer.timer_id)
    assert row is not None
    if interval_s is None:
        assert row.status == "fired"
    else:
        assert (row.status, row.due_at) == ("armed", clock.epoch_ms() + 30_000)


async def test_hook_break_cancels_the_timer(make_loop, clock):
    llm = ScriptedLLM()
    loop = make_loop(llm=llm)
    events = collect_timer_events(loop)
    loop.hooks.register(HookPoint.TIMER_FIRE, lambda ctx: HookDirective.BREAK)
    sid = await loop.new_session()
    timer = await loop.schedule_timer(sid, due_at_ms=clock.epoch_ms(), note="stop", interval_s=5)
    runner = TimerRunner(loop, clock=clock.epoch_ms)
    assert await runner.scan_once() == 1
    clock.advance(60)
    assert await runner.scan_once() == 0
    assert llm.requests == []
    assert outcomes(events) == ["cancelled"]
    row = await (await loop.ensure_store()).get_timer(sid, timer.timer_id)
    assert row is not None and row.status == "cancelled"


async def test_hook_postpone_rearms_later(make_loop, clock):
    llm = ScriptedLLM(default=ScriptedLLM.text("ok"))
    loop = make_loop(llm=llm)
    events = collect_timer_events(loop)
    calls = 0

    def hook(ctx: TimerFireCtx) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            ctx.postpone_s = 10

    loop.hooks.register(HookPoint.TIMER_FIRE, hook)
    sid = await loop.new_session()
    timer = await loop.schedule_timer(sid, due_at_ms=clock.epoch_ms(), note="later")
    runner = TimerRunner(loop, clock=clock.epoch_ms)
    assert await runner.scan_once() == 1
    row = await (await loop.ensure_store()).get_timer(sid, timer.timer_id)
    assert row is not None and (row.status, row.due_at, row.fire_count) == (
        "armed",
        clock.epoch_ms() + 10_000,
        0,
    )
    assert llm.requests == []

    clock.advance(9)
    assert await runner.scan_once() == 0
    clock.advance(1)
    assert await runner.scan_once() == 1
    assert outcomes(events) == ["postponed", "delivered"]
    assert len(llm.requests) == 1


async def test_a_timer_firing_during_a_running_send_is_queued_as_a_follow_up(make_loop, clock):
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow(x: str) -> str:
        entered.set()
        await release.wait()
        return "slow done"

    llm = ScriptedLLM([ScriptedLLM.tool_call("slow", {"x": "a"}), ScriptedLLM.text("saw the timer")])
    loop = make_loop(llm=llm, tool_registry=make_tools(slow=slow))
    events = collect_timer_events(loop)
    sid = await loop.new_session()
    timer = await loop.schedule_timer(sid, due_at_ms=clock.epoch_ms(), note="mid-send")
    send = asyncio.create_task(loop.send("start", sid))
    await entered.wait()

    assert await TimerRunner(loop, clock=clock.epoch_ms).scan_once() == 1
    assert outcomes(events) == ["queued"]
    row = await (await loop.ensure_store()).get_timer(sid, timer.timer_id)
    assert row is not None and row.status == "fired"

    release.set()
    result = await send
    assert result.final_text == "saw the timer"
    assert format_timer_message(timer) in llm.last_request.messages[-1]["content"]
    check_history(await loop.get_messages(sid))


async def test_two_runners_on_one_database_fire_each_timer_exactly_once(make_loop, clock):
    llm_a = ScriptedLLM(default=ScriptedLLM.text("a"))
    llm_b = ScriptedLLM(default=ScriptedLLM.text("b"))
    loop_a, loop_b = make_loop(llm=llm_a), make_loop(llm=llm_b)
    sids = [await loop_a.new_session() for _ in range(4)]
    for sid in sids:
        await loop_a.schedule_timer(sid, due_at_ms=clock.epoch_ms(), note=f"wake {sid}")
    runner_a, runner_b = TimerRunner(loop_a, clock=clock.epoch_ms), TimerRunner(loop_b, clock=clock.epoch_ms)

    fired = await asyncio.gather(runner_a.scan_once(), runner_b.scan_once(), runner_a.scan_once())
    assert sum(fired) == len(sids)
    assert len(llm_a.requests) + len(llm_b.requests) == len(sids)
    for sid in sids:
        users = [m for m in await loop_a.get_messages(sid) if m["role"] == "user"]
        assert len(users) == 1 and f"wake {sid}" in users[0]["content"]


async def test_start_recovers_a_timer_left_firing_by_a_crashed_runner(make_loop, clock):
    llm = ScriptedLLM(default=ScriptedLLM.text("recovered"))
    loop = make_loop(llm=llm)
    store = await loop.ensure_store()
    sid = await loop.new_session()
    crashed = await loop.schedule_timer(sid, due_at_ms=clock.epoch_ms(), note="crashed runner's")
    alive = await loop.schedule_timer(sid, due_at_ms=clock.epoch_ms(), note="live runner's")
    # One runner died 200 s ago mid-delivery; another is delivering right now (fresh heartbeat).
    for timer, claimed_at in ((crashed, clock.epoch_ms() - 200_000), (alive, clock.epoch_ms() - 1_000)):
        assert await store.transition_timer(
            sid, timer.timer_id, from_status="armed", to_status="firing", now_ms=claimed_at
        )

    runner = TimerRunner(loop, clock=clock.epoch_ms, stale_firing_s=120, scan_interval_s=60)
    await runner.start()
    await runner.stop()
    crashed_row = await store.get_timer(sid, crashed.timer_id)
    alive_row = await store.get_timer(sid, alive.timer_id)
    assert crashed_row is not None and crashed_row.status == "armed"
    assert alive_row is not None and alive_row.status == "firing"

    assert await runner.scan_once() == 1
    assert last_user_text(llm) == format_timer_message(crashed)
    assert await store.recover_stale_firing_timers(older_than_ms=clock.epoch_ms() - 120_000) == 0


async def test_the_background_task_fires_due_timers(make_loop, clock):
    llm = ScriptedLLM(default=ScriptedLLM.text("ok"))
    loop = make_loop(llm=llm)
    fired = asyncio.Event()
    loop.event_bus.subscribe(AgentEventType.TIMER_FIRED, lambda event: fired.set())
    sid = await loop.new_session()
    await loop.schedule_timer(sid, due_at_ms=clock.epoch_ms(), note="background")

    async with TimerRunner(loop, clock=clock.epoch_ms, scan_interval_s=0.01) as runner:
        assert runner.running
        assert any(t.get_name() == "power-loop-timers" for t in asyncio.all_tasks())
        await asyncio.wait_for(fired.wait(), timeout=10)
        with pytest.raises(ConfigError):
            await runner.start()
    assert not runner.running
    assert len(llm.requests) == 1
    await runner.stop()  # idempotent


async def test_a_timer_whose_session_was_closed_is_cancelled(make_loop, clock):
    llm = ScriptedLLM()
    loop = make_loop(llm=llm)
    events = collect_timer_events(loop)

    async def close_it(ctx: TimerFireCtx) -> None:  # the session goes away while the timer fires
        await loop.close_session(ctx.session_id)

    loop.hooks.register(HookPoint.TIMER_FIRE, close_it)
    sid = await loop.new_session()
    timer = await loop.schedule_timer(sid, due_at_ms=clock.epoch_ms(), note="orphan")
    assert await TimerRunner(loop, clock=clock.epoch_ms).scan_once() == 1
    assert outcomes(events) == ["cancelled"]
    assert llm.requests == []
    assert await (await loop.ensure_store()).get_timer(sid, timer.timer_id) is None


async def test_a_model_error_during_delivery_rearms_and_the_runner_keeps_going(make_loop, clock):
    llm = ScriptedLLM([ScriptedLLM.error(ValueError("provider down")), ScriptedLLM.text("back")])
    loop = make_loop(llm=llm)
    events = collect_timer_events(loop)
    store = await loop.ensure_store()
    sid = await loop.new_session()
    timer = await loop.schedule_timer(sid, due_at_ms=clock.epoch_ms(), note="retry me")
    runner = TimerRunner(loop, clock=clock.epoch_ms)

    assert await runner.scan_once() == 1
    row = await store.get_timer(sid, timer.timer_id)
    assert row is not None and (row.status, row.due_at, row.fire_count) == (
        "armed",
        clock.epoch_ms() + 30_000,
        0,
    )
    clock.advance(30)
    assert await runner.scan_once() == 1
    assert outcomes(events) == ["error", "delivered"]
    row = await store.get_timer(sid, timer.timer_id)
    assert row is not None and (row.status, row.fire_count) == ("fired", 1)
    assert (await loop.get_messages(sid))[-1]["content"] == "back"


async def test_a_failing_hook_counts_as_a_delivery_error(make_loop, clock):
    loop = make_loop(llm=ScriptedLLM())
    events = collect_timer_events(loop)

    def broken(ctx: TimerFireCtx) -> None:
        raise RuntimeError("hook bug")

    loop.hooks.register(HookPoint.TIMER_FIRE, broken)
    sid = await loop.new_session()
    await loop.schedule_timer(sid, due_at_ms=clock.epoch_ms(), note="x")
    assert await TimerRunner(loop, clock=clock.epoch_ms).scan_once() == 1
    assert outcomes(events) == ["error"]
    assert [t.status for t in await loop.list_timers(sid)] == ["armed"]


async def test_the_heartbeat_refreshes_a_long_delivery(make_loop, clock):
    store_box: list[Any] = []
    sid_box: list[str] = []

    async def slow_model(request: Any) -> str:
        # Mid-delivery, time moves on; the heartbeat must stamp the new time on the firing row.
        clock.advance(45)
        store, sid = store_box[0], sid_box[0]
        for _ in range(500):
            row = (await store.list_timers(sid))[0]
            if row.updated_at == clock.epoch_ms():
                return "done"
            await asyncio.sleep(0.01)
        return "no heartbeat"

    llm = ScriptedLLM(responder=slow_model)
    loop = make_loop(llm=llm)
    store_box.append(await loop.ensure_store())
    sid = await loop.new_session()
    sid_box.append(sid)
    await loop.schedule_timer(sid, due_at_ms=clock.epoch_ms(), note="long job")
    runner = TimerRunner(loop, clock=clock.epoch_ms, stale_firing_s=120, heartbeat_interval_s=0.01)
    assert await runner.scan_once() == 1
    assert (await loop.get_messages(sid))[-1]["content"] == "done"


async def test_a_virtual_clock_can_drive_the_runner(make_loop):
    vclock = VirtualClock(wall_start=time.time())
    loop = make_loop(llm=ScriptedLLM(default=ScriptedLLM.text("ok")))
    sid = await loop.new_session()
    await loop.schedule_timer(sid, due_at_ms=vclock.epoch_ms() + 3_600_000, note="in an hour")
    runner = TimerRunner(loop, clock=vclock.epoch_ms)
    assert await runner.scan_once() == 0
    vclock.advance(3600)
    assert await runner.scan_once() == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scan_interval_s": 0},
        {"stale_firing_s": -1},
        {"heartbeat_interval_s": 0},
        {"stale_firing_s": 10, "heartbeat_interval_s": 10},
        {"scan_interval_s": True},
    ],
)
def test_bad_settings_are_refused(kwargs):
    loop: Any = object()
    with pytest.raises(ConfigError):
        TimerRunner(loop, **kwargs)


def test_the_default_heartbeat_is_a_quarter_of_the_stale_window():
    loop: Any = object()
    assert TimerRunner(loop).heartbeat_interval_s == 30.0
    assert TimerRunner(loop, stale_firing_s=2).heartbeat_interval_s == 1.0
