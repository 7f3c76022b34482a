"""Steering a send while its tools run: the tool batch finishes (every call is answered, so the
history stays valid), except the tools `StopPolicy` lets a steer cancel — those are answered
``<interrupted: steered>``. Then the steering text follows as the next user message.

    python examples/33_steer_tools.py
"""

from __future__ import annotations

import asyncio

from power_loop import AgentLoopConfig, StatefulAgentLoop, StopPolicy, ToolRegistry
from power_loop.testing import ScriptedLLM


async def main() -> None:
    crawling, saving = asyncio.Event(), asyncio.Event()
    tools = ToolRegistry()

    @tools.tool
    async def crawl(url: str) -> str:
        """Crawl a site (slow: only a steer or a cancellation ends it)."""
        crawling.set()
        await asyncio.Event().wait()
        return "pages"

    @tools.tool
    async def save(text: str) -> str:
        """Save a note (must finish)."""
        await saving.wait()
        return f"saved {text!r}"

    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_calls([("crawl", {"url": "https://example.com"}), ("save", {"text": "plan"})]),
            ScriptedLLM.text("Stopped crawling; the plan is saved."),
        ]
    )
    config = AgentLoopConfig(stop_policy=StopPolicy(interruptible_tools={"crawl"}))
    async with StatefulAgentLoop(llm=llm, dsn=":memory:", tool_registry=tools, config=config) as loop:
        sid = await loop.new_session()
        send = asyncio.ensure_future(loop.send("Research example.com and save a plan.", sid))
        await crawling.wait()
        await loop.follow_up("Stop crawling, we have enough.", sid, mode="steer")
        saving.set()  # the tool a steer may not interrupt finishes before the steer is taken
        result = await send
        print(f"-> {result.status}, steers={result.steers}")
        for m in await loop.get_messages(sid):
            calls = ", ".join(c["function"]["name"] for c in m.get("tool_calls") or ())
            label = m["role"] + (f" ({m['name']})" if m.get("name") else "")
            print(f"  {label:<14} {m['content'] or ''}{'calls: ' + calls if calls else ''}")


if __name__ == "__main__":
    asyncio.run(main())
