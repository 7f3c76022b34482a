"""Jobs: list what runs for a session and stop it — a send driven by one loop, seen and stopped by a
second loop on the same database (as a second process would), plus a timer; with the hook audit
trail recording what a hook vetoed meanwhile.

    python examples/34_jobs.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from power_loop import AgentHooks, AgentLoopConfig, HookDirective, StatefulAgentLoop, ToolRegistry
from power_loop.hooks import ToolBeforeCtx
from power_loop.testing import ScriptedLLM


def tools(stepped: asyncio.Event) -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool
    async def step(x: str) -> str:
        """Do one step."""
        stepped.set()
        await asyncio.sleep(0.01)
        return f"did {x}"

    return registry


def hooks() -> AgentHooks:
    hooks = AgentHooks()

    @hooks.on("tool.before")
    def no_deploys(ctx: ToolBeforeCtx) -> HookDirective | None:
        if ctx.tool_args.get("x") == "deploy":
            ctx.output = "refused: deploys need a human"
            return HookDirective.SKIP
        return None

    return hooks


async def main() -> None:
    stepped = asyncio.Event()
    # The model deploys once, then keeps working step after step: the send never ends by itself.
    step = ScriptedLLM.tool_call
    llm = ScriptedLLM([step("step", {"x": "deploy"})], default=step("step", {"x": "one more step"}))
    config = AgentLoopConfig(max_rounds=10_000, record_hook_events="metadata")
    with tempfile.TemporaryDirectory() as tmp:
        dsn = str(Path(tmp) / "jobs.db")
        async with (
            StatefulAgentLoop(
                llm=llm, dsn=dsn, tool_registry=tools(stepped), hooks=hooks(), config=config, lease_ttl_s=3
            ) as worker,
            StatefulAgentLoop(llm=ScriptedLLM(), dsn=dsn, lease_ttl_s=3) as operator,
        ):
            sid = await worker.new_session()
            await worker.schedule_timer(sid, delay_s=3600, note="check the build")
            running = asyncio.ensure_future(worker.send("work until stopped", sid))
            await stepped.wait()
            print("the operator's view:")
            for job in await operator.list_jobs(sid):
                print(f"  {job.id:<8} {job.kind:<6} {job.status:<8} {job.detail.split(':')[0]}")
            for job in await operator.list_jobs(sid):
                await operator.stop_job(sid, job.id, reason="the operator stopped it")
            result = await running
            print(f"the worker's send ended {result.status!r}; jobs left:", await operator.list_jobs(sid))
            for event in await operator.list_hook_events(sid):
                print(f"hook audit: round {event.round_index} {event.point} {event.decision} by {event.hook}")


if __name__ == "__main__":
    asyncio.run(main())
