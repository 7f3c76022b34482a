"""The loop adapts each request to the model's capabilities (all three backends)."""

from __future__ import annotations

from power_loop import AgentLoopConfig, ModelCapabilities
from power_loop.testing import ScriptedLLM

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


async def test_no_tools_are_sent_to_a_model_without_tool_support(make_loop):
    llm = ScriptedLLM(["hi"], capabilities=ModelCapabilities(tools=False))
    loop = make_loop(llm=llm)
    sid = await loop.new_session()
    assert (await loop.send("hello", sid)).final_text == "hi"
    assert llm.requests[0].tools is None and llm.requests[0].tool_choice is None


async def test_structured_output_falls_back_to_a_forced_answer_tool(make_loop):
    llm = ScriptedLLM(
        [ScriptedLLM.tool_call("weather", {"city": "Oslo"})],
        capabilities=ModelCapabilities(structured_output=False),
    )
    from power_loop.structured import StructuredOutputSpec

    loop = make_loop(llm=llm, config=AgentLoopConfig(output_schema=StructuredOutputSpec("weather", SCHEMA)))
    sid = await loop.new_session()
    result = await loop.send("weather?", sid)
    assert result.status == "completed" and result.output == {"city": "Oslo"}
    request = llm.requests[0]
    assert request.response_format is None
    names = [t["function"]["name"] for t in request.tools]
    assert "weather" in names
    assert request.tool_choice == "required" or request.tool_choice["function"]["name"] == "weather"


async def test_without_tools_or_structured_output_the_format_is_dropped(make_loop):
    llm = ScriptedLLM(
        [ScriptedLLM.json({"city": "Oslo"})],
        capabilities=ModelCapabilities(structured_output=False, tools=False),
    )
    loop = make_loop(llm=llm, config=AgentLoopConfig(output_schema=SCHEMA))
    sid = await loop.new_session()
    assert (await loop.send("weather?", sid)).output == {"city": "Oslo"}
    assert llm.requests[0].response_format is None and llm.requests[0].tools is None
