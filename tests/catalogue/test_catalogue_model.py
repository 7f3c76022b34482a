"""Catalogue: model replies — malformed or unknown tool calls, odd ids, huge or empty replies, and a
model that fails. Each ends with a stable code and a valid session (see ``_harness``)."""

from __future__ import annotations

from typing import Any

import pytest
from _harness import Case, Env, params, run_case

from power_loop import AgentEventType, LLMNonRetryable, LLMStreamIncomplete, LLMTimeout
from power_loop.testing import ScriptedLLM, ScriptedTurn

NOT_FOUND, INVALID = "tool.not_found", "tool.invalid_args"


def says(*turns: ScriptedTurn | str) -> Any:
    async def action(env: Env) -> str | None:
        return await env.model_says(*turns)

    return action


def call(name: str, args: dict[str, Any] | None = None, call_id: str | None = None) -> ScriptedTurn:
    return ScriptedLLM.tool_call(name, args, id=call_id)


def fails(exc: BaseException) -> Any:
    """The model call raises ``exc``: the send degrades; the code is the reason it reports."""

    async def action(env: Env) -> str | None:
        reasons: list[str] = []
        env.loop.event_bus.subscribe(
            AgentEventType.LLM_DEGRADED, lambda e: reasons.append(e.payload["reason"])
        )
        env.llm.push(ScriptedLLM.error(exc))
        result = await env.loop.send("go", env.sid)
        assert result.status == "degraded", result.status
        return f"llm.{reasons[0]}"

    return action


ECHO = {"x": "a"}
LONG = "n" * 10_000
CASES = [
    Case("calls", "unknown tool", says(call("nope")), NOT_FOUND),
    Case("calls", "empty tool name", says(ScriptedLLM.raw_arguments("", "{}")), NOT_FOUND),
    Case("calls", "whitespace tool name", says(ScriptedLLM.raw_arguments("  ", "{}")), NOT_FOUND),
    Case("calls", "tool name with a lone surrogate", says(call("echo\ud800", ECHO)), NOT_FOUND),
    Case("calls", "tool name with NUL", says(call("echo\x00", ECHO)), NOT_FOUND),
    Case("calls", "10k character tool name", says(call(LONG)), NOT_FOUND),
    Case("calls", "case-mismatched tool name", says(call("ECHO", ECHO)), NOT_FOUND),
    Case("calls", "tool name with a path", says(call("../echo", ECHO)), NOT_FOUND),
    Case(
        "calls", "unknown then valid", says(ScriptedLLM.tool_calls([("nope", {}), ("echo", ECHO)])), NOT_FOUND
    ),
    Case(
        "calls",
        "valid then invalid args",
        says(ScriptedLLM.tool_calls([("echo", ECHO), ("echo", {})])),
        INVALID,
    ),
    Case("calls", "fifty calls in one reply", says(ScriptedLLM.tool_calls([("echo", ECHO)] * 50)), None),
    Case("calls", "same call twice", says(ScriptedLLM.tool_calls([("echo", ECHO), ("echo", ECHO)])), None),
    Case("calls", "call id with a lone surrogate", says(call("echo", ECHO, "id\ud800")), None),
    Case("calls", "call id with NUL", says(call("echo", ECHO, "id\x00x")), None),
    Case("calls", "10k character call id", says(call("echo", ECHO, LONG)), None),
    Case("calls", "call id with quotes and newlines", says(call("echo", ECHO, 'a"b\nc')), None),
    Case(
        "calls", "tool call with text", says(ScriptedLLM.tool_call("echo", ECHO, text="let me check")), None
    ),
    Case(
        "calls", "tool rounds back to back", says(call("echo", ECHO), call("noargs"), call("nope")), NOT_FOUND
    ),
    Case("text", "empty reply", says(""), None),
    Case("text", "whitespace reply", says("  \n\t "), None),
    Case("text", "lone surrogate", says("a\ud800b"), None),
    Case("text", "lone surrogates only", says("\udc80\udcff"), None),
    Case("text", "NUL characters", says("a\x00b\x00"), None),
    Case("text", "1MB reply", says("r" * 1_000_000), None),
    Case("text", "looks like a tool call", says('{"name": "echo", "arguments": {"x": 1}}'), None),
    Case("text", "thinking only", says(ScriptedLLM.text("", think="hmm\ud800")), None),
    Case("text", "control characters", says("".join(chr(i) for i in range(32))), None),
    Case("failures", "runtime error", fails(RuntimeError("provider broke")), "llm.retry_exhausted"),
    Case(
        "failures",
        "non-retryable",
        fails(LLMNonRetryable(attempts=1, last_error=ValueError("401"))),
        "llm.retry_exhausted",
    ),
    Case(
        "failures",
        "stream incomplete",
        fails(LLMStreamIncomplete(provider="p", reason="no_terminator", chunks=2)),
        "llm.retry_exhausted",
    ),
    Case(
        "failures",
        "timeout",
        fails(LLMTimeout(elapsed=1.0, attempts=1, total_timeout=1.0)),
        "llm.retry_exhausted",
    ),
    Case(
        "failures",
        "error text with a lone surrogate",
        fails(RuntimeError("bad \ud800")),
        "llm.retry_exhausted",
    ),
    Case("failures", "error text with NUL", fails(RuntimeError("bad \x00 byte")), "llm.retry_exhausted"),
    Case("failures", "huge error text", fails(RuntimeError("e" * 200_000)), "llm.retry_exhausted"),
]


@pytest.mark.parametrize("case", params(CASES))
async def test_model_case(case: Case, env: Env) -> None:
    await run_case(case, env)


BACKEND_CASES = [
    Case("calls", "tool name with NUL", says(call("echo\x00", ECHO)), NOT_FOUND),
    Case("calls", "call id with NUL", says(call("echo", ECHO, "id\x00x")), None),
    Case("calls", "call id with a lone surrogate", says(call("echo", ECHO, "id\ud800")), None),
    Case("text", "lone surrogate", says("a\ud800b"), None),
    Case("failures", "error text with NUL", fails(RuntimeError("bad \x00 byte")), "llm.retry_exhausted"),
]


@pytest.mark.parametrize("case", params(BACKEND_CASES))
async def test_model_case_on_every_backend(case: Case, backend_env: Env) -> None:
    await run_case(case, backend_env)
