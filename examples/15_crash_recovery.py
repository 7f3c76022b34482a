"""Recovering an interrupted send: a tool call left without its result.

A send that dies between the model's tool call and its result leaves the session *pending*. Sending
again raises `SessionPendingError`; recover with `resume` (re-run the calls), `abort_pending` (answer
them with an abort marker) or `send(..., heal_pending=True)`.

Run it::

    python examples/15_crash_recovery.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from power_loop import SessionPendingError, StatefulAgentLoop, ToolRegistry
from power_loop.testing import ScriptedLLM

tools = ToolRegistry()


@tools.tool
def charge_card(amount: int) -> str:
    """Charge the customer's card."""
    return f"charged {amount}"


async def demo(dsn: str) -> None:
    # 1. Simulate a crash: a loop with no tools stops right after the model asked for one.
    llm = ScriptedLLM([ScriptedLLM.tool_call("charge_card", {"amount": 5})])
    async with StatefulAgentLoop(llm=llm, dsn=dsn) as loop:
        sid = await loop.new_session()
        print("first send:", (await loop.send("Charge 5", sid)).status)

    # 2. A fresh process sees the pending call and resumes it.
    llm = ScriptedLLM([ScriptedLLM.text("Charged 5.")])
    async with StatefulAgentLoop(llm=llm, dsn=dsn, tool_registry=tools) as loop:
        print("pending:", await loop.get_pending(sid) is not None)
        try:
            await loop.send("Are you done?", sid)
        except SessionPendingError as err:
            print(f"refused ({err.code}):", [c["function"]["name"] for c in err.pending_tool_calls])
        result = await loop.resume(sid)
        print("resume:", result.status, result.final_text)
        assert result.final_text == "Charged 5."


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # removed afterwards: the example leaves nothing behind
        asyncio.run(demo(str(Path(tmp) / "recovery.db")))


if __name__ == "__main__":
    main()
