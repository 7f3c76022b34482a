"""Catalogue: tool arguments the model produces and tool results handlers return.

Every bad argument or result ends as a failed tool outcome with a stable code that the model is told
about; the send completes and the session stays valid (see ``_harness``).
"""

from __future__ import annotations

from typing import Any

import pytest
from _harness import Case, Env, params, run_case

from power_loop import ConfigError, ToolHandlerResult, ToolValidationError
from power_loop.testing import ScriptedLLM

INVALID, NOT_FOUND, BAD_RESULT = "tool.invalid_args", "tool.not_found", "tool.invalid_result"


def raw(name: str, arguments: str) -> Any:
    async def action(env: Env) -> str | None:
        return await env.model_says(ScriptedLLM.raw_arguments(name, arguments))

    return action


def returns(value: Any) -> Any:
    async def action(env: Env) -> str | None:
        env.result = value
        return await env.model_says(ScriptedLLM.tool_call("ret"))

    return action


def raises(exc: BaseException) -> Any:
    async def action(env: Env) -> str | None:
        env.raises = exc
        return await env.model_says(ScriptedLLM.tool_call("boom"))

    return action


class BadStr:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__


class BadStrError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("unprintable")


def _deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _circular() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


DEEP = 100_000
ARGUMENTS = [
    Case("args", "not json", raw("echo", "{"), INVALID),
    Case("args", "trailing comma", raw("echo", '{"x": "a",}'), INVALID),
    Case("args", "single quotes", raw("echo", "{'x': 'a'}"), INVALID),
    Case("args", "array", raw("echo", '["a"]'), INVALID),
    Case("args", "string", raw("echo", '"a"'), INVALID),
    Case("args", "number", raw("echo", "3"), INVALID),
    Case("args", "null", raw("echo", "null"), INVALID),
    Case("args", "true", raw("echo", "true"), INVALID),
    Case("args", "deeply nested arrays", raw("echo", '{"x": ' + "[" * DEEP + "]" * DEEP + "}"), INVALID),
    Case(
        "args",
        "deeply nested objects",
        raw("echo", '{"x": ' + '{"a":' * DEEP + "1" + "}" * DEEP + "}"),
        INVALID,
    ),
    Case("args", "unclosed deep nesting", raw("echo", "[" * DEEP), INVALID),
    Case("args", "huge integer", raw("add", '{"a": ' + "9" * 5000 + ', "b": 1}'), INVALID),
    Case("args", "huge negative integer", raw("add", '{"a": -' + "9" * 5000 + ', "b": 1}'), INVALID),
    Case("args", "big but printable integer", raw("add", '{"a": ' + "9" * 4000 + ', "b": 1}'), None),
    Case("args", "float overflow", raw("add", '{"a": 1e400, "b": 1}'), INVALID),
    Case("args", "NaN literal", raw("add", '{"a": NaN, "b": 1}'), INVALID),
    Case("args", "Infinity literal", raw("add", '{"a": Infinity, "b": 1}'), INVALID),
    Case("args", "bool for integer", raw("add", '{"a": true, "b": 1}'), INVALID),
    Case("args", "float for integer", raw("add", '{"a": 1.5, "b": 1}'), INVALID),
    Case("args", "string for integer", raw("add", '{"a": "1", "b": 1}'), INVALID),
    Case("args", "missing required", raw("echo", "{}"), INVALID),
    Case("args", "empty string for required", raw("echo", ""), INVALID),
    Case("args", "null for string", raw("echo", '{"x": null}'), INVALID),
    Case("args", "object for string", raw("echo", '{"x": {"y": 1}}'), INVALID),
    Case("args", "extra property", raw("echo", '{"x": "a", "y": 1}'), INVALID),
    Case("args", "bad escape", raw("echo", '{"x": "\\q"}'), INVALID),
    Case("args", "truncated unicode escape", raw("echo", '{"x": "\\u12"}'), INVALID),
    Case("args", "lone high surrogate", raw("echo", '{"x": "\\ud800"}'), None),
    Case("args", "lone low surrogate", raw("echo", '{"x": "a\\udfffb"}'), None),
    Case("args", "raw lone surrogate", raw("echo", '{"x": "\ud800"}'), None),
    Case("args", "NUL character", raw("echo", '{"x": "a\\u0000b"}'), None),
    Case("args", "duplicate keys", raw("echo", '{"x": "a", "x": "b"}'), None),
    Case("args", "emoji and RTL", raw("echo", '{"x": "\U0001f600 \u05e9\u05dc\u05d5\u05dd"}'), None),
    Case("args", "200k string", raw("echo", '{"x": "' + "a" * 200_000 + '"}'), None),
    Case("args", "whitespace only for no-arg tool", raw("noargs", "   "), None),
    Case("args", "empty object for no-arg tool", raw("noargs", "{}"), None),
    Case("args", "args for no-arg tool", raw("noargs", '{"a": 1}'), INVALID),
    Case("args", "garbage after object", raw("echo", '{"x": "a"} trailing'), INVALID),
    Case("args", "two objects", raw("echo", '{"x": "a"}{"x": "b"}'), INVALID),
    Case("args", "raw NUL inside a string", raw("echo", '{"x": "a\x00b"}'), INVALID),
    Case("args", "raw newline inside a string", raw("echo", '{"x": "a\nb"}'), INVALID),
    Case("args", "BOM prefix", raw("echo", '\ufeff{"x": "a"}'), INVALID),
]

