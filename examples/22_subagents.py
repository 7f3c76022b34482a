"""Sub-agents and a shared blackboard: a lead agent plans on a board and delegates to a researcher.

Runs offline: one scripted model plays both agents, answering by the system prompt it is given.

Run it::

    python examples/22_subagents.py
"""

from __future__ import annotations

import asyncio

from power_loop import AgentEventType, StatefulAgentLoop, ToolRegistry
from power_loop.agents import AgentSpec, StoreBlackboard, register_blackboard_tools, register_spawn_agent
from power_loop.llm import LLMRequest
from power_loop.loop import AgentLoopConfig
from power_loop.testing import ScriptedLLM, ScriptedTurn

tools = ToolRegistry()


@tools.tool
def lookup(topic: str) -> str:
    """Look a topic up in the (tiny) encyclopedia."""
    return {"sqlite": "SQLite is an embedded SQL database engine."}.get(topic.lower(), "no entry")


register_spawn_agent(tools)
TASK = {"text": "research SQLite", "kind": "task", "status": "open"}
DELEGATE = {
    "task": "Research SQLite, then mark task #1 done.",
    "system_prompt": "You research topics.",
    "tools": ["lookup", "board_update", "board_post"],
    "max_rounds": 5,
}


def model(request: LLMRequest) -> ScriptedTurn:
    """The lead plans, delegates, then answers; the researcher looks up and reports on the board."""
    done = sum(1 for m in request.messages if m["role"] == "tool")
    last = request.messages[-1]
    if (request.system_prompt or "").startswith("You lead"):
        plan = [ScriptedLLM.tool_call("board_post", TASK), ScriptedLLM.tool_call("spawn_agent", DELEGATE)]
        answer = ScriptedLLM.text(f"Summary from my researcher: {last['content']}")
        return plan[done] if done < len(plan) else answer
    plan = [
        ScriptedLLM.tool_call("lookup", {"topic": "SQLite"}),
        ScriptedLLM.tool_call("board_update", {"entry_id": 1, "status": "done"}),
        ScriptedLLM.tool_call("board_post", {"text": "SQLite is embedded"}),
    ]
    return plan[done] if done < len(plan) else ScriptedLLM.text("SQLite is an embedded SQL database engine.")


async def main() -> None:
    config = AgentLoopConfig(system_prompt="You lead a small team.")
    llm = ScriptedLLM(responder=model)
    async with StatefulAgentLoop(llm=llm, dsn=":memory:", tool_registry=tools, config=config) as loop:
        board = StoreBlackboard(await loop.ensure_store())
        register_blackboard_tools(tools, board, "team")
        for kind in (AgentEventType.SUBAGENT_TASK_START, AgentEventType.SUBAGENT_COMPLETED):
            loop.event_bus.subscribe(kind, lambda e: print(f"  event {e.type.value} from {e.source}"))
        sid = await loop.new_session()
        result = await loop.send("What is SQLite?", sid)
        print("lead:", result.final_text)
        print("board:")
        for entry in await board.read("team"):
            print(" ", entry.render())
        assert "embedded" in result.final_text

        # Hosts can describe sub-agents declaratively too (e.g. loaded from JSON):
        spec = AgentSpec.from_json(
            '{"name": "critic", "system_prompt": "You review.", "lifecycle": "linked"}'
        )
        print("spec:", spec.to_dict())


if __name__ == "__main__":
    asyncio.run(main())
