"""Interrupted sends, human input, follow-ups and cancellation."""

from __future__ import annotations

import asyncio
import threading

import pytest
from loop_helpers import check_history, make_tools

from power_loop import (
    CancellationToken,
    FollowUpQueued,
    HookPoint,
    InteractionNotFoundError,
    LeaseLostError,
    SessionPendingError,
    ToolRegistry,
)
from power_loop.testing import ScriptedLLM
from power_loop.tools import register_request_user_input


async def _interrupted_session(make_loop):
    """A session whose send died after the assistant's tool call was committed (no registry)."""
    loop = make_loop(llm=ScriptedLLM([ScriptedLLM.tool_call("echo", {"x": "once"})]))
    sid = await loop.new_session()
    result = await loop.send("go", sid)
    assert result.status == "pending_tools"
    await loop.aclose()
    return sid


async def test_send_on_a_pending_session_raises_with_the_recovery_routes(make_loop):
    sid = await _interrupted_session(make_loop)
    loop = make_loop(llm=ScriptedLLM())
    with pytest.raises(SessionPendingError) as info:
        await loop.send("next", sid)
    err = info.value
    assert err.code == "session.pending"
    assert [c["function"]["name"] for c in err.pending_tool_calls] == ["echo"]
    assert "resume" in str(err) and "abort_pending" in str(err) and "heal_pending" in str(err)
    # The refused send wrote nothing.
    assert [m["role"] for m in await loop.get_messages(sid)] == ["user", "assistant"]


async def test_resume_reexecutes_pending_calls_and_continues(make_loop):
    sid = await _interrupted_session(make_loop)
    ran: list[str] = []
    llm = ScriptedLLM([ScriptedLLM.text("finished")])
    loop = make_loop(llm=llm, tool_registry=make_tools(echo=lambda x: ran.append(x) or f"echo:{x}"))
    result = await loop.resume(sid)
    assert result.status == "completed" and result.final_text == "finished"
    assert ran == ["once"]
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert messages[2]["content"] == "echo:once"
    assert await loop.get_pending(sid) is None


async def test_abort_pending_answers_every_open_call(make_loop):
    sid = await _interrupted_session(make_loop)
    loop = make_loop(llm=ScriptedLLM([ScriptedLLM.text("after abort")]))
    assert await loop.abort_pending(sid, reason="operator said no") == 1
    assert await loop.abort_pending(sid) == 0
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert messages[-1]["content"] == "<aborted: operator said no>"
    assert (await loop.send("again", sid)).final_text == "after abort"


async def test_send_with_heal_pending_aborts_then_sends(make_loop):
    sid = await _interrupted_session(make_loop)
    loop = make_loop(llm=ScriptedLLM([ScriptedLLM.text("healed")]))
    result = await loop.send("again", sid, heal_pending=True)
    assert result.final_text == "healed"
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert "auto-healed" in messages[2]["content"]


def _human_registry() -> ToolRegistry:
    registry = make_tools(echo=lambda x: x)
    register_request_user_input(registry)
    return registry


async def test_request_user_input_pauses_and_submit_input_resumes_from_another_loop(make_loop):
    llm = ScriptedLLM(
        [ScriptedLLM.tool_call("request_user_input", {"prompt": "Which colour?", "kind": "text"})]
    )
    loop = make_loop(llm=llm, tool_registry=_human_registry())
    sid = await loop.new_session()
    result = await loop.send("paint it", sid)
    assert result.status == "waiting_for_input"
    interaction = result.pending_interactions[0]
    assert interaction["prompt"] == "Which colour?"
    assert (await loop.resume(sid)).status == "waiting_for_input"
    await loop.aclose()

    llm2 = ScriptedLLM([ScriptedLLM.text("painting it blue")])
    other = make_loop(llm=llm2, tool_registry=_human_registry())
    with pytest.raises(InteractionNotFoundError):
        await other.submit_input(sid, "input_unknown", "red")
    done = await other.submit_input(sid, interaction["interaction_id"], "blue")
    assert done.status == "completed" and done.final_text == "painting it blue"
    messages = await other.get_messages(sid)
    check_history(messages)
    assert llm2.requests[0].messages[-1] == {
        "role": "tool",
        "content": "blue",
        "tool_call_id": interaction["tool_call_id"],
        "name": "request_user_input",
    }


