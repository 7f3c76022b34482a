from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from power_loop.llm import (
    EchoLLMService,
    LLMRequest,
    LLMResponse,
    LLMService,
    LLMServiceBase,
    LLMStreamChunk,
    LLMTokenUsage,
    ToolCallAccumulator,
    complete_from_stream,
    normalize_tool_call,
    normalize_usage,
    parse_tool_arguments,
)
from power_loop.llm._stream import parse_json_text
from power_loop.llm._types import call_maybe_async


# ------------------------------------------------------------------------------------------- usage
def test_usage_as_dict_drops_none_and_repr_is_compact() -> None:
    usage = LLMTokenUsage(prompt_tokens=3, completion_tokens=4)
    assert usage.as_dict() == {"prompt_tokens": 3, "completion_tokens": 4}
    assert repr(usage) == "LLMTokenUsage(prompt_tokens=3, completion_tokens=4)"
    assert "total=7" in usage.to_log_str()


def test_usage_has_every_published_field() -> None:
    names = set(LLMTokenUsage.__dataclass_fields__)
    assert len(names) == 20
    assert {"prompt_cache_miss_tokens", "accepted_prediction_tokens", "rejected_tokens"} <= names
    assert all(v is None for v in vars_of(LLMTokenUsage()).values())


def vars_of(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in type(obj).__dataclass_fields__}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (LLMTokenUsage(prompt_tokens=10, completion_tokens=5), (10, 5, 0, 0, 15)),
        (LLMTokenUsage(prompt_tokens=10, completion_tokens=5, total_tokens=0), (10, 5, 0, 0, 15)),
        (LLMTokenUsage(prompt_tokens=10, completion_tokens=5, total_tokens=40), (10, 5, 0, 0, 40)),
        ({"input_tokens": 7, "output_tokens": 2, "cache_read_input_tokens": 5}, (7, 2, 5, 0, 9)),
        ({"prompt_tokens": 1, "cached_tokens": 3, "prompt_cached_tokens": 9}, (1, 0, 3, 0, 1)),
        (LLMTokenUsage(prompt_cached_tokens=4, completion_reasoning_tokens=6), (0, 0, 4, 6, 0)),
        (SimpleNamespace(input_tokens=2, output_tokens=3, reasoning_tokens=1), (2, 3, 0, 1, 5)),
        (None, (0, 0, 0, 0, 0)),
        ({"prompt_tokens": True, "input_tokens": 4}, (4, 0, 0, 0, 4)),
    ],
)
def test_usage_normalisation_aliases(source: Any, expected: tuple[int, ...]) -> None:
    got = normalize_usage(source)
    keys = ("prompt_tokens", "completion_tokens", "cache_read_tokens", "reasoning_tokens", "total_tokens")
    assert tuple(got[k] for k in keys) == expected
    if isinstance(source, LLMTokenUsage):
        assert source.normalized() == got


# ----------------------------------------------------------------------------------------- request
def test_request_to_messages_prepends_system_without_mutating() -> None:
    msgs = [{"role": "user", "content": "hi"}]
    req = LLMRequest(messages=msgs, system_prompt="be brief")
    out = req.to_messages()
    assert out == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert req.messages == [{"role": "user", "content": "hi"}]
    assert LLMRequest(messages=msgs).to_messages() == msgs
    assert req.to_messages({"system_message": False})[0]["role"] == "user"


def test_request_from_prompt_puts_unknown_kwargs_in_extra() -> None:
    req = LLMRequest.from_prompt(prompt="q", system_prompt="s", model="m", max_tokens=9, seed=3)
    assert req.messages == [{"role": "user", "content": "q"}]
    assert (req.system_prompt, req.model, req.max_tokens, req.extra) == ("s", "m", 9, {"seed": 3})
    assert LLMRequest(messages=[]).extra is not LLMRequest(messages=[]).extra


# ---------------------------------------------------------------------------------------- response
def test_response_text_ok_and_defaults() -> None:
    assert LLMResponse(raw_text="  hi \n").text == "hi"
    assert LLMResponse(raw_text="", content_text=" c ").text == "c"
    assert not LLMResponse(raw_text="x").ok
    assert LLMResponse(raw_text="{}", json_data={"a": 1}).ok
    assert not LLMResponse(raw_text="{}", json_data={"a": 1}, parse_error="bad").ok
    assert LLMResponse(raw_text="").tool_calls is not LLMResponse(raw_text="").tool_calls


CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}


def _sdk_call(**kw: Any) -> SimpleNamespace:
    return SimpleNamespace(id="c1", type="function", function=SimpleNamespace(name="f", arguments='{"x": 1}'))


