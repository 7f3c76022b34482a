"""A full ``StatefulAgentLoop`` conversation with a tool, against each provider over the wire."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from wire_server import (
    Reply,
    WireServer,
    anthropic_sse,
    anthropic_text_events,
    anthropic_tool_events,
    error,
    openai_sse,
    openai_text_chunks,
    openai_tool_chunks,
)

from power_loop import AgentLoopConfig, StatefulAgentLoop, ToolRegistry
from power_loop.llm import LLMRetryPolicy


def registry(calls: list[dict[str, Any]]) -> ToolRegistry:
    tools = ToolRegistry()

    @tools.tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        calls.append({"a": a, "b": b})
        return a + b

    return tools


def script_openai(wire: WireServer) -> None:
    wire.push_openai_stream(
        openai_tool_chunks([("call_add", "add", json.dumps({"a": 2, "b": 40}))], pieces=5)
    )
    wire.push_openai_stream(openai_text_chunks("2 + 40 = 42"))


def script_anthropic(wire: WireServer) -> None:
    wire.push_anthropic_stream(
        anthropic_tool_events([("toolu_add", "add", json.dumps({"a": 2, "b": 40}))], text="Adding.", pieces=5)
    )
    wire.push_anthropic_stream(anthropic_text_events("2 + 40 = 42"))


PROVIDERS = ["openai", "anthropic"]


def service(provider: str, make_openai: Any, make_anthropic: Any) -> Any:
    return make_openai() if provider == "openai" else make_anthropic()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tool_conversation_through_the_real_sdk(
    provider: str, wire: WireServer, make_openai: Any, make_anthropic: Any, tmp_path: Path
) -> None:
    (script_openai if provider == "openai" else script_anthropic)(wire)
    calls: list[dict[str, Any]] = []
    llm = service(provider, make_openai, make_anthropic)
    async with StatefulAgentLoop(llm=llm, dsn=str(tmp_path / "x.db"), tool_registry=registry(calls)) as loop:
        sid = await loop.new_session(system_prompt="You add numbers.")
        result = await loop.send("What is 2 + 40?", sid)
        history = await loop.get_messages(sid)
    assert result.status == "completed" and result.final_text == "2 + 40 = 42"
    assert calls == [{"a": 2, "b": 40}]
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant"]
    second = wire.requests[1].body
    if provider == "openai":
        tool_message = second["messages"][-1]
        assert (
            tool_message["role"] == "tool"
            and tool_message["tool_call_id"] == "call_add"
            and tool_message["content"] == "42"
        )
        assert second["tools"][0]["function"]["name"] == "add"
    else:
        last = second["messages"][-1]
        assert last["role"] == "user" and last["content"][0]["type"] == "tool_result"
        assert last["content"][0]["tool_use_id"] == "toolu_add" and last["content"][0]["content"] == "42"
        assistant = second["messages"][-2]["content"]
        assert assistant[-1]["type"] == "tool_use" and assistant[-1]["input"] == {"a": 2, "b": 40}
        assert second["system"][0]["text"].startswith("You add numbers.")
        assert "cache_control" in assistant[-1]  # the turn before the newest is the cached prefix


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_loop_survives_rate_limit_and_a_cut_stream_with_a_retry_policy(
    provider: str, wire: WireServer, make_openai: Any, make_anthropic: Any, tmp_path: Path
) -> None:
    wire.push(error(429, headers={"retry-after-ms": "10"}))
    if provider == "openai":
        events = openai_sse(openai_tool_chunks([("call_add", "add", json.dumps({"a": 1, "b": 1}))], pieces=5))
        wire.push(Reply(events=events, cut_after=3), Reply(events=events))
        wire.push(
            Reply(events=openai_sse(openai_text_chunks("two"))[:-2], cut_after=None)
        )  # truncated: no finish_reason
        wire.push_openai_stream(openai_text_chunks("two"))
    else:
        events = anthropic_sse(
            anthropic_tool_events([("toolu_add", "add", json.dumps({"a": 1, "b": 1}))], pieces=5)
        )
        wire.push(Reply(events=events, cut_after=3), Reply(events=events))
        wire.push(Reply(events=anthropic_sse(anthropic_text_events("two"))[:-1]))  # no message_stop
        wire.push_anthropic_stream(anthropic_text_events("two"))
    calls: list[dict[str, Any]] = []
    cfg = AgentLoopConfig(
        retry_policy=LLMRetryPolicy(max_attempts=3, backoff_initial=0.01, jitter=0.0, total_timeout=10.0)
    )
    llm = service(provider, make_openai, make_anthropic)
    async with StatefulAgentLoop(
        llm=llm, dsn=str(tmp_path / "x.db"), tool_registry=registry(calls), config=cfg
    ) as loop:
        sid = await loop.new_session()
        result = await loop.send("1 + 1?", sid)
    assert result.status == "completed" and result.final_text == "two"
    assert calls == [{"a": 1, "b": 1}]  # the cut stream did not run the tool twice
    assert len(wire.requests) == 5 and wire.remaining == 0


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_permanent_error_degrades_with_history_intact(
    provider: str, wire: WireServer, make_openai: Any, make_anthropic: Any, tmp_path: Path
) -> None:
    wire.push(error(401, message="bad key"))
    cfg = AgentLoopConfig(
        retry_policy=LLMRetryPolicy(max_attempts=3, backoff_initial=0.01, total_timeout=10.0)
    )
    llm = service(provider, make_openai, make_anthropic)
    async with StatefulAgentLoop(
        llm=llm, dsn=str(tmp_path / "x.db"), tool_registry=registry([]), config=cfg
    ) as loop:
        sid = await loop.new_session()
        result = await loop.send("hello?", sid)
        history = await loop.get_messages(sid)
    assert result.status == "degraded" and "401" in result.final_text
    assert history[0] == {"role": "user", "content": "hello?"}
    assert len(wire.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_loop_stream_surfaces_provider_tool_call_argument_deltas(
    provider: str, wire: WireServer, make_openai: Any, make_anthropic: Any, tmp_path: Path
) -> None:
    from power_loop.events import AgentEventType

    (script_openai if provider == "openai" else script_anthropic)(wire)
    llm = service(provider, make_openai, make_anthropic)
    fragments: list[str] = []
    names: list[str] = []
    final = None
    async with StatefulAgentLoop(llm=llm, dsn=str(tmp_path / "x.db"), tool_registry=registry([])) as loop:
        sid = await loop.new_session()
        async for event in loop.stream("What is 2 + 40?", sid):
            if event.type == AgentEventType.TOOL_CALL_DELTA:
                fragments.append(event.data.arguments_delta)
                names.append(event.data.name)
            elif event.type == AgentEventType.SEND_COMPLETED:
                final = event.data
    assert final is not None and final.status == "completed" and final.final_text == "2 + 40 = 42"
    assert len([f for f in fragments if f]) >= 3
    assert json.loads("".join(fragments)) == {"a": 2, "b": 40}
    assert "add" in names
