"""Structured output: the final answer as a JSON object validated against a schema.

`AgentLoopConfig(output_schema=spec)` asks every main call for the schema, parses and validates
the answer into `result.output`, and shows the model its mistake once if the answer does not

Run it::

    python examples/14_structured_output.py
"""

from __future__ import annotations

import asyncio

from power_loop import AgentLoopConfig, StatefulAgentLoop, StructuredOutputSpec
from power_loop.testing import ScriptedLLM

INVOICE = StructuredOutputSpec(
    name="invoice",
    schema={
        "type": "object",
        "properties": {"total": {"type": "number"}, "currency": {"type": "string", "enum": ["EUR", "USD"]}},
        "required": ["total", "currency"],
        "additionalProperties": False,
    },
    description="The invoice total",
)


async def main() -> None:
    llm = ScriptedLLM(
        [
            ScriptedLLM.json({"total": "120.50", "currency": "euro"}),  # invalid: shown to the model once
            ScriptedLLM.json({"total": 120.5, "currency": "EUR"}),
        ]
    )
    config = AgentLoopConfig(output_schema=INVOICE)
    async with StatefulAgentLoop(llm=llm, dsn=":memory:", config=config) as loop:
        sid = await loop.new_session()
        result = await loop.send("Total of: 2 x widget @ 60.25 EUR", sid)
        print("output:", result.output, type(result.output).__name__)
        print("response_format sent:", llm.requests[0].response_format["type"])
        repair = llm.requests[1].messages[-1]
        print("repair message to the model:", repair["content"].splitlines()[0])
        assert result.output == {"total": 120.5, "currency": "EUR"}


if __name__ == "__main__":
    asyncio.run(main())