class _Dumpable:
    """An SDK-like object exposing its fields only through model_dump()."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def model_dump(self) -> dict[str, Any]:
        return self._data


@pytest.mark.parametrize(
    "response",
    [
        LLMResponse(raw_text="", tool_calls=[CALL]),
        LLMResponse(raw_text="", tool_calls=[{"id": "c1", "function": {"name": "f", "arguments": {"x": 1}}}]),
        LLMResponse(raw_text="", raw_message={"role": "assistant", "tool_calls": [CALL]}),
        LLMResponse(raw_text="", raw_message=SimpleNamespace(tool_calls=[_sdk_call()], function_call=None)),
        LLMResponse(raw_text="", raw_message=_Dumpable({"tool_calls": [CALL]})),
        LLMResponse(raw_text="", raw_completion={"choices": [{"message": {"tool_calls": [CALL]}}]}),
        LLMResponse(
            raw_text="",
            raw_completion=SimpleNamespace(
                choices=[SimpleNamespace(message=SimpleNamespace(tool_calls=[_sdk_call()]))]
            ),
        ),
        LLMResponse(
            raw_text="", raw_completion=_Dumpable({"choices": [{"message": {"tool_calls": [CALL]}}]})
        ),
    ],
)
def test_get_tool_calls_digs_everywhere(response: LLMResponse) -> None:
    assert response.get_tool_calls() == [CALL]


def test_get_tool_calls_wraps_legacy_function_call() -> None:
    resp = LLMResponse(raw_text="", raw_message={"function_call": {"name": "g", "arguments": "{}"}})
    assert resp.get_tool_calls() == [
        {"id": "call_0", "type": "function", "function": {"name": "g", "arguments": "{}"}}
    ]
    assert LLMResponse(raw_text="plain").get_tool_calls() == []
    assert LLMResponse(raw_text="", raw_completion={"choices": []}).get_tool_calls() == []


@pytest.mark.parametrize(
    ("call", "arguments"),
    [
        ({"id": "a", "function": {"name": "n", "arguments": {"k": "é"}}}, '{"k": "é"}'),
        ({"id": "a", "function": {"name": "n", "arguments": None}}, "{}"),
        ({"id": "a", "function": {"name": "n", "arguments": "  "}}, "{}"),
        ({"id": "a", "function": {"name": "n", "arguments": "{not json"}}, "{not json"),
        ({"id": "a", "name": "n", "arguments": '{"q": 1}'}, '{"q": 1}'),
        ({"type": "tool_use", "id": "a", "name": "n", "input": {"q": [1]}}, '{"q": [1]}'),
    ],
)
def test_normalize_tool_call_shapes(call: dict[str, Any], arguments: str) -> None:
    out = normalize_tool_call(call)
    assert out == {"id": "a", "type": "function", "function": {"name": "n", "arguments": arguments}}


def test_normalize_tool_call_fills_missing_id_from_index() -> None:
    assert normalize_tool_call({"function": {"name": "n"}}, 4)["id"] == "call_4"


@pytest.mark.parametrize(
    ("raw", "value", "error_part"),
    [
        ('{"a": 1}', {"a": 1}, None),
        ({"a": 1}, {"a": 1}, None),
        (None, {}, None),
        ("", {}, None),
        ('{"t": "line1\nline2"}', {"t": "line1\nline2"}, None),
        ("{not json", None, "invalid JSON"),
        ("[1, 2]", None, "must be a JSON object, got list"),
        ("3", None, "got int"),
    ],
)
def test_parse_tool_arguments(raw: Any, value: Any, error_part: str | None) -> None:
    parsed, error = parse_tool_arguments(raw)
    assert parsed == value
    if error_part is None:
        assert error is None
    else:
        assert error is not None and error_part in error


# ------------------------------------------------------------------------------------------ stream
def test_accumulator_handles_split_names_repeated_names_and_missing_index() -> None:
    acc = ToolCallAccumulator()
    acc.add([{"index": 0, "id": "a", "function": {"name": "rea", "arguments": ""}}])
    acc.add([{"index": 0, "function": {"name": "d", "arguments": '{"p":'}}])
    acc.add(SimpleNamespace(index=0, id=None, function=SimpleNamespace(name=None, arguments=' "x"}')))
    acc.add([{"index": 1, "id": "b", "function": {"name": "ls", "arguments": ""}}])
    acc.add([{"index": 1, "function": {"name": "ls", "arguments": "{}"}}])
    acc.add({"id": "c", "function": {"name": "w", "arguments": '{"z"'}})
    acc.add({"function": {"arguments": ": 2}"}})
    acc.add(None)
    assert acc.result() == [
        {"id": "a", "type": "function", "function": {"name": "read", "arguments": '{"p": "x"}'}},
        {"id": "b", "type": "function", "function": {"name": "ls", "arguments": "{}"}},
        {"id": "c", "type": "function", "function": {"name": "w", "arguments": '{"z": 2}'}},
    ]


def test_accumulator_splits_reused_index_with_new_id() -> None:
    acc = ToolCallAccumulator()
    acc.add({"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}})
    acc.add({"index": 0, "id": "b", "function": {"name": "g", "arguments": "{}"}})
    assert [c["id"] for c in acc.result()] == ["a", "b"]


async def _chunks(*chunks: LLMStreamChunk) -> Any:
    for c in chunks:
        yield c


async def test_complete_from_stream_aggregates_and_calls_back() -> None:
    seen: list[tuple[str, str]] = []
    ended: list[LLMResponse] = []

    async def on_think(t: str) -> None:
        seen.append(("think", t))

    usage = LLMTokenUsage(prompt_tokens=2, completion_tokens=1)
    resp = await complete_from_stream(
        _chunks(
            LLMStreamChunk(think="hm"),
            LLMStreamChunk(delta_text='{"a"'),
            LLMStreamChunk(
                delta_text=": 1}", delta_tool_calls=[{"index": 0, "id": "x", "function": {"name": "f"}}]
            ),
            LLMStreamChunk(token_usage=usage, is_final=True),
        ),
        on_chunk_delta_text=lambda t: seen.append(("text", t)),
        on_chunk_think=on_think,
        on_stream_end=ended.append,
        parse_json=True,
        keep_chunks=True,
    )
    assert seen == [("think", "hm"), ("text", '{"a"'), ("text", ": 1}")]
    assert ended == [resp]
    assert resp.raw_text == resp.content_text == '{"a": 1}'
    assert resp.think == "hm"
    assert resp.json_data == {"a": 1} and resp.ok
    assert resp.tool_calls == [{"id": "x", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    assert resp.token_usage is usage
    assert len(resp.stream_chunks) == 4


async def test_complete_from_stream_prefers_final_tool_calls_and_reports_bad_json() -> None:
    final = [{"id": "z", "type": "function", "function": {"name": "g", "arguments": '{"b": 2}'}}]
    resp = await complete_from_stream(
        _chunks(
            LLMStreamChunk(
                delta_text="nope", delta_tool_calls=[{"index": 0, "id": "x", "function": {"name": "f"}}]
            ),
            LLMStreamChunk(tool_calls=final, is_final=True),
        ),
        parse_json=True,
    )
    assert resp.tool_calls == final
    assert resp.parse_error is not None and not resp.ok
    assert resp.stream_chunks == []
    assert resp.token_usage == LLMTokenUsage()


@pytest.mark.parametrize(
    ("text", "data", "bad"),
    [
        ('```json\n{"a": 1}\n```', {"a": 1}, False),
        ("```\n{}\n```", {}, False),
        ("[1]", {}, True),
        ("nah", {}, True),
    ],
)
def test_parse_json_text(text: str, data: dict[str, Any], bad: bool) -> None:
    got, err = parse_json_text(text)
    assert got == data
    assert (err is not None) is bad


# ---------------------------------------------------------------------------------------- protocol
class _DuckModel:
    async def complete(self, request: LLMRequest, **kw: Any) -> LLMResponse:
        return LLMResponse(raw_text="duck")

    async def stream(self, request: LLMRequest) -> Any:
        yield LLMStreamChunk(delta_text="duck", is_final=True)

    async def close(self) -> None:
        return None


def test_protocol_is_duck_typed() -> None:
    assert isinstance(_DuckModel(), LLMService)
    assert isinstance(EchoLLMService(), LLMService)
    assert not isinstance(object(), LLMService)


async def test_service_base_conveniences() -> None:
    class Upper(LLMServiceBase):
        async def complete(self, request: LLMRequest, **kw: Any) -> LLMResponse:
            self.last = request
            return LLMResponse(raw_text=" " + request.messages[-1]["content"].upper() + " ")

        async def stream(self, request: LLMRequest) -> Any:
            for part in ("a", "", "b"):
                yield LLMStreamChunk(delta_text=part)

    svc = Upper()
    assert await svc.predict("hi", system_prompt="s", model="m") == "HI"
    assert svc.last.system_prompt == "s" and svc.last.model == "m"
    assert await svc.chat([{"role": "user", "content": "yo"}], temperature=0.5) == "YO"
    assert svc.last.extra == {"temperature": 0.5}
    assert [t async for t in svc.predict_stream("x")] == ["a", "b"]
    assert await svc.close() is None
    with pytest.raises(NotImplementedError):
        await LLMServiceBase().complete(LLMRequest(messages=[]))
    with pytest.raises(NotImplementedError):
        LLMServiceBase().stream(LLMRequest(messages=[]))


async def test_call_maybe_async_awaits_coroutines() -> None:
    got: list[int] = []

    async def acb(x: int) -> None:
        got.append(x * 10)

    await call_maybe_async(got.append, 1)
    await call_maybe_async(acb, 2)
    await call_maybe_async(None, 3)
    assert got == [1, 20]


def test_response_to_log_str_truncates() -> None:
    resp = LLMResponse(raw_text="x" * 300, tool_calls=[CALL])
    line = resp.to_log_str(max_chars=10)
    assert "x" * 10 + "..." in line and "'f'" in line
    assert json.loads(resp.get_tool_calls()[0]["function"]["arguments"]) == {"x": 1}
