"""The quirks of OpenAI-compatible servers (llama.cpp and alike), through the real SDK over a socket.

Each test scripts the wire server to behave as such a server does and checks what the adapter sends
next and what the caller gets.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from wire_server import (
    Reply,
    WireServer,
    error,
    openai_chunk,
    openai_completion,
    openai_sse,
    openai_text_chunks,
)

from power_loop import AgentEventBus, AgentEventType, AgentLoopConfig, StatefulAgentLoop, ToolRegistry
from power_loop.errors import LLMStreamIncomplete
from power_loop.llm import LLMRequest

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
WEATHER_CALL = {
    "id": "call_w1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}


def ask(**kw: Any) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": "weather in Paris?"}], **kw)


def empty_stream() -> Reply:
    """What llama.cpp's server answers to a streamed request whose reply is a tool call."""
    return Reply(events=openai_sse([], done=True))


async def test_an_empty_stream_with_tools_is_repeated_without_streaming_and_remembered(
    wire: WireServer, make_openai: Any, caplog: pytest.LogCaptureFixture
) -> None:
    wire.push(empty_stream(), Reply(body=openai_completion(None, tool_calls=[WEATHER_CALL])))
    wire.push(Reply(body=openai_completion("18 degrees and cloudy")))
    wire.push_openai_stream(openai_text_chunks("plain streamed text"))
    llm = make_openai()
    with caplog.at_level(logging.WARNING, logger="power_loop.llm.openai"):
        first = await llm.complete(ask(tools=TOOLS))
    assert [c["function"]["name"] for c in first.tool_calls] == ["get_weather"]
    assert first.tool_calls[0]["id"] == "call_w1"
    assert json.loads(first.tool_calls[0]["function"]["arguments"]) == {"city": "Paris"}
    [notice] = first.debug["notices"]
    assert "empty stream" in notice and "'wire-model'" in notice and "sk-wire-secret" not in notice
    assert [r.message for r in caplog.records] == [notice]
    streamed, repeated = wire.requests[0].body, wire.requests[1].body
    assert streamed["stream"] is True
    assert "stream" not in repeated and "stream_options" not in repeated
    assert repeated["messages"] == streamed["messages"] and repeated["tools"] == streamed["tools"]
    # Recorded as a capability of the model (what the service learned, for the life of the service).
    assert llm.quirks.no_tool_streaming == {"wire-model"} and llm.capabilities.tool_streaming is False

    # Remembered for the model: the next request with tools is not streamed at all, and says nothing.
    second = await llm.complete(ask(tools=TOOLS))
    assert second.text == "18 degrees and cloudy" and "notices" not in second.debug
    assert "stream" not in wire.requests[2].body
    # A request without tools still streams.
    third = await llm.complete(ask())
    assert third.text == "plain streamed text" and wire.requests[3].body["stream"] is True
    assert len(wire.requests) == 4


async def test_finish_reason_tool_calls_without_any_call_also_falls_back(
    wire: WireServer, make_openai: Any
) -> None:
    wire.push_openai_stream(
        [openai_chunk({"role": "assistant"}), openai_chunk({}, finish_reason="tool_calls")]
    )
    wire.push(Reply(body=openai_completion(None, tool_calls=[WEATHER_CALL])))
    response = await make_openai().complete(ask(tools=TOOLS))
    assert [c["id"] for c in response.tool_calls] == ["call_w1"]
    assert "stream" not in wire.requests[1].body


async def test_an_empty_stream_without_tools_is_still_an_error(wire: WireServer, make_openai: Any) -> None:
    wire.push(empty_stream())
    with pytest.raises(LLMStreamIncomplete) as info:
        await make_openai().complete(ask())
    assert info.value.reason == "no_terminator"
    assert len(wire.requests) == 1


async def test_a_stream_cut_after_some_events_is_still_an_error(wire: WireServer, make_openai: Any) -> None:
    wire.push_openai_stream(openai_text_chunks("partial answer that stops", pieces=4), cut_after=2)
    llm = make_openai()
    with pytest.raises(LLMStreamIncomplete):
        await llm.complete(ask(tools=TOOLS))
    assert len(wire.requests) == 1 and not llm.quirks.no_tool_streaming


