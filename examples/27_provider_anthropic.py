"""The native Anthropic provider: tools, prompt caching and structured output through the ``anthropic`` SDK.

Runs offline: a small local server stands in for the Messages API and streams scripted answers in
its SSE format. Set ``base_url="https://api.anthropic.com"`` and a real key to talk to Claude.
Needs ``pip install anthropic` (checkout: `pip install -e '.[anthropic]'`)`.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from power_loop import (
    LLMProviderConfig,
    LLMRequest,
    StatefulAgentLoop,
    ToolRegistry,
    create_llm_service_from_config,
)
from power_loop.structured import StructuredOutputSpec, parse_structured

tools = ToolRegistry()


@tools.tool
def convert(amount: float, currency: str) -> str:
    """Convert an amount of euros into another currency."""
    return f"{amount * 1.1:.2f} {currency}"


# ------------------------------------------------------------- a stand-in for the API (offline)


def event(kind: str, **data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"


def answer(blocks: list[tuple[str, str, str]], stop: str) -> str:
    """``blocks``: (kind, name_or_text, json_input) — kind is "text" or "tool_use"."""
    usage = {
        "input_tokens": 12,
        "cache_read_input_tokens": 2048,
        "cache_creation_input_tokens": 0,
        "output_tokens": 1,
    }
    out = [
        event(
            "message_start",
            message={
                "id": "msg",
                "type": "message",
                "role": "assistant",
                "model": "claude-demo",
                "content": [],
                "stop_reason": None,
                "usage": usage,
            },
        )
    ]
    for index, (kind, value, args) in enumerate(blocks):
        if kind == "text":
            out.append(event("content_block_start", index=index, content_block={"type": "text", "text": ""}))
            out.append(event("content_block_delta", index=index, delta={"type": "text_delta", "text": value}))
        else:
            out.append(
                event(
                    "content_block_start",
                    index=index,
                    content_block={"type": "tool_use", "id": f"toolu_{index}", "name": value, "input": {}},
                )
            )
            for i in range(0, len(args), 5):  # arguments arrive as partial JSON
                out.append(
                    event(
                        "content_block_delta",
                        index=index,
                        delta={"type": "input_json_delta", "partial_json": args[i : i + 5]},
                    )
                )
        out.append(event("content_block_stop", index=index))
    out.append(event("message_delta", delta={"stop_reason": stop}, usage={"output_tokens": 20}))
    out.append(event("message_stop"))
    return "".join(out)


ANSWERS = [
    answer(
        [
            ("text", "Let me convert that.", ""),
            ("tool_use", "convert", json.dumps({"amount": 100, "currency": "USD"})),
        ],
        "tool_use",
    ),
    answer([("text", "100 EUR is 110.00 USD.", "")], "end_turn"),
    answer([("tool_use", "quote", json.dumps({"currency": "USD", "amount": 110.0}))], "tool_use"),
]
seen_requests: list[dict[str, Any]] = []


async def fake_api(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    length = next(
        int(line.split(":")[1]) for line in head.split("\r\n") if line.lower().startswith("content-length")
    )
    seen_requests.append(json.loads(await reader.readexactly(length)))
    body = ANSWERS[len(seen_requests) - 1]
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n" + body.encode()
    )
    await writer.drain()
    writer.close()


def cache_marks(body: dict[str, Any]) -> list[str]:
    marks = [f"tools[{i}]" for i, t in enumerate(body.get("tools", [])) if "cache_control" in t]
    marks += [f"system[{i}]" for i, b in enumerate(body.get("system", [])) if "cache_control" in b]
    for m, message in enumerate(body["messages"]):
        marks += [
            f"messages[{m}].content[{b}]"
            for b, blk in enumerate(message["content"])
            if "cache_control" in blk
        ]
    return marks


# ---------------------------------------------------------------------------------- the app


async def demo(workdir: Path) -> None:
    server = await asyncio.start_server(fake_api, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    llm = create_llm_service_from_config(
        LLMProviderConfig(
            provider="anthropic",
            base_url=f"http://127.0.0.1:{port}",
            api_key="sk-ant-demo",
            model="claude-demo",
            timeout_s=10,
        )
    )
    dsn = str(workdir / "anthropic_demo.db")
    async with StatefulAgentLoop(llm=llm, dsn=dsn, tool_registry=tools) as loop:
        sid = await loop.new_session(system_prompt="You are a currency assistant.")
        result = await loop.send("How much is 100 EUR in USD?", sid)
    print(f"{result.status}: {result.final_text}")
    print("prompt-cache breakpoints of the second call:", cache_marks(seen_requests[1]))
    assert result.final_text == "100 EUR is 110.00 USD."

    # Structured output: the schema becomes a forced tool; its input is the answer.
    spec = StructuredOutputSpec(
        name="quote",
        schema={
            "type": "object",
            "properties": {"currency": {"type": "string"}, "amount": {"type": "number"}},
            "required": ["currency", "amount"],
        },
    )
    request = LLMRequest.from_prompt(prompt="Give me that as data.")
    request.response_format = spec.to_openai_response_format()
    response = await llm.complete(request)
    quote = parse_structured(response, schema=spec)
    print("structured:", quote, "| tool_choice sent:", seen_requests[2]["tool_choice"])
    assert quote == {"currency": "USD", "amount": 110.0}

    await llm.close()
    server.close()
    await server.wait_closed()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # removed afterwards: the example leaves nothing behind
        await demo(Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
