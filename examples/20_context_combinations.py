"""Context handling: every representation x fold strategy combination, through StatefulAgentLoop.

Each combination runs the same 8-send conversation (a question, one tool call, an answer) under a
small token budget, then shows what the model was sent for the last send and that the audit log
still holds every message. Offline: a scripted model answers both the conversation and the folds.

Run it::

    python examples/20_context_combinations.py
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from power_loop import StatefulAgentLoop, ToolRegistry, context
from power_loop.testing import ScriptedLLM

tools = ToolRegistry()


@tools.tool
def grep(pattern: str) -> str:
    """Search the code base."""
    number = pattern.rsplit("_", 1)[-1]
    return f"billing/invoice.py:{number[-2:]}: def invoice_{number}()"


def respond(request: Any) -> Any:
    """Plays the model: folds get a summary (the agentic fold first saves a note), sends get a tool round."""
    first = str(request.messages[0]["content"]) if request.messages else ""
    if "<send index=" in first:  # a fold call: the transcript of older sends
        if request.tools and "(none)" in first and not any(m["role"] == "tool" for m in request.messages):
            return ScriptedLLM.tool_call("note_add", {"content": "the user works on the billing service"})
        folded = first.count("<send index=")
        return f"<summary>The user asked where invoices are computed ({folded} send(s) folded).</summary>"
    last = request.messages[-1]
    if last["role"] == "tool":
        return ScriptedLLM.text("It is computed in billing/invoice.py.")
    asked = re.search(r"invoice (\d+)", str(last["content"]))
    return ScriptedLLM.tool_call("grep", {"pattern": f"invoice_{asked.group(1) if asked else 0}"})


async def run(pipeline: context.ContextPipeline) -> None:
    llm = ScriptedLLM(responder=respond)
    async with StatefulAgentLoop(llm=llm, dsn=":memory:", tool_registry=tools, context=pipeline) as loop:
        sid = await loop.new_session()
        for i in range(8):
            await loop.send(f"Question {i}: where is invoice {1000 + i} computed? " + "context " * 40, sid)
        window = await loop.get_messages(sid)
        everything = await loop.get_messages(sid, include_compacted=True)
        last_request = llm.requests[-1].messages
        print(f"  active rows: {len(window)}; audit log: {len(everything)} messages (nothing deleted)")
        print(f"  the last request carried {len(last_request)} messages, the first four:")
        for msg in last_request[:4]:
            text = (
                str(msg["content"]).replace("\n", " / ")
                or f"[calls {msg['tool_calls'][0]['function']['name']}]"
            )
            print(f"    {msg['role']:>9}: {text[:90]}")
        notes = await (await loop.ensure_store()).list_notes(sid)
        if notes:
            print(f"  notes captured by the fold: {[n.content for n in notes]}")
        assert len(everything) == 8 * 4 + sum(1 for m in everything if m["role"] == "system")
        assert len(last_request) < len(everything)


async def main() -> None:
    for rep in [context.VerbatimRepresentation(), context.ProjectedRepresentation(max_chars=70)]:
        for fold in [context.LLMSummaryFold(keep_last_sends=2), context.AgenticFold(keep_last_sends=2)]:
            budget = 900 if rep.kind == "verbatim" else 400
            print(f"== {rep!r} x {fold!r}")
            await run(context.ContextPipeline(representation=rep, fold=fold, context_tokens=budget))


if __name__ == "__main__":
    asyncio.run(main())
