"""Input with a caller-chosen id (``send(message_id=)``, ``deliver``): stored once per session, the first
outcome returned to every repetition, an interrupted first send finished by recovery (SQLite file,
PostgreSQL, MySQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loop_helpers import check_history, make_tools

from power_loop import FollowUpQueued, InboxItem, StatefulAgentLoop, StatefulResult
from power_loop.errors import ConfigError, SessionPendingError
from power_loop.store import NewMessage, open_store
from power_loop.testing import ScriptedLLM

MakeLoop = Callable[..., StatefulAgentLoop]


def _users(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "user"]


async def _interrupted_first_send(loop: StatefulAgentLoop, message_id: str, text: str) -> str:
    """What a worker killed mid-tool-call leaves: the message stored under its id, a tool call open."""
    sid = await loop.new_session()
    store = await loop.ensure_store()
    await store.inbox.put_message(sid, message_id, NewMessage("user", text))
    call = {"id": "c1", "type": "function", "function": {"name": "work", "arguments": '{"x": "a"}'}}
    await store.append_messages(sid, [NewMessage("assistant", "", tool_calls=[call], round_index=0)])
    return sid


async def test_a_repeated_message_id_is_stored_once_and_returns_the_first_outcome(
    make_loop: MakeLoop,
) -> None:
    llm = ScriptedLLM(["first answer", "second answer"])
    loop = make_loop(llm=llm)
    sid = await loop.new_session()
    first = await loop.send("hello", sid, message_id="m-1")
    again = await loop.send("hello", sid, message_id="m-1")
    assert (first.status, first.final_text) == ("completed", "first answer")
    assert (again.status, again.final_text, again.rounds) == ("completed", "first answer", first.rounds)
    assert _users(await loop.get_messages(sid)) == ["hello"]
    assert llm.remaining == 1  # the model was asked once
    other = await loop.send("next", sid, message_id="m-2")
    assert other.final_text == "second answer"
    assert _users(await loop.get_messages(sid)) == ["hello", "next"]
    row = await (await loop.ensure_store()).inbox.get(sid, "m-1")
    assert row is not None and (row.status, row.send_index, row.message_seq) == ("completed", 1, 1)


async def test_the_same_id_in_two_sessions_is_two_messages(make_loop: MakeLoop) -> None:
    loop = make_loop(llm=ScriptedLLM(default="ok"))
    a, b = await loop.new_session(), await loop.new_session()
    await loop.send("x", a, message_id="same")
    await loop.send("x", b, message_id="same")
    assert _users(await loop.get_messages(a)) == _users(await loop.get_messages(b)) == ["x"]


async def test_an_interrupted_first_send_is_finished_by_recovery_not_sent_again(make_loop: MakeLoop) -> None:
    ran: list[str] = []
    loop = make_loop(
        llm=ScriptedLLM(["done after the tool"]),
        tool_registry=make_tools(work=lambda x: ran.append(x) or "ok"),
    )
    sid = await _interrupted_first_send(loop, "m-1", "do it")
    result = await loop.send("do it", sid, message_id="m-1")
    assert (result.status, result.final_text) == ("completed", "done after the tool")
    assert ran == ["a"]
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert _users(messages) == ["do it"]
    # …and the outcome is now recorded: a third delivery returns it without running anything.
    assert (await loop.send("do it", sid, message_id="m-1")).final_text == "done after the tool"
    assert ran == ["a"]


async def test_stream_takes_a_message_id_and_streams_the_finishing_of_an_interrupted_first_send(
    make_loop: MakeLoop,
) -> None:
    ran: list[str] = []
    loop = make_loop(
        llm=ScriptedLLM(["finished", "unused"]),
        tool_registry=make_tools(work=lambda x: ran.append(x) or "ok"),
    )
    sid = await _interrupted_first_send(loop, "m-1", "do it")
    kinds = [e.type.value async for e in loop.stream("do it", sid, message_id="m-1")]
    assert (
        "tool_call_completed" in kinds and kinds[-1] == "send_completed"
    )  # the recovery's events are streamed
    again = [e async for e in loop.stream("do it", sid, message_id="m-1")]
    assert [e.type.value for e in again] == ["send_completed"]  # the first outcome, nothing run
    assert again[-1].data.result.final_text == "finished"
    assert ran == ["a"] and _users(await loop.get_messages(sid)) == ["do it"]
    with pytest.raises(ConfigError):
        [e async for e in loop.stream("x", sid, message_id="")]


async def test_a_new_id_behind_pending_calls_is_refused_and_not_stored(make_loop: MakeLoop) -> None:
    loop = make_loop(llm=ScriptedLLM(default="ok"), tool_registry=make_tools(work=lambda x: "ok"))
    sid = await loop.new_session()
    store = await loop.ensure_store()
    await store.append_messages(sid, [NewMessage("user", "earlier")], begin_send=True)
    call = {"id": "c1", "type": "function", "function": {"name": "work", "arguments": '{"x": "a"}'}}
    await store.append_messages(sid, [NewMessage("assistant", "", tool_calls=[call], round_index=0)])
    with pytest.raises(SessionPendingError):
        await loop.send("new", sid, message_id="m-2")
    assert await store.inbox.get(sid, "m-2") is None
    healed = await loop.send("new", sid, message_id="m-2", heal_pending=True)
    assert healed.status == "completed"
    assert _users(await loop.get_messages(sid)) == ["earlier", "new"]


async def test_deliver_sends_when_free_and_dedupes(make_loop: MakeLoop) -> None:
    llm = ScriptedLLM(default="ok")
    loop = make_loop(llm=llm)
    sid = await loop.new_session()
    first = await loop.deliver("hi", sid, item_id="d-1")
    second = await loop.deliver(InboxItem("hi", "d-1"), sid)
    assert isinstance(first, StatefulResult) and isinstance(second, StatefulResult)
    assert second.final_text == first.final_text == "ok"
    assert _users(await loop.get_messages(sid)) == ["hi"]


async def test_deliver_queues_behind_a_running_send_once_per_id(make_loop: MakeLoop) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(x: str) -> str:
        started.set()
        await release.wait()
        return "slow done"

    llm = ScriptedLLM([ScriptedLLM.tool_call("slow", {"x": "1"}), "answered both"])
    loop = make_loop(llm=llm, tool_registry=make_tools(slow=slow))
    sid = await loop.new_session()
    running = asyncio.create_task(loop.send("start", sid, message_id="s-1"))
    await asyncio.wait_for(started.wait(), 60)
    queued = await loop.deliver("and this", sid, item_id="q-1")
    again = await loop.deliver("and this", sid, item_id="q-1")
    assert isinstance(queued, FollowUpQueued) and isinstance(again, FollowUpQueued)
    assert (queued.accepted, queued.duplicates, queued.accepted_ids) == (1, 0, ("q-1",))
    assert (again.accepted, again.duplicates, again.accepted_ids) == (0, 1, ())
    release.set()
    result = await asyncio.wait_for(running, 60)
    assert result.final_text == "answered both"
    users = _users(await loop.get_messages(sid))
    assert users[0] == "start" and len(users) == 2 and "and this" in users[1]


async def test_enqueue_only_queues_and_a_later_send_of_the_id_delivers_the_queue(make_loop: MakeLoop) -> None:
    llm = ScriptedLLM(default="seen")
    loop = make_loop(llm=llm)
    sid = await loop.new_session()
    queued = await loop.deliver([InboxItem("one", "e-1"), InboxItem("two", "e-2")], sid)
    assert isinstance(queued, FollowUpQueued) and queued.accepted_ids == ("e-1", "e-2")
    dup = await loop.deliver("one", sid, item_id="e-1", enqueue_only=True)
    assert isinstance(dup, FollowUpQueued) and dup.duplicates == 1 and dup.queue_depth == 2
    # Nobody drives the session: a send (or delivery) of a queued id drives the queue once.
    result = await loop.send("one", sid, message_id="e-1")
    assert result.final_text == "seen"
    users = _users(await loop.get_messages(sid))
    assert len(users) == 1 and "one" in users[0] and "two" in users[0]
    assert (await loop.send("two", sid, message_id="e-2")).status == "nothing_to_resume"
    assert len(_users(await loop.get_messages(sid))) == 1


@pytest.mark.parametrize("bad", ["", "   ", "x" * 201, 7])
async def test_bad_ids_are_refused(make_loop: MakeLoop, bad: Any) -> None:
    loop = make_loop(llm=ScriptedLLM(default="ok"))
    sid = await loop.new_session()
    with pytest.raises(ConfigError):
        await loop.send("hi", sid, message_id=bad)
    with pytest.raises(ConfigError):
        await loop.deliver("hi", sid, item_id=bad)


async def test_two_stores_racing_one_id_store_it_once(target: dict[str, str]) -> None:
    """The dedupe is the database's: two handles (as two processes) storing one id at once."""
    stores = [await open_store(target["dsn"], table_prefix=target["table_prefix"]) for _ in range(2)]
    try:
        sid = await stores[0].create_session()
        for n in range(5):
            outcomes = await asyncio.gather(
                *(s.inbox.put_message(sid, f"r-{n}", NewMessage("user", f"m{n}")) for s in stores)
            )
            assert sorted(type(o).__name__ for o in outcomes) == ["AppendResult", "InboxRow"]
        rows = [m for m in await stores[1].load_all_messages(sid) if m.role == "user"]
        assert [m.content for m in rows] == [f"m{n}" for n in range(5)]
    finally:
        for s in stores:
            await s.close()


