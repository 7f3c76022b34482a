"""Reading a session back: its messages, its statistics, the system prompt it uses.

`loop.get_messages(sid)` returns the active window as provider-shape dicts (what the next request
sends); `include_compacted=True` returns every stored row, folded ones too. `get_session_stats`
sums sends, rounds, calls and tokens.

Run it::

    python examples/02_read_history.py
"""

from __future__ import annotations

import asyncio

from power_loop import StatefulAgentLoop, ToolRegistry
from power_loop.testing import ScriptedLLM

tools = ToolRegistry()


@tools.tool(effect="pure")
def lookup_order(order_id: str) -> str:
    """Status of an order."""
    return f"order {order_id}: shipped yesterday"


async def main() -> None:
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call("lookup_order", {"order_id": "A-17"}),
            ScriptedLLM.text("Your order A-17 shipped yesterday."),
            ScriptedLLM.text("You're welcome!"),
        ]
    )
    async with StatefulAgentLoop(llm=llm, dsn=":memory:", tool_registry=tools) as loop:
        sid = await loop.new_session(system_prompt="You are a support agent.")
        await loop.send("Where is my order A-17?", sid)
        await loop.send("Thanks!", sid)

        for message in await loop.get_messages(sid):
            calls = [c["function"]["name"] for c in message.get("tool_calls") or []]
            print(f"{message['role']:>9}: {message.get('content') or ''} {calls or ''}".rstrip())

        stats = await loop.get_session_stats(sid)
        assert stats is not None
        print(
            f"sends={stats.sends} rounds={stats.rounds} llm_calls={stats.llm_calls} tools={stats.tool_calls}"
        )
        print("system prompt:", await loop.resolve_system_prompt(session_id=sid))
        assert (stats.sends, stats.tool_calls) == (2, 1)


if __name__ == "__main__":
    asyncio.run(main())
