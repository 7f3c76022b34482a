"""`send_events`: a send as an event iterator, with a stand-in for the send itself."""

from __future__ import annotations

import asyncio

import pytest

from power_loop import AgentEventBus, AgentEventType, StatefulResult
from power_loop.loop._send_stream import send_events


def _send(log: list[str], *, gate: asyncio.Event | None = None, fail: bool = False):
    async def start(tap: AgentEventBus) -> StatefulResult:
        tap.emit(AgentEventType.ROUND_STARTED, session_id="s")
        tap.emit(AgentEventType.STREAM_DELTA, session_id="s")
        try:
            if gate is not None:
                await gate.wait()
            if fail:
                raise RuntimeError("model down")
            return StatefulResult(session_id="s", status="completed", final_text="done", rounds=1)
        finally:
            log.append("cleaned up")

    return start


async def test_events_then_the_result_as_send_completed() -> None:
    log: list[str] = []
    seen = [e async for e in send_events(_send(log), "s", None)]
    assert [e.type for e in seen] == [
        AgentEventType.ROUND_STARTED,
        AgentEventType.STREAM_DELTA,
        AgentEventType.SEND_COMPLETED,
    ]
    assert seen[-1].data.result.final_text == "done" and seen[-1].session_id == "s"


async def test_a_filter_keeps_only_its_types_and_the_final_event() -> None:
    seen = [e.type async for e in send_events(_send([]), "s", ["stream_delta"])]
    assert seen == [AgentEventType.STREAM_DELTA, AgentEventType.SEND_COMPLETED]


async def test_closing_early_cancels_the_send_and_waits_for_its_cleanup() -> None:
    log: list[str] = []
    events = send_events(_send(log, gate=asyncio.Event()), "s", None)
    first = await events.__anext__()
    assert first.type == AgentEventType.ROUND_STARTED and log == []
    await events.aclose()
    assert log == ["cleaned up"]


async def test_a_failing_send_raises_to_the_consumer() -> None:
    log: list[str] = []
    with pytest.raises(RuntimeError, match="model down"):
        async for _ in send_events(_send(log, fail=True), "s", None):
            pass
    assert log == ["cleaned up"]
