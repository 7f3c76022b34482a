from __future__ import annotations

import asyncio

import pytest

from power_loop.llm import EchoLLMService, LLMRequest, LLMService, LLMTokenUsage, message_text


def _req(*messages: dict[str, object], parse_json: bool = False) -> LLMRequest:
    return LLMRequest(messages=list(messages), system_prompt="sys", parse_json=parse_json)


async def test_echo_returns_last_user_message_with_usage() -> None:
    svc = EchoLLMService()
    assert isinstance(svc, LLMService)
    req = _req(
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "x"},
        {"role": "user", "content": "second one"},
        {"role": "tool", "tool_call_id": "t", "content": "r"},
    )
    deltas: list[str] = []
    ended = []
    resp = await svc.complete(req, on_chunk_delta_text=deltas.append, on_stream_end=ended.append)
    assert resp.text == "second one"
    assert deltas == ["second ", "one"]
    assert ended == [resp]
    assert resp.get_tool_calls() == []
    assert resp.token_usage == LLMTokenUsage(prompt_tokens=1, completion_tokens=1, total_tokens=2)


async def test_echo_reply_prefix_and_multimodal() -> None:
    parts = {
        "role": "user",
        "content": [{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}],
    }
    assert (await EchoLLMService(prefix="echo: ").complete(_req(parts))).text == "echo: ab"
    assert (await EchoLLMService(reply="fixed", prefix="> ").complete(_req(parts))).text == "> fixed"
    assert (await EchoLLMService(prefix="p").complete(_req())).text == "p"


async def test_echo_stream_ends_with_final_usage_chunk() -> None:
    chunks = [c async for c in EchoLLMService().stream(_req({"role": "user", "content": "a b c"}))]
    assert "".join(c.delta_text for c in chunks) == "a b c"
    assert chunks[-1].is_final and chunks[-1].token_usage is not None
    assert not any(c.is_final for c in chunks[:-1])


async def test_echo_parse_json_and_predict() -> None:
    resp = await EchoLLMService().complete(_req({"role": "user", "content": '{"k": 2}'}, parse_json=True))
    assert resp.json_data == {"k": 2} and resp.ok
    assert await EchoLLMService(reply="pong").predict("ping") == "pong"
    await EchoLLMService().close()


async def test_echo_sleep_is_awaited(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    await EchoLLMService(sleep_s=0.75).complete(_req({"role": "user", "content": "x"}))
    assert slept == [0.75]


def test_message_text_variants() -> None:
    assert message_text(None) == ""
    assert message_text(5) == "5"
    assert repr(EchoLLMService(reply="r")) == "EchoLLMService(reply='r', prefix='', sleep_s=0.0)"
