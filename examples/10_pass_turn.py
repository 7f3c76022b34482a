"""Passing a turn: an agent with nothing useful to add declines with the `pass_turn` tool.

`register_pass_turn(registry)` adds `pass_turn` (`PASS_TURN_TOOL`). When the model calls it, no
further model call follows: the send ends `completed` with `result.passed` and `result.pass_reason`
and an empty answer. Your own tool can do the same with `request_pass(reason)`.

Run it::

    python examples/10_pass_turn.py
"""

from __future__ import annotations

import asyncio

from power_loop import PASS_TURN_TOOL, StatefulAgentLoop, ToolRegistry, register_pass_turn, request_pass
from power_loop.testing import ScriptedLLM

tools = ToolRegistry()
register_pass_turn(tools)


@tools.tool
def check_inbox() -> str:
    """Read new messages; passes the turn by itself when there are none."""
    request_pass("inbox empty")  # raises TurnPassed: the loop ends the send here
    return "unreachable"


async def main() -> None:
    print("tool:", PASS_TURN_TOOL.name, "-", PASS_TURN_TOOL.description)
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call("pass_turn", {"reason": "the others already answered"}),
            ScriptedLLM.tool_call("check_inbox", {}),
            ScriptedLLM.text("Sure: the meeting is at 10."),
        ]
    )
    async with StatefulAgentLoop(llm=llm, dsn=":memory:", tool_registry=tools) as loop:
        sid = await loop.new_session()
        for text in ("Alice and Bob agreed on 10 am.", "Anything new?", "When is the meeting?"):
            result = await loop.send(text, sid)
            print(
                f"{text!r:35} -> passed={result.passed} reason={result.pass_reason!r} answer={result.final_text!r}"
            )
        assert result.final_text == "Sure: the meeting is at 10." and not result.passed
        print("model calls:", len(llm.requests), "for 3 sends (a passed turn makes no follow-up call)")


if __name__ == "__main__":
    asyncio.run(main())
