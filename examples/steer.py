"""Steering a running send: ``follow_up(text, sid, mode="steer")``.

Three scenes, each printing the session's transcript and the ``steer_interrupted`` events:

1. a steer while the model is answering: the call is cancelled, nothing of it is stored, and the same
   send continues with the steering text as the next user message;
2. a steer while tools run: the batch finishes (every call answered), except the tool `StopPolicy`
   lets a steer cancel, which is answered ``<interrupted: steered>``;
3. a steer from a second loop on the same database (as another process would): the session is
   leased, so the steer is queued durably and the driving send finds it by polling.

Runs offline with a scripted model whose slow calls wait on events (no timing involved).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from power_loop import (
    AgentEvent,
    AgentEventType,
    AgentLoopConfig,
    LLMRequest,
    StatefulAgentLoop,
    StopPolicy,
    ToolRegistry,
)
from power_loop.testing import ScriptedLLM


class SlowFirstCall:
    """A model whose first call streams forever (until cancelled); later calls answer ``reply``."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.in_flight = asyncio.Event()
        self.calls = 0

    async def __call__(self, request: LLMRequest) -> Any:
        self.calls += 1
        if self.calls == 1:
            self.in_flight.set()
            await asyncio.Event().wait()
        return self.reply


def show_event(event: AgentEvent) -> None:
    data = event.data
    cancelled = f", cancelled {data.cancelled_tools}" if data.cancelled_tools else ""
    print(f"  [event] steer_interrupted: {data.interrupted} in round {data.round_index}{cancelled}")


async def transcript(loop: StatefulAgentLoop, sid: str) -> None:
    for m in await loop.get_messages(sid):
        label = m["role"] + (f" ({m['name']})" if m.get("name") else "")
        calls = ", ".join(c["function"]["name"] for c in m.get("tool_calls") or ())
        print(f"  {label:<16} {m['content'] or ''}{'calls: ' + calls if calls else ''}")


async def steer_a_model_call(db: str) -> None:
    print("1. a steer during a model call")
    model = SlowFirstCall(ScriptedLLM.text("Paris."))
    async with StatefulAgentLoop(llm=ScriptedLLM(responder=model), dsn=db) as loop:
        loop.event_bus.subscribe(AgentEventType.STEER_INTERRUPTED, show_event)
        sid = await loop.new_session()
        send = asyncio.ensure_future(loop.send("Write a long essay about French cities.", sid))
        await model.in_flight.wait()
        await loop.follow_up("Actually, just name the capital.", sid, mode="steer")
        result = await send
        await loop.event_bus.drain()
        print(f"  -> {result.status}, steers={result.steers}, rounds={result.rounds}")
        await transcript(loop, sid)


async def steer_a_tool_batch(db: str) -> None:
    print("2. a steer during a tool batch (crawl may be interrupted, save may not)")
    crawling, saving = asyncio.Event(), asyncio.Event()
    tools = ToolRegistry()

    @tools.tool
    async def crawl(url: str) -> str:
        """Crawl a site (slow)."""
        crawling.set()
        await asyncio.Event().wait()  # only a steer (or a cancellation) ends it
        return "pages"

    @tools.tool
    async def save(text: str) -> str:
        """Save a note (must finish)."""
        await saving.wait()
        return f"saved {text!r}"

    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_calls([("crawl", {"url": "https://example.com"}), ("save", {"text": "plan"})]),
            ScriptedLLM.text("Stopped crawling; the plan is saved."),
        ]
    )
    config = AgentLoopConfig(stop_policy=StopPolicy(interruptible_tools={"crawl"}))
    async with StatefulAgentLoop(llm=llm, dsn=db, tool_registry=tools, config=config) as loop:
        loop.event_bus.subscribe(AgentEventType.STEER_INTERRUPTED, show_event)
        sid = await loop.new_session()
        send = asyncio.ensure_future(loop.send("Research example.com and save a plan.", sid))
        await crawling.wait()
        await loop.follow_up("Stop crawling, we have enough.", sid, mode="steer")
        saving.set()  # the non-interruptible tool finishes before the steer is taken
        result = await send
        await loop.event_bus.drain()
        print(f"  -> {result.status}, steers={result.steers}")
        await transcript(loop, sid)


async def steer_from_another_loop(db: str) -> None:
    print("3. a steer from another loop on the same database (leased session)")
    model = SlowFirstCall(ScriptedLLM.text("Switched to the summary."))
    config = AgentLoopConfig(stop_policy=StopPolicy(poll_interval_s=0.2))
    async with (
        StatefulAgentLoop(llm=ScriptedLLM(responder=model), dsn=db, lease_ttl_s=30, config=config) as driver,
        StatefulAgentLoop(llm=ScriptedLLM(), dsn=db, lease_ttl_s=30) as other,
    ):
        driver.event_bus.subscribe(AgentEventType.STEER_INTERRUPTED, show_event)
        sid = await driver.new_session()
        send = asyncio.ensure_future(driver.send("Translate the whole manual.", sid))
        await model.in_flight.wait()
        queued = await other.follow_up("Summarise it instead.", sid, mode="steer")
        print(f"  the other loop queued it: {type(queued).__name__}(item_id={queued.item_id})")
        result = await send
        await driver.event_bus.drain()
        print(f"  -> {result.status}, steers={result.steers}")
        await transcript(other, sid)


async def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        await steer_a_model_call(str(Path(work) / "one.db"))
        await steer_a_tool_batch(str(Path(work) / "two.db"))
        await steer_from_another_loop(str(Path(work) / "three.db"))


if __name__ == "__main__":
    asyncio.run(main())
