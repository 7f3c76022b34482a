"""The OpenAI-compatible adapter through the real ``openai`` SDK over a real socket."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from provider_helpers import HANG_TIMEOUT_S, SleepRecorder
from wire_server import (
    Reply,
    WireServer,
    error,
    openai_chunk,
    openai_completion,
    openai_sse,
    openai_text_chunks,
    openai_tool_chunks,
)

from power_loop.errors import LLMNonRetryable, LLMRetryExhausted, LLMStreamIncomplete, StructuredOutputError
from power_loop.llm import LLMRequest, LLMRetryPolicy, create_llm_service_from_env, with_retry
from power_loop.structured import StructuredOutputSpec, parse_structured

USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 30,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 100},
    "completion_tokens_details": {"reasoning_tokens": 12},
}
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


def request(**kw: Any) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": "hi"}], **kw)


def policy(attempts: int = 3) -> LLMRetryPolicy:
    return LLMRetryPolicy(max_attempts=attempts, backoff_initial=0.01, total_timeout=None, jitter=0.0)


async def test_text_stream_fires_callbacks_and_reports_usage_from_a_usage_only_chunk(
    wire: WireServer, make_openai: Any
) -> None:
    chunks = openai_text_chunks("Hello wire world", pieces=4, reasoning="let me think")
    chunks.append(openai_chunk(no_choices=True, usage=USAGE))
    wire.push_openai_stream(chunks)
    texts: list[str] = []
    thinks: list[str] = []
    ended: list[Any] = []
    llm = make_openai(temperature=0.3)
    response = await llm.complete(
        request(system_prompt="be brief", max_tokens=77),
        on_chunk_delta_text=texts.append,
        on_chunk_think=thinks.append,
        on_stream_end=ended.append,
    )
    assert response.text == "Hello wire world" and len(texts) == 4
    assert "".join(thinks) == "let me think" and response.think == "let me think"
    assert ended == [response]
    normalized = response.token_usage.normalized()
    assert normalized["cache_read_tokens"] == 100 and normalized["reasoning_tokens"] == 12
    assert normalized["prompt_tokens"] == 120 and normalized["total_tokens"] == 150
    assert response.debug["finish_reason"] == "stop"
    sent = wire.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-wire-secret"
    body = sent.body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["model"] == "wire-model" and body["temperature"] == 0.3 and body["max_tokens"] == 77
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


async def test_parallel_tool_calls_split_across_many_deltas_are_reassembled(
    wire: WireServer, make_openai: Any
) -> None:
    args_a = json.dumps({"q": "alpha beta gamma", "limit": 10})
    args_b = json.dumps({"q": "delta"})
    wire.push_openai_stream(
        openai_tool_chunks(
            [("call_a", "lookup", args_a), ("call_b", "lookup", args_b)], pieces=7, interleave=True
        )
    )
    llm = make_openai()
    deltas: list[dict[str, Any]] = []
    final = None
    async for chunk in llm.stream(request(tools=TOOLS, tool_choice="auto")):
        deltas.extend(chunk.delta_tool_calls or [])
        if chunk.is_final:
            final = chunk
    assert final is not None
    argument_pieces = [d for d in deltas if d["function"].get("arguments")]
    assert len(argument_pieces) >= 8
    assert {d["index"] for d in deltas} == {0, 1}
    assert deltas[0] == {"index": 0, "id": "call_a", "type": "function", "function": {"name": "lookup"}}

    wire.push_openai_stream(
        openai_tool_chunks(
            [("call_a", "lookup", args_a), ("call_b", "lookup", args_b)], pieces=7, interleave=True
        )
    )
    response = await llm.complete(request(tools=TOOLS, tool_choice="auto"))
    assert response.tool_calls == [
        {"id": "call_a", "type": "function", "function": {"name": "lookup", "arguments": args_a}},
        {"id": "call_b", "type": "function", "function": {"name": "lookup", "arguments": args_b}},
    ]
    body = wire.requests[-1].body
    assert body["tools"] == TOOLS and body["tool_choice"] == "auto"


async def test_non_streaming_mode(wire: WireServer, make_openai: Any) -> None:
    call = {"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
    wire.push(Reply(body=openai_completion("thinking done", tool_calls=[call], usage=USAGE)))
    llm = make_openai(stream=False)
    response = await llm.complete(request(tools=TOOLS))
    assert response.text == "thinking done"
    assert response.tool_calls == [call]
    assert response.token_usage.normalized()["cache_read_tokens"] == 100
    assert response.raw_completion is not None
    assert "stream" not in wire.requests[0].body


async def test_request_extra_goes_to_known_parameters_or_extra_body(
    wire: WireServer, make_openai: Any
) -> None:
    wire.push_openai_stream(openai_text_chunks("ok"))
    llm = make_openai(request_extra={"vendor_flag": True})
    fmt = {"type": "json_object"}
    await llm.complete(
        request(response_format=fmt, reason=True, extra={"top_p": 0.5, "seed": 7}, model="other-model")
    )
    body = wire.requests[0].body
    assert body["top_p"] == 0.5 and body["seed"] == 7
    assert body["vendor_flag"] is True and body["reason"] is True
    assert body["response_format"] == fmt and body["model"] == "other-model"


async def test_429_with_retry_after_is_honoured_then_succeeds(
    wire: WireServer, make_openai: Any, sleeps: SleepRecorder
) -> None:
    wire.push(error(429, headers={"retry-after": "2"}, kind="rate_limit_exceeded"))
    wire.push(error(429, headers={"retry-after-ms": "250"}, kind="rate_limit_exceeded"))
    wire.push_openai_stream(openai_text_chunks("finally"))
    llm = make_openai()
    response = await with_retry(lambda n: llm.complete(request()), policy=policy(), sleep=sleeps)
    assert response.text == "finally"
    assert sleeps.waits == [2.0, 0.25]
    assert len(wire.requests) == 3


async def test_500_then_success(wire: WireServer, make_openai: Any, sleeps: SleepRecorder) -> None:
    wire.push(error(500), error(503))
    wire.push_openai_stream(openai_text_chunks("recovered"))
    llm = make_openai()
    response = await with_retry(lambda n: llm.complete(request()), policy=policy(), sleep=sleeps)
    assert response.text == "recovered" and len(sleeps.waits) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_permanent_statuses_are_not_retried(
    wire: WireServer, make_openai: Any, sleeps: SleepRecorder, status: int
) -> None:
    wire.push(error(status), error(status))
    llm = make_openai()
    with pytest.raises(LLMNonRetryable) as info:
        await with_retry(lambda n: llm.complete(request()), policy=policy(), sleep=sleeps)
    assert info.value.code == "llm.non_retryable"
    assert isinstance(info.value.last_error, openai.APIStatusError)
    assert info.value.last_error.status_code == status
    assert len(wire.requests) == 1 and sleeps.waits == []


async def test_stream_cut_mid_tool_call_raises_then_retry_succeeds(
    wire: WireServer, make_openai: Any, sleeps: SleepRecorder
) -> None:
    chunks = openai_tool_chunks([("call_a", "lookup", json.dumps({"q": "a long query string"}))], pieces=8)
    wire.push(Reply(events=openai_sse(chunks), cut_after=4))
    llm = make_openai()
    with pytest.raises(LLMStreamIncomplete) as info:
        await llm.complete(request(tools=TOOLS))
    assert info.value.reason == "connection_lost" and info.value.code == "llm.stream_incomplete"
    assert info.value.chunks == 4
    wire.push(Reply(events=openai_sse(chunks), cut_after=3))
    wire.push_openai_stream(chunks)
    response = await with_retry(lambda n: llm.complete(request(tools=TOOLS)), policy=policy(), sleep=sleeps)
    assert json.loads(response.tool_calls[0]["function"]["arguments"]) == {"q": "a long query string"}


async def test_stream_without_finish_reason_or_done_is_a_failure(wire: WireServer, make_openai: Any) -> None:
    chunks = openai_text_chunks("partial answer")[:-1]  # no finish_reason chunk
    wire.push(Reply(events=openai_sse(chunks, done=False)))
    with pytest.raises(LLMStreamIncomplete) as info:
        await make_openai().complete(request())
    assert info.value.reason == "no_terminator"


async def test_malformed_sse_line_is_a_retryable_failure(wire: WireServer, make_openai: Any) -> None:
    events = openai_sse(openai_text_chunks("abc"))
    events.insert(2, "data: {this is not json\n\n")
    wire.push(Reply(events=events))
    with pytest.raises(LLMStreamIncomplete) as info:
        await make_openai().complete(request())
    assert info.value.reason == "malformed_event"
    assert isinstance(info.value.__cause__, ValueError)


async def test_error_event_inside_a_stream_keeps_the_sdk_error(wire: WireServer, make_openai: Any) -> None:
    events = openai_sse(openai_text_chunks("abc"))
    events.insert(2, 'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n')
    wire.push(Reply(events=events))
    with pytest.raises(openai.APIError) as info:
        await make_openai().complete(request())
    assert "overloaded" in str(info.value)


async def test_server_that_never_answers_times_out_and_exhausts_retries(
    wire: WireServer, make_openai: Any, sleeps: SleepRecorder
) -> None:
    wire.push(Reply(hang=True), Reply(hang=True))
    llm = make_openai(timeout_s=HANG_TIMEOUT_S)
    with pytest.raises(LLMRetryExhausted) as info:
        await with_retry(lambda n: llm.complete(request()), policy=policy(2), sleep=sleeps)
    assert info.value.code == "llm.retry_exhausted" and info.value.attempts == 2
    assert isinstance(info.value.last_error, openai.APITimeoutError)


async def test_stream_that_stalls_mid_way_times_out(wire: WireServer, make_openai: Any) -> None:
    wire.push(Reply(events=openai_sse(openai_text_chunks("slow answer")), stall_after=2))
    with pytest.raises(LLMStreamIncomplete) as info:
        await make_openai(timeout_s=HANG_TIMEOUT_S).complete(request())
    assert info.value.reason == "timeout" and info.value.chunks == 2


async def test_structured_output_happy_path_and_invalid_json(wire: WireServer, make_openai: Any) -> None:
    spec = StructuredOutputSpec(
        name="person",
        schema={
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
        },
    )
    wire.push_openai_stream(openai_text_chunks('{"name": "Ada", "age": 36}', pieces=5))
    llm = make_openai()
    response = await llm.complete(request(response_format=spec.to_openai_response_format()))
    assert wire.requests[0].body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "person", "schema": spec.schema, "strict": True},
    }
    assert response.json_data == {"name": "Ada", "age": 36} and response.parse_error is None
    assert parse_structured(response, schema=spec) == {"name": "Ada", "age": 36}

    wire.push_openai_stream(openai_text_chunks('{"name": "Ada", "age": ', pieces=2))
    bad = await llm.complete(request(response_format=spec.to_openai_response_format()))
    assert bad.json_data == {} and bad.parse_error is not None and bad.parse_error.startswith("invalid_json")
    with pytest.raises(StructuredOutputError) as info:
        parse_structured(bad, schema=spec)
    assert info.value.code == "structured_output.invalid"
    assert info.value.reason == "invalid_json" and info.value.raw_text == '{"name": "Ada", "age": '


async def test_close_releases_the_client(make_openai: Any) -> None:
    llm = make_openai()
    await llm.close()
    assert llm._client.is_closed()


async def test_factory_builds_the_openai_adapter_from_the_environment(wire: WireServer) -> None:
    env = {
        "POWER_LOOP_PROVIDER": "openai",
        "POWER_LOOP_BASE_URL": wire.url + "/v1",
        "POWER_LOOP_API_KEY": "sk-env",
        "POWER_LOOP_MODEL": "env-model",
        "POWER_LOOP_TIMEOUT_S": "2",
    }
    llm = create_llm_service_from_env(env=env)
    try:
        wire.push_openai_stream(openai_text_chunks("from env"))
        response = await llm.complete(request())
    finally:
        await llm.close()
    assert response.text == "from env"
    assert wire.requests[0].body["model"] == "env-model"
    assert "sk-env" not in repr(llm)


async def test_a_tool_round_is_not_judged_as_the_structured_answer(
    wire: WireServer, make_openai: Any
) -> None:
    spec = StructuredOutputSpec(name="person", schema={"type": "object", "required": ["name"]})
    wire.push_openai_stream(openai_tool_chunks([("call_a", "lookup", '{"q": "x"}')]))
    response = await make_openai().complete(
        request(tools=TOOLS, response_format=spec.to_openai_response_format())
    )
    assert response.tool_calls and response.parse_error is None and response.json_data == {}


async def test_a_failing_callback_propagates_and_the_service_stays_usable(
    wire: WireServer, make_openai: Any
) -> None:
    wire.push_openai_stream(openai_text_chunks("first answer", pieces=4))
    wire.push_openai_stream(openai_text_chunks("second answer"))
    llm = make_openai()
    ended: list[Any] = []

    def explode(_text: str) -> None:
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        await llm.complete(request(), on_chunk_delta_text=explode, on_stream_end=ended.append)
    assert ended == []
    assert (await llm.complete(request())).text == "second answer"
