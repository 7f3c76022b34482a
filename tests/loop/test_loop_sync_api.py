"""The synchronous API for code without an event loop."""

from __future__ import annotations

import asyncio

import pytest

from power_loop import StatefulAgentLoop, SyncCallInEventLoopError
from power_loop.testing import ScriptedLLM


def test_send_sync_round_trip(target):
    llm = ScriptedLLM([ScriptedLLM.text("sync hello"), ScriptedLLM.text("again")])
    loop = StatefulAgentLoop(llm=llm, **target)
    try:
        sid = loop.new_session_sync()
        assert loop.send_sync("hi", sid).final_text == "sync hello"
        assert loop.follow_up_sync("more", sid).final_text == "again"
    finally:
        loop.close()

    # The store was closed and the data is durable for a fresh loop.
    async def read() -> list[dict]:
        async with StatefulAgentLoop(llm=ScriptedLLM(), **target) as fresh:
            return await fresh.get_messages(sid)

    messages = asyncio.run(read())
    assert [m["content"] for m in messages] == ["hi", "sync hello", "more", "again"]


async def test_sync_api_inside_an_event_loop_is_refused(target):
    loop = StatefulAgentLoop(llm=ScriptedLLM(), **target)
    with pytest.raises(SyncCallInEventLoopError) as info:
        loop.new_session_sync()
    assert isinstance(info.value, RuntimeError) and info.value.code == "loop.sync_in_async"
    await loop.aclose()
