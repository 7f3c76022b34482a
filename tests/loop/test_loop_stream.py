"""`loop.stream()`: live events of one send, built on the same engine as `send`."""

from __future__ import annotations

import asyncio
import json

from loop_helpers import check_history, make_tools

from power_loop import AgentEventType, StatefulResult
from power_loop.testing import ScriptedLLM

T = AgentEventType


async def test_stream_yields_deltas_tool_events_and_the_final_result(make_loop):
    llm = ScriptedLLM(
        [ScriptedLLM.tool_call("shout", {"x": "hello world, streamed"}), ScriptedLLM.text("all done, loudly")]
    )
    loop = make_loop(llm=llm, tool_registry=make_tools(shout=lambda x: x.upper()))
    sid = await loop.new_session()
    events = [event async for event in loop.stream("go", sid)]

    assert events[-1].type == T.SEND_COMPLETED
    result = events[-1].data.result
    assert isinstance(result, StatefulResult)
    assert result.status == "completed" and result.final_text == "all done, loudly" and result.tool_calls == 1

    deltas = [e.data for e in events if e.type == T.TOOL_CALL_DELTA]
    assert len(deltas) > 1, "arguments arrive in several fragments"
    assert json.loads("".join(d.arguments_delta for d in deltas)) == {"x": "hello world, streamed"}
    assert deltas[0].name == "shout" and deltas[0].tool_call_id
    text = "".join(e.data.text for e in events if e.type == T.STREAM_DELTA)
    assert text == "all done, loudly"

    kinds = [e.type for e in events]
    assert (
        kinds.index(T.TOOL_CALL_DELTA) < kinds.index(T.TOOL_CALL_STARTED) < kinds.index(T.TOOL_CALL_COMPLETED)
    )
    assert kinds.count(T.ROUND_COMPLETED) == 2
    completed = next(e for e in events if e.type == T.TOOL_CALL_COMPLETED)
    assert completed.data.output == "HELLO WORLD, STREAMED"
    assert all(e.session_id == sid for e in events)
    check_history(await loop.get_messages(sid))


async def test_stream_and_send_persist_the_same_conversation(make_loop):
    script = [ScriptedLLM.tool_call("shout", {"x": "a"}), ScriptedLLM.text("fine")]
    loop = make_loop(llm=ScriptedLLM(script + script), tool_registry=make_tools(shout=lambda x: x.upper()))
    streamed, sent = await loop.new_session(), await loop.new_session()
    _ = [e async for e in loop.stream("go", streamed)]
    await loop.send("go", sent)
    a, b = await loop.get_messages(streamed), await loop.get_messages(sent)
    strip = lambda ms: [{k: v for k, v in m.items() if k not in ("tool_calls", "tool_call_id")} for m in ms]  # noqa: E731
    assert strip(a) == strip(b)


async def test_event_filter_keeps_the_final_event(make_loop):
    loop = make_loop(llm=ScriptedLLM([ScriptedLLM.text("one two three")]))
    sid = await loop.new_session()
    events = [e async for e in loop.stream("go", sid, events=["stream_delta"])]
    assert {e.type for e in events} == {T.STREAM_DELTA, T.SEND_COMPLETED}
    assert events[-1].data.final_text == "one two three"


async def test_leaving_the_stream_early_cancels_the_send_and_keeps_history_valid(make_loop):
    entered = asyncio.Event()

    async def hang(x: str) -> str:
        entered.set()
        await asyncio.sleep(30)
        return "never"

    llm = ScriptedLLM([ScriptedLLM.tool_call("hang", {"x": "a"}), ScriptedLLM.text("after")])
    loop = make_loop(llm=llm, tool_registry=make_tools(hang=hang))
    sid = await loop.new_session()
    stream = loop.stream("go", sid)
    async for event in stream:
        if event.type == T.TOOL_CALL_STARTED:
            break
    await stream.aclose()
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert messages[-1]["role"] == "tool" and messages[-1]["content"].startswith("[cancelled")
    # The session is free again and continues normally.
    result = await asyncio.wait_for(loop.send("again", sid), 5)
    assert result.final_text == "after"


async def test_cancelling_the_consumer_cancels_the_send(make_loop):
    entered = asyncio.Event()

    async def hang(x: str) -> str:
        entered.set()
        await asyncio.sleep(30)
        return "never"

    loop = make_loop(
        llm=ScriptedLLM([ScriptedLLM.tool_call("hang", {"x": "a"})]), tool_registry=make_tools(hang=hang)
    )
    sid = await loop.new_session()

    async def consume() -> None:
        async for _ in loop.stream("go", sid):
            pass

    task = asyncio.create_task(consume())
    await entered.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    check_history(await loop.get_messages(sid))
    assert await loop.get_pending(sid) is None


async def test_stream_errors_surface_to_the_consumer(make_loop):
    loop = make_loop(llm=ScriptedLLM([ScriptedLLM.error(ValueError("provider said no"))]))
    sid = await loop.new_session()
    seen = []
    try:
        async for event in loop.stream("go", sid):
            seen.append(event.type)
    except ValueError as exc:
        assert "provider said no" in str(exc)
    else:
        raise AssertionError("the provider error must reach the consumer")
    assert T.SEND_COMPLETED not in seen
