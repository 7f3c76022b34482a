"""Hooks steer the loop (here: veto a dangerous tool, redact output); events observe it.

Run it::

    python examples/11_hooks_and_events.py
"""

from __future__ import annotations

import asyncio

from power_loop import (
    AgentEventBus,
    AgentEventType,
    AgentHooks,
    HookDirective,
    StatefulAgentLoop,
    ToolRegistry,
)
from power_loop.hooks import ToolAfterCtx, ToolBeforeCtx
from power_loop.testing import ScriptedLLM

tools = ToolRegistry()


@tools.tool
def delete_everything(confirm: bool) -> str:
    """Deletes everything (never actually runs in this example)."""
    raise AssertionError("the hook must have vetoed this call")


@tools.tool
def read_secret(name: str) -> str:
    """Read a configuration value."""
    return f"{name}=hunter2"


async def main() -> None:
    hooks = AgentHooks()

    @hooks.on("tool.before")  # string values work as well as HookPoint.TOOL_BEFORE
    def veto(ctx: ToolBeforeCtx) -> HookDirective | None:
        if ctx.tool_name == "delete_everything":
            ctx.output = "Refused by policy: destructive tools are disabled."
            return HookDirective.SKIP
        return None

    @hooks.on("tool.after")
    def redact(ctx: ToolAfterCtx) -> None:
        ctx.output = ctx.output.replace("hunter2", "***")

    bus = AgentEventBus()
    seen: list[str] = []
    bus.subscribe(None, lambda event: seen.append(event.type.value))

    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_calls(
                [("delete_everything", {"confirm": True}), ("read_secret", {"name": "db_password"})]
            ),
            ScriptedLLM.text("I could not delete anything; the password is redacted."),
        ]
    )
    async with StatefulAgentLoop(
        llm=llm, dsn=":memory:", tool_registry=tools, hooks=hooks, event_bus=bus
    ) as loop:
        sid = await loop.new_session()
        result = await loop.send("Clean up and show me the DB password.", sid)
        tool_results = [m["content"] for m in await loop.get_messages(sid) if m["role"] == "tool"]
    print(result.final_text)
    print("tool results:", tool_results)
    print("events:", " ".join(dict.fromkeys(seen)))
    assert tool_results == ["Refused by policy: destructive tools are disabled.", "db_password=***"]
    assert AgentEventType.TOOL_CALL_COMPLETED.value in seen


if __name__ == "__main__":
    asyncio.run(main())
