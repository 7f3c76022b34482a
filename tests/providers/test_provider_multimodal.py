"""Images and PDFs on the wire, through the official SDKs: OpenAI ``image_url`` / ``file`` parts,
Anthropic ``image`` / ``document`` blocks; images in tool results for both."""

from __future__ import annotations

import base64
from typing import Any

from wire_server import WireServer, anthropic_text_events, openai_text_chunks

from power_loop import attachment
from power_loop.llm import LLMRequest

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII="
)
PNG_B64 = base64.b64encode(PNG).decode()
PDF = b"%PDF-1.4 tiny"
PDF_B64 = base64.b64encode(PDF).decode()


def _user() -> dict[str, Any]:
    return {
        "role": "user",
        "content": [
            {"type": "text", "text": "describe"},
            attachment(PNG),
            attachment("https://example.com/cat.jpg"),
            attachment(PDF, filename="spec.pdf"),
        ],
    }


def _tool_round() -> list[dict[str, Any]]:
    call = {"id": "call_1", "type": "function", "function": {"name": "view_image", "arguments": "{}"}}
    return [
        {"role": "user", "content": "look at the chart"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {
            "role": "tool",
            "tool_call_id": "call_1",
            "content": [{"type": "text", "text": "chart.png (1x1)"}, attachment(PNG)],
        },
    ]


async def test_openai_sends_image_url_and_file_parts(wire: WireServer, make_openai: Any) -> None:
    wire.push_openai_stream(openai_text_chunks("a cat"))
    response = await make_openai().complete(LLMRequest(messages=[_user()]))
    assert response.text == "a cat"
    content = wire.requests[0].body["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "describe"}
    assert content[1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}}
    assert content[2] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    assert content[3] == {
        "type": "file",
        "file": {"filename": "spec.pdf", "file_data": f"data:application/pdf;base64,{PDF_B64}"},
    }


async def test_openai_moves_tool_result_images_to_a_user_message(wire: WireServer, make_openai: Any) -> None:
    wire.push_openai_stream(openai_text_chunks("a bar chart"))
    await make_openai().complete(LLMRequest(messages=_tool_round()))
    messages = wire.requests[0].body["messages"]
    tool, user = messages[2], messages[3]
    assert tool["role"] == "tool" and "chart.png (1x1)" in tool["content"] and "attachment" in tool["content"]
    assert user["role"] == "user" and user["content"][1]["type"] == "image_url"


async def test_anthropic_sends_image_and_document_blocks(wire: WireServer, make_anthropic: Any) -> None:
    wire.push_anthropic_stream(anthropic_text_events("a cat"))
    response = await make_anthropic(prompt_caching=False).complete(LLMRequest(messages=[_user()]))
    assert response.text == "a cat"
    blocks = wire.requests[0].body["messages"][0]["content"]
    assert blocks[0] == {"type": "text", "text": "describe"}
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
    }
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    assert blocks[3] == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
        "title": "spec.pdf",
    }


async def test_anthropic_keeps_tool_result_images_in_the_result(
    wire: WireServer, make_anthropic: Any
) -> None:
    wire.push_anthropic_stream(anthropic_text_events("a bar chart"))
    await make_anthropic(prompt_caching=False).complete(LLMRequest(messages=_tool_round()))
    result = wire.requests[0].body["messages"][2]["content"][0]
    assert result["type"] == "tool_result" and result["content"][1]["type"] == "image"


async def test_structured_output_fallback_on_the_openai_wire(
    wire: WireServer, make_openai: Any, tmp_path: Any
) -> None:
    from wire_server import openai_tool_chunks

    from power_loop import AgentLoopConfig, ModelCapabilities, StatefulAgentLoop

    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    wire.push_openai_stream(openai_tool_chunks([("call_1", "output", '{"city": "Oslo"}')]))
    llm = make_openai(capabilities=ModelCapabilities(structured_output=False))
    config = AgentLoopConfig(output_schema=schema)
    async with StatefulAgentLoop(llm=llm, dsn=str(tmp_path / "s.db"), config=config) as loop:
        sid = await loop.new_session()
        result = await loop.send("where?", sid)
    assert result.output == {"city": "Oslo"}
    body = wire.requests[0].body
    assert "response_format" not in body
    assert [t["function"]["name"] for t in body["tools"]] == ["output"]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "output"}}


async def test_anthropic_parallel_tools_off(wire: WireServer, make_anthropic: Any) -> None:
    from power_loop import ModelCapabilities

    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    wire.push_anthropic_stream(anthropic_text_events("ok"))
    llm = make_anthropic(prompt_caching=False, capabilities=ModelCapabilities(parallel_tools=False))
    await llm.complete(
        LLMRequest(messages=[{"role": "user", "content": "hi"}], tools=[tool], tool_choice="auto")
    )
    assert wire.requests[0].body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
