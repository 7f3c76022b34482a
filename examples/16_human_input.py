"""Human in the loop: the model asks a question and the send pauses until someone answers.

`register_request_user_input(registry)` adds the `request_user_input` tool. When the model calls it,
`send` returns with status `waiting_for_input` and the question in `result.pending_interactions`;
`submit_input(sid, interaction_id, answer)` — from this process or any other, minutes or days later —
answers it and continues the send.

Run it::

    python examples/16_human_input.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from power_loop import StatefulAgentLoop, ToolRegistry, register_request_user_input
from power_loop.testing import ScriptedLLM

tools = ToolRegistry()
register_request_user_input(tools)


async def demo(dsn: str) -> None:
    llm = ScriptedLLM([ScriptedLLM.tool_call("request_user_input", {"prompt": "Which card?"})])
    async with StatefulAgentLoop(llm=llm, dsn=dsn, tool_registry=tools) as loop:
        sid = await loop.new_session()
        paused = await loop.send("Charge 10 to my card", sid)
        interaction = paused.pending_interactions[0]
        print("paused:", paused.status, "-", interaction["prompt"])

    # Later, in another process: the answer arrives (from a web form, a chat message, ...).
    llm = ScriptedLLM([ScriptedLLM.text("Using the visa.")])
    async with StatefulAgentLoop(llm=llm, dsn=dsn, tool_registry=tools) as loop:
        done = await loop.submit_input(sid, interaction["interaction_id"], "visa")
        print("answered:", done.status, done.final_text)
        print("the model saw the answer:", llm.requests[0].messages[-1]["content"])
        assert done.status == "completed" and "visa" in llm.requests[0].messages[-1]["content"]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # removed afterwards: the example leaves nothing behind
        asyncio.run(demo(str(Path(tmp) / "human.db")))


if __name__ == "__main__":
    main()
