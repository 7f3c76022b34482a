"""A complete chatbot: tools, streamed answers, notes that survive restarts, folding of old turns.

Everything from the path so far in one program: a decorator tool, `loop.stream()` printing the
answer as it arrives, a `ContextPipeline` with `NotesMemory` (the bot keeps notes with `note_add`,
recalled on every send) and `LLMSummaryFold` (old turns are summarised when the window fills), and a
brand-new loop resuming the conversation from the database. Offline with a scripted model; use
`create_llm_service_from_env()` and `input()` for a real chat.

Run it::

    python examples/31_chatbot.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from power_loop import AgentEventType, StatefulAgentLoop, ToolRegistry
from power_loop.context import ContextPipeline, LLMSummaryFold, NotesMemory
from power_loop.testing import ScriptedLLM

tools = ToolRegistry()


@tools.tool(effect="pure")
def find_recipes(ingredient: str, vegetarian: bool = False) -> str:
    """Recipes with an ingredient."""
    return "lentil curry, mushroom risotto" if vegetarian else "chicken curry, lentil curry"


def make_loop(dsn: str, llm: ScriptedLLM) -> StatefulAgentLoop:
    memory = ContextPipeline(fold=LLMSummaryFold(keep_last_sends=4), memory=NotesMemory(), note_tools=True)
    return StatefulAgentLoop(llm=llm, dsn=dsn, tool_registry=tools, context=memory)


async def chat(loop: StatefulAgentLoop, sid: str, text: str) -> None:
    print(f"you: {text}\nbot: ", end="", flush=True)
    async for event in loop.stream(text, sid):
        if event.type == AgentEventType.STREAM_DELTA:
            print(event.data.text, end="", flush=True)
        elif event.type == AgentEventType.TOOL_CALL_STARTED:
            print(f"[{event.data.name}] ", end="", flush=True)
    print()


async def demo(dsn: str) -> None:
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call("note_add", {"content": "The user is vegetarian.", "pinned": True}),
            ScriptedLLM.text("Noted: vegetarian. What are you cooking?"),
            ScriptedLLM.tool_call("find_recipes", {"ingredient": "lentils", "vegetarian": True}),
            ScriptedLLM.text("Try a lentil curry."),
        ]
    )
    async with make_loop(dsn, llm) as loop:
        sid = await loop.new_session(system_prompt="You are a cooking assistant. Keep notes on preferences.")
        await chat(loop, sid, "Hi! I don't eat meat.")
        await chat(loop, sid, "Something with lentils?")

    # Later, another process: a new loop on the same database picks the conversation up.
    llm2 = ScriptedLLM([ScriptedLLM.text("As a vegetarian: mushroom risotto.")])
    async with make_loop(dsn, llm2) as loop:
        await chat(loop, sid, "And for tomorrow?")
        request = llm2.requests[0]
        seen = (request.system_prompt or "") + str(request.messages)
        print("the note reached the model after the restart:", "The user is vegetarian." in seen)
        assert "The user is vegetarian." in seen and len(request.messages) >= 9


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # removed afterwards: the example leaves nothing behind
        asyncio.run(demo(str(Path(tmp) / "chatbot.db")))


if __name__ == "__main__":
    main()
