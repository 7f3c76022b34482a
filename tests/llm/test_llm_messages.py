"""ToolCall / AgentMessage: typed views of the loop's message dicts, converting both ways."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from power_loop import AgentMessage, ToolCall
from power_loop.llm import normalize_tool_call


def test_tool_call_to_and_from_the_openai_shape() -> None:
    call = ToolCall("call_1", "add", {"a": 1, "b": "ü"})
    wire = call.to_openai_tool_call()
    assert wire == {
        "id": "call_1",
        "type": "function",
        "function": {"name": "add", "arguments": '{"a": 1, "b": "ü"}'},
    }
    assert ToolCall.from_openai_tool_call(wire) == call
    # Unparsable arguments read as {} (the loop itself reports them to the model).
    broken = {"id": "c", "function": {"name": "x", "arguments": "{not json"}}
    assert ToolCall.from_openai_tool_call(broken).arguments == {}
    with pytest.raises(AttributeError):
        call.name = "other"  # type: ignore[misc]


def test_agent_message_round_trip_and_role_check() -> None:
    msg = AgentMessage("assistant", "", tool_calls=[ToolCall("c1", "t", {"x": 1})], metadata={"k": 1})
    wire = msg.to_openai_message()
    assert wire["role"] == "assistant" and "metadata" not in wire
    assert json.loads(wire["tool_calls"][0]["function"]["arguments"]) == {"x": 1}
    back = AgentMessage.from_openai_message(wire)
    assert back.tool_calls == msg.tool_calls and back.content == ""
    result = AgentMessage("tool", "42", tool_call_id="c1", name="t").to_openai_message()
    assert result == {"role": "tool", "content": "42", "tool_call_id": "c1", "name": "t"}
    with pytest.raises(ValueError, match="role"):
        AgentMessage("robot", "hi")  # type: ignore[arg-type]


@given(
    name=st.from_regex(r"[a-z_]{1,20}", fullmatch=True),
    args=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4),
)
def test_tool_call_survives_normalization(name: str, args: dict) -> None:
    call = ToolCall("id", name, args)
    assert ToolCall.from_openai_tool_call(normalize_tool_call(call.to_openai_tool_call())) == call
