"""The OpenAI-compatible provider: a tool-using conversation through the real ``openai`` SDK.

Runs offline: a 30-line local server stands in for the API and streams two scripted answers in the
chat-completions wire format (a tool call whose arguments arrive in pieces, then the final text).
Point ``base_url`` at https://api.openai.com/v1 (or vLLM, DeepSeek, ...) and the same code talks
to a real model. Needs ``pip install openai` (checkout: `pip install -e '.[openai]'`)`.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from power_loop import (
    AgentLoopConfig,
    LLMProviderConfig,
    LLMRetryPolicy,
    StatefulAgentLoop,
    ToolRegistry,
    create_llm_service_from_config,
)

tools = ToolRegistry()


@tools.tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"21C and sunny in {city}"


# ------------------------------------------------------------- a stand-in for the API (offline)


def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> str:
    body: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "demo",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        body["choices"], body["usage"] = [], usage
    return f"data: {json.dumps(body)}\n\n"


ARGS = json.dumps({"city": "Paris"})
ANSWERS = [
    [
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        )
    ]
    + [
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ARGS[i : i + 4]}}]})
        for i in range(0, len(ARGS), 4)
    ]
    + [
        chunk({}, "tool_calls"),
        chunk({}, usage={"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59}),
    ],
    [chunk({"content": piece}) for piece in ("It is 21C ", "and sunny ", "in Paris.")]
    + [chunk({}, "stop"), chunk({}, usage={"prompt_tokens": 80, "completion_tokens": 8, "total_tokens": 88})],
]
seen_requests: list[dict[str, Any]] = []


async def fake_api(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    length = next(
        int(line.split(":")[1]) for line in head.split("\r\n") if line.lower().startswith("content-length")
    )
    seen_requests.append(json.loads(await reader.readexactly(length)))
    body = "".join(ANSWERS[len(seen_requests) - 1]) + "data: [DONE]\n\n"
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n" + body.encode()
    )
    await writer.drain()
    writer.close()


# ---------------------------------------------------------------------------------- the app


async def demo(workdir: Path) -> None:
    server = await asyncio.start_server(fake_api, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    llm = create_llm_service_from_config(
        LLMProviderConfig(
            provider="openai",
            base_url=f"http://127.0.0.1:{port}/v1",
            api_key="sk-demo",
            model="gpt-4o-mini",
            timeout_s=10,
        )
    )
    config = AgentLoopConfig(retry_policy=LLMRetryPolicy(max_attempts=3, total_timeout=30))
    dsn = str(workdir / "openai_demo.db")
    async with StatefulAgentLoop(llm=llm, dsn=dsn, tool_registry=tools, config=config) as loop:
        sid = await loop.new_session(system_prompt="You answer weather questions.")
        result = await loop.send("What's the weather in Paris?", sid)
    await llm.close()
    server.close()
    await server.wait_closed()
    print(f"{result.status}: {result.final_text}")
    print("tool result sent back:", seen_requests[1]["messages"][-1])
    print("streamed with usage:", seen_requests[0]["stream"], seen_requests[0]["stream_options"])
    assert result.final_text == "It is 21C and sunny in Paris."
    assert seen_requests[1]["messages"][-1]["content"] == "21C and sunny in Paris"


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # removed afterwards: the example leaves nothing behind
        await demo(Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
