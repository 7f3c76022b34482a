"""Session leases on every backend, in one process (several store handles stand in for processes).

The cross-process behaviour with real OS processes is in ``test_lease_processes.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from power_loop.errors import ConfigError, LeaseLostError, SessionBusy, SessionNotFoundError
from power_loop.store import (
    LeaseToken,
    NewMessage,
    SessionStore,
    hold_lease,
    new_holder_id,
)
from power_loop.store._core import now_ms

MakeStore = Callable[[], Awaitable[SessionStore]]


async def _wait_expired(store: SessionStore, session_id: str) -> None:
    """Sleep until the session's lease is past its expiry by the store's own clock."""
    lease = await store.get_lease(session_id)
    assert lease is not None
    for _ in range(10_000):
        remaining_ms = lease.expires_at_ms - now_ms()
        if remaining_ms < 0:
            return
        await asyncio.sleep(remaining_ms / 1000 + 0.001)
    raise AssertionError("the lease never expired")


async def test_first_acquire_gets_epoch_one_and_a_second_holder_is_busy(
    store: SessionStore, make_store: MakeStore
) -> None:
    sid = await store.create_session()
    assert await store.get_lease(sid) is None
    token = await store.acquire_lease(sid, holder="host:1:a", ttl_s=30)
    assert (token.session_id, token.holder, token.epoch) == (sid, "host:1:a", 1)
    other = await make_store()
    with pytest.raises(SessionBusy) as info:
        await other.acquire_lease(sid, holder="host:2:b", ttl_s=30)
    err = info.value
    assert err.code == "session.busy"
    assert (err.session_id, err.holder, err.expires_at_ms) == (sid, "host:1:a", token.expires_at_ms)
    assert "host:1:a" in str(err)
    assert await store.get_lease(sid) == token


async def test_epochs_only_grow_across_release_reacquire_and_takeover(store: SessionStore) -> None:
    sid = await store.create_session()
    first = await store.acquire_lease(sid, holder="a", ttl_s=30)
    again = await store.acquire_lease(sid, holder="a", ttl_s=30)  # the holder itself may re-take it
    assert again.epoch == first.epoch + 1
    assert await store.release_lease(again) is True
    released = await store.get_lease(sid)
    assert released is not None and released.holder == "" and released.expires_at_ms == 0
    assert released.epoch == again.epoch  # the epoch survives a release ...
    after = await store.acquire_lease(sid, holder="b", ttl_s=30)
    assert after.epoch == again.epoch + 1  # ... so it never repeats
    assert await store.release_lease(first) is False  # a stale token releases nothing
    assert (await store.get_lease(sid)) == after


async def test_an_expired_lease_is_taken_over_with_a_new_epoch(
    store: SessionStore, make_store: MakeStore
) -> None:
    sid = await store.create_session()
    dead = await store.acquire_lease(sid, holder="dead", ttl_s=0.05)
    await _wait_expired(store, sid)
    other = await make_store()
    taken = await other.acquire_lease(sid, holder="alive", ttl_s=30)
    assert (taken.holder, taken.epoch) == ("alive", dead.epoch + 1)
    with pytest.raises(LeaseLostError) as info:
        await store.renew_lease(dead, ttl_s=30)
    assert info.value.code == "store.lease_lost"
    assert (info.value.current_epoch, info.value.current_holder) == (taken.epoch, "alive")


async def test_renewal_extends_and_revives_an_expired_but_untaken_lease(store: SessionStore) -> None:
    sid = await store.create_session()
    token = await store.acquire_lease(sid, holder="a", ttl_s=0.05)
    await _wait_expired(store, sid)
    renewed = await store.renew_lease(token, ttl_s=30)
    assert renewed.epoch == token.epoch and renewed.expires_at_ms > token.expires_at_ms
    with pytest.raises(SessionBusy):
        await store.acquire_lease(sid, holder="b", ttl_s=30)


async def test_fenced_append_succeeds_while_current(store: SessionStore) -> None:
    sid = await store.create_session()
    token = await store.acquire_lease(sid, holder="a", ttl_s=30)
    res = await store.append_messages(sid, [NewMessage("user", "hi")], begin_send=True, lease=token)
    assert (res.first_seq, res.send_index) == (1, 1)
    # Renewal changes only the expiry; the renewed token still fences.
    renewed = await store.renew_lease(token, ttl_s=30)
    await store.append_messages(sid, [NewMessage("assistant", "hello")], lease=renewed)
    assert [m.content for m in await store.load_active_messages(sid)] == ["hi", "hello"]


async def test_zombie_write_is_rejected_and_writes_nothing(
    store: SessionStore, make_store: MakeStore
) -> None:
    sid = await store.create_session()
    zombie = await store.acquire_lease(sid, holder="zombie", ttl_s=0.05)
    await store.append_messages(sid, [NewMessage("user", "before")], begin_send=True, lease=zombie)
    await _wait_expired(store, sid)
    other = await make_store()
    fresh = await other.acquire_lease(sid, holder="fresh", ttl_s=30)
    state_before = await store.get_state(sid)
    with pytest.raises(LeaseLostError) as info:
        await store.append_messages(
            sid,
            [NewMessage("assistant", "late 1"), NewMessage("user", "late 2")],
            begin_send=True,
            lease=zombie,
        )
    err = info.value
    assert (err.session_id, err.epoch, err.holder) == (sid, zombie.epoch, "zombie")
    assert (err.current_epoch, err.current_holder) == (fresh.epoch, "fresh")
    assert [m.content for m in await store.load_all_messages(sid)] == ["before"]
    assert await store.get_state(sid) == state_before
    # The new holder writes on with contiguous seqs.
    res = await other.append_messages(sid, [NewMessage("user", "after")], begin_send=True, lease=fresh)
    assert res.first_seq == 2 and res.send_index == 2


async def test_released_lease_fences_its_old_token(store: SessionStore) -> None:
    sid = await store.create_session()
    token = await store.acquire_lease(sid, holder="a", ttl_s=30)
    await store.release_lease(token)
    await store.acquire_lease(sid, holder="b", ttl_s=30)
    with pytest.raises(LeaseLostError):
        await store.append_messages(sid, [NewMessage("user", "x")], lease=token)
    assert await store.count_messages(sid) == 0


async def test_bad_arguments(store: SessionStore) -> None:
    sid = await store.create_session()
    with pytest.raises(SessionNotFoundError):
        await store.acquire_lease("sess_missing", holder="a", ttl_s=30)
    assert await store.get_lease("sess_missing") is None
    for ttl in (0, -1.0, True, "5"):
        with pytest.raises(ConfigError):
            await store.acquire_lease(sid, holder="a", ttl_s=ttl)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        await store.acquire_lease(sid, holder="", ttl_s=30)
    other = await store.create_session()
    token = await store.acquire_lease(other, holder="a", ttl_s=30)
    with pytest.raises(ConfigError):
        await store.append_messages(sid, [NewMessage("user", "x")], lease=token)
    assert await store.count_messages(sid) == 0


async def test_hold_lease_renews_in_the_background_and_releases(
    store: SessionStore, make_store: MakeStore
) -> None:
    sid = await store.create_session()
    other = await make_store()
    # TTL and pauses are seconds, not fractions: a loaded 2-core machine may stall the event loop for
    # a few hundred milliseconds, which must not be mistaken for a lost lease.
    async with hold_lease(store, sid, ttl_s=2.0) as held:
        first = held.token
        assert first.holder.count(":") == 2  # host:pid:random
        # Hold it for more than two TTLs: renewals keep it live, so a contender stays locked out.
        for _ in range(5):
            await asyncio.sleep(1.0)
            with pytest.raises(SessionBusy) as info:
                await other.acquire_lease(sid, holder="contender", ttl_s=30)
            assert info.value.holder == first.holder
        assert held.token.epoch == first.epoch and held.token.expires_at_ms > first.expires_at_ms
        assert held.lost is None
        await store.append_messages(sid, [NewMessage("user", "x")], begin_send=True, lease=held.token)
    after = await store.get_lease(sid)
    assert after is not None and after.expires_at_ms == 0 and after.epoch == first.epoch
    assert (await other.acquire_lease(sid, holder="contender", ttl_s=30)).epoch == first.epoch + 1


async def test_hold_lease_notices_a_takeover(store: SessionStore, make_store: MakeStore) -> None:
    sid = await store.create_session()
    other = await make_store()
    async with hold_lease(store, sid, ttl_s=0.3) as held:
        # Simulate a stall past the TTL: another holder forcibly takes over via release + acquire.
        await store.release_lease(held.token)
        stolen = await other.acquire_lease(sid, holder="thief", ttl_s=30)
        for _ in range(600):  # the renewer notices within one renewal interval (0.1 s)
            if held.lost is not None:
                break
            await asyncio.sleep(0.05)
        assert held.lost is not None and held.lost.current_holder == "thief"
    assert await store.get_lease(sid) == stolen  # the loser did not release the thief's lease


async def test_holder_ids_are_unique() -> None:
    ids = {new_holder_id() for _ in range(50)}
    assert len(ids) == 50


async def test_close_session_drops_the_lease_and_archives_omit_it(store: SessionStore) -> None:
    sid = await store.create_session()
    token = await store.acquire_lease(sid, holder="a", ttl_s=30)
    archive = await store.export_session(sid)
    assert "session_leases" not in archive["tables"]
    copy = await store.import_session(archive, new_session_id="sess_copy")
    assert await store.get_lease(copy) is None
    assert await store.close_session(sid) == 1
    assert await store.get_lease(sid) is None
    assert isinstance(token, LeaseToken)


async def test_racing_first_acquisitions_have_exactly_one_winner(
    store: SessionStore, make_store: MakeStore
) -> None:
    sid = await store.create_session()
    handles = [store, *[await make_store() for _ in range(3)]]

    async def attempt(i: int, handle: SessionStore) -> LeaseToken | SessionBusy:
        try:
            return await handle.acquire_lease(sid, holder=f"h{i}", ttl_s=30)
        except SessionBusy as exc:
            return exc

    outcomes = await asyncio.gather(*(attempt(i, h) for i, h in enumerate(handles)))
    winners = [o for o in outcomes if isinstance(o, LeaseToken)]
    assert len(winners) == 1 and winners[0].epoch == 1
    assert all(o.holder == winners[0].holder for o in outcomes if isinstance(o, SessionBusy))
    assert await store.get_lease(sid) == winners[0]


async def test_loop_with_leases_holds_during_a_send_and_refuses_a_second_loop(
    store: SessionStore, make_store: MakeStore
) -> None:
    from power_loop import StatefulAgentLoop
    from power_loop.testing import ScriptedLLM

    with pytest.raises(ConfigError):
        StatefulAgentLoop(llm=ScriptedLLM(), store=store, lease_ttl_s=0)
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def responder(request: object) -> object:
        entered.set()
        await gate.wait()
        return ScriptedLLM.text("first")

    first = StatefulAgentLoop(llm=ScriptedLLM(responder=responder), store=store, lease_ttl_s=30)
    second = StatefulAgentLoop(
        llm=ScriptedLLM(default=ScriptedLLM.text("second")), store=await make_store(), lease_ttl_s=30
    )
    sid = await first.new_session()
    running = asyncio.create_task(first.send("one", sid))
    await entered.wait()
    with pytest.raises(SessionBusy) as info:
        await second.send("two", sid)
    held = await store.get_lease(sid)
    assert held is not None and info.value.holder == held.holder and held.epoch == 1
    assert await second.prewarm(sid) is True  # read-only: takes no lease
    gate.set()
    assert (await running).final_text == "first"
    assert (await second.send("two", sid)).final_text == "second"
    assert [m.content for m in await store.load_all_messages(sid)] == ["one", "first", "two", "second"]
    assert await second.close_session("sess_unknown") == 0
    assert await second.close_session(sid) == 1
    await first.aclose()
    await second.aclose()


async def test_a_fenced_write_reports_the_lost_lease_before_a_broken_history(
    store: SessionStore, make_store: MakeStore
) -> None:
    """A zombie's late tool result for a call the new holder already answered: LeaseLostError."""
    sid = await store.create_session()
    zombie = await store.acquire_lease(sid, holder="zombie", ttl_s=30)
    call = {"id": "c1", "type": "function", "function": {"name": "t", "arguments": "{}"}}
    await store.append_messages(sid, [NewMessage("user", "go")], begin_send=True, lease=zombie)
    await store.append_messages(sid, [NewMessage("assistant", "", tool_calls=[call])], lease=zombie)
    other = await make_store()
    await other.db.execute(
        f"UPDATE {other.t['session_leases']} SET expires_at_ms = 0 WHERE session_id = ?", (sid,)
    )
    await other.acquire_lease(sid, holder="fresh", ttl_s=30)
    assert await other.abort_pending(sid, reason="taken over") == 1
    state_before = await store.get_state(sid)
    with pytest.raises(LeaseLostError) as info:
        await store.append_messages(sid, [NewMessage("tool", "late", tool_call_id="c1")], lease=zombie)
    assert info.value.current_holder == "fresh"
    assert await store.get_state(sid) == state_before
