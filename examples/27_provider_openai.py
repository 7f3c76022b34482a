"""The OpenAI-compatible provider: a tool-using conversation through the real ``openai`` SDK.

Runs offline: a local server (``examples/support/fake_api.py``) stands in for the API and
streams two scripted answers in the chat-completions wire format (a tool call whose arguments arrive
in pieces, then the final text). Point ``base_url`` at https://api.openai.com/v1 (or vLLM,
DeepSeek, ...) and the same code talks to a real model.

Run it (needs ``pip install openai``; in a checkout ``pip install -e '.[openai]'``)::

    python examples/27_provider_openai.py
"""

from __future__ import annotations

import asyncio

from support.fake_api import FakeAPI
from support.openai_wire import text_answer, tool_call_answer

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


async def main() -> None:
    answers = [
        tool_call_answer("get_weather", {"city": "Paris"}),
        text_answer("It is 21C ", "and sunny ", "in Paris."),
    ]
    async with FakeAPI(answers) as api:
        llm = create_llm_service_from_config(
            LLMProviderConfig(
                provider="openai",
                base_url=f"{api.base_url}/v1",
                api_key="sk-demo",
                model="gpt-4o-mini",
                timeout_s=10,
            )
        )
        config = AgentLoopConfig(retry_policy=LLMRetryPolicy(max_attempts=3, total_timeout=30))
        async with StatefulAgentLoop(llm=llm, dsn=":memory:", tool_registry=tools, config=config) as loop:
            sid = await loop.new_session(system_prompt="You answer weather questions.")
            result = await loop.send("What's the weather in Paris?", sid)
        await llm.close()
    print(f"{result.status}: {result.final_text}")
    print("tool result sent back:", api.requests[1]["messages"][-1])
    print("streamed with usage:", api.requests[0]["stream"], api.requests[0]["stream_options"])
    assert result.final_text == "It is 21C and sunny in Paris."
    assert api.requests[1]["messages"][-1]["content"] == "21C and sunny in Paris"


if __name__ == "__main__":
    asyncio.run(main())
