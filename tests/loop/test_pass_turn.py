"""pass_turn: an agent declines to reply; the call is answered and stored, the send ends completed
with `passed`, and the session goes on."""

from __future__ import annotations

import pytest
from loop_helpers import check_history

from power_loop import PASS_TURN_TOOL, ToolRegistry, TurnPassed, register_pass_turn, request_pass
from power_loop.testing import ScriptedLLM


async def test_pass_turn_ends_the_send_without_a_reply(make_loop) -> None:
    registry = ToolRegistry()
    register_pass_turn(registry)
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call("pass_turn", {"reason": "not addressed to me"}),
            ScriptedLLM.text("hello again"),
        ]
    )
    loop = make_loop(llm=llm, tool_registry=registry)
    sid = await loop.new_session()
    result = await loop.send("Alice: Bob, how are you?", session_id=sid)
    assert (result.status, result.passed, result.pass_reason, result.final_text) == (
        "completed",
        True,
        "not addressed to me",
        "",
    )
    assert len(llm.requests) == 1  # no model call after the pass
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[-1]["content"] == "[turn passed: not addressed to me]"
    later = await loop.send("Alice: and you, agent?", session_id=sid)
    assert (later.status, later.passed, later.final_text) == ("completed", False, "hello again")


def test_the_definition_and_the_signal() -> None:
    assert PASS_TURN_TOOL.name == "pass_turn" and "reason" in PASS_TURN_TOOL.input_schema["required"]
    with pytest.raises(TurnPassed) as caught:
        request_pass("busy")
    assert caught.value.reason == "busy"
