"""Quickstart: a session, a tool, a persisted conversation continued by a brand-new loop.

Runs offline with a scripted model. Swap in `create_llm_service_from_env()` for a real provider.

Run it::

    python examples/01_quickstart.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from power_loop import StatefulAgentLoop, ToolRegistry
from power_loop.testing import ScriptedLLM

tools = ToolRegistry()


@tools.tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def demo(workdir: Path) -> None:
    dsn = str(workdir / "quickstart.db")
    llm = ScriptedLLM([ScriptedLLM.tool_call("add", {"a": 2, "b": 3}), ScriptedLLM.text("2 + 3 = 5")])
    async with StatefulAgentLoop(llm=llm, dsn=dsn, tool_registry=tools) as loop:
        sid = await loop.new_session(system_prompt="You are a careful calculator.")
        result = await loop.send("What is 2 + 3?", sid)
        print(
            f"{result.status}: {result.final_text} (rounds={result.rounds}, tool_calls={result.tool_calls})"
        )
        assert result.final_text == "2 + 3 = 5"

    # A new loop holds no state of its own: the DSN and the session id are enough.
    llm2 = ScriptedLLM([ScriptedLLM.text("We added 2 and 3.")])
    async with StatefulAgentLoop(llm=llm2, dsn=dsn, tool_registry=tools) as loop:
        result = await loop.send("What did we do?", sid)
        print("history the model saw:", [m["role"] for m in llm2.requests[0].messages])
        assert [m["role"] for m in llm2.requests[0].messages] == [
            "user",
            "assistant",
            "tool",
            "assistant",
            "user",
        ]


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # removed afterwards: the example leaves nothing behind
        await demo(Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
