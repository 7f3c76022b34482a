"""Steering a running send: ``follow_up(text, sid, mode="steer")`` (issue 14 item 3).

Every test gates the scripted model and tools with `asyncio.Event` s (no sleeps): a model call or a
tool blocks until the test has steered. All run on a SQLite file, PostgreSQL and MySQL.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from loop_helpers import check_history, make_tools

from power_loop import (
    AgentEvent,
    AgentEventType,
    AgentLoopConfig,
    FollowUpQueued,
    HookPoint,
    LLMRequest,
    StatefulAgentLoop,
    StatefulResult,
    SteerInterruptedPayload,
    StopPolicy,
    wait_or_steer,
)
from power_loop.errors import ConfigError
from power_loop.testing import ScriptedLLM
from power_loop.testing._scripted import ScriptedTurn

WAIT = 60.0  # generous: the machine is loaded; nothing here waits for time to pass


class GatedModel:
    """A responder: each call takes the next turn; a turn ``None`` blocks until cancelled (a model
    call in flight), recording that it was cancelled."""

    def __init__(self, *turns: ScriptedTurn | None) -> None:
        self.turns = list(turns)
        self.calls = 0
        self.in_flight = asyncio.Event()
        self.cancelled = 0

    async def __call__(self, request: LLMRequest) -> ScriptedTurn:
        self.calls += 1
        turn = self.turns.pop(0)
        if turn is not None:
            return turn
        self.in_flight.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        raise AssertionError("unreachable")


def _events(loop: StatefulAgentLoop) -> list[AgentEvent]:
    seen: list[AgentEvent] = []
    loop.event_bus.subscribe(None, seen.append)
    return seen


async def _steer_payloads(loop: StatefulAgentLoop, seen: list[AgentEvent]) -> list[SteerInterruptedPayload]:
    await loop.event_bus.drain()
    return [e.data for e in seen if e.type is AgentEventType.STEER_INTERRUPTED]


async def _steer_when(gate: asyncio.Event, steer: Any) -> Any:
    await asyncio.wait_for(gate.wait(), WAIT)
    return await steer


async def test_a_steer_cancels_the_model_call_and_becomes_the_next_user_message(
    make_loop: Callable[..., StatefulAgentLoop],
) -> None:
    model = GatedModel(None, ScriptedLLM.text("Paris, as you asked."))
    loop = make_loop(llm=ScriptedLLM(responder=model))
    seen = _events(loop)
    sid = await loop.new_session()
    send = asyncio.ensure_future(loop.send("Write a long essay on Rome.", sid))
    queued = await _steer_when(
        model.in_flight, loop.follow_up("Actually, just name a city.", sid, mode="steer")
    )
    assert isinstance(queued, FollowUpQueued)
    result = await asyncio.wait_for(send, WAIT)
    assert result.status == "completed" and result.final_text == "Paris, as you asked."
    assert result.steers == 1 and model.cancelled == 1
    messages = await loop.get_messages(sid)
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Write a long essay on Rome."),
        ("user", "Actually, just name a city."),
        ("assistant", "Paris, as you asked."),
    ]
    assert messages[1]["name"] == "steer"
    check_history(messages)
    (payload,) = await _steer_payloads(loop, seen)
    assert payload.interrupted == "model_call" and payload.round_index == 0
    assert payload.item_id == str(queued.item_id) and payload.cancelled_tools == []


async def test_a_steer_during_a_tool_batch_waits_for_the_batch(
    make_loop: Callable[..., StatefulAgentLoop],
) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(x: str) -> str:
        started.set()
        await release.wait()
        return f"slow done {x}"

    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_calls([("slow", {"x": "a"}), ("fast", {"x": "b"})]),
            ScriptedLLM.text("Stopped, as you said."),
        ]
    )
    loop = make_loop(llm=llm, tool_registry=make_tools(slow=slow, fast=lambda x: f"fast {x}"))
    seen = _events(loop)
    sid = await loop.new_session()
    send = asyncio.ensure_future(loop.send("Do two things.", sid))
    await _steer_when(started, loop.follow_up("Stop after these.", sid, mode="steer"))
    assert not send.done()
    release.set()
    result = await asyncio.wait_for(send, WAIT)
    assert result.status == "completed" and result.steers == 1
    messages = await loop.get_messages(sid)
    check_history(messages)
    roles = [(m["role"], m.get("name")) for m in messages]
    assert roles == [
        ("user", None),
        ("assistant", None),
        ("tool", "slow"),
        ("tool", "fast"),
        ("user", "steer"),
        ("assistant", None),
    ]
    assert messages[2]["content"] == "slow done a" and messages[4]["content"] == "Stop after these."
    # The model's second request ends with the steering text after both results.
    assert llm.requests[1].messages[-1]["content"] == "Stop after these."
    (payload,) = await _steer_payloads(loop, seen)
    assert payload.interrupted == "tool_batch" and payload.cancelled_tools == []


async def test_stop_policy_lets_a_steer_cancel_an_interruptible_tool(
    make_loop: Callable[..., StatefulAgentLoop],
) -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    async def crawl(x: str) -> str:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(x)
            raise
        return "never"

    llm = ScriptedLLM(
        [ScriptedLLM.tool_calls([("crawl", {"x": "web"}), ("note", {"x": "n"})]), ScriptedLLM.text("ok")]
    )
    config = AgentLoopConfig(stop_policy=StopPolicy(interruptible_tools=["crawl"]))
    registry = make_tools(crawl=crawl, note=lambda x: f"noted {x}")
    loop = make_loop(llm=llm, tool_registry=registry, config=config)
    seen = _events(loop)
    sid = await loop.new_session()
    send = asyncio.ensure_future(loop.send("Research.", sid))
    await _steer_when(started, loop.follow_up("Enough research.", sid, mode="steer"))
    result = await asyncio.wait_for(send, WAIT)
    assert result.status == "completed" and cancelled == ["web"]
    messages = await loop.get_messages(sid)
    check_history(messages)
    results = {m["name"]: m["content"] for m in messages if m["role"] == "tool"}
    assert results == {"crawl": "<interrupted: steered>", "note": "noted n"}
    (payload,) = await _steer_payloads(loop, seen)
    assert payload.interrupted == "tool_batch" and payload.cancelled_tools == ["crawl"]
    completed = [e.data for e in seen if e.type is AgentEventType.TOOL_CALL_COMPLETED]
    assert {(p.name, p.output) for p in completed} >= {("crawl", "<interrupted: steered>")}


async def test_a_predicate_policy_and_wait_or_steer_in_a_tool(
    make_loop: Callable[..., StatefulAgentLoop],
) -> None:
    started = asyncio.Event()
    outcome: list[bool] = []

    async def watch(x: str) -> str:
        started.set()
        steered = await wait_or_steer(3600)  # the tool is not interruptible: it cuts its wait short
        outcome.append(steered)
        return "stopped watching" if steered else "watched"

    policy = StopPolicy(interruptible=lambda name: name.startswith("fetch_"))
    assert policy.can_interrupt("fetch_page") and not policy.can_interrupt("watch")
    llm = ScriptedLLM([ScriptedLLM.tool_call("watch", {"x": "x"}), ScriptedLLM.text("done")])
    loop = make_loop(
        llm=llm, tool_registry=make_tools(watch=watch), config=AgentLoopConfig(stop_policy=policy)
    )
    sid = await loop.new_session()
    assert not loop.steer_event(sid).is_set()
    send = asyncio.ensure_future(loop.send("Watch.", sid))
    await _steer_when(started, loop.follow_up("Stop watching.", sid, mode="steer"))
    result = await asyncio.wait_for(send, WAIT)
    assert outcome == [True] and result.steers == 1
    tool = next(m for m in await loop.get_messages(sid) if m["role"] == "tool")
    assert tool["content"] == "stopped watching"
    assert await wait_or_steer(asyncio.sleep(0, "x")) is False  # outside a send: just awaits


async def test_a_steer_with_no_send_running_is_a_send(make_loop: Callable[..., StatefulAgentLoop]) -> None:
    loop = make_loop(llm=ScriptedLLM([ScriptedLLM.text("hello")]))
    sid = await loop.new_session()
    result = await loop.follow_up("hi", sid, mode="steer")
    assert isinstance(result, StatefulResult) and result.final_text == "hello" and result.steers == 0
    with pytest.raises(ConfigError, match="mode"):
        await loop.follow_up("hi", sid, mode="now")


async def test_a_queued_follow_up_still_waits_for_the_round_boundary(
    make_loop: Callable[..., StatefulAgentLoop],
) -> None:
    # mode="queue" (the default) does not interrupt: the model call in flight completes.
    gate, answered = asyncio.Event(), asyncio.Event()

    async def responder(request: LLMRequest) -> ScriptedTurn:
        if len(request.messages) == 1:
            gate.set()
            await answered.wait()
            return ScriptedLLM.text("first answer")
        return ScriptedLLM.text("second answer")

    loop = make_loop(llm=ScriptedLLM(responder=responder))
    seen = _events(loop)
    sid = await loop.new_session()
    send = asyncio.ensure_future(loop.send("one", sid))
    await _steer_when(gate, loop.follow_up("two", sid))
    answered.set()
    result = await asyncio.wait_for(send, WAIT)
    assert result.final_text == "second answer" and result.steers == 0
    assert [m["role"] for m in await loop.get_messages(sid)] == ["user", "assistant", "user", "assistant"]
    assert await _steer_payloads(loop, seen) == []


async def test_a_steer_from_another_loop_on_the_same_store_interrupts_the_leased_send(
    make_loop: Callable[..., StatefulAgentLoop],
) -> None:
    # Two loops on one database behave as two processes: the second finds the session leased
    # (SessionBusy), queues the steer durably, and the running send finds it by polling.
    model = GatedModel(None, ScriptedLLM.text("switched"))
    config = AgentLoopConfig(stop_policy=StopPolicy(poll_interval_s=0.05))
    driver = make_loop(llm=ScriptedLLM(responder=model), lease_ttl_s=30, config=config)
    other = make_loop(llm=ScriptedLLM(), lease_ttl_s=30)
    seen = _events(driver)
    sid = await driver.new_session()
    send = asyncio.ensure_future(driver.send("Start a long job.", sid))
    queued = await _steer_when(model.in_flight, other.follow_up("Switch tasks.", sid, mode="steer"))
    assert isinstance(queued, FollowUpQueued)
    result = await asyncio.wait_for(send, WAIT)
    assert result.final_text == "switched" and result.steers == 1 and model.cancelled == 1
    messages = await other.get_messages(sid)
    check_history(messages)
    assert [m["content"] for m in messages] == ["Start a long job.", "Switch tasks.", "switched"]
    (payload,) = await _steer_payloads(driver, seen)
    assert payload.interrupted == "model_call" and payload.item_id == str(queued.item_id)
    assert await (await driver.ensure_store()).latest_steer(sid) == 0  # consumed exactly once


STEERING_PROCESS = r"""
import asyncio, json, sys
from power_loop import FollowUpQueued, StatefulAgentLoop
from power_loop.testing import ScriptedLLM

