"""Multimodal user messages through the loop (all three backends)."""

from __future__ import annotations

import base64

import pytest

from power_loop import ConfigError, ModelCapabilities, ModelCapabilityError, attachment
from power_loop.testing import ScriptedLLM

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII="
)


def _message(*parts):
    return {"role": "user", "content": [{"type": "text", "text": "what is this?"}, *parts]}


async def test_image_parts_reach_the_model_and_survive_reload(make_loop):
    llm = ScriptedLLM(["a pixel", "still a pixel"])
    loop = make_loop(llm=llm)
    sid = await loop.new_session()
    result = await loop.send(_message(attachment(PNG)), sid)
    assert result.final_text == "a pixel"
    sent = llm.requests[0].messages[-1]["content"]
    assert sent[1]["type"] == "image_url" and sent[1]["image_url"]["url"].startswith("data:image/png;base64,")
    await loop.send("and now?", sid)
    again = llm.requests[1].messages[0]["content"]
    assert again == sent
    stored = await loop.get_messages(sid)
    assert stored[0]["content"] == sent


async def test_an_image_for_a_model_without_vision_fails_before_any_request(make_loop):
    llm = ScriptedLLM(["never"], capabilities=ModelCapabilities(vision=False))
    loop = make_loop(llm=llm)
    sid = await loop.new_session()
    url = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(ModelCapabilityError) as info:
        await loop.send(_message(url), sid)
    assert info.value.capability == "vision" and llm.requests == []


async def test_bad_parts_are_refused_with_a_config_error(make_loop):
    loop = make_loop(llm=ScriptedLLM(["x"]))
    sid = await loop.new_session()
    with pytest.raises(ConfigError, match="image_url"):
        await loop.send(_message({"type": "image_url", "image_url": {"url": "ftp://x"}}), sid)
    with pytest.raises(ConfigError, match="content parts"):
        await loop.send({"role": "user", "content": []}, sid)
    with pytest.raises(ConfigError, match="'audio'"):
        await loop.send(_message({"type": "audio"}), sid)


async def test_old_images_are_replaced_by_a_placeholder(make_loop):
    from power_loop import AgentLoopConfig

    llm = ScriptedLLM(["one", "two", "three"])
    loop = make_loop(llm=llm, config=AgentLoopConfig(image_retention_rounds=2))
    sid = await loop.new_session()
    await loop.send(_message(attachment(PNG)), sid)
    await loop.send("more?", sid)
    await loop.send("and?", sid)
    kinds = [[p["type"] for p in r.messages[0]["content"]] for r in llm.requests]
    assert kinds == [["text", "image_url"], ["text", "image_url"], ["text", "text"]]
    assert "image omitted" in llm.requests[2].messages[0]["content"][1]["text"]
    assert (await loop.get_messages(sid))[0]["content"][1]["type"] == "image_url"  # storage keeps it
    with pytest.raises(ConfigError):
        AgentLoopConfig(image_retention_rounds=0)


def test_the_token_estimate_counts_an_image_as_a_fixed_amount():
    from power_loop.context import estimate_message_tokens

    big = attachment(b"\x89PNG\r\n\x1a\n" + bytes(1_000_000))
    small = attachment(PNG)
    assert estimate_message_tokens(_message(big)) == estimate_message_tokens(_message(small))
    assert 1600 <= estimate_message_tokens(_message(big)) < 1700


async def test_view_image_attaches_a_workspace_image_to_the_tool_result(make_loop, tmp_path):
    from power_loop import ToolRegistry
    from power_loop.tools import register_view_image_tool

    (tmp_path / "chart.png").write_bytes(PNG)
    (tmp_path / "notes.txt").write_text("hi")
    registry = ToolRegistry()
    register_view_image_tool(registry, tmp_path)
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call("view_image", {"path": "chart.png"}),
            ScriptedLLM.tool_call("view_image", {"path": "../etc/passwd"}),
            ScriptedLLM.tool_call("view_image", {"path": "notes.txt"}),
            "a chart",
        ]
    )
    loop = make_loop(llm=llm, tool_registry=registry)
    sid = await loop.new_session()
    assert (await loop.send("look at chart.png", sid)).final_text == "a chart"
    tool_messages = [m for m in llm.requests[-1].messages if m["role"] == "tool"]
    first = tool_messages[0]["content"]
    assert first[0] == {"type": "text", "text": f"chart.png ({len(PNG)} bytes):"} and first[1] == attachment(
        PNG
    )
    assert "outside" in tool_messages[1]["content"] or "Error" in tool_messages[1]["content"]
    assert "Error" in tool_messages[2]["content"]
    stored = [m for m in await loop.get_messages(sid) if m["role"] == "tool"]
    assert stored[0]["content"] == first


async def test_recall_brings_an_old_image_back(make_loop):
    from power_loop import AgentLoopConfig, ToolRegistry
    from power_loop.context import register_recall_tools

    registry = ToolRegistry()
    register_recall_tools(registry)
    llm = ScriptedLLM(
        ["one", "two", ScriptedLLM.tool_call("recall_send", {"send_index": 1}), "it was a pixel"]
    )
    loop = make_loop(llm=llm, tool_registry=registry, config=AgentLoopConfig(image_retention_rounds=1))
    sid = await loop.new_session()
    await loop.send(_message(attachment(PNG)), sid)
    await loop.send("something else", sid)
    assert (await loop.send("what was the first image?", sid)).final_text == "it was a pixel"
    last = llm.requests[-1].messages
    assert [p["type"] for p in last[0]["content"]] == ["text", "text"]  # out of the window
    result = next(m for m in last if m["role"] == "tool")["content"]
    assert "[image]" in result[0]["text"] and "base64" not in result[0]["text"]
    assert result[1] == attachment(PNG)  # the newest tool result keeps its image
