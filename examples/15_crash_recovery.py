"""Recovering interrupted sends, and pausing for human input.

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
from power_loop.tools import register_request_user_input

tools = ToolRegistry()


@tools.tool
def charge_card(amount: int) -> str:
    """Charge the customer's card."""
    return f"charged {amount}"


register_request_user_input(tools)


async def demo(workdir: Path) -> None:
    dsn = str(workdir / "recovery.db")

    # 1. Simulate a crash: a loop with no tools stops right after the model asked for one.
    async with StatefulAgentLoop(
        llm=ScriptedLLM([ScriptedLLM.tool_call("charge_card", {"amount": 5})]), dsn=dsn
    ) as loop:
        sid = await loop.new_session()
        print("first send:", (await loop.send("Charge 5", sid)).status)

    # 2. A fresh process sees the pending call and resumes it.
    llm = ScriptedLLM([ScriptedLLM.text("Charged 5.")])
    async with StatefulAgentLoop(llm=llm, dsn=dsn, tool_registry=tools) as loop:
        try:
            await loop.send("Are you done?", sid)
        except SessionPendingError as err:
            print(f"pending ({err.code}):", [c["function"]["name"] for c in err.pending_tool_calls])
        result = await loop.resume(sid)
        print("resume:", result.status, result.final_text)
        assert result.final_text == "Charged 5."

    # 3. Human input: the model asks a question; the send pauses until the answer arrives.
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call("request_user_input", {"prompt": "Which card?"}),
            ScriptedLLM.text("Using the visa."),
        ]
    )
    async with StatefulAgentLoop(llm=llm, dsn=dsn, tool_registry=tools) as loop:
        paused = await loop.send("Charge 10 more", sid)
        interaction = paused.pending_interactions[0]
        print("paused:", paused.status, "-", interaction["prompt"])
        done = await loop.submit_input(sid, interaction["interaction_id"], "visa")
        print("answered:", done.status, done.final_text)
        assert done.status == "completed"


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # removed afterwards: the example leaves nothing behind
        await demo(Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