WAKEUPS = [
    Case("wakeups", "huge timer id", raw("cancel_wakeup", '{"timer_id": ' + "9" * 30 + "}"), INVALID),
    Case(
        "wakeups",
        "timer id beyond the digit limit",
        raw("cancel_wakeup", '{"timer_id": ' + "9" * 5000 + "}"),
        INVALID,
    ),
    Case("wakeups", "NaN delay", raw("schedule_wakeup", '{"delay_seconds": NaN, "note": "n"}'), INVALID),
    Case(
        "wakeups", "infinite delay", raw("schedule_wakeup", '{"delay_seconds": 1e400, "note": "n"}'), INVALID
    ),
    Case("wakeups", "negative delay", raw("schedule_wakeup", '{"delay_seconds": -5, "note": "n"}'), INVALID),
    Case(
        "wakeups",
        "delay beyond a month",
        raw("schedule_wakeup", '{"delay_seconds": 99999999999, "note": "n"}'),
        INVALID,
    ),
    Case(
        "wakeups",
        "note with NUL and a lone surrogate",
        raw("schedule_wakeup", '{"delay_seconds": 60, "note": "a\\u0000\\ud800"}'),
        None,
    ),
    Case("wakeups", "unknown timer", raw("cancel_wakeup", '{"timer_id": 77}'), None),
]

RESULTS = [
    Case("results", "str raises", returns(BadStr()), BAD_RESULT),
    Case(
        "results",
        "handler result content str raises",
        returns(ToolHandlerResult(ok=True, content=BadStr())),
        BAD_RESULT,
    ),
    Case("results", "huge integer", returns(10**5000), BAD_RESULT),
    Case("results", "huge integer in a list", returns([1, 10**5000]), BAD_RESULT),
    Case("results", "deeply nested list", returns(_deep_list(DEEP)), BAD_RESULT),
    Case("results", "circular list", returns(_circular()), None),
    Case("results", "non-string dict keys", returns({(1, 2): "v"}), None),
    Case("results", "bytes", returns(b"\xff\x00"), None),
    Case("results", "set", returns({1, 2}), None),
    Case("results", "None", returns(None), None),
    Case("results", "NaN float", returns(float("nan")), None),
    Case("results", "infinity", returns(float("inf")), None),
    Case("results", "lone surrogate text", returns("a\ud800b"), None),
    Case("results", "lone surrogates in a dict", returns({"k\udc00": "v\ud800"}), None),
    Case("results", "NUL text", returns("a\x00b"), None),
    Case("results", "1MB text is truncated", returns("b" * 1_000_000), None),
    Case("results", "empty text", returns(""), None),
    Case("results", "failed handler result", returns(ToolHandlerResult(ok=False, content="nope")), None),
    Case("results", "generator", returns(x for x in range(3)), None),
    Case("errors", "runtime error", raises(RuntimeError("kaput")), None),
    Case("errors", "exception whose str raises", raises(BadStrError()), None),
    Case("errors", "power_loop config error", raises(ConfigError("bad config")), "config.invalid"),
    Case("errors", "tool validation error", raises(ToolValidationError("boom", "bad")), INVALID),
    Case("errors", "exception with lone surrogate", raises(ValueError("bad \ud800")), None),
    Case("errors", "recursion error", raises(RecursionError("deep")), None),
]


@pytest.mark.parametrize("case", params(ARGUMENTS + WAKEUPS + RESULTS))
async def test_tool_case(case: Case, env: Env) -> None:
    await run_case(case, env)


# Where the bytes reach the database the backend matters: surrogates and NUL on every backend.
BACKEND_CASES = [
    Case("args", "lone surrogate", raw("echo", '{"x": "\\ud800"}'), None),
    Case("args", "NUL character", raw("echo", '{"x": "a\\u0000b"}'), None),
    Case("results", "lone surrogate text", returns("a\ud800b"), None),
    Case("results", "NUL text", returns("a\x00b"), None),
    Case("results", "str raises", returns(BadStr()), BAD_RESULT),
]


@pytest.mark.parametrize("case", params(BACKEND_CASES))
async def test_tool_case_on_every_backend(case: Case, backend_env: Env) -> None:
    await run_case(case, backend_env)