async def test_two_leased_loops_delivering_one_id_store_it_once(target: dict[str, str]) -> None:
    loops = [StatefulAgentLoop(llm=ScriptedLLM(default="ok"), lease_ttl_s=30, **target) for _ in range(2)]
    try:
        sid = await loops[0].new_session()
        for n in range(4):
            outcomes = await asyncio.gather(*(lp.deliver(f"m{n}", sid, item_id=f"k-{n}") for lp in loops))
            # The one holding the lease sends; the other either finds the id stored (a duplicate) or,
            # arriving first, queues it — and the holder then finds it queued and delivers the queue.
            sent = [o for o in outcomes if isinstance(o, StatefulResult)]
            queued = [o for o in outcomes if isinstance(o, FollowUpQueued)]
            assert sent and all(o.final_text == "ok" for o in sent)
            assert sum(o.accepted for o in queued) <= 1
        users = _users(await loops[1].get_messages(sid))
        assert len(users) == 4 and all(f"m{n}" in text for n, text in enumerate(users))
    finally:
        for lp in loops:
            await lp.aclose()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=8))
async def test_any_sequence_of_ids_stores_each_once_in_first_arrival_order(
    tmp_path: Any, ids: list[str]
) -> None:
    loop = StatefulAgentLoop(llm=ScriptedLLM(default="ok"), dsn=":memory:")
    try:
        sid = await loop.new_session()
        for item in ids:
            await loop.send(f"text {item}", sid, message_id=item)
        assert _users(await loop.get_messages(sid)) == [f"text {i}" for i in dict.fromkeys(ids)]
    finally:
        await loop.aclose()


