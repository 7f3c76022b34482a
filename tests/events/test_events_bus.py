"""AgentEventBus: routing, wants/emit laziness, dispatch modes, overflow, drain/aclose, streams."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_loop.errors import ConfigError
from power_loop.events import (
    AgentEvent,
    AgentEventBus,
    AgentEventType,
    EventBusProtocol,
    SystemLogPayload,
    ToolCallStartedPayload,
)

T = AgentEventType


def test_constructor_validation_and_compat_keyword() -> None:
    assert AgentEventBus(sync_dispatch="thread").dispatch == "background"
    assert AgentEventBus(sync_dispatch="inline").dispatch == "inline"
    for kwargs in (
        {"dispatch": "thread"},
        {"sync_dispatch": "bogus"},
        {"on_overflow": "explode"},
        {"queue_maxsize": -1},
    ):
        with pytest.raises(ConfigError):
            AgentEventBus(**kwargs)
    assert isinstance(AgentEventBus(), EventBusProtocol)


@pytest.mark.parametrize("spelling", [T.TOOL_CALL_STARTED, "tool_call_started", "TOOL_CALL_STARTED"])
def test_subscribe_by_any_spelling(spelling: Any) -> None:
    bus = AgentEventBus()
    got: list[AgentEvent] = []
    bus.subscribe(spelling, got.append)
    assert bus.wants(T.TOOL_CALL_STARTED) and bus.wants("tool_call_started")
    assert bus.wants("TOOL_CALL_STARTED")
    assert not bus.wants(T.TOOL_CALL_COMPLETED)
    ev = bus.emit("tool_call_started", ToolCallStartedPayload(name="x"), session_id="s")
    assert got == [ev] and ev is not None
    assert ev.payload["name"] == "x" and ev.session_id == "s"
    with pytest.raises(ConfigError):
        bus.subscribe("tool.before", got.append)
    with pytest.raises(ConfigError):
        bus.subscribe(None, "nope")  # type: ignore[arg-type]


def test_buses_are_isolated() -> None:
    a, b = AgentEventBus(), AgentEventBus()
    got_a: list[AgentEvent] = []
    a.subscribe(None, got_a.append)
    assert a.wants(T.SYSTEM_LOG) and not b.wants(T.SYSTEM_LOG)
    assert b.emit(T.SYSTEM_LOG, SystemLogPayload(message="x")) is None
    assert got_a == []


def test_emit_builds_nothing_when_unwanted() -> None:
    bus = AgentEventBus()
    built: list[int] = []

    def factory() -> SystemLogPayload:
        built.append(1)
        return SystemLogPayload(message="expensive")

    assert bus.emit(T.SYSTEM_LOG, factory) is None
    assert built == []
    got: list[AgentEvent] = []
    unsub = bus.subscribe(T.AGENT_ERROR, got.append)
    assert bus.emit(T.SYSTEM_LOG, factory) is None  # other type subscribed: still nothing
    assert built == []
    unsub()
    bus.subscribe(T.SYSTEM_LOG, got.append)
    ev = bus.emit(T.SYSTEM_LOG, factory)
    assert built == [1]
    assert got == [ev] and got[0].payload == {"message": "expensive", "level": "info"}
    ev2 = bus.emit(T.SYSTEM_LOG, {"message": "plain"})
    assert ev2 is not None and ev2.payload == {"message": "plain"} and ev2.data is None


def test_ordering_global_first_then_priority_then_subscription() -> None:
    bus = AgentEventBus()
    calls: list[str] = []
    bus.subscribe(T.ROUND_STARTED, lambda e: calls.append("typed-late"), priority=5)
    bus.subscribe(T.ROUND_STARTED, lambda e: calls.append("typed-a"))
    bus.subscribe(None, lambda e: calls.append("global-b"), priority=1)
    bus.subscribe(T.ROUND_STARTED, lambda e: calls.append("typed-early"), priority=-1)
    bus.subscribe(None, lambda e: calls.append("global-a"))
    bus.emit(T.ROUND_STARTED)
    assert calls == ["global-a", "global-b", "typed-early", "typed-a", "typed-late"]


def test_unsubscribe_function_and_by_handler() -> None:
    bus = AgentEventBus()
    got: list[str] = []

    def h(e: AgentEvent) -> None:
        got.append("h")

    unsub = bus.subscribe(T.SYSTEM_LOG, h)
    bus.subscribe(T.AGENT_ERROR, h)
    keep = bus.subscribe(T.SYSTEM_LOG, lambda e: got.append("other"))
    unsub()
    unsub()  # idempotent
    bus.emit(T.SYSTEM_LOG)
    assert got == ["other"]
    assert bus.unsubscribe(h) is True  # removes the AGENT_ERROR one
    assert bus.unsubscribe(h) is False
    assert not bus.wants(T.AGENT_ERROR)
    keep()
    assert not bus.wants(T.SYSTEM_LOG)


def test_seq_and_mono_increase_in_publish_order() -> None:
    bus = AgentEventBus()
    got: list[AgentEvent] = []
    bus.subscribe(None, got.append)
    for i in range(300):
        bus.emit(list(T)[i % len(T)], {"i": i})
    assert [e.payload["i"] for e in got] == list(range(300))
    for a, b in itertools.pairwise(got):
        assert b.seq > a.seq and b.mono > a.mono


def test_inline_errors_propagate_unless_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    def boom(e: AgentEvent) -> None:
        raise RuntimeError("subscriber broke")

    after: list[AgentEvent] = []
    bus = AgentEventBus()
    bus.subscribe(T.SYSTEM_LOG, boom)
    bus.subscribe(T.SYSTEM_LOG, after.append)
    with pytest.raises(RuntimeError, match="subscriber broke"):
        bus.emit(T.SYSTEM_LOG)
    assert after == []

    quiet = AgentEventBus(suppress_subscriber_errors=True)
    quiet.subscribe(T.SYSTEM_LOG, boom)
    quiet.subscribe(T.SYSTEM_LOG, after.append)
    with caplog.at_level(logging.ERROR, logger="power_loop.events"):
        quiet.emit(T.SYSTEM_LOG)
    assert len(after) == 1
    assert any("boom" in r.getMessage() and r.name == "power_loop.events" for r in caplog.records)


async def test_inline_async_handlers_are_tracked_and_drained(caplog: pytest.LogCaptureFixture) -> None:
    bus = AgentEventBus()
    gate = asyncio.Event()
    done: list[int] = []

    async def slow(e: AgentEvent) -> None:
        await gate.wait()
        done.append(e.payload["i"])

    async def bad(e: AgentEvent) -> None:
        raise ValueError("async subscriber broke")

    bus.subscribe(T.SYSTEM_LOG, slow)
    bus.subscribe(T.AGENT_ERROR, bad)
    bus.emit(T.SYSTEM_LOG, {"i": 1})
    bus.emit(T.SYSTEM_LOG, {"i": 2})
    assert done == []
    assert await bus.drain(timeout=0.05) is False  # gate closed: cannot finish, nothing cancelled
    gate.set()
    assert await bus.drain() is True
    assert sorted(done) == [1, 2]
    with caplog.at_level(logging.ERROR, logger="power_loop.events"):
        bus.emit(T.AGENT_ERROR)  # does not raise: the error happens in a task
        assert await bus.drain() is True
    assert any("async subscriber broke" in (r.exc_text or "") for r in caplog.records)


async def test_publish_async_awaits_handlers_in_order() -> None:
    bus = AgentEventBus()
    calls: list[str] = []

    async def first(e: AgentEvent) -> None:
        await asyncio.sleep(0)
        calls.append("first")

    bus.subscribe(T.SYSTEM_LOG, first)
    bus.subscribe(T.SYSTEM_LOG, lambda e: calls.append("second"))
    await bus.publish_async(AgentEvent(T.SYSTEM_LOG))
    assert calls == ["first", "second"]

    async def bad(e: AgentEvent) -> None:
        raise KeyError("x")

    bus.subscribe(T.AGENT_ERROR, bad)
    with pytest.raises(KeyError):
        await bus.publish_async(AgentEvent(T.AGENT_ERROR))


def test_inline_async_handler_without_running_loop_completes_before_publish_returns() -> None:
    bus = AgentEventBus()
    done: list[str] = []

    async def h(e: AgentEvent) -> None:
        await asyncio.sleep(0)
        done.append("ran")

    bus.subscribe(T.SYSTEM_LOG, h)
    bus.emit(T.SYSTEM_LOG)
    assert done == ["ran"]


async def test_background_defers_and_preserves_order(caplog: pytest.LogCaptureFixture) -> None:
    bus = AgentEventBus(dispatch="background")
    got: list[int] = []

    async def slow(e: AgentEvent) -> None:
        await asyncio.sleep(0)
        got.append(e.payload["i"])

    def boom(e: AgentEvent) -> None:
        raise RuntimeError("bg broke")

    bus.subscribe(T.SYSTEM_LOG, boom)
    bus.subscribe(T.SYSTEM_LOG, slow)
    with caplog.at_level(logging.ERROR, logger="power_loop.events"):
        for i in range(20):
            bus.emit(T.SYSTEM_LOG, {"i": i})  # never raises in background mode
        assert got == []  # nothing ran during publish
        assert await bus.drain() is True
    assert got == list(range(20))
    assert sum("boom" in r.getMessage() for r in caplog.records) == 20
    await bus.aclose()


def test_background_without_event_loop_is_config_error() -> None:
    bus = AgentEventBus(dispatch="background")
    bus.subscribe(None, lambda e: None)
    with pytest.raises(ConfigError, match="running asyncio event loop"):
        bus.emit(T.SYSTEM_LOG)


@pytest.mark.parametrize("policy", ["drop_newest", "drop_oldest"])
async def test_overflow_drop_policies(policy: str) -> None:
    bus = AgentEventBus(dispatch="background", queue_maxsize=3, on_overflow=policy)
    got: list[int] = []
    bus.subscribe(T.SYSTEM_LOG, lambda e: got.append(e.payload["i"]))
    for i in range(7):
        bus.emit(T.SYSTEM_LOG, {"i": i})  # no await in between: the worker cannot run yet
    assert bus.dropped == 4
    await bus.drain()
    assert got == ([0, 1, 2] if policy == "drop_newest" else [4, 5, 6])
    await bus.aclose()


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 30),
    maxsize=st.integers(1, 10),
    policy=st.sampled_from(["drop_newest", "drop_oldest", "block"]),
)
def test_overflow_property(n: int, maxsize: int, policy: str) -> None:
    async def scenario() -> tuple[list[int], int]:
        bus = AgentEventBus(dispatch="background", queue_maxsize=maxsize, on_overflow=policy)
        got: list[int] = []
        bus.subscribe(None, lambda e: got.append(e.payload["i"]))
        for i in range(n):
            bus.emit(T.SYSTEM_LOG, {"i": i})
        await bus.drain()
        await bus.aclose()
        return got, bus.dropped

    got, dropped = asyncio.run(scenario())
    kept = min(n, maxsize)
    if policy == "block":  # never loses events
        assert got == list(range(n)) and dropped == 0
    elif policy == "drop_newest":
        assert got == list(range(kept)) and dropped == n - kept
    else:
        assert got == list(range(n - kept, n)) and dropped == n - kept


async def test_block_policy_publish_async_waits_for_room() -> None:
    bus = AgentEventBus(dispatch="background", queue_maxsize=1, on_overflow="block")
    gate = asyncio.Event()
    started = asyncio.Event()
    got: list[int] = []

    async def handler(e: AgentEvent) -> None:
        started.set()
        await gate.wait()
        got.append(e.payload["i"])

    bus.subscribe(T.SYSTEM_LOG, handler)
    bus.emit(T.SYSTEM_LOG, {"i": 1})
    await started.wait()  # the worker holds event 1
    bus.emit(T.SYSTEM_LOG, {"i": 2})  # fills the buffer
    third = asyncio.create_task(bus.publish_async(AgentEvent(T.SYSTEM_LOG, payload={"i": 3})))
    for _ in range(10):
        await asyncio.sleep(0)
    assert not third.done()  # back-pressure: waiting for room
    gate.set()
    await third
    await bus.drain()
    assert got == [1, 2, 3] and bus.dropped == 0
    await bus.aclose()


@pytest.mark.parametrize("mode", ["background", "inline"])
async def test_publish_from_another_thread_reaches_loop(mode: str) -> None:
    bus = AgentEventBus(dispatch=mode)
    got: list[tuple[int, int]] = []
    bus.subscribe(T.SYSTEM_LOG, lambda e: got.append((e.payload["i"], threading.get_ident())))
    bus.emit(T.SYSTEM_LOG, {"i": 0})  # binds the background worker to this loop
    worker = threading.Thread(target=lambda: bus.emit(T.SYSTEM_LOG, {"i": 1}))
    worker.start()
    await asyncio.to_thread(worker.join)
    await bus.drain()
    assert [i for i, _ in got] == [0, 1]
    if mode == "background":
        assert {tid for _, tid in got} == {threading.get_ident()}  # handlers ran on the loop thread
    await bus.aclose()


async def test_aclose_cancels_stuck_work_and_counts_undelivered() -> None:
    bus = AgentEventBus(dispatch="background")
    started = asyncio.Event()
    got: list[int] = []

    async def stuck(e: AgentEvent) -> None:
        started.set()
        await asyncio.Event().wait()

    bus.subscribe(T.SYSTEM_LOG, stuck)
    bus.subscribe(T.AGENT_ERROR, lambda e: got.append(1))
    for _ in range(3):
        bus.emit(T.SYSTEM_LOG)
    await started.wait()
    await bus.aclose(timeout=0.01)
    assert bus.dropped == 2  # the in-flight one was cancelled, two were still buffered
    bus.emit(T.AGENT_ERROR)  # the bus stays usable: a fresh worker starts
    assert await bus.drain() is True
    assert got == [1]
    await bus.aclose()


async def test_shutdown_on_loop_thread_schedules_close() -> None:
    bus = AgentEventBus(dispatch="background")
    got: list[int] = []
    bus.subscribe(None, lambda e: got.append(1))
    bus.emit(T.SYSTEM_LOG)
    bus.shutdown()
    await bus.drain()
    assert got == [1]
    assert bus._worker is None  # closed by the scheduled aclose


async def test_stream_filters_and_ends_on_close() -> None:
    bus = AgentEventBus()
    async with bus.stream([T.STREAM_DELTA, "tool_call_delta"], session_id="s1") as events:
        assert bus.wants(T.STREAM_DELTA) and not bus.wants(T.SYSTEM_LOG)
        bus.emit(T.STREAM_DELTA, {"text": "a"}, session_id="s1")
        bus.emit(T.STREAM_DELTA, {"text": "other"}, session_id="s2")
        bus.emit(T.SYSTEM_LOG, {"text": "ignored"}, session_id="s1")
        bus.emit(T.TOOL_CALL_DELTA, {"text": "b"}, session_id="s1")
        events.close()
        bus.emit(T.STREAM_DELTA, {"text": "late"}, session_id="s1")
        texts = [e.payload["text"] async for e in events]
    assert texts == ["a", "b"]
    assert not bus.wants(T.STREAM_DELTA)  # unsubscribed on exit


async def test_stream_consumer_waits_for_events_and_thread_publishers() -> None:
    bus = AgentEventBus()
    async with bus.stream(maxsize=0) as events:

        async def produce() -> None:
            await asyncio.sleep(0)
            bus.emit(T.SYSTEM_LOG, {"i": 0})
            t = threading.Thread(target=lambda: bus.emit(T.SYSTEM_LOG, {"i": 1}))
            t.start()
            await asyncio.to_thread(t.join)
            await asyncio.sleep(0)
            events.close()

        task = asyncio.create_task(produce())
        got = [e.payload["i"] async for e in events]
        await task
    assert got == [0, 1]


async def test_stream_bounded_drops_oldest() -> None:
    bus = AgentEventBus()
    async with bus.stream(maxsize=2) as events:
        for i in range(5):
            bus.emit(T.SYSTEM_LOG, {"i": i})
        events.close()
        got = [e.payload["i"] async for e in events]
    assert got == [3, 4] and events.dropped == 3


async def test_stream_misuse_is_config_error() -> None:
    bus = AgentEventBus()
    with pytest.raises(ConfigError):
        bus.stream(["nope"])
    with pytest.raises(ConfigError):
        await bus.stream().__anext__()


async def test_shutdown_from_another_thread_blocks_until_closed() -> None:
    bus = AgentEventBus(dispatch="background")
    got: list[int] = []

    async def h(e: AgentEvent) -> None:
        await asyncio.sleep(0)
        got.append(e.payload["i"])

    bus.subscribe(T.SYSTEM_LOG, h)
    for i in range(5):
        bus.emit(T.SYSTEM_LOG, {"i": i})
    await asyncio.to_thread(bus.shutdown)
    assert got == [0, 1, 2, 3, 4]  # flushed before shutdown returned
    assert bus.dropped == 0


def test_public_surface() -> None:
    import power_loop.events as pkg
    from power_loop.events import PAYLOAD_TYPES

    payload_names = {c.__name__ for c in PAYLOAD_TYPES.values()} | {
        "AutoCompactStatusPayload", "RoundUsageStatusPayload", "HitRoundLimitStatusPayload",
        "BudgetExceededStatusPayload", "PhaseEventPayload", "BaseEventPayload",
    }  # fmt: skip
    assert set(pkg.__all__) == payload_names | {
        "PAYLOAD_TYPES", "AgentEvent", "AgentEventBus", "AgentEventType", "EventBusProtocol",
        "EventHandler", "EventStream", "resolve_event_type",
    }  # fmt: skip
    for name in pkg.__all__:
        assert getattr(pkg, name) is not None
