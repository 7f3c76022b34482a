from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from power_loop.llm import (
    LLMRequest,
    LLMResponse,
    LLMService,
    LLMStreamChunk,
    LLMTokenUsage,
    ToolCallAccumulator,
    parse_tool_arguments,
)
from power_loop.testing import ScriptedLLM, ScriptedTurn, ScriptExhaustedError, VirtualClock


def req(text: str = "hi", **kw: Any) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": text}], **kw)


async def collect(llm: ScriptedLLM, request: LLMRequest) -> list[LLMStreamChunk]:
    return [c async for c in llm.stream(request)]


def reassemble(chunks: list[LLMStreamChunk]) -> tuple[str, list[dict[str, Any]]]:
    """Independent reassembly of OpenAI-shape deltas (no power_loop helper involved)."""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for delta in chunk.delta_tool_calls or []:
            slot = calls.setdefault(delta["index"], {"id": "", "name": "", "arguments": ""})
            if "id" in delta:
                slot["id"] = delta["id"]
            fn = delta.get("function", {})
            slot["name"] += fn.get("name", "") or ""
            slot["arguments"] += fn.get("arguments", "") or ""
    text = "".join(c.delta_text for c in chunks)
    return text, [
        {"id": s["id"], "type": "function", "function": {"name": s["name"], "arguments": s["arguments"]}}
        for _, s in sorted(calls.items())
    ]


async def test_text_turn_streams_in_several_chunks_to_callbacks() -> None:
    llm = ScriptedLLM([ScriptedLLM.text("hello there world", think="pondering")])
    assert isinstance(llm, LLMService)
    deltas: list[str] = []
    thinks: list[str] = []
    ended: list[LLMResponse] = []
    resp = await llm.complete(
        req(), on_chunk_delta_text=deltas.append, on_chunk_think=thinks.append, on_stream_end=ended.append
    )
    assert len(deltas) > 1 and "".join(deltas) == "hello there world"
    assert "".join(thinks) == "pondering" and resp.think == "pondering"
    assert ended == [resp]
    assert resp.text == "hello there world" and resp.get_tool_calls() == []
    assert resp.token_usage == LLMTokenUsage(prompt_tokens=10, completion_tokens=5, total_tokens=15)


async def test_async_callbacks_are_awaited() -> None:
    llm = ScriptedLLM(["abc def"])
    seen: list[str] = []

    async def on_delta(text: str) -> None:
        seen.append(text)

    async def on_end(resp: LLMResponse) -> None:
        seen.append("END:" + resp.text)

    await llm.complete(req(), on_chunk_delta_text=on_delta, on_stream_end=on_end)
    assert "".join(seen[:-1]) == "abc def" and seen[-1] == "END:abc def"


async def test_tool_call_turns_get_deterministic_ids() -> None:
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call("add", {"a": 1, "b": 2}),
            ScriptedLLM.tool_calls(
                [("read", {"path": "x"}), ("ls", None, "mine"), ("grep", {"q": "é"})], text="doing"
            ),
            ScriptedLLM.tool_call("add", {}, id="explicit"),
        ]
    )
    first = await llm.complete(req())
    assert first.tool_calls == [
        {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}
    ]
    second = await llm.complete(req())
    assert [c["id"] for c in second.tool_calls] == ["call_2", "mine", "call_3"]
    assert [c["function"]["name"] for c in second.tool_calls] == ["read", "ls", "grep"]
    assert second.tool_calls[1]["function"]["arguments"] == "{}"
    assert json.loads(second.tool_calls[2]["function"]["arguments"]) == {"q": "é"}
    assert second.text == "doing"
    third = await llm.complete(req())
    assert third.tool_calls[0]["id"] == "explicit"