async def test_text_that_stops_without_a_terminator_is_not_repeated(
    wire: WireServer, make_openai: Any
) -> None:
    chunks = openai_text_chunks("some text", pieces=2)[:-1]  # no finish_reason
    wire.push_openai_stream(chunks)
    delivered: list[str] = []
    with pytest.raises(LLMStreamIncomplete):
        await make_openai().complete(ask(tools=TOOLS), on_chunk_delta_text=delivered.append)
    assert delivered and len(wire.requests) == 1  # text reached the caller: never silently repeated


async def test_tool_choice_is_sent_as_auto_when_tools_are_offered(wire: WireServer, make_openai: Any) -> None:
    wire.push_openai_stream(openai_text_chunks("a"))
    wire.push_openai_stream(openai_text_chunks("b"))
    wire.push_openai_stream(openai_text_chunks("c"))
    llm = make_openai()
    await llm.complete(ask(tools=TOOLS))
    await llm.complete(ask(tools=TOOLS, tool_choice="required"))
    await llm.complete(ask())
    bodies = [r.body for r in wire.requests]
    assert bodies[0]["tool_choice"] == "auto"
    assert bodies[1]["tool_choice"] == "required"
    assert "tool_choice" not in bodies[2] and "tools" not in bodies[2]


async def test_assistant_tool_call_turns_carry_empty_content_not_null(
    wire: WireServer, make_openai: Any
) -> None:
    wire.push_openai_stream(openai_text_chunks("done"))
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [WEATHER_CALL]},
        {"role": "tool", "tool_call_id": "call_w1", "content": "18C"},
        {"role": "assistant", "content": None},
        {"role": "user", "content": "thanks"},
    ]
    await make_openai().complete(LLMRequest(messages=history, tools=TOOLS))
    sent = wire.requests[0].body["messages"]
    assert sent[1]["content"] == "" and sent[1]["tool_calls"][0]["id"] == "call_w1"
    assert sent[3]["content"] is None  # only turns with tool calls are changed
    assert history[1]["content"] is None  # the caller's history is not mutated


async def test_a_server_rejecting_stream_options_is_asked_again_without_them(
    wire: WireServer, make_openai: Any
) -> None:
    rejection = error(
        400, message="Unrecognized request argument supplied: stream_options", kind="invalid_request_error"
    )
    wire.push(rejection)
    wire.push_openai_stream(openai_text_chunks("hello"))
    wire.push_openai_stream(openai_text_chunks("again"))
    llm = make_openai()
    first = await llm.complete(ask())
    assert first.text == "hello" and "stream_options" in first.debug["notices"][0]
    second = await llm.complete(ask())
    assert second.text == "again" and "notices" not in second.debug
    bodies = [r.body for r in wire.requests]
    assert "stream_options" in bodies[0]
    assert "stream_options" not in bodies[1] and bodies[1]["stream"] is True
    assert "stream_options" not in bodies[2]


async def test_other_400s_are_not_retried_by_the_quirk(wire: WireServer, make_openai: Any) -> None:
    import openai

    wire.push(error(400, message="context length exceeded", kind="invalid_request_error"))
    with pytest.raises(openai.BadRequestError):
        await make_openai().complete(ask())
    assert len(wire.requests) == 1


def _call(index: int, call_id: str | None, args: str, name: str = "get_weather") -> dict[str, Any]:
    head: dict[str, Any] = {"index": index, "type": "function", "function": {"name": name, "arguments": args}}
    if call_id is not None:
        head["id"] = call_id
    return head


async def test_missing_and_repeated_stream_ids_get_generated_ids_consistent_across_deltas(
    wire: WireServer, make_openai: Any
) -> None:
    chunks = [
        openai_chunk({"tool_calls": [_call(0, None, '{"city": ')]}),
        openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        openai_chunk({"tool_calls": [_call(1, "call_0", '{"city": "Rome"}')]}),  # repeats history's id
        openai_chunk({"tool_calls": [_call(2, "call_dup", '{"city": "Oslo"}')]}),
        openai_chunk({"tool_calls": [_call(3, "call_dup", '{"city": "Lima"}')]}),  # repeats call 2's id
        openai_chunk({}, finish_reason="tool_calls"),
    ]
    wire.push_openai_stream(chunks)
    history = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "", "tool_calls": [{**WEATHER_CALL, "id": "call_0"}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "ok"},
        {"role": "user", "content": "four cities"},
    ]
    llm = make_openai()
    seen: list[Any] = []
    async for chunk in llm.stream(LLMRequest(messages=history, tools=TOOLS)):
        seen.extend(chunk.delta_tool_calls or ())
    ids_by_index: dict[int, set[str]] = {}
    for delta in seen:
        ids_by_index.setdefault(delta["index"], set()).add(delta["id"])
    assert all(len(ids) == 1 for ids in ids_by_index.values())  # one id per call, on every delta
    ids = [next(iter(ids_by_index[i])) for i in range(4)]
    assert len(set(ids)) == 4 and "call_0" not in ids
    assert ids[2] == "call_dup" and all(i.startswith("call_") for i in ids)

    wire.push_openai_stream(chunks)
    response = await llm.complete(LLMRequest(messages=history, tools=TOOLS))
    cities = [json.loads(c["function"]["arguments"])["city"] for c in response.tool_calls]
    assert cities == ["Paris", "Rome", "Oslo", "Lima"]
    final_ids = [c["id"] for c in response.tool_calls]
    assert len(set(final_ids)) == 4 and "call_0" not in final_ids


