"""`SessionGuard`: one driver per session, entries that live exactly while a session has users.

The in-process part needs no store (a hold without leasing never touches it); the lease part runs on
every backend.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from power_loop.errors import ConfigError, SessionBusy
from power_loop.loop._guard import SessionGuard
from power_loop.store import SessionStore

NO_STORE: Any = object()  # a hold without leasing never touches the store


async def _hold(guard: SessionGuard, session_id: str, log: list[str], tag: str, gate: asyncio.Event) -> None:
    async with guard.hold(session_id, NO_STORE):
        log.append(f"{tag}+")
        await gate.wait()
        log.append(f"{tag}-")


async def _settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_entry_lives_exactly_while_its_session_is_held() -> None:
    guard = SessionGuard()
    assert guard.sessions == 0 and not guard.busy("s")
    async with guard.hold("s", NO_STORE):
        assert guard.sessions == 1 and guard.busy("s") and not guard.busy("t")
        async with guard.hold("t", NO_STORE):  # another session is never blocked by this one
            assert guard.sessions == 2
        assert guard.sessions == 1
    assert guard.sessions == 0 and not guard.busy("s")


async def test_concurrent_holders_of_one_session_run_one_at_a_time() -> None:
    guard = SessionGuard()
    inside = peak = 0
    done: list[int] = []

    async def user(i: int) -> None:
        nonlocal inside, peak
        async with guard.hold("s", NO_STORE):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0)
            assert guard.sessions == 1
            inside -= 1
            done.append(i)

    await asyncio.gather(*(user(i) for i in range(25)))
    assert peak == 1 and sorted(done) == list(range(25))
    assert guard.sessions == 0


async def test_a_session_handed_over_to_a_waiter_stays_exclusive() -> None:
    # The handover is where an entry dropped too early would let a newcomer in beside the new holder.
    guard = SessionGuard()
    log: list[str] = []
    gates = {tag: asyncio.Event() for tag in "abc"}
    a = asyncio.create_task(_hold(guard, "s", log, "a", gates["a"]))
    await _settle()
    b = asyncio.create_task(_hold(guard, "s", log, "b", gates["b"]))
    await _settle()
    gates["a"].set()
    await a
    await _settle()
    c = asyncio.create_task(_hold(guard, "s", log, "c", gates["c"]))
    await _settle()
    assert log == ["a+", "a-", "b+"] and guard.busy("s") and guard.sessions == 1
    gates["b"].set()
    gates["c"].set()
    await asyncio.gather(b, c)
    assert log == ["a+", "a-", "b+", "b-", "c+", "c-"]
    assert guard.sessions == 0


async def test_a_waiter_cancelled_before_its_turn_leaves_nothing_behind() -> None:
    guard = SessionGuard()
    log: list[str] = []
    gate = asyncio.Event()
    holder = asyncio.create_task(_hold(guard, "s", log, "a", gate))
    await _settle()
    waiter = asyncio.create_task(_hold(guard, "s", log, "w", asyncio.Event()))
    await _settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert guard.sessions == 1 and guard.busy("s")  # the holder still has it
    gate.set()
    await holder
    assert log == ["a+", "a-"] and guard.sessions == 0
    async with guard.hold("s", NO_STORE):  # and the session can be held again
        assert guard.busy("s")
    assert guard.sessions == 0


async def test_a_cancelled_or_failing_holder_releases_the_session_to_the_next() -> None:
    guard = SessionGuard()
    log: list[str] = []
    holder = asyncio.create_task(_hold(guard, "s", log, "a", asyncio.Event()))
    await _settle()
    nxt_gate = asyncio.Event()
    nxt = asyncio.create_task(_hold(guard, "s", log, "b", nxt_gate))
    await _settle()
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder
    await _settle()
    assert log == ["a+", "b+"] and guard.sessions == 1
    nxt_gate.set()
    await nxt
    assert guard.sessions == 0
    with pytest.raises(RuntimeError, match="boom"):
        async with guard.hold("s", NO_STORE):
            raise RuntimeError("boom")
    assert guard.sessions == 0 and not guard.busy("s")


async def test_many_holders_with_random_cancellations_leave_no_entries() -> None:
    guard = SessionGuard()
    inside = peak = 0

    async def user() -> None:
        nonlocal inside, peak
        async with guard.hold("s", NO_STORE):
            inside += 1
            peak = max(peak, inside)
            try:
                await asyncio.sleep(0)
            finally:
                inside -= 1

    tasks = [asyncio.create_task(user()) for _ in range(60)]
    await asyncio.sleep(0)
    for task in tasks[::3]:  # some hold the lock, most are still waiting for it
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert peak == 1
    assert guard.sessions == 0 and not guard.busy("s")


async def test_wait_idle_waits_for_the_last_holder() -> None:
    guard = SessionGuard()
    assert await guard.wait_idle(0) is True
    gate = asyncio.Event()
    holder = asyncio.create_task(_hold(guard, "s", [], "a", gate))
    await _settle()
    assert await guard.wait_idle(0.01) is False  # the holder cannot finish before the gate opens
    idle = asyncio.create_task(guard.wait_idle(60))
    await _settle()
    assert not idle.done()
    gate.set()
    assert await idle is True
    await holder


@pytest.mark.parametrize("ttl", [0, -1.0, True, "5"])
def test_a_bad_lease_ttl_is_refused(ttl: Any) -> None:
    with pytest.raises(ConfigError):
        SessionGuard(ttl)


async def test_a_leased_hold_takes_the_lease_and_exposes_its_token(store: SessionStore) -> None:
    sid = await store.create_session()
    guard, other = SessionGuard(30), SessionGuard(30)
    assert guard.lease_token(sid) is None
    async with guard.hold(sid, store):
        token = guard.lease_token(sid)
        assert token is not None and token.session_id == sid
        lease = await store.get_lease(sid)
        assert lease is not None and lease.holder == token.holder
        with pytest.raises(SessionBusy):  # another holder id (another process) is refused
            async with other.hold(sid, store):
                pass
        assert other.sessions == 0 and other.lease_token(sid) is None
    assert guard.lease_token(sid) is None and guard.sessions == 0
    released = await store.get_lease(sid)
    assert released is not None and released.expires_at_ms == 0
    async with other.hold(sid, store):  # released: the other holder gets it now
        assert other.lease_token(sid) is not None
    async with guard.hold(sid, store, lease=False):  # in-process only
        assert guard.lease_token(sid) is None


async def test_without_a_ttl_no_lease_is_taken(store: SessionStore) -> None:
    sid = await store.create_session()
    guard = SessionGuard()
    async with guard.hold(sid, store):
        assert guard.lease_token(sid) is None
        assert await store.get_lease(sid) is None
