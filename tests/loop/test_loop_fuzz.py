"""Cancellation fuzzing (SPEC §2.4): whatever the model does and wherever a stop lands, the stored
history stays structurally valid and the session stays usable.

Hypothesis draws a script of model turns (text, one to three tool calls — some with bad arguments,
unknown tools or raising handlers — and provider errors) and a point at which the send is cancelled:
after the k-th event of the send, which lands at every kind of await (before the model call, during
it, between tool calls, while a tool runs). After every send, whatever its status or exception, the
history must be valid, nothing may be left pending unless the status says so, and a follow-up send
must work.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loop_helpers import check_history, make_tools

from power_loop import AgentEventBus, CancellationToken, StatefulAgentLoop
from power_loop.testing import ScriptedLLM

CALL = st.sampled_from(["fast", "slow", "boom", "missing", "bad_args"])
TURN = st.one_of(
    st.builds(lambda text: ("text", text), st.text(alphabet="abc xyz", max_size=20)),
    st.builds(lambda calls: ("calls", calls), st.lists(CALL, min_size=1, max_size=3)),
    st.just(("error", None)),
)


def _turn(kind: str, value: Any) -> Any:
    if kind == "text":
        return ScriptedLLM.text(value or "ok")
    if kind == "error":
        return ScriptedLLM.error(ConnectionError("provider hiccup"))
    calls = []
    for name in value:
        if name == "bad_args":
            calls.append(("fast", {"x": 5}))
        else:
            calls.append((name, {"x": "v"}))
    return ScriptedLLM.tool_calls(calls)


async def _slow(x: str) -> str:
    await asyncio.sleep(0.002)
    return "slow"


def _boom(x: str) -> str:
    raise RuntimeError("tool failed")


async def _scenario(turns: list[tuple[str, Any]], cancel_after: int | None, folder: Path) -> None:
    script = [_turn(kind, value) for kind, value in turns]
    llm = ScriptedLLM(script, default=ScriptedLLM.text("fallback"))
    bus = AgentEventBus()
    token = CancellationToken()
    seen = 0

    def count(event: Any) -> None:
        nonlocal seen
        seen += 1
        if cancel_after is not None and seen == cancel_after:
            token.cancel("fuzzed stop")

    bus.subscribe(None, count)
    tools = make_tools(fast=lambda x: f"fast:{x}", slow=_slow, boom=_boom)
    async with StatefulAgentLoop(
        llm=llm, dsn=str(folder / "fuzz.db"), tool_registry=tools, event_bus=bus
    ) as loop:
        sid = await loop.new_session()
        status = "error"
        try:
            result = await asyncio.wait_for(loop.send("go", sid, stop_event=token), 10)
            status = result.status
        except ConnectionError:
            pass  # no retry policy: a provider error propagates, nothing half-written
        messages = await loop.get_messages(sid)
        check_history(messages)
        pending = await loop.get_pending(sid)
        assert pending is None, f"status {status} left calls pending: {pending}"
        assert status in ("completed", "cancelled", "hit_round_limit", "error")
        if status == "cancelled":
            assert token.is_cancelled()
    # The session stays usable afterwards, from a brand-new loop.
    async with StatefulAgentLoop(
        llm=ScriptedLLM(default=ScriptedLLM.text("ok")), dsn=str(folder / "fuzz.db")
    ) as fresh:
        again = await fresh.send("again", sid)
        assert again.status == "completed"
        check_history(await fresh.get_messages(sid))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    turns=st.lists(TURN, min_size=1, max_size=5),
    cancel_after=st.one_of(st.none(), st.integers(min_value=1, max_value=40)),
)
def test_history_stays_valid_wherever_a_send_is_stopped(
    turns: list[tuple[str, Any]], cancel_after: int | None
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_scenario(turns, cancel_after, Path(folder)))