async def test_follow_up_during_a_send_is_delivered_at_the_next_round(make_loop):
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow(x: str) -> str:
        entered.set()
        await release.wait()
        return "slow done"

    llm = ScriptedLLM([ScriptedLLM.tool_call("slow", {"x": "a"}), ScriptedLLM.text("saw the follow-up")])
    loop = make_loop(llm=llm, tool_registry=make_tools(slow=slow))
    sid = await loop.new_session()
    task = asyncio.create_task(loop.send("start", sid))
    await entered.wait()
    queued = await loop.follow_up("also do this", sid)
    assert isinstance(queued, FollowUpQueued) and queued.queue_depth == 1
    release.set()
    result = await task
    assert result.final_text == "saw the follow-up"
    last_request = llm.requests[-1].messages
    assert last_request[-1] == {
        "role": "user",
        "content": "<follow_up>\nalso do this\n</follow_up>",
        "name": "follow_up",
    }
    check_history(await loop.get_messages(sid))


async def test_follow_up_from_another_process_reaches_a_running_send(make_loop):
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow(x: str) -> str:
        entered.set()
        await release.wait()
        return "slow done"

    llm = ScriptedLLM([ScriptedLLM.tool_call("slow", {"x": "a"}), ScriptedLLM.text("saw it")])
    driver = make_loop(llm=llm, tool_registry=make_tools(slow=slow), lease_ttl_s=30)
    sid = await driver.new_session()
    task = asyncio.create_task(driver.send("start", sid))
    await entered.wait()
    # A second loop (another process, as far as the store knows) finds the session leased: it queues.
    other = make_loop(llm=ScriptedLLM(), lease_ttl_s=30)
    queued = await other.follow_up("from elsewhere", sid)
    assert isinstance(queued, FollowUpQueued) and queued.queue_depth == 1
    release.set()
    result = await task
    assert result.final_text == "saw it"
    assert llm.requests[-1].messages[-1] == {
        "role": "user",
        "content": "<follow_up>\nfrom elsewhere\n</follow_up>",
        "name": "follow_up",
    }
    assert await (await other.ensure_store()).list_follow_ups(sid) == []
    check_history(await driver.get_messages(sid))


async def test_follow_up_with_no_send_running_is_a_send(make_loop):
    loop = make_loop(llm=ScriptedLLM([ScriptedLLM.text("direct")]))
    sid = await loop.new_session()
    result = await loop.follow_up("hello", sid)
    assert not isinstance(result, FollowUpQueued) and result.final_text == "direct"


async def test_queued_follow_ups_survive_a_restart(make_loop):
    loop = make_loop(llm=ScriptedLLM([ScriptedLLM.text("first answer")]))
    sid = await loop.new_session()
    await loop.send("first", sid)
    store = await loop.ensure_store()
    await store.enqueue_follow_up(sid, "left over from a crashed process")
    await loop.aclose()

    llm = ScriptedLLM(default=ScriptedLLM.text("ok"))
    fresh = make_loop(llm=llm)
    await fresh.send("second", sid)
    contents = [m["content"] for m in llm.requests[0].messages]
    assert "<follow_up>\nleft over from a crashed process\n</follow_up>" in contents
    assert await (await fresh.ensure_store()).list_follow_ups(sid) == []


async def test_cancel_during_a_tool_answers_the_call_and_keeps_history_valid(make_loop):
    token = CancellationToken()

    async def hang(x: str) -> str:
        token.cancel("user pressed stop")
        await asyncio.sleep(30)
        return "never"

    llm = ScriptedLLM([ScriptedLLM.tool_call("hang", {"x": "a"})])
    loop = make_loop(llm=llm, tool_registry=make_tools(hang=hang))
    sid = await loop.new_session()
    result = await asyncio.wait_for(loop.send("go", sid, stop_event=token), 5)
    assert result.status == "cancelled" and result.final_text == "[cancelled: user pressed stop]"
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert messages[-1]["content"] == "[cancelled: user pressed stop]"
    assert await loop.get_pending(sid) is None


async def test_cancel_during_the_llm_call(make_loop):
    stop = threading.Event()

    async def responder(request):
        stop.set()
        await asyncio.sleep(30)
        return ScriptedLLM.text("never")

    loop = make_loop(llm=ScriptedLLM(responder=responder))
    sid = await loop.new_session()
    result = await asyncio.wait_for(loop.send("go", sid, stop_event=stop), 5)
    assert result.status == "cancelled" and result.final_text == "[cancelled by user]"
    assert await loop.get_messages(sid) == [{"role": "user", "content": "go"}]