async def main(dsn, prefix, sid):
    async with StatefulAgentLoop(llm=ScriptedLLM(), dsn=dsn, table_prefix=prefix, lease_ttl_s=30) as loop:
        queued = await loop.follow_up("Steered from another process.", sid, mode="steer")
        print(json.dumps({"queued": isinstance(queued, FollowUpQueued), "item_id": queued.item_id}))

asyncio.run(main(*sys.argv[1:4]))
"""


@pytest.mark.slow
async def test_a_steer_from_another_process_interrupts_the_leased_send(
    make_loop: Callable[..., StatefulAgentLoop], target: dict[str, str]
) -> None:
    model = GatedModel(None, ScriptedLLM.text("done differently"))
    config = AgentLoopConfig(stop_policy=StopPolicy(poll_interval_s=0.05))
    loop = make_loop(llm=ScriptedLLM(responder=model), lease_ttl_s=30, config=config)
    seen = _events(loop)
    sid = await loop.new_session()
    send = asyncio.ensure_future(loop.send("Start.", sid))
    await asyncio.wait_for(model.in_flight.wait(), WAIT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        STEERING_PROCESS,
        target["dsn"],
        target["table_prefix"],
        sid,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 0, err.decode()[-2000:]
    report = json.loads(out)
    assert report["queued"] is True
    result = await asyncio.wait_for(send, WAIT)
    assert result.final_text == "done differently" and result.steers == 1 and model.cancelled == 1
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert [m["content"] for m in messages] == ["Start.", "Steered from another process.", "done differently"]
    (payload,) = await _steer_payloads(loop, seen)
    assert payload.interrupted == "model_call" and payload.item_id == str(report["item_id"])


async def test_a_steer_that_comes_before_the_model_call_starts_skips_it(
    make_loop: Callable[..., StatefulAgentLoop],
) -> None:
    # The steer is queued by an llm.before hook: the model call of that round never starts.
    llm = ScriptedLLM([ScriptedLLM.text("answered the steer")])
    loop = make_loop(llm=llm)
    seen = _events(loop)
    sid = await loop.new_session()

    async def steer_once(ctx: Any) -> None:
        if ctx.round_index == 0:
            queued = await loop.follow_up("Steered before the call.", sid, mode="steer")
            assert isinstance(queued, FollowUpQueued)

    loop.hooks.register(HookPoint.LLM_BEFORE, steer_once)
    result = await loop.send("Hello.", sid)
    assert result.final_text == "answered the steer" and result.steers == 1 and len(llm.requests) == 1
    assert llm.requests[0].messages[-1]["content"] == "Steered before the call."
    (payload,) = await _steer_payloads(loop, seen)
    assert (payload.interrupted, payload.round_index) == ("model_call", 0)
    check_history(await loop.get_messages(sid))


async def test_a_streamed_send_shows_the_steer(make_loop: Callable[..., StatefulAgentLoop]) -> None:
    model = GatedModel(None, ScriptedLLM.text("short answer"))
    loop = make_loop(llm=ScriptedLLM(responder=model))
    sid = await loop.new_session()
    types: list[str] = []

    async def consume() -> None:
        async for event in loop.stream("Long answer please.", sid):
            types.append(str(event.type))

    streaming = asyncio.ensure_future(consume())
    await _steer_when(model.in_flight, loop.follow_up("Short, please.", sid, mode="steer"))
    await asyncio.wait_for(streaming, WAIT)
    assert "steer_interrupted" in types and "follow_up_delivered" in types
    assert (
        types.index("steer_interrupted") < types.index("follow_up_delivered") < types.index("send_completed")
    )
    check_history(await loop.get_messages(sid))


def test_follow_up_sync_takes_the_mode(tmp_path: Path) -> None:
    loop = StatefulAgentLoop(llm=ScriptedLLM([ScriptedLLM.text("hi")]), db_path=str(tmp_path / "s.db"))
    try:
        sid = loop.new_session_sync()
        result = loop.follow_up_sync("hello", sid, mode="steer")
        assert isinstance(result, StatefulResult) and result.final_text == "hi"
    finally:
        loop.close()


def test_stop_policy_is_validated() -> None:
    assert StopPolicy().interruptible_tools == frozenset()
    for bad in (
        {"interruptible_tools": "crawl"},
        {"interruptible_tools": [1]},
        {"interruptible": 3},
        {"poll_interval_s": 0},
        {"poll_interval_s": float("nan")},
        {"poll_interval_s": True},
    ):
        with pytest.raises(ConfigError):
            StopPolicy(**bad)
    with pytest.raises(ConfigError, match="stop_policy"):
        AgentLoopConfig(stop_policy={"interruptible_tools": []})  # type: ignore[arg-type]
