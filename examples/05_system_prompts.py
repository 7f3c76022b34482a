"""System prompts from parts: `SystemPromptBuilder`, the ready-made builders, the tool catalog.

A builder is an ordered list of named sections (`BUILTIN_SECTIONS`), each a string or a function of
a `SystemPromptContext`; sections that render empty are left out.

Run it::

    python examples/05_system_prompts.py
"""

from __future__ import annotations

import asyncio

from power_loop import (
    BUILTIN_SECTIONS,
    AgentLoopConfig,
    StatefulAgentLoop,
    SystemPromptBuilder,
    SystemPromptContext,
    ToolRegistry,
    build_explore_subagent_system_prompt,
    format_tool_catalog,
)
from power_loop.testing import ScriptedLLM

tools = ToolRegistry()


@tools.tool(effect="pure")
def get_price(product: str) -> str:
    """Price of a product in EUR."""
    return "9.90"


async def main() -> None:
    print("built-in sections:", ", ".join(BUILTIN_SECTIONS))
    builder = (
        SystemPromptBuilder()  # every built-in section, in order
        .use("identity", "security", "tool_catalog")  # keep only these
        .add("house_rules", "Quote prices in EUR.", after="identity")
        .add("model", lambda ctx: f"You run on {ctx.model}.")
    )
    ctx = SystemPromptContext(model="gpt-4o-mini", tool_definitions=tools)
    prompt = builder.build(ctx)
    print("sections:", builder.section_names())
    print(prompt, "\n---")
    print(format_tool_catalog(tools))
    print("explore sub-agent prompt starts:", build_explore_subagent_system_prompt().splitlines()[0])

    # The loop sends the prompt of its config (a session's or a call's own prompt wins over it).
    llm = ScriptedLLM([ScriptedLLM.text("It costs 9.90 EUR.")])
    async with StatefulAgentLoop(
        llm=llm, dsn=":memory:", config=AgentLoopConfig(system_prompt=prompt)
    ) as loop:
        await loop.send("How much is the mug?", await loop.new_session())
    sent = llm.requests[0].system_prompt
    assert sent is not None and "Quote prices in EUR." in sent and "gpt-4o-mini" in sent
    print("the model was sent the built prompt:", len(sent), "characters")


if __name__ == "__main__":
    asyncio.run(main())
