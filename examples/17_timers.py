"""Durable timers: a session schedules wake-ups; a `TimerRunner` fires them into the conversation.

Run it::

    python examples/17_timers.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from power_loop import AgentEvent, AgentEventType, HookDirective, HookPoint, StatefulAgentLoop, TimerRunner
from power_loop.hooks import TimerFireCtx
from power_loop.testing import ScriptedLLM


async def main() -> None:
    # The scripted model answers every wake-up by quoting what it was woken with.
    llm = ScriptedLLM(
        responder=lambda request: f"(model saw: {request.messages[-1]['content'].splitlines()[2]})"
    )
    with tempfile.TemporaryDirectory() as tmp:
        async with StatefulAgentLoop(llm=llm, db_path=str(Path(tmp) / "timers.db")) as loop:
            sid = await loop.new_session()

            fired = asyncio.Event()
            outcomes: list[str] = []

            def on_fired(event: AgentEvent) -> None:
                outcomes.append(f"timer {event.payload['timer_id']}: {event.payload['outcome']}")
                if len(outcomes) == 3:
                    fired.set()

            loop.event_bus.subscribe(AgentEventType.TIMER_FIRED, on_fired)

            # A host-side policy: drop wake-ups marked optional (ctx.message could be rewritten too).
            def policy(ctx: TimerFireCtx) -> HookDirective | None:
                return HookDirective.SKIP if ctx.note.startswith("optional:") else None

            loop.hooks.register(HookPoint.TIMER_FIRE, policy)

            await loop.schedule_timer(sid, delay_s=0.05, note="check whether the nightly build finished")
            await loop.schedule_timer(sid, delay_s=0.1, note="optional: tidy the scratch directory")
            await loop.schedule_timer(sid, delay_s=3600, note="far in the future: never fires here")
            await loop.schedule_timer(sid, delay_s=0.15, note="summarise the day")

            # Timers are rows in the database: any process running a TimerRunner on it fires them,
            # each exactly once. The runner scans every scan_interval_s (2 s by default).
            async with TimerRunner(loop, scan_interval_s=0.02):
                await asyncio.wait_for(fired.wait(), timeout=30)

            print("outcomes:", *outcomes, sep="\n  ")
            print("still armed:", [t.note for t in await loop.list_timers(sid)])
            for message in await loop.get_messages(sid):
                if message["role"] == "assistant":
                    print("assistant:", message["content"])


if __name__ == "__main__":
    asyncio.run(main())
