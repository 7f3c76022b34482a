"""A cancel or a timeout reaches a leaf's model call already in flight (the workflow's token is raced
against it), and the interrupted leaf session stays structurally valid."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from wf_helpers import leaf

from power_loop.llm import LLMRequest
from power_loop.loop import StatefulAgentLoop
from power_loop.testing import ScriptedLLM, ScriptedTurn
from power_loop.workflow import _engine as workflow_engine
from power_loop.workflow import cancel_workflow, create_workflow


def _blocking_llm(entered: asyncio.Event) -> ScriptedLLM:
    async def reply(request: LLMRequest) -> ScriptedTurn:
        entered.set()
        await asyncio.Event().wait()  # never answers: only an interruption ends this call
        return ScriptedLLM.text("never")

    return ScriptedLLM(responder=reply)


def _spec(**top: Any) -> dict[str, Any]:
    return {"name": "t", "root": {"type": "sequence", "steps": [leaf("a", "p"), leaf("b", "p")]}, **top}


async def _leaf_is_clean(loop: StatefulAgentLoop, session_id: str) -> None:
    # the user turn only: no half-written assistant reply, no open tool call, nothing pending
    assert [m["role"] for m in await loop.get_messages(session_id)] == ["user"]
    assert await loop.get_pending(session_id) is None


async def test_cancel_interrupts_the_in_flight_model_call(tmp_path: Path) -> None:
    entered = asyncio.Event()
    async with StatefulAgentLoop(llm=_blocking_llm(entered), dsn=str(tmp_path / "wf.db")) as loop:
        wf = create_workflow(_spec(), parent_loop=loop)
        task = asyncio.ensure_future(wf.run())
        await entered.wait()
        wf.cancel("user stop")
        result = await asyncio.wait_for(task, 30)  # a safety net only: the cancel ends it at once
        assert result.status == "cancelled"
        assert result.results["a"].status == "cancelled" and "b" not in result.results
        await _leaf_is_clean(loop, result.results["a"].session_id)


async def test_timeout_interrupts_the_in_flight_model_call(tmp_path: Path) -> None:
    entered, fire = asyncio.Event(), asyncio.Event()

    async def sleep(seconds: float) -> None:  # a virtual clock: the deadline passes when the test says
        await fire.wait()

    async with StatefulAgentLoop(llm=_blocking_llm(entered), dsn=str(tmp_path / "wf.db")) as loop:
        wf = create_workflow(_spec(timeout_s=5), parent_loop=loop, sleep=sleep)
        task = asyncio.ensure_future(wf.run())
        await entered.wait()
        fire.set()
        result = await asyncio.wait_for(task, 30)
        assert result.status == "failed" and "timed out after 5s" in " ".join(result.errors)
        assert result.results["a"].status == "cancelled" and "b" not in result.results
        await _leaf_is_clean(loop, result.results["a"].session_id)


async def test_cancel_by_run_id_interrupts_the_in_flight_model_call(
    loop_dsn_and_prefix: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `cancel_workflow` only writes a journal row (it may come from another process): the running
    # engine polls for it, so the leaf's blocked model call is interrupted without waiting for it.
    monkeypatch.setattr(workflow_engine, "CANCEL_POLL_S", 0.01)
    entered = asyncio.Event()
    dsn, prefix = loop_dsn_and_prefix  # the journal row is read on every backend
    async with StatefulAgentLoop(llm=_blocking_llm(entered), dsn=dsn, table_prefix=prefix) as loop:
        owner = await loop.new_session()
        wf = create_workflow(_spec(), parent_loop=loop, parent_session_id=owner)
        task = asyncio.ensure_future(wf.run())
        await entered.wait()
        assert await cancel_workflow(loop, owner, wf.run_id, reason="from elsewhere")
        result = await asyncio.wait_for(task, 30)
        assert result.status == "cancelled"
        assert result.results["a"].status == "cancelled" and "b" not in result.results
        await _leaf_is_clean(loop, result.results["a"].session_id)