async def test_deliver_to_a_session_leased_by_another_process_queues_durably(target: dict[str, str]) -> None:
    """Loop A (as one process) runs a send holding the lease; loop B's delivery is queued, not refused,
    and A's running send picks it up at its next round boundary."""
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(x: str) -> str:
        started.set()
        await release.wait()
        return "done"

    llm = ScriptedLLM([ScriptedLLM.tool_call("slow", {"x": "1"}), "saw the delivery"])
    a = StatefulAgentLoop(llm=llm, lease_ttl_s=30, tool_registry=make_tools(slow=slow), **target)
    b = StatefulAgentLoop(llm=ScriptedLLM(), lease_ttl_s=30, **target)
    try:
        sid = await a.new_session()
        running = asyncio.create_task(a.send("start", sid, message_id="a-1"))
        await asyncio.wait_for(started.wait(), 60)
        queued = await b.deliver("from b", sid, item_id="b-1")
        assert isinstance(queued, FollowUpQueued) and queued.accepted_ids == ("b-1",)
        again = await b.deliver("from b", sid, item_id="b-1")
        assert isinstance(again, FollowUpQueued) and again.duplicates == 1
        release.set()
        assert (await asyncio.wait_for(running, 60)).final_text == "saw the delivery"
        users = _users(await b.get_messages(sid))
        assert users[0] == "start" and len(users) == 2 and "from b" in users[1]
    finally:
        await a.aclose()
        await b.aclose()
