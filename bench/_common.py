"""What both benchmark entry points share: the message size, the instant scripted models, the tool."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from power_loop import ToolDefinition, ToolRegistry
from power_loop.testing import ScriptedLLM

__all__ = ["ROW", "drive_concurrently", "echo_tools", "median_ms", "text_llm", "tool_llm"]

ROW = "x" * 120  # a short chat message


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def echo_tools() -> ToolRegistry:
    """One synchronous tool, so a tool round includes the handler's thread hop."""
    registry = ToolRegistry()
    registry.register(
        ToolDefinition(
            name="echo",
            description="Echo a value.",
            effect="pure",
            input_schema={"type": "object", "properties": {"v": {"type": "string"}}, "required": ["v"]},
        ),
        lambda v: v,
    )
    return registry


def text_llm() -> ScriptedLLM:
    """An instant model answering every request with ``ROW`` (requests are not recorded)."""
    return ScriptedLLM(default=ScriptedLLM.text(ROW), record_requests=False)


def tool_llm() -> ScriptedLLM:
    """An instant model: a user turn gets one ``echo`` call, a tool result gets the answer."""
    turns = [ScriptedLLM.tool_call("echo", {"v": "hi"}), ScriptedLLM.text(ROW)]

    def responder(request: Any) -> Any:
        return turns[0] if request.messages[-1]["role"] == "user" else turns[1]

    return ScriptedLLM(responder=responder, record_requests=False)


async def drive_concurrently(loop: Any, session_ids: list[str], sends_each: int) -> float:
    """Sends per second when every session sends ``sends_each`` times, all sessions at once."""

    async def drive(sid: str) -> None:
        for _ in range(sends_each):
            await loop.send(ROW, sid)

    start = time.perf_counter()
    await asyncio.gather(*(drive(sid) for sid in session_ids))
    return len(session_ids) * sends_each / (time.perf_counter() - start)
