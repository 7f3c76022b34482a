"""The native Anthropic provider: tools, prompt caching and structured output through the ``anthropic`` SDK.

Runs offline: a local server (``examples/support/fake_api.py``) stands in for the Messages API and
streams scripted answers in its SSE format (``support/anthropic_wire.py``). Set
``base_url="https://api.anthropic.com"`` and a real key to talk to Claude.

Run it (needs ``pip install anthropic``; in a checkout ``pip install -e '.[anthropic]'``)::

    python examples/28_provider_anthropic.py
"""

from __future__ import annotations

import asyncio
import json

from support.anthropic_wire import answer, cache_marks
from support.fake_api import FakeAPI

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


CALL = ("tool_use", "convert", json.dumps({"amount": 100, "currency": "USD"}))
ANSWERS = [
    answer([("text", "Let me convert that.", ""), CALL], "tool_use"),
    answer([("text", "100 EUR is 110.00 USD.", "")], "end_turn"),
    answer([("tool_use", "quote", json.dumps({"currency": "USD", "amount": 110.0}))], "tool_use"),
]
PROPERTIES = {"currency": {"type": "string"}, "amount": {"type": "number"}}
QUOTE = StructuredOutputSpec(
    name="quote", schema={"type": "object", "properties": PROPERTIES, "required": list(PROPERTIES)}
)


async def main() -> None:
    async with FakeAPI(ANSWERS) as api:
        config = LLMProviderConfig(
            provider="anthropic",
            base_url=api.base_url,
            api_key="sk-ant-demo",
            model="claude-demo",
            timeout_s=10,
        )
        llm = create_llm_service_from_config(config)
        async with StatefulAgentLoop(llm=llm, dsn=":memory:", tool_registry=tools) as loop:
            sid = await loop.new_session(system_prompt="You are a currency assistant.")
            result = await loop.send("How much is 100 EUR in USD?", sid)
        print(f"{result.status}: {result.final_text}")
        print("prompt-cache breakpoints of the second call:", cache_marks(api.requests[1]))
        assert result.final_text == "100 EUR is 110.00 USD."

        # Structured output: the schema becomes a forced tool; its input is the answer.
        request = LLMRequest.from_prompt(prompt="Give me that as data.")
        request.response_format = QUOTE.to_openai_response_format()
        quote = parse_structured(await llm.complete(request), schema=QUOTE)
        print("structured:", quote, "| tool_choice sent:", api.requests[2]["tool_choice"])
        assert quote == {"currency": "USD", "amount": 110.0}
        await llm.close()


if __name__ == "__main__":
    asyncio.run(main())
