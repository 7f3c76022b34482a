"""Cancelling a send's task at every await point of a tool-using send (issue 10).

A *gate* pauses the send at a numbered checkpoint — before and after each store write, in each model
call, in each tool — the test cancels the task there and lets it go on. Whatever the point, the
session is left valid (no call unanswered, nothing pending) and the next send works. No timing: the
test waits on events only.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from loop_helpers import check_history, make_tools

from power_loop import StatefulAgentLoop
from power_loop.testing import ScriptedLLM

# user row (2), model call, assistant + calls (2), two tools, results (2), model call, answer (2)
CHECKPOINTS = 12


class Gate:
    """Counts checkpoints; pauses at number ``stop`` until released (``stop=-1``: never pauses)."""

    def __init__(self, stop: int = -1) -> None:
        self.stop = stop
        self.count = 0
        self.names: list[str] = []
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def point(self, name: str) -> None:
        index = self.count
        self.count += 1
        self.names.append(name)
        if index == self.stop:
            self.reached.set()
            await self.release.wait()


def _responder(gate: Gate):
    async def respond(request: Any) -> Any:
        await gate.point("llm")
        last = request.messages[-1]
        if last["role"] == "user" and last["content"] == "go":
            return ScriptedLLM.tool_calls([("work", {"x": "a"}), ("work", {"x": "b"})])
        return ScriptedLLM.text("done")

    return respond


def _gated_loop(make_loop, gate: Gate) -> StatefulAgentLoop:
    async def work(x: str) -> str:
        await gate.point(f"tool:{x}")
        return f"worked {x}"

    return make_loop(llm=ScriptedLLM(responder=_responder(gate)), tool_registry=make_tools(work=work))


async def _gate_store(loop: StatefulAgentLoop, gate: Gate) -> None:
    store = await loop.ensure_store()
    inner = store.append_messages

    async def append_messages(*args: Any, **kwargs: Any) -> Any:
        await gate.point("append:before")
        result = await inner(*args, **kwargs)
        await gate.point("append:after")
        return result

    store.append_messages = append_messages  # type: ignore[method-assign]


async def _assert_valid_and_usable(loop: StatefulAgentLoop, sid: str) -> None:
    assert await loop.get_pending(sid) is None
    check_history(await loop.get_messages(sid))
    again = await loop.send("next", sid)
    assert again.status == "completed" and again.final_text == "done"
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert messages[-2:] == [
        {"role": "user", "content": "next"},
        {"role": "assistant", "content": "done"},
    ]


async def test_the_gate_sees_every_checkpoint_of_an_uncancelled_send(make_loop):
    gate = Gate()
    loop = _gated_loop(make_loop, gate)
    await _gate_store(loop, gate)
    sid = await loop.new_session()
    result = await loop.send("go", sid)
    assert result.status == "completed" and result.final_text == "done"
    assert gate.count == CHECKPOINTS
    assert gate.names[:3] == ["append:before", "append:after", "llm"]


async def _consume_stream(loop: StatefulAgentLoop, sid: str) -> None:
    async for _event in loop.stream("go", sid):
        pass


@pytest.mark.parametrize("how", ["send", "stream"])
@pytest.mark.parametrize("stop", range(CHECKPOINTS))
async def test_cancel_at_every_await_point_leaves_the_session_valid(make_loop, stop, how):
    gate = Gate(stop)
    loop = _gated_loop(make_loop, gate)
    await _gate_store(loop, gate)
    sid = await loop.new_session()
    run = loop.send("go", sid) if how == "send" else _consume_stream(loop, sid)
    task = asyncio.ensure_future(run)
    await gate.reached.wait()
    task.cancel()
    gate.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.stop = -1
    await _assert_valid_and_usable(loop, sid)


async def test_cancel_at_every_scheduler_step_leaves_the_session_valid(make_loop, target):
    """A sweep: cancel after n yields to the event loop, for every n until the send completes (on
    the servers, whose sends take thousands of steps, for a growing stride of n)."""
    server = target["dsn"].startswith(("postgres", "mysql"))
    steps = 0
    while True:
        loop = _gated_loop(make_loop, Gate())
        sid = await loop.new_session()
        task = asyncio.ensure_future(loop.send("go", sid))
        for _ in range(steps):
            await asyncio.sleep(0)
        finished = task.done()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        await _assert_valid_and_usable(loop, sid)
        await loop.aclose()
        if finished:
            break
        steps += 1 + (steps // 4 if server else 0)
    assert steps > CHECKPOINTS


@pytest.mark.parametrize("close", ["aclose", "bare_break"])
async def test_leaving_a_stream_after_every_event_leaves_the_session_valid(make_loop, close):
    """``aclose()`` (or ``contextlib.aclosing``) waits for the cleanup; after a bare ``break`` it runs
    when the iterator is finalized, and the session's next send waits for it."""
    total = None
    index = 0
    while total is None or index < total:
        loop = _gated_loop(make_loop, Gate())
        sid = await loop.new_session()
        seen = 0
        stream = loop.stream("go", sid)
        async for _event in stream:
            if seen == index:
                break
            seen += 1
        else:
            total = seen
        if close == "aclose":
            await stream.aclose()
        else:
            del stream
            again = await loop.send("next", sid)
            assert again.status == "completed"
        await _assert_valid_and_usable(loop, sid)
        await loop.aclose()
        index += 1
    assert total is not None and total > 5


async def _write_locked(path: str) -> sqlite3.Connection:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # hold SQLite's write lock from another connection
    return other


@pytest.mark.parametrize("stop_at", ["tool", "results_write"])
async def test_cancel_while_another_connection_holds_the_sqlite_write_lock(make_loop, target, stop_at):
    if target["dsn"].startswith(("postgres", "mysql")):
        pytest.skip("SQLite's database-wide write lock")
    gate = Gate(5 if stop_at == "tool" else 7)  # the first tool / the results write
    loop = _gated_loop(make_loop, gate)
    await _gate_store(loop, gate)
    sid = await loop.new_session()
    task = asyncio.ensure_future(loop.send("go", sid))
    await gate.reached.wait()
    other = await _write_locked(target["dsn"])
    try:
        task.cancel()
        gate.release.set()
        # Let the send reach its write, which now waits for the lock on the connection thread.
        for _ in range(20):
            await asyncio.sleep(0)
        assert not task.done()
    finally:
        other.execute("COMMIT")
        other.close()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.stop = -1
    results = [m["content"] for m in await loop.get_messages(sid) if m["role"] == "tool"]
    if stop_at == "tool":
        assert results[0] == "[cancelled: send was cancelled]" and len(results) == 2
    else:  # the write had started: it completed, with the real results
        assert results == ["worked a", "worked b"]
    await _assert_valid_and_usable(loop, sid)
