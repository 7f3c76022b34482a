"""The Anthropic Messages adapter through the real ``anthropic`` SDK over a real socket."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from provider_helpers import HANG_TIMEOUT_S, SleepRecorder
from wire_server import (
    Reply,
    WireServer,
    anthropic_message,
    anthropic_sse,
    anthropic_text_events,
    anthropic_tool_events,
    error,
    sse,
)

from power_loop.errors import LLMNonRetryable, LLMStreamIncomplete, StructuredOutputError
from power_loop.llm import LLMRequest, LLMRetryPolicy, create_llm_service_from_env, with_retry
from power_loop.llm._anthropic import (
    MAX_CACHE_BREAKPOINTS,
    place_cache_breakpoints,
    to_anthropic_messages,
    to_anthropic_tool_choice,
)
from power_loop.structured import StructuredOutputSpec, parse_structured

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "look something up",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        },
    }
]
CACHE_USAGE = {
    "input_tokens": 20,
    "cache_read_input_tokens": 1500,
    "cache_creation_input_tokens": 300,
    "output_tokens": 1,
}


def request(**kw: Any) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": "hi"}], **kw)


def policy(attempts: int = 3) -> LLMRetryPolicy:
    return LLMRetryPolicy(max_attempts=attempts, backoff_initial=0.01, total_timeout=None, jitter=0.0)


def cache_marks(body: dict[str, Any]) -> list[str]:
    """Where ``cache_control`` sits in a request body, as readable locations."""
    where = [f"tools[{i}]" for i, t in enumerate(body.get("tools") or []) if "cache_control" in t]
    where += [f"system[{i}]" for i, b in enumerate(body.get("system") or []) if "cache_control" in b]
    for m, message in enumerate(body["messages"]):
        where += [
            f"messages[{m}][{b}]" for b, block in enumerate(message["content"]) if "cache_control" in block
        ]
    return where


async def test_text_and_thinking_stream_with_cache_usage(wire: WireServer, make_anthropic: Any) -> None:
    wire.push_anthropic_stream(
        anthropic_text_events("Bonjour le monde", thinking="hmm, French", pieces=4, usage=CACHE_USAGE)
    )
    texts: list[str] = []
    thinks: list[str] = []
    llm = make_anthropic()
    response = await llm.complete(
        request(system_prompt="be kind", max_tokens=99),
        on_chunk_delta_text=texts.append,
        on_chunk_think=thinks.append,
    )
    assert response.text == "Bonjour le monde" and len(texts) == 4
    assert "".join(thinks) == "hmm, French"
    usage = response.token_usage.normalized()
    assert usage["cache_read_tokens"] == 1500
    assert usage["prompt_tokens"] == 20 + 1500 + 300 and usage["completion_tokens"] == 5
    assert response.debug["usage"]["cache_creation_input_tokens"] == 300
    assert response.debug["finish_reason"] == "end_turn"
    sent = wire.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["anthropic-version"]
    assert "sk-ant-wire" in (sent.headers.get("authorization", "") + sent.headers.get("x-api-key", ""))
    body = sent.body
    assert body["stream"] is True and body["max_tokens"] == 99 and body["model"] == "wire-claude"
    assert body["system"][0]["text"] == "be kind"
    assert "temperature" not in body  # the installed SDK no longer takes it


def test_history_conversion_covers_tools_images_system_and_merging() -> None:
    history = [
        {"role": "system", "content": "memory: likes tea"},
        {"role": "user", "content": "look at this"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "two pictures"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
                {"type": "image_url", "image_url": {"url": "https://example.test/cat.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": "checking",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": "tea"}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "lookup", "arguments": "not json"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "name": "lookup", "content": "green"},
        {"role": "tool", "tool_call_id": "call_2", "name": "lookup", "content": "error: bad args"},
        {"role": "system", "content": "be short"},
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": "done"},
    ]
    system, messages = to_anthropic_messages(history, "base prompt")
    assert system == [{"type": "text", "text": "base prompt"}, {"type": "text", "text": "memory: likes tea"}]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    first = messages[0]["content"]
    assert [b["type"] for b in first] == ["text", "text", "image", "image"]
    assert first[2]["source"] == {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}
    assert first[3]["source"] == {"type": "url", "url": "https://example.test/cat.png"}
    assistant = messages[1]["content"]
    assert assistant[0] == {"type": "text", "text": "checking"}
    assert assistant[1] == {"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"q": "tea"}}
    assert assistant[2]["input"] == {}
    results = messages[2]["content"]
    assert [b["type"] for b in results] == ["tool_result", "tool_result", "text"]
    assert results[0] == {"type": "tool_result", "tool_use_id": "call_1", "content": "green"}
    assert results[2]["text"] == "[system] be short"
    assert messages[3]["content"] == [{"type": "text", "text": "done"}]


def test_tool_choice_mapping() -> None:
    assert to_anthropic_tool_choice("auto") == {"type": "auto"}
    assert to_anthropic_tool_choice("required") == {"type": "any"}
    assert to_anthropic_tool_choice("none") == {"type": "none"}
    assert to_anthropic_tool_choice({"type": "function", "function": {"name": "x"}}) == {
        "type": "tool",
        "name": "x",
    }
    assert to_anthropic_tool_choice(None) is None


async def test_parallel_tool_use_split_across_many_json_deltas(wire: WireServer, make_anthropic: Any) -> None:
    args_a = json.dumps({"q": "the quick brown fox"})
    args_b = json.dumps({"q": "jumps"})
    events = anthropic_tool_events(
        [("toolu_a", "lookup", args_a), ("toolu_b", "lookup", args_b)], text="Let me look.", pieces=6
    )
    wire.push_anthropic_stream(events)
    llm = make_anthropic()
    deltas: list[dict[str, Any]] = []
    async for chunk in llm.stream(request(tools=TOOLS, tool_choice="auto")):
        deltas.extend(chunk.delta_tool_calls or [])
    assert deltas[0] == {
        "index": 0,
        "id": "toolu_a",
        "type": "function",
        "function": {"name": "lookup", "arguments": ""},
    }
    assert sum(1 for d in deltas if d["function"].get("arguments")) >= 8

    wire.push_anthropic_stream(events)
    response = await llm.complete(request(tools=TOOLS, tool_choice="auto"))
    assert response.text == "Let me look."
    assert response.tool_calls == [
        {"id": "toolu_a", "type": "function", "function": {"name": "lookup", "arguments": args_a}},
        {"id": "toolu_b", "type": "function", "function": {"name": "lookup", "arguments": args_b}},
    ]
    body = wire.requests[-1].body
    assert body["tools"][0]["name"] == "lookup" and body["tools"][0]["input_schema"]["required"] == ["q"]
    assert body["tool_choice"] == {"type": "auto"}


async def test_cache_breakpoints_on_the_stable_prefix(wire: WireServer, make_anthropic: Any) -> None:
    history = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]
    wire.push_anthropic_stream(anthropic_text_events("ok"))
    llm = make_anthropic()
    await llm.complete(LLMRequest(messages=history, system_prompt="sys", tools=TOOLS, tool_choice="auto"))
    body = wire.requests[0].body
    assert cache_marks(body) == ["tools[0]", "system[0]", "messages[1][0]"]
    assert body["tools"][0]["cache_control"] == {"type": "ephemeral"}

    wire.push_anthropic_stream(anthropic_text_events("ok"))
    await make_anthropic(prompt_caching=False).complete(
        LLMRequest(messages=history, system_prompt="sys", tools=TOOLS)
    )
    assert cache_marks(wire.requests[1].body) == []


block = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "thinking", "tool_use"])},
    optional={"cache_control": st.just({"type": "ephemeral"})},
)


@settings(max_examples=100, deadline=None)
@given(
    system=st.lists(block, max_size=3),
    tools=st.lists(block, max_size=3),
    turns=st.lists(st.lists(block, min_size=1, max_size=3), max_size=5),
)
def test_breakpoints_never_exceed_the_provider_limit(
    system: list[dict[str, Any]], tools: list[dict[str, Any]], turns: list[list[dict[str, Any]]]
) -> None:
    messages = [{"role": "user", "content": blocks} for blocks in turns]
    every = [*system, *tools, *(b for t in turns for b in t)]
    unmarked_thinking = [b for b in every if b["type"] == "thinking" and "cache_control" not in b]
    before = sum("cache_control" in b for b in every)
    placed = place_cache_breakpoints(system, tools, messages)
    after = sum("cache_control" in b for b in every)
    assert after == before + placed
    assert after <= max(before, MAX_CACHE_BREAKPOINTS)
    assert all("cache_control" not in b for b in unmarked_thinking)
    if before == 0 and any(b["type"] != "thinking" for b in tools):
        assert "cache_control" in [b for b in tools if b["type"] != "thinking"][-1]


async def test_retry_after_ms_and_overloaded_then_success(
    wire: WireServer, make_anthropic: Any, sleeps: SleepRecorder
) -> None:
    wire.push(error(429, headers={"retry-after-ms": "1500"}, kind="rate_limit_error"))
    wire.push(error(529, kind="overloaded_error"))
    wire.push_anthropic_stream(anthropic_text_events("made it"))
    llm = make_anthropic()
    response = await with_retry(lambda n: llm.complete(request()), policy=policy(), sleep=sleeps)
    assert response.text == "made it"
    assert sleeps.waits[0] == 1.5 and len(sleeps.waits) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_permanent_statuses_are_not_retried(
    wire: WireServer, make_anthropic: Any, sleeps: SleepRecorder, status: int
) -> None:
    wire.push(error(status, kind="invalid_request_error"), error(status))
    llm = make_anthropic()
    with pytest.raises(LLMNonRetryable) as info:
        await with_retry(lambda n: llm.complete(request()), policy=policy(), sleep=sleeps)
    assert isinstance(info.value.last_error, anthropic.APIStatusError)
    assert len(wire.requests) == 1


async def test_stream_without_message_stop_is_a_failure(wire: WireServer, make_anthropic: Any) -> None:
    wire.push_anthropic_stream(anthropic_text_events("half")[:-1])
    with pytest.raises(LLMStreamIncomplete) as info:
        await make_anthropic().complete(request())
    assert info.value.reason == "no_terminator" and info.value.provider == "anthropic"


async def test_events_without_event_lines_are_dropped_by_the_sdk_and_detected(
    wire: WireServer, make_anthropic: Any
) -> None:
    wire.push(Reply(events=[sse(e) for e in anthropic_text_events("ghost")]))
    with pytest.raises(LLMStreamIncomplete) as info:
        await make_anthropic().complete(request())
    assert info.value.reason == "no_terminator"


async def test_stream_cut_mid_tool_call_then_retry(
    wire: WireServer, make_anthropic: Any, sleeps: SleepRecorder
) -> None:
    events = anthropic_sse(
        anthropic_tool_events([("toolu_a", "lookup", json.dumps({"q": "long enough query"}))], pieces=8)
    )
    wire.push(Reply(events=events, cut_after=5))
    llm = make_anthropic()
    with pytest.raises(LLMStreamIncomplete) as info:
        await llm.complete(request(tools=TOOLS))
    assert info.value.reason == "connection_lost"
    wire.push(Reply(events=events, cut_after=4), Reply(events=events))
    response = await with_retry(lambda n: llm.complete(request(tools=TOOLS)), policy=policy(), sleep=sleeps)
    assert json.loads(response.tool_calls[0]["function"]["arguments"]) == {"q": "long enough query"}


async def test_malformed_event_is_a_failure(wire: WireServer, make_anthropic: Any) -> None:
    events = anthropic_sse(anthropic_text_events("abc"))
    events.insert(3, "event: content_block_delta\ndata: {broken\n\n")
    wire.push(Reply(events=events))
    with pytest.raises(LLMStreamIncomplete) as info:
        await make_anthropic().complete(request())
    assert info.value.reason == "malformed_event"


async def test_error_event_mid_stream_is_an_sdk_status_error(wire: WireServer, make_anthropic: Any) -> None:
    events = anthropic_sse(anthropic_text_events("abc"))
    events.insert(
        3,
        sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, event="error"),
    )
    wire.push(Reply(events=events))
    with pytest.raises(anthropic.APIStatusError):
        await make_anthropic().complete(request())


async def test_server_that_never_answers_times_out(wire: WireServer, make_anthropic: Any) -> None:
    wire.push(Reply(hang=True))
    with pytest.raises(anthropic.APITimeoutError):
        await make_anthropic(timeout_s=HANG_TIMEOUT_S).complete(request())


async def test_structured_output_via_a_forced_tool(wire: WireServer, make_anthropic: Any) -> None:
    spec = StructuredOutputSpec(
        name="verdict",
        schema={"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
    )
    wire.push_anthropic_stream(anthropic_tool_events([("toolu_s", "verdict", '{"ok": true}')], pieces=3))
    llm = make_anthropic()
    texts: list[str] = []
    response = await llm.complete(
        request(response_format=spec.to_openai_response_format()), on_chunk_delta_text=texts.append
    )
    body = wire.requests[0].body
    assert body["tool_choice"] == {"type": "tool", "name": "verdict"}
    assert body["tools"][-1]["name"] == "verdict" and body["tools"][-1]["input_schema"] == spec.schema
    assert response.tool_calls == [] and response.json_data == {"ok": True}
    assert "".join(texts) == '{"ok": true}'

    wire.push_anthropic_stream(anthropic_tool_events([("toolu_s", "verdict", '{"ok": "yes"}')], pieces=3))
    bad = await llm.complete(request(response_format=spec.to_openai_response_format(), tools=TOOLS))
    assert wire.requests[1].body["tool_choice"] == {"type": "any"}
    assert bad.parse_error is not None and bad.parse_error.startswith("schema_mismatch")
    with pytest.raises(StructuredOutputError) as info:
        parse_structured(bad, schema=spec)
    assert info.value.reason == "schema_mismatch" and "$.ok" in info.value.detail


async def test_non_streaming_mode_and_v1_suffix_in_base_url(wire: WireServer, make_anthropic: Any) -> None:
    content = [
        {"type": "text", "text": "calling"},
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "z"}},
    ]
    wire.push(Reply(body=anthropic_message(content, stop_reason="tool_use", usage=CACHE_USAGE)))
    llm = make_anthropic(stream=False, base_url=wire.url + "/v1")
    response = await llm.complete(request(tools=TOOLS))
    assert wire.requests[0].path == "/v1/messages" and "stream" not in wire.requests[0].body
    assert response.text == "calling"
    assert response.tool_calls == [
        {"id": "toolu_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "z"}'}}
    ]
    assert response.token_usage.normalized()["cache_read_tokens"] == 1500


async def test_factory_builds_the_anthropic_adapter_from_the_environment(wire: WireServer) -> None:
    env = {
        "POWER_LOOP_PROVIDER": "anthropic",
        "POWER_LOOP_BASE_URL": wire.url,
        "POWER_LOOP_API_KEY": "sk-ant-env",
        "POWER_LOOP_MODEL": "claude-env",
    }
    llm = create_llm_service_from_env(env=env)
    try:
        wire.push_anthropic_stream(anthropic_text_events("from env"))
        response = await llm.complete(request())
    finally:
        await llm.close()
    assert response.text == "from env" and wire.requests[0].body["model"] == "claude-env"