async def test_missing_and_repeated_ids_in_a_complete_answer_are_replaced(
    wire: WireServer, make_openai: Any
) -> None:
    calls = [
        {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "A"}'}},
        {"id": "same", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "B"}'}},
        {"id": "same", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "C"}'}},
    ]
    wire.push(Reply(body=openai_completion(None, tool_calls=calls)))
    response = await make_openai(stream=False).complete(ask(tools=TOOLS))
    ids = [c["id"] for c in response.tool_calls]
    assert ids[1] == "same" and len(set(ids)) == 3 and ids[0].startswith("call_")


async def test_the_loop_publishes_one_system_log_for_the_fallback_and_the_tool_runs(
    wire: WireServer, make_openai: Any, tmp_path: Path
) -> None:
    wire.push(empty_stream(), Reply(body=openai_completion(None, tool_calls=[WEATHER_CALL])))
    wire.push(Reply(body=openai_completion("It is 18 degrees in Paris.")))
    tools = ToolRegistry()
    cities: list[str] = []

    @tools.tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        cities.append(city)
        return "18C, cloudy"

    bus = AgentEventBus()
    logs: list[Any] = []
    bus.subscribe(AgentEventType.SYSTEM_LOG, lambda e: logs.append(e.data))
    async with StatefulAgentLoop(
        llm=make_openai(),
        dsn=str(tmp_path / "s.db"),
        tool_registry=tools,
        event_bus=bus,
        config=AgentLoopConfig(),
    ) as loop:
        sid = await loop.new_session()
        result = await loop.send("What is the weather in Paris?", sid)
        assert await bus.drain()
    assert result.status == "completed" and result.final_text == "It is 18 degrees in Paris."
    assert cities == ["Paris"]
    assert len(logs) == 1 and logs[0].level == "warning" and "empty stream" in logs[0].message
    # The second round offers the tools again: remembered, it goes out without streaming at once.
    assert [("stream" in r.body) for r in wire.requests] == [True, False, False]


def dropped_connection() -> Reply:
    """Headers, then the socket is closed: what a server that just failed a stream may do next."""
    return Reply(events=["data: {}\n\n"], cut_after=0)


async def test_the_repeat_survives_one_dropped_connection(wire: WireServer, make_openai: Any) -> None:
    wire.push(
        empty_stream(), dropped_connection(), Reply(body=openai_completion(None, tool_calls=[WEATHER_CALL]))
    )
    response = await make_openai().complete(ask(tools=TOOLS))
    assert [c["id"] for c in response.tool_calls] == ["call_w1"]
    assert len(response.debug["notices"]) == 1 and len(wire.requests) == 3


async def test_a_notice_is_not_lost_when_the_repeat_fails(wire: WireServer, make_openai: Any) -> None:
    import openai

    wire.push(empty_stream(), dropped_connection(), dropped_connection())
    llm = make_openai()
    with pytest.raises(openai.APIConnectionError):
        await llm.complete(ask(tools=TOOLS))
    # A retry (the loop's policy, or the caller) goes straight to a plain request and carries the notice.
    wire.push(Reply(body=openai_completion(None, tool_calls=[WEATHER_CALL])))
    response = await llm.complete(ask(tools=TOOLS))
    assert "empty stream" in response.debug["notices"][0]
    assert "stream" not in wire.requests[-1].body
    wire.push(Reply(body=openai_completion("later")))
    assert "notices" not in (await llm.complete(ask(tools=TOOLS))).debug  # told once