async def test_stream_uses_openai_delta_shape_and_final_chunk() -> None:
    llm = ScriptedLLM([ScriptedLLM.tool_call("search", {"query": "power loop docs"}, text="let me look")])
    chunks = await collect(llm, req())
    heads = [d for c in chunks for d in (c.delta_tool_calls or []) if "id" in d]
    assert heads == [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "search", "arguments": ""}}
    ]
    arg_deltas = [d for c in chunks for d in (c.delta_tool_calls or []) if "id" not in d]
    assert len(arg_deltas) > 1 and all(set(d) == {"index", "function"} for d in arg_deltas)
    final = chunks[-1]
    assert final.is_final and not any(c.is_final for c in chunks[:-1])
    assert final.token_usage == LLMTokenUsage(10, 5, 15)
    text, calls = reassemble(chunks)
    assert text == "let me look" and calls == final.tool_calls


async def test_json_and_raw_argument_turns() -> None:
    llm = ScriptedLLM([ScriptedLLM.json({"answer": 42}), ScriptedLLM.raw_arguments("add", "{not json")])
    structured = await llm.complete(req(parse_json=True))
    assert structured.json_data == {"answer": 42} and structured.ok
    bad = await llm.complete(req())
    raw = bad.tool_calls[0]["function"]["arguments"]
    assert raw == "{not json"
    parsed, error = parse_tool_arguments(raw)
    assert parsed is None and error is not None


async def test_error_turn_raises_and_is_consumed() -> None:
    boom = RuntimeError("provider down")
    llm = ScriptedLLM([ScriptedLLM.error(boom), "recovered"])
    with pytest.raises(RuntimeError) as err:
        await llm.complete(req())
    assert err.value is boom
    assert (await llm.complete(req())).text == "recovered"
    assert len(llm.requests) == 2


async def test_delay_turn_uses_injected_sleep() -> None:
    clock = VirtualClock()
    llm = ScriptedLLM([ScriptedLLM.delay(2.5, then=ScriptedLLM.delay(1, "late"))], sleep=clock.sleep)
    resp = await llm.complete(req())
    assert resp.text == "late"
    assert clock.sleeps == [3.5] and clock.monotonic() == 3.5
    empty = ScriptedLLM([ScriptedLLM.delay(1)], sleep=clock.sleep)
    assert (await empty.complete(req())).text == ""


async def test_usage_per_turn() -> None:
    usage = LLMTokenUsage(prompt_tokens=100, completion_tokens=7, total_tokens=107, prompt_cached_tokens=90)
    llm = ScriptedLLM([ScriptedLLM.text("a", usage=usage), ScriptedLLM.text("b").with_usage(3, 4)])
    first = await llm.complete(req())
    assert first.token_usage == usage and first.token_usage is not usage
    assert first.token_usage.normalized()["cache_read_tokens"] == 90
    second = await llm.complete(req())
    assert second.token_usage.as_dict() == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


async def test_requests_are_deep_copied() -> None:
    llm = ScriptedLLM(["one", "two"])
    messages = [{"role": "user", "content": "original"}]
    request = LLMRequest(messages=messages, tools=[{"type": "function", "function": {"name": "t"}}])
    await llm.complete(request)
    messages[0]["content"] = "mutated"
    messages.append({"role": "assistant", "content": "later"})
    assert llm.requests[0].messages == [{"role": "user", "content": "original"}]
    assert llm.last_request.tools == [{"type": "function", "function": {"name": "t"}}]
    await llm.complete(request)
    assert llm.requests[1].messages[0]["content"] == "mutated"
    assert llm.remaining == 0


async def test_push_default_and_exhaustion() -> None:
    llm = ScriptedLLM()
    llm.push("pushed")
    assert llm.remaining == 1
    assert (await llm.complete(req())).text == "pushed"
    with pytest.raises(ScriptExhaustedError, match=r"request #2 .*1 scripted turn\(s\).*'what now'") as err:
        await llm.complete(req("what now"))
    assert isinstance(err.value, AssertionError)
    repeating = ScriptedLLM(["first"], default=ScriptedLLM.tool_call("noop"))
    assert (await repeating.complete(req())).text == "first"
    ids = [(await repeating.complete(req())).tool_calls[0]["id"] for _ in range(2)]
    assert ids == ["call_1", "call_2"]


