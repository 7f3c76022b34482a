"""A steer interrupts a model call in flight through each official SDK: the HTTP stream is abandoned,
nothing of it is stored, and the send continues with the steering text (issue 14, item 3)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from wire_server import (
    Reply,
    WireServer,
    anthropic_sse,
    anthropic_text_events,
    openai_sse,
    openai_text_chunks,
)

from power_loop import StatefulAgentLoop

WAIT = 60.0  # generous: nothing here waits for time to pass


async def _requests(wire: WireServer, count: int) -> None:
    while len(wire.requests) < count:  # noqa: ASYNC110 - the wire server records, it does not signal
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_steer_abandons_the_stream_in_flight_and_the_send_goes_on(
    provider: str, wire: WireServer, make_openai: Any, make_anthropic: Any, tmp_path: Path
) -> None:
    if provider == "openai":
        wire.push(Reply(events=openai_sse(openai_text_chunks("A very long essay")), stall_after=2))
        wire.push_openai_stream(openai_text_chunks("Paris."))
        llm = make_openai()
    else:
        wire.push(Reply(events=anthropic_sse(anthropic_text_events("A very long essay")), stall_after=3))
        wire.push_anthropic_stream(anthropic_text_events("Paris."))
        llm = make_anthropic()
    async with StatefulAgentLoop(llm=llm, dsn=str(tmp_path / "x.db")) as loop:
        sid = await loop.new_session()
        send = asyncio.ensure_future(loop.send("Write an essay about French cities.", sid))
        await asyncio.wait_for(_requests(wire, 1), WAIT)  # the first stream is open and stalled
        await loop.follow_up("Just name the capital.", sid, mode="steer")
        result = await asyncio.wait_for(send, WAIT)
        history = await loop.get_messages(sid)
    assert result.status == "completed" and result.final_text == "Paris." and result.steers == 1
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "Write an essay about French cities."),
        ("user", "Just name the capital."),
        ("assistant", "Paris."),
    ]
    assert len(wire.requests) == 2 and wire.remaining == 0
    last = wire.requests[1].body["messages"][-1]  # Anthropic merges the two user turns into one
    text = last["content"] if isinstance(last["content"], str) else last["content"][-1]["text"]
    assert last["role"] == "user" and text == "Just name the capital."
