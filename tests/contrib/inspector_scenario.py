"""The session the inspector tests look at, made by a real loop driven by ``ScriptedLLM``.

Send 1: the model calls ``lookup`` (its result is a ``<script>`` string) and ``boom`` (fails), then
answers. Send 2: the model spawns a sub-agent that calls ``echo``. Send 1 is then folded (as the
context pipeline would: a summary note, its messages compacted out). A note, a follow-up and a timer
complete the page. :func:`live_send` runs a third send that holds in a tool until released.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from power_loop import StatefulAgentLoop, ToolRegistry
from power_loop.agents import AgentSpec, run_agent_spec
from power_loop.llm import LLMRequest
from power_loop.loop import AgentLoopConfig
from power_loop.store import NewMessage, SessionStore, open_store
from power_loop.testing import ScriptedLLM, ScriptedTurn
from power_loop.tools import get_tool_runtime_context

SCRIPT_RESULT = "<script>window.__pwned = 1; document.title = 'pwned'</script><b>bold?</b>"
FOLD_SUMMARY = "Looked up the answer (42); the boom tool failed."


@dataclass
class Scenario:
    dsn: str
    prefix: str
    session_id: str = ""
    child_id: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)


def _registry(scenario: Scenario) -> ToolRegistry:
    tools = ToolRegistry()

    @tools.tool
    def lookup(query: str) -> str:
        """Look something up."""
        return SCRIPT_RESULT

    @tools.tool
    def boom(x: int) -> str:
        """Always fails."""
        raise RuntimeError(f"boom failed on x={x}")

    @tools.tool
    def echo(text: str) -> str:
        """Echo text."""
        return f"echo:{text}"

    @tools.tool
    async def wait_here(reason: str) -> str:
        """Hold the send until the test releases it."""
        await scenario.release.wait()
        return f"released ({reason})"

    @tools.tool
    async def delegate(task: str) -> str:
        """Run a linked sub-agent (kept after it finishes, so the inspector can show it)."""
        ctx = get_tool_runtime_context()
        assert ctx is not None
        spec = AgentSpec(name="greeter", system_prompt="CHILD: be brief", tools=["echo"], lifecycle="linked")
        outcome = await run_agent_spec(spec, task, parent_loop=ctx.loop, spawn_tool_call_id=ctx.tool_call_id)
        return str(outcome["final_text"])

    return tools


def _responder(request: LLMRequest) -> ScriptedTurn:
    system = request.system_prompt or ""
    last = request.messages[-1]
    if system.startswith("CHILD"):
        if last["role"] == "tool":
            return ScriptedLLM.text(f"child done ({last['content']})").with_usage(30, 6)
        return ScriptedLLM.tool_call("echo", {"text": "hi"}).with_usage(25, 5)
    if last["role"] == "tool":
        return ScriptedLLM.text(f"All done after {last.get('name') or 'tools'}.").with_usage(120, 12)
    asked = str(last["content"])
    if asked.startswith("look"):
        return ScriptedLLM.tool_calls([("lookup", {"query": "answer"}), ("boom", {"x": 1})]).with_usage(
            80, 20
        )
    if asked.startswith("delegate"):
        return ScriptedLLM.tool_call("delegate", {"task": "say hi"}).with_usage(90, 15)
    return ScriptedLLM.tool_call("wait_here", {"reason": asked}).with_usage(100, 10)


def make_loop(scenario: Scenario) -> StatefulAgentLoop:
    return StatefulAgentLoop(
        llm=ScriptedLLM(responder=_responder),
        dsn=scenario.dsn,
        table_prefix=scenario.prefix,
        tool_registry=_registry(scenario),
        config=AgentLoopConfig(system_prompt="PARENT: an agent under inspection"),
    )


async def _fold_first_send(store: SessionStore, sid: str) -> None:
    rows = await store.load_send(sid, 1)
    await store.record_compaction(
        sid,
        from_seq=rows[0].seq,
        to_seq=rows[-1].seq,
        note=NewMessage("system", FOLD_SUMMARY, name="compact_note", round_index=0, meta={"kind": "compact"}),
        before_tokens=900,
        after_tokens=120,
    )


async def build(scenario: Scenario) -> Scenario:
    """Run sends 1 and 2, fold send 1, add a note, a follow-up and a timer."""
    async with make_loop(scenario) as loop:
        sid = await loop.new_session(metadata={"user": "ada"})
        await loop.send("look it up, then break something", sid)
        await loop.send("delegate a greeting to a sub-agent", sid)
    store = await open_store(scenario.dsn, table_prefix=scenario.prefix)
    try:
        await _fold_first_send(store, sid)
        await store.add_note(sid, "the user is called Ada", pinned=True)
        await store.enqueue_follow_up(sid, "and then summarise everything")
        await store.create_timer(
            sid, due_at_ms=int(time.time() * 1000) + 3_600_000, note="check back in an hour"
        )
        children = await store.list_children(sid)
    finally:
        await store.close()
    scenario.session_id = sid
    scenario.child_id = children[0].session_id
    return scenario


async def live_send(scenario: Scenario, text: str = "wait for the test") -> Any:
    """A third send that blocks inside ``wait_here`` until ``scenario.release`` is set."""
    async with make_loop(scenario) as loop:
        return await loop.send(text, scenario.session_id)
