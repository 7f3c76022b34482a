"""replay_session: a stored conversation re-driven against new code with the stored model replies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from power_loop import StatefulAgentLoop, ToolRegistry
from power_loop.llm import LLMService
from power_loop.testing import ScriptedLLM, replay_session


def _tools(rate: float) -> ToolRegistry:
    tools = ToolRegistry()

    @tools.tool
    def convert(amount: float, currency: str) -> str:
        """Convert euros into another currency."""
        return f"{amount * rate:.2f} {currency}"

    return tools


async def _record(dsn: str) -> str:
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call("convert", {"amount": 10, "currency": "USD"}),
            "10 EUR is 11.00 USD.",
            "You are welcome.",
        ]
    )
    async with StatefulAgentLoop(llm=llm, dsn=dsn, tool_registry=_tools(1.1)) as loop:
        sid = await loop.new_session(system_prompt="You convert money.")
        await loop.send("10 EUR in USD?", sid)
        await loop.send({"role": "user", "content": "Thanks!", "name": "ana"}, sid)
    return sid


def _factory(rate: float) -> Callable[[LLMService, str], StatefulAgentLoop]:
    def build(llm: LLMService, dsn: str) -> StatefulAgentLoop:
        return StatefulAgentLoop(llm=llm, dsn=dsn, tool_registry=_tools(rate))

    return build


async def test_same_code_reproduces_the_session(tmp_path: Path) -> None:
    dsn = str(tmp_path / "prod.db")
    sid = await _record(dsn)
    report = await replay_session(dsn, sid, _factory(1.1))
    assert report.ok and report.sends == 2 and len(report.requests) == 3
    assert (report.requests[0].system_prompt or "").startswith("You convert money.")


async def test_changed_tool_is_the_first_difference(tmp_path: Path) -> None:
    dsn = str(tmp_path / "prod.db")
    sid = await _record(dsn)
    report = await replay_session(dsn, sid, _factory(1.2))
    assert not report.ok and report.sends == 1
    diff = report.difference
    assert diff is not None and diff.send_index == 1 and diff.position == 2
    assert diff.expected == {"role": "tool", "content": "11.00 USD"}
    assert diff.actual == {"role": "tool", "content": "12.00 USD"}


async def test_unknown_session(tmp_path: Path) -> None:
    dsn = str(tmp_path / "prod.db")
    await _record(dsn)
    with pytest.raises(LookupError):
        await replay_session(dsn, "sess_missing", _factory(1.1))


async def test_a_failing_tool_is_reported(tmp_path: Path) -> None:
    dsn = str(tmp_path / "prod.db")
    sid = await _record(dsn)

    def build(llm: LLMService, scratch: str) -> StatefulAgentLoop:
        # New code whose tool now fails: its error result is the first message that differs.
        tools = ToolRegistry()
        tools.tool(lambda amount, currency: 1 / 0, name="convert", description="Broken.")
        return StatefulAgentLoop(llm=llm, dsn=scratch, tool_registry=tools)

    report = await replay_session(dsn, sid, build)
    assert report.difference is not None and report.difference.position == 2
    assert report.difference.expected == {"role": "tool", "content": "11.00 USD"}
    assert report.difference.actual is not None and "ZeroDivisionError" in report.difference.actual["content"]
