"""A program written against the published power-loop 3.0.2 interface, run unchanged on power_loop.

It uses only published names and call shapes: a hand-written `LLMService` (complete/stream/close),
`AgentLoopConfig` with the context axes (`representation`, `fold_strategy`) and runtime projectors,
the `todo` tool from `create_default_tool_registry`, the shared board through
`register_blackboard_tools(registry)` + `SqliteBlackboard` found via `runtime_env_context`, and a
legacy dict hook run with `HookContext`. Offline, no API key:

    python examples/29_published_program.py
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from power_loop import (
    AgentHooks,
    AgentLoopConfig,
    HookContext,
    HookPoint,
    LLMResponse,
    LLMSummaryFold,
    RuntimeEnv,
    SqliteBlackboard,
    StatefulAgentLoop,
    TodoRuntimeProjector,
    VerbatimRepresentation,
    create_default_tool_registry,
    register_blackboard_tools,
    runtime_env_context,
)

PLAN = [{"id": "1", "text": "collect the facts", "status": "in_progress"}]


def call(name: str, args: dict[str, Any], n: int) -> dict[str, Any]:
    return {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


class PlanningModel:
    """Plans with `todo`, reports on the shared board, then answers; notes what it was shown."""

    def __init__(self) -> None:
        self.calls = 0
        self.saw_todos = False

    async def complete(self, request: Any, **_callbacks: Any) -> LLMResponse:
        self.calls += 1
        if any(m.get("name") == "runtime_todo_state" for m in request.messages):
            self.saw_todos = True  # the runtime projector showed the current plan
        if self.calls == 1:
            return LLMResponse(raw_text="", tool_calls=[call("todo", {"items": PLAN}, 1)])
        if self.calls == 2:
            return LLMResponse(raw_text="", tool_calls=[call("board_post", {"text": "facts collected"}, 2)])
        return LLMResponse(raw_text="Done: the facts are on the board.")

    def stream(self, request: Any) -> Any:
        raise NotImplementedError("this model only completes")

    async def close(self) -> None:
        return None


async def main(tmp: Path) -> None:
    registry = create_default_tool_registry(include=["todo"])
    register_blackboard_tools(registry)
    config = AgentLoopConfig(
        representation=VerbatimRepresentation(),
        fold_strategy=LLMSummaryFold(),
        runtime_projectors=(TodoRuntimeProjector(),),
        max_tokens=8000,
    )
    hooks = AgentHooks()
    seen: list[str] = []

    def audit(ctx: Any) -> Any:
        # The loop fires typed ctx objects; the application's own dict runs pass a HookContext.
        if isinstance(ctx, HookContext):
            return {**ctx.values, "audited": True}
        seen.append(ctx.tool_name)
        return None

    hooks.register(HookPoint.TOOL_BEFORE, audit)
    model = PlanningModel()
    loop = StatefulAgentLoop(
        llm=model, db_path=str(tmp / "sessions.db"), config=config, tool_registry=registry, hooks=hooks
    )
    store = await loop.ensure_store()
    board = SqliteBlackboard(store)
    sid = await loop.new_session()
    with runtime_env_context(RuntimeEnv(blackboard=board, blackboard_id="team")):
        result = await loop.send("Collect the facts and share them.", session_id=sid)
    print(f"status: {result.status}; answer: {result.final_text}")
    print(f"model calls: {model.calls}; saw the todo list: {model.saw_todos}")
    print("board:", [f"#{e.id} {e.text}" for e in await board.read("team")])
    legacy = hooks.run(HookPoint.TOOL_BEFORE, HookContext({"tool": "todo"}))
    print("tools seen by the hook:", seen)
    print("dict hook:", legacy.context.values, legacy.directive.value)
    await loop.aclose()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="published-") as tmp:
        asyncio.run(main(Path(tmp)))