async def test_responder_sync_and_async() -> None:
    def sync_responder(request: LLMRequest) -> str:
        return "echo:" + request.messages[-1]["content"]

    async def async_responder(request: LLMRequest) -> ScriptedTurn:
        return ScriptedLLM.tool_call("lookup", {"q": request.messages[-1]["content"]})

    assert (await ScriptedLLM(responder=sync_responder).complete(req("x"))).text == "echo:x"
    llm = ScriptedLLM(["scripted first"], responder=async_responder)
    assert (await llm.complete(req("a"))).text == "scripted first"
    resp = await llm.complete(req("b"))
    assert json.loads(resp.tool_calls[0]["function"]["arguments"]) == {"q": "b"}


async def test_llm_response_turns_and_bad_turns() -> None:
    ready = LLMResponse(
        raw_text="ready",
        tool_calls=[{"id": "r1", "type": "function", "function": {"name": "f", "arguments": '{"k": 1}'}}],
        token_usage=LLMTokenUsage(prompt_tokens=1, completion_tokens=1),
    )
    resp = await ScriptedLLM([ready]).complete(req())
    assert resp.text == "ready" and resp.tool_calls == ready.tool_calls
    assert resp.token_usage == ready.token_usage
    with pytest.raises(TypeError, match="ScriptedLLM turn"):
        ScriptedLLM([42])  # type: ignore[list-item]


async def test_close_and_conveniences() -> None:
    llm = ScriptedLLM(["  padded  ", "x y z"])
    assert await llm.predict("q", system_prompt="sys") == "padded"
    assert llm.requests[0].system_prompt == "sys"
    assert "".join([t async for t in llm.predict_stream("q")]) == "x y z"
    await llm.close()
    assert llm.closed and "calls=2" in repr(llm)


async def test_recording_can_be_disabled() -> None:
    llm = ScriptedLLM(["a"], record_requests=False)
    await llm.complete(req())
    assert llm.requests == []
    with pytest.raises(ScriptExhaustedError, match="request #2"):
        await llm.complete(req())


async def test_chunks_parameter_controls_splitting() -> None:
    one = await collect(ScriptedLLM(["abcdef"], chunks=1), req())
    six = await collect(ScriptedLLM(["abcdef"], chunks=6), req())
    assert [c.delta_text for c in one if c.delta_text] == ["abcdef"]
    assert [c.delta_text for c in six if c.delta_text] == list("abcdef")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
turns = st.builds(
    lambda text, calls: ScriptedLLM.tool_calls(calls, text=text) if calls else ScriptedLLM.text(text),
    st.text(max_size=60),
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=12), st.dictionaries(st.text(max_size=8), json_values, max_size=4)
        ),
        max_size=3,
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(turn=turns, chunks=st.integers(min_value=1, max_value=7))
async def test_stream_reaggregates_exactly_to_complete(turn: ScriptedTurn, chunks: int) -> None:
    streamed = ScriptedLLM([turn], chunks=chunks)
    completed = ScriptedLLM([turn], chunks=chunks)
    chunk_list = await collect(streamed, req())
    resp = await completed.complete(req())

    text, calls = reassemble(chunk_list)
    acc = ToolCallAccumulator()
    for c in chunk_list:
        acc.add(c.delta_tool_calls)
    assert text == turn.text == resp.raw_text
    assert calls == chunk_list[-1].tool_calls == acc.result() == resp.tool_calls
    assert [c["function"]["name"] for c in calls] == [c.name for c in turn.calls]
    for call, scripted in zip(calls, turn.calls, strict=True):
        assert json.loads(call["function"]["arguments"]) == json.loads(scripted.arguments)
