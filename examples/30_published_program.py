"""A program written against the published power-loop 3.0.2 interface, run unchanged on power_loop.

Only published names and call shapes: a hand-written `LLMService` (complete/stream/close),
`AgentLoopConfig` with the context axes and runtime projectors, the `todo` tool, the shared board
(`register_blackboard_tools(registry)` + `SqliteBlackboard` found via `runtime_env_context`), a
legacy dict hook run with `HookContext`. Offline, no API key: `python examples/30_published_program.py`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import power_loop as pl

PLAN = [{"id": "1", "text": "collect the facts", "status": "in_progress"}]


def call(name: str, args: dict[str, Any], n: int) -> dict[str, Any]:
    return {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


SCRIPT = [[call("todo", {"items": PLAN}, 1)], [call("board_post", {"text": "facts collected"}, 2)]]


class PlanningModel:
    """Plans with `todo`, reports on the shared board, then answers; notes what it was shown."""

    calls, saw_todos = 0, False

    async def complete(self, request: Any, **_callbacks: Any) -> pl.LLMResponse:
        self.calls += 1
        names = {m.get("name") for m in request.messages}  # the todo projector's message is named so
        self.saw_todos = self.saw_todos or "runtime_todo_state" in names
        if self.calls <= len(SCRIPT):
            return pl.LLMResponse(raw_text="", tool_calls=SCRIPT[self.calls - 1])
        return pl.LLMResponse(raw_text="Done: the facts are on the board.")

    def stream(self, request: Any) -> Any:
        raise NotImplementedError("this model only completes")

    async def close(self) -> None:
        return None


async def main() -> None:
    tools = pl.create_default_tool_registry(include=["todo"])
    pl.register_blackboard_tools(tools)
    rep, fold, projectors = pl.VerbatimRepresentation(), pl.LLMSummaryFold(), (pl.TodoRuntimeProjector(),)
    config = pl.AgentLoopConfig(representation=rep, fold_strategy=fold, runtime_projectors=projectors)
    hooks, seen = pl.AgentHooks(), []

    def audit(ctx: Any) -> Any:
        # The loop fires typed ctx objects; the application's own dict runs pass a HookContext.
        if isinstance(ctx, pl.HookContext):
            return {**ctx.values, "audited": True}
        seen.append(ctx.tool_name)
        return None

    hooks.register(pl.HookPoint.TOOL_BEFORE, audit)
    model = PlanningModel()
    loop = pl.StatefulAgentLoop(
        llm=model, db_path=":memory:", config=config, tool_registry=tools, hooks=hooks
    )
    board = pl.SqliteBlackboard(await loop.ensure_store())
    sid = await loop.new_session()
    with pl.runtime_env_context(pl.RuntimeEnv(blackboard=board, blackboard_id="team")):
        result = await loop.send("Collect the facts and share them.", session_id=sid)
    print(f"status: {result.status}; answer: {result.final_text}")
    print(f"model calls: {model.calls}; saw the todo list: {model.saw_todos}")
    print("board:", [f"#{e.id} {e.text}" for e in await board.read("team")])
    legacy = hooks.run(pl.HookPoint.TOOL_BEFORE, pl.HookContext({"tool": "todo"}))
    print("tools seen by the hook:", seen, "| dict hook:", legacy.context.values, legacy.directive.value)
    await loop.aclose()


if __name__ == "__main__":
    asyncio.run(main())
