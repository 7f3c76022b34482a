"""`run_leaf_once`: the same leaf run again — by a repeated task, by a driver resumed elsewhere — never
runs a finished leaf twice, never clobbers a session another process drives, and finishes an
interrupted one under its input id (one input message). On a SQLite file, PostgreSQL and MySQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from power_loop import StatefulAgentLoop, ToolRegistry
from power_loop.agents import AgentSpec
from power_loop.errors import SessionBusy
from power_loop.llm import LLMRequest
from power_loop.testing import ScriptedLLM, ScriptedTurn
from power_loop.workflow import InProcessExecutor, leaf_message_id, leaf_session_id, run_leaf_once

SPEC = AgentSpec(name="leaf", system_prompt="You work.", tools=["work"])
META = {"workflow_run_id": "r1", "workflow_node_id": "leaf", "idempotency_key": "r1:leaf:0", "attempt": 1}


class Counting:
    """A model that calls ``work`` once, then answers; it counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: LLMRequest) -> ScriptedTurn:
        self.calls += 1
        if request.messages[-1].get("role") == "tool":
            return ScriptedLLM.text(f"answer: {request.messages[-1].get('content')}")
        return ScriptedLLM.tool_call("work", {"x": "it"})


def _registry(gate: asyncio.Event | None = None, entered: asyncio.Event | None = None) -> ToolRegistry:
    tools = ToolRegistry()

    @tools.tool
    async def work(x: str) -> str:
        """Do the work."""
        if entered is not None:
            entered.set()
        if gate is not None:
            await gate.wait()
        return f"worked on {x}"

    return tools


@pytest.fixture
async def parts(loop_dsn_and_prefix: tuple[str, str]) -> AsyncIterator[dict[str, Any]]:
    dsn, prefix = loop_dsn_and_prefix
    model = Counting()
    loop = StatefulAgentLoop(
        llm=ScriptedLLM(responder=model), dsn=dsn, table_prefix=prefix, tool_registry=_registry()
    )
    driver = await loop.new_session()
    try:
        yield {"loop": loop, "model": model, "driver": driver, "sid": leaf_session_id("r1:leaf:0")}
    finally:
        await loop.aclose()


async def _run(parts: dict[str, Any], loop: StatefulAgentLoop | None = None) -> dict[str, Any]:
    return await run_leaf_once(
        loop or parts["loop"],
        SPEC.to_dict(),
        "do it",
        driver_sid=parts["driver"],
        session_id=parts["sid"],
        metadata=META,
        lease_ttl_s=30,
    )


async def _users(loop: StatefulAgentLoop, sid: str) -> list[str]:
    return [m["content"] for m in await loop.get_messages(sid) if m["role"] == "user"]


async def test_a_repeated_leaf_adopts_its_finished_session_without_calling_the_model(
    parts: dict[str, Any],
) -> None:
    first = await _run(parts)
    again = await _run(parts)
    assert first["status"] == again["status"] == "completed"
    assert first["final_text"] == again["final_text"] == "answer: worked on it"
    assert parts["model"].calls == 2  # the tool call and the answer, once
    assert await _users(parts["loop"], parts["sid"]) == ["do it"]
    session = await (await parts["loop"].ensure_store()).get_session(parts["sid"])
    assert session is not None and session.parent_session_id == parts["driver"]


async def test_a_leaf_driven_by_a_live_holder_is_left_alone_until_it_is_free(parts: dict[str, Any]) -> None:
    store = await parts["loop"].ensure_store()
    gate, entered = asyncio.Event(), asyncio.Event()
    runner = StatefulAgentLoop(llm=parts["loop"].llm, store=store, tool_registry=_registry(gate, entered))
    first = asyncio.ensure_future(_run(parts, runner))  # "worker 1", inside the leaf's tool call
    await entered.wait()  # inside the leaf's tool call
    with pytest.raises(SessionBusy):  # "worker 2": a resumed driver's copy of the same leaf
        await _run(parts)
    assert await store.get_session(parts["sid"]) is not None  # not closed under the running leaf
    gate.set()
    assert (await first)["status"] == "completed"
    assert (await _run(parts))["final_text"] == "answer: worked on it"  # adopted
    assert parts["model"].calls == 2
    assert await _users(parts["loop"], parts["sid"]) == ["do it"]


async def test_an_interrupted_leaf_is_finished_under_its_input_id_not_sent_again(
    parts: dict[str, Any],
) -> None:
    store = await parts["loop"].ensure_store()
    gate, entered = asyncio.Event(), asyncio.Event()  # never set: the first run dies inside its tool call
    runner = StatefulAgentLoop(llm=parts["loop"].llm, store=store, tool_registry=_registry(gate, entered))
    first = asyncio.ensure_future(_run(parts, runner))
    await entered.wait()  # inside the leaf's tool call
    first.cancel()  # its worker gone: the input and the tool call are stored, the answer is not
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await store.inbox.get(parts["sid"], leaf_message_id(parts["sid"])) is not None
    done = await _run(parts)
    assert done["status"] == "completed" and done["final_text"].startswith("answer: ")
    assert parts["model"].calls == 2  # the stored tool call is answered: no fresh start
    assert await _users(parts["loop"], parts["sid"]) == ["do it"]


async def test_a_leaf_begun_by_another_executor_is_discarded_and_run_afresh(parts: dict[str, Any]) -> None:
    store = await parts["loop"].ensure_store()
    gate, entered = asyncio.Event(), asyncio.Event()
    runner = StatefulAgentLoop(llm=parts["loop"].llm, store=store, tool_registry=_registry(gate, entered))
    first = asyncio.ensure_future(
        InProcessExecutor().run_agent(
            SPEC,
            "do it",
            parent_loop=runner,
            driver_sid=parts["driver"],
            session_id=parts["sid"],
            metadata=META,
        )
    )
    await entered.wait()  # inside the leaf's tool call
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    done = await _run(parts)
    assert done["status"] == "completed"
    assert await _users(parts["loop"], parts["sid"]) == ["do it"]
    assert parts["model"].calls == 3  # the discarded start's tool call, then a whole fresh run


async def test_an_unknown_tool_fails_the_leaf_without_a_session(parts: dict[str, Any]) -> None:
    spec = {**SPEC.to_dict(), "tools": ["nope"]}
    out = await run_leaf_once(
        parts["loop"], spec, "x", driver_sid=parts["driver"], session_id=parts["sid"], metadata=META
    )
    assert out["status"] == "failed" and "nope" in out["error"]
    assert await (await parts["loop"].ensure_store()).get_session(parts["sid"]) is None
