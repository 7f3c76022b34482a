"""`loop.stream()`: watch a send live — text deltas, tool-call argument fragments, tool results.

Run it::

    python examples/04_streaming.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from power_loop import AgentEventType, StatefulAgentLoop, ToolRegistry
from power_loop.testing import ScriptedLLM

tools = ToolRegistry()


@tools.tool
def weather(city: str) -> str:
    """Current weather for a city."""
    return f"{city}: 21°C, clear"


async def demo(workdir: Path) -> None:
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call("weather", {"city": "Lisbon"}),
            ScriptedLLM.text("It is 21°C and clear in Lisbon."),
        ]
    )
    dsn = str(workdir / "stream.db")
    async with StatefulAgentLoop(llm=llm, dsn=dsn, tool_registry=tools) as loop:
        sid = await loop.new_session()
        async for event in loop.stream("Weather in Lisbon?", sid):
            if event.type == AgentEventType.TOOL_CALL_DELTA:
                print(f"  tool-call fragment: {event.data.arguments_delta!r}")
            elif event.type == AgentEventType.TOOL_CALL_COMPLETED:
                print(f"  tool result: {event.data.output}")
            elif event.type == AgentEventType.STREAM_DELTA:
                print(f"  text: {event.data.text!r}")
            elif event.type == AgentEventType.SEND_COMPLETED:
                print(f"done: {event.data.status} — {event.data.final_text}")
                assert event.data.result.status == "completed"


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # removed afterwards: the example leaves nothing behind
        await demo(Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
