from __future__ import annotations

import asyncio
import threading

import pytest

from power_loop.errors import CancellationRequested
from power_loop.llm import CancellationToken


def test_owned_token_cancel_reason_and_idempotence() -> None:
    tok = CancellationToken()
    assert not tok.is_cancelled() and tok.reason == "cancelled"
    tok.raise_if_cancelled()  # no-op while active
    assert "active" in repr(tok)
    tok.cancel("first")
    tok.cancel("second")
    assert tok.is_cancelled() and tok.reason == "first"
    with pytest.raises(CancellationRequested) as err:
        tok.raise_if_cancelled()
    assert err.value.reason == "first" and err.value.code == "cancelled"
    assert "first" in repr(tok)


def test_from_any_sources() -> None:
    tok = CancellationToken()
    assert CancellationToken.from_any(tok) is tok
    none_tok = CancellationToken.from_any(None)
    assert not none_tok.is_cancelled() and none_tok is not CancellationToken.from_any(None)
    assert not CancellationToken.never().is_cancelled()

    aev = asyncio.Event()
    a_tok = CancellationToken.from_any(aev)
    assert not a_tok.is_cancelled()
    aev.set()
    assert a_tok.is_cancelled()

    tev = threading.Event()
    t_tok = CancellationToken.from_any(tev)
    assert not t_tok.is_cancelled()
    t_tok.cancel("stop")
    assert tev.is_set() and t_tok.reason == "stop"

    flag = {"stop": False}
    c_tok = CancellationToken.from_any(lambda: flag["stop"])
    assert not c_tok.is_cancelled()
    flag["stop"] = True
    assert c_tok.is_cancelled()

    def broken() -> bool:
        raise RuntimeError("oops")

    assert not CancellationToken.from_any(broken).is_cancelled()
    with pytest.raises(TypeError, match="cancellation source"):
        CancellationToken.from_any(42)  # type: ignore[arg-type]


async def test_wait_wakes_on_cancel_same_loop() -> None:
    tok = CancellationToken()
    waiter = asyncio.create_task(tok.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    tok.cancel()
    await asyncio.wait_for(waiter, 5)
    await tok.wait()  # already cancelled: returns at once


async def test_wait_wakes_on_cancel_from_another_thread() -> None:
    tok = CancellationToken()
    waiter = asyncio.create_task(tok.wait())
    await asyncio.sleep(0)
    thread = threading.Thread(target=tok.cancel, args=("from thread",))
    thread.start()
    await asyncio.wait_for(waiter, 5)
    thread.join()
    assert tok.reason == "from thread"


async def test_wait_polls_wrapped_sources() -> None:
    ev = asyncio.Event()
    tok = CancellationToken.from_any(ev)
    waiter = asyncio.create_task(tok.wait(poll_interval=0.001))
    await asyncio.sleep(0)
    assert not waiter.done()
    ev.set()
    await asyncio.wait_for(waiter, 5)

    flag: list[bool] = []
    c_tok = CancellationToken.from_any(lambda: bool(flag))
    c_waiter = asyncio.create_task(c_tok.wait(poll_interval=0.001))
    await asyncio.sleep(0)
    c_tok.cancel("owned flip")  # cancelling the wrapper also wakes a polling waiter
    await asyncio.wait_for(c_waiter, 5)


async def test_cancelled_waiter_is_unregistered() -> None:
    tok = CancellationToken()
    waiter = asyncio.create_task(tok.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert tok._waiters == []
    tok.cancel()  # must not try to resolve the abandoned waiter
    assert tok.is_cancelled()
