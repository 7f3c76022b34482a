"""Cancellation at every await point of a send that folds its context (marker ``torture``).

The session is brought to the edge of its context budget, so the next send folds (a summary call
and a compaction write) before its tool round. A gate pauses that send at its n-th checkpoint — every
store transaction (before and after), every model call, every tool — where the task is cancelled;
for every n the session must stay valid and sendable (a fresh session for each n).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest
from loop_helpers import check_history

from power_loop import StatefulAgentLoop
from power_loop.context import DEFAULT_SUMMARY_PROMPT, ContextPipeline, LLMSummaryFold, VerbatimRepresentation
from power_loop.tools import ToolRegistry

pytestmark = [pytest.mark.torture]

TORTURE_N = int(os.environ.get("POWER_LOOP_TORTURE_N", "6"))
LONG = "the quick brown fox jumps over the lazy dog " * 40
WARMUP_SENDS = 6


class Gate:
    def __init__(self) -> None:
        self.stop = -1
        self.count = 0
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def point(self) -> None:
        index = self.count
        self.count += 1
        if index == self.stop:
            self.reached.set()
            await self.release.wait()


def _llm(gate: Gate) -> Any:
    from power_loop.testing import ScriptedLLM

    async def respond(request: Any) -> Any:
        await gate.point()
        if request.system_prompt == DEFAULT_SUMMARY_PROMPT:
            return f"<summary>{len(request.messages[0]['content'])} chars folded</summary>"
        if request.messages[-1]["role"] == "tool":
            return ScriptedLLM.text("done").with_usage(len(json.dumps(request.messages)) // 4, 20)
        return ScriptedLLM.tool_call("shell", {"cmd": "ls"})

    return ScriptedLLM(responder=respond)


def _registry(gate: Gate) -> ToolRegistry:
    registry = ToolRegistry()

    async def shell(cmd: str) -> str:
        await gate.point()
        return "output " + LONG

    registry.tool(name="shell", description="run a command", effect="pure")(shell)
    return registry


async def _prepared(make_loop: Any, gate: Gate) -> tuple[StatefulAgentLoop, str]:
    pipeline = ContextPipeline(
        representation=VerbatimRepresentation(), fold=LLMSummaryFold(keep_last_sends=2), context_tokens=3000
    )
    loop = make_loop(llm=_llm(gate), tool_registry=_registry(gate), context=pipeline)
    sid = await loop.new_session()
    for i in range(WARMUP_SENDS):
        await loop.send(f"task {i}: {LONG}", sid)
    store = await loop.ensure_store()
    inner = store.db.transact

    async def transact(work: Any) -> Any:
        await gate.point()
        result = await inner(work)
        await gate.point()
        return result

    store.db.transact = transact  # type: ignore[method-assign]
    gate.count = 0
    return loop, sid


def loop_target(make_loop: Any) -> str:
    return str(make_loop.dsn)


async def test_cancel_at_every_await_point_of_a_folding_send(make_loop: Any) -> None:
    probe_gate = Gate()
    probe, sid = await _prepared(make_loop, probe_gate)
    await probe.send(f"task x: {LONG}", sid)
    store = await probe.ensure_store()
    assert await store.list_compactions(sid), "the warm-up should bring the session to a fold"
    checkpoints = probe_gate.count
    await probe.aclose()
    assert checkpoints > 10
    print(f"\nfolding send: {checkpoints} checkpoints")
    # Every checkpoint on SQLite; on the servers (slow sends on a loaded CI machine) every third, or
    # all of them when POWER_LOOP_TORTURE_N asks for a long run.
    server = loop_target(make_loop).startswith(("postgres", "mysql"))
    stride = 3 if server and TORTURE_N < 30 else 1
    for stop in range(0, checkpoints, stride):
        gate = Gate()
        loop, sid = await _prepared(make_loop, gate)
        gate.stop = stop
        task = asyncio.ensure_future(loop.send(f"task x: {LONG}", sid))
        reached = asyncio.ensure_future(gate.reached.wait())
        # A send may take another path than the probe's (fewer checkpoints): then it just completes.
        await asyncio.wait({task, reached}, return_when=asyncio.FIRST_COMPLETED)
        reached.cancel()
        task.cancel()
        gate.release.set()
        try:
            await task
        except asyncio.CancelledError:
            pass
        gate.stop = -1
        assert await loop.get_pending(sid) is None, stop
        check_history(await loop.get_messages(sid))
        again = await loop.send("after the cancel", sid)
        assert again.status == "completed", stop
        check_history(await loop.get_messages(sid))
        await loop.aclose()
