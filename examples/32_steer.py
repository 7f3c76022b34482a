"""Steering a running send: ``follow_up(text, sid, mode="steer")`` while the model is answering.

The model call is cancelled, nothing of it is stored, and the same send goes on with the steering
text as the next user message. Then the same from a second loop on the database (as another process
would): the session is leased, so the steer is queued durably and the driving send polls for it.

    python examples/32_steer.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from power_loop import AgentEvent, AgentEventType, AgentLoopConfig, StatefulAgentLoop, StopPolicy
from power_loop.testing import ScriptedLLM


class SlowFirstCall:
    """A model whose first call never ends by itself (until cancelled); later calls answer ``reply``."""

    def __init__(self, reply: str) -> None:
        self.reply, self.calls, self.in_flight = ScriptedLLM.text(reply), 0, asyncio.Event()

    async def __call__(self, request: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            self.in_flight.set()
            await asyncio.Event().wait()
        return self.reply


def show(event: AgentEvent) -> None:
    print(f"  [event] steer_interrupted: {event.data.interrupted} in round {event.data.round_index}")


async def scene(db: str, reply: str, ask: str, steer: str, *, from_another_loop: bool) -> None:
    model = SlowFirstCall(reply)
    config = AgentLoopConfig(stop_policy=StopPolicy(poll_interval_s=0.2))  # how often a leased send polls
    lease = 30 if from_another_loop else None
    async with (
        StatefulAgentLoop(llm=ScriptedLLM(responder=model), dsn=db, lease_ttl_s=lease, config=config) as loop,
        StatefulAgentLoop(llm=ScriptedLLM(), dsn=db, lease_ttl_s=lease) as other,
    ):
        loop.event_bus.subscribe(AgentEventType.STEER_INTERRUPTED, show)
        sid = await loop.new_session()
        send = asyncio.ensure_future(loop.send(ask, sid))
        await model.in_flight.wait()
        queued = await (other if from_another_loop else loop).follow_up(steer, sid, mode="steer")
        print(f"  follow_up returned {type(queued).__name__}")
        result = await send
        await loop.event_bus.drain()
        print(f"  -> {result.status}, steers={result.steers}, rounds={result.rounds}")
        for m in await loop.get_messages(sid):
            print(f"  {m['role'] + (' (' + m['name'] + ')' if m.get('name') else ''):<14} {m['content']}")


SCENES = [  # title, the model's answer after the steer, the request, the steer, from another loop?
    ("1. a steer during a model call", "Paris.", "An essay on French cities?", "Just the capital.", False),
    ("2. a steer from another loop (leased)", "Switched.", "Translate the manual.", "Summarise.", True),
]


async def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        for n, (title, reply, ask, steer, other) in enumerate(SCENES):
            print(title)
            await scene(str(Path(work) / f"{n}.db"), reply, ask, steer, from_another_loop=other)


if __name__ == "__main__":
    asyncio.run(main())