async def test_task_cancellation_mid_tool_leaves_no_open_call(make_loop):
    entered = asyncio.Event()

    async def hang(x: str) -> str:
        entered.set()
        await asyncio.sleep(30)
        return "never"

    loop = make_loop(
        llm=ScriptedLLM([ScriptedLLM.tool_call("hang", {"x": "a"})]), tool_registry=make_tools(hang=hang)
    )
    sid = await loop.new_session()
    task = asyncio.create_task(loop.send("go", sid))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert await loop.get_pending(sid) is None


async def test_resume_with_nothing_pending_does_not_call_the_model_again(make_loop):
    llm = ScriptedLLM([ScriptedLLM.tool_call("echo", {"x": "a"}), ScriptedLLM.text("answer")])
    loop = make_loop(llm=llm, tool_registry=make_tools(echo=lambda x: f"echo:{x}"))
    sid = await loop.new_session()
    assert (await loop.send("go", sid)).final_text == "answer"
    before = await loop.get_messages(sid)
    requests = len(llm.requests)
    result = await loop.resume(sid)
    assert result.status == "nothing_to_resume" and result.final_text == "" and result.rounds == 0
    assert len(llm.requests) == requests
    assert await loop.get_messages(sid) == before
    # A fresh session has nothing to resume either.
    empty = await loop.new_session()
    assert (await loop.resume(empty)).status == "nothing_to_resume"
    assert await loop.get_messages(empty) == []


async def test_resume_continues_a_send_interrupted_after_its_tool_results(make_loop):
    """Nothing pending, but the last rows are tool results: the send was cut before its answer."""
    stop = CancellationToken()
    llm = ScriptedLLM([ScriptedLLM.tool_call("echo", {"x": "a"})])

    def echo(x: str) -> str:
        return f"echo:{x}"

    async def cancel_before_next_round(ctx):
        stop.cancel("cut")

    loop = make_loop(llm=llm, tool_registry=make_tools(echo=echo))
    loop.hooks.register(HookPoint.TOOLS_BATCH_AFTER, cancel_before_next_round)
    sid = await loop.new_session()
    assert (await loop.send("go", sid, stop_event=stop)).status == "cancelled"
    assert (await loop.get_messages(sid))[-1]["role"] == "tool"
    llm.push(ScriptedLLM.text("finished"))
    result = await loop.resume(sid)
    assert result.status == "completed" and result.final_text == "finished"
    check_history(await loop.get_messages(sid))


async def test_a_holder_stalled_in_a_tool_and_fenced_gets_lease_lost(make_loop):
    """docs/leases.md: a zombie's next write raises LeaseLostError, even when the new holder has
    already answered the calls the zombie was running (its late results would break the history)."""
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(x: str) -> str:
        entered.set()
        await release.wait()
        return "late"

    zombie = make_loop(
        llm=ScriptedLLM([ScriptedLLM.tool_call("slow", {"x": "a"})]),
        tool_registry=make_tools(slow=slow),
        lease_ttl_s=30,
    )
    sid = await zombie.new_session()
    task = asyncio.create_task(zombie.send("go", sid))
    await entered.wait()
    # The holder stalls past its TTL: its lease expires, and another process takes the session over.
    store = await zombie.ensure_store()
    await store.db.execute(
        f"UPDATE {store.t['session_leases']} SET expires_at_ms = 0 WHERE session_id = ?", (sid,)
    )
    rescuer = make_loop(llm=ScriptedLLM(default=ScriptedLLM.text("rescued")), lease_ttl_s=30)
    assert await rescuer.abort_pending(sid, reason="holder stalled") == 1
    release.set()
    with pytest.raises(LeaseLostError) as info:
        await task
    assert info.value.code == "store.lease_lost"
    messages = await rescuer.get_messages(sid)
    check_history(messages)
    # The zombie's call had started (a side effect by default): the model is told it may have happened.
    assert [m["content"] for m in messages if m["role"] == "tool"] == [
        "<aborted: holder stalled; the call had started, so its effect may have happened>"
    ]
    assert (await rescuer.send("next", sid)).final_text == "rescued"
