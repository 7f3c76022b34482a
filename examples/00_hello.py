"""Hello: one session, one send, one answer — the smallest complete program.

`ScriptedLLM` plays the model, so this runs offline; `dsn=":memory:"` keeps the store in memory.

Run it::

    python examples/00_hello.py
"""

from __future__ import annotations

import asyncio

from power_loop import StatefulAgentLoop
from power_loop.testing import ScriptedLLM


async def main() -> None:
    llm = ScriptedLLM([ScriptedLLM.text("Hello! How can I help?")])  # the model's scripted replies
    async with StatefulAgentLoop(llm=llm, dsn=":memory:") as loop:
        sid = await loop.new_session(system_prompt="You are a friendly assistant.")
        result = await loop.send("Hi there", sid)
        print(f"{result.status}: {result.final_text}")
        assert result.status == "completed" and result.final_text == "Hello! How can I help?"


if __name__ == "__main__":
    asyncio.run(main())
