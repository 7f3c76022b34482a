"""Structured output through the loop (C13) and provider-suggested retries."""

from __future__ import annotations

import pytest
from loop_helpers import check_history

from power_loop import AgentLoopConfig, ConfigError, LLMRetryPolicy, StructuredOutputError
from power_loop.structured import StructuredOutputSpec
from power_loop.testing import ScriptedLLM

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temp_c": {"type": "number"}},
    "required": ["city", "temp_c"],
    "additionalProperties": False,
}


async def test_output_schema_becomes_response_format_and_is_parsed(make_loop):
    llm = ScriptedLLM([ScriptedLLM.json({"city": "Oslo", "temp_c": -3.5})])
    loop = make_loop(llm=llm, config=AgentLoopConfig(output_schema=SCHEMA))
    sid = await loop.new_session()
    result = await loop.send("weather?", sid)
    assert result.status == "completed" and result.output == {"city": "Oslo", "temp_c": -3.5}
    response_format = llm.requests[0].response_format
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["schema"] == SCHEMA


async def test_one_repair_round_then_success(make_loop):
    llm = ScriptedLLM(
        [ScriptedLLM.text("It is cold in Oslo."), ScriptedLLM.json({"city": "Oslo", "temp_c": 1})]
    )
    spec = StructuredOutputSpec(name="weather", schema=SCHEMA)
    loop = make_loop(llm=llm, config=AgentLoopConfig(output_schema=spec))
    sid = await loop.new_session()
    result = await loop.send("weather?", sid)
    assert result.output == {"city": "Oslo", "temp_c": 1} and result.rounds == 2
    repair = llm.requests[1].messages[-1]
    assert repair["role"] == "user" and repair["name"] == "structured_output" and "JSON" in repair["content"]
    check_history(await loop.get_messages(sid))


async def test_invalid_twice_raises_structured_output_error_with_the_raw_text(make_loop):
    llm = ScriptedLLM([ScriptedLLM.json({"city": "Oslo"}), ScriptedLLM.json({"city": 5, "temp_c": 1})])
    loop = make_loop(llm=llm, config=AgentLoopConfig(output_schema=SCHEMA))
    sid = await loop.new_session()
    with pytest.raises(StructuredOutputError) as info:
        await loop.send("weather?", sid)
    err = info.value
    assert err.code == "structured_output.invalid" and err.reason == "schema_mismatch"
    assert '"city": 5' in err.raw_text
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert messages[-1]["role"] == "assistant"  # nothing is lost: the answer is stored


def test_output_schema_and_response_format_are_exclusive():
    with pytest.raises(ConfigError):
        AgentLoopConfig(output_schema=SCHEMA, response_format={"type": "json_object"})
    with pytest.raises(ConfigError):
        AgentLoopConfig(output_schema={"type": 7})


async def test_a_services_default_retry_policy_is_used_when_config_has_none(make_loop):
    llm = ScriptedLLM([ScriptedLLM.error(ConnectionError("blip")), ScriptedLLM.text("ok")])
    llm.default_retry_policy = LLMRetryPolicy(
        max_attempts=2, backoff_initial=0, backoff_max=0, total_timeout=None
    )
    loop = make_loop(llm=llm)
    assert (await loop.send("hi", await loop.new_session())).final_text == "ok"
