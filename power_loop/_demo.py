"""The offline demo: a tool-using conversation persisted to SQLite and resumed by a second process.

With no ``POWER_LOOP_*`` provider configured it runs a clearly labelled *offline demo model* (a scripted
responder that reads the request like a model would); with a provider configured it talks to it.
"""

from __future__ import annotations

import ast
import operator
import os
import re
import subprocess
import sys
from typing import Any

from .base import redact_secrets
from .errors import ConfigError, LLMError
from .events import AgentEvent, LlmDegradedPayload, ToolCallCompletedPayload
from .llm import LLMRequest, LLMRetryPolicy, LLMService, create_llm_service_from_env
from .loop import AgentLoopConfig, StatefulAgentLoop, StatefulResult
from .testing import ScriptedLLM, Turn
from .tools import ToolDefinition, ToolRegistry

__all__ = [
    "CLI_LOOP_CONFIG",
    "KNOWN_PROVIDERS",
    "build_demo_llm",
    "build_demo_tools",
    "failure_reason",
    "run_demo",
]

#: One attempt per model call (the provider SDK retries inside it); a failure becomes the send's
#: ``degraded`` status, which the command line reports as one line, instead of a raw SDK exception.
CLI_LOOP_CONFIG = AgentLoopConfig(
    max_rounds=4, retry_policy=LLMRetryPolicy(max_attempts=1, total_timeout=None)
)

#: The provider names the command line accepts in ``POWER_LOOP_PROVIDER`` (the library routes any other
#: name to the OpenAI-compatible adapter; here a typo must not silently become one).
KNOWN_PROVIDERS = ("openai", "anthropic", "claude", "dashscope-anthropic", "echo", "stub")

OFFLINE_BANNER = (
    "offline demo model (scripted; set POWER_LOOP_PROVIDER/BASE_URL/API_KEY/MODEL for a real one)"
)

_OPS: dict[type, Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _evaluate(expression: str) -> float | int:
    """A safe arithmetic evaluator (no eval): numbers and + - * / ** only."""

    def walk(node: ast.AST) -> float | int:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))  # type: ignore[no-any-return]
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.operand))  # type: ignore[no-any-return]
        raise ValueError(f"unsupported expression: {expression!r}")

    return walk(ast.parse(expression, mode="eval"))


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as '17 * 23'."""
    value = _evaluate(expression)
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def build_demo_tools() -> ToolRegistry:
    registry = ToolRegistry()
    registry.register(
        ToolDefinition(
            name="calculator",
            description="Evaluate an arithmetic expression exactly (numbers with + - * / **).",
            input_schema={
                "type": "object",
                "properties": {"expression": {"type": "string", "minLength": 1}},
                "required": ["expression"],
                "additionalProperties": False,
            },
        ),
        calculator,
    )
    return registry


def _demo_responder(request: LLMRequest) -> Turn:
    """Reads the request the way a model would: the last message decides, history supplies facts."""
    messages = request.messages
    last = messages[-1] if messages else {"role": "user", "content": ""}
    if last.get("role") == "tool":
        return ScriptedLLM.text(f"The calculator says the answer is {last.get('content')}.")
    question = str(last.get("content") or "")
    arithmetic = re.search(r"(\d+(?:\.\d+)?\s*[-+*/]\s*\d+(?:\.\d+)?)", question)
    if arithmetic and request.tools:
        return ScriptedLLM.tool_call("calculator", {"expression": arithmetic.group(1)})
    if "name" in question.lower() or "remember" in question.lower():
        name = None
        result = None
        for message in messages[:-1]:
            text = str(message.get("content") or "")
            found = re.search(r"my name is (\w+)", text, re.IGNORECASE)
            if found:
                name = found.group(1)
            if message.get("role") == "tool":
                result = text
        if name is None:
            return ScriptedLLM.text("I don't know your name yet.")
        extra = f" Earlier the calculator gave us {result}." if result else ""
        return ScriptedLLM.text(f"Your name is {name}.{extra}")
    return ScriptedLLM.text(f"You said: {question}")


def build_demo_llm() -> tuple[LLMService, str]:
    """The configured provider when ``POWER_LOOP_*`` says so, else the offline demo model."""
    provider = (os.environ.get("POWER_LOOP_PROVIDER") or "").strip()
    if provider and provider.lower() not in KNOWN_PROVIDERS:
        raise ConfigError(
            f"unknown POWER_LOOP_PROVIDER {provider!r}; valid names: {', '.join(KNOWN_PROVIDERS)} "
            "(any OpenAI-compatible server: openai with POWER_LOOP_BASE_URL)"
        )
    if provider or os.environ.get("POWER_LOOP_BASE_URL"):
        service = create_llm_service_from_env()
        return service, f"provider {provider or 'openai'}"
    return ScriptedLLM(responder=_demo_responder), OFFLINE_BANNER


def failure_reason(loop: StatefulAgentLoop) -> list[str]:
    """A list that collects, redacted, why each degraded send's model call failed."""
    reasons: list[str] = []

    def record(event: AgentEvent) -> None:
        data = event.data
        if isinstance(data, LlmDegradedPayload):
            reasons.append(redact_secrets(f"{data.reason}: {data.error_type}: {data.error_message}"))

    loop.event_bus.subscribe("llm_degraded", record)
    return reasons


def _show(role: str, text: str) -> None:
    print(f"  {role:>9} │ {text}")


def _show_tool_call(event: AgentEvent) -> None:
    data = event.data
    if isinstance(data, ToolCallCompletedPayload):
        _show("tool", f"{data.name}({data.tool_input}) -> {data.output}")


async def _send(loop: StatefulAgentLoop, prompt: str, session_id: str) -> StatefulResult:
    """One demo turn; a failed model call ends the demo with the (redacted) reason."""
    reasons = failure_reason(loop)
    _show("user", prompt)
    result = await loop.send(prompt, session_id)
    if result.status in ("degraded", "error"):
        raise LLMError(f"the model call failed: {reasons[-1] if reasons else result.status}")
    _show("assistant", result.final_text)
    return result


async def _first_part(dsn: str) -> str:
    llm, label = build_demo_llm()
    print(f"model: {label}")
    print(f"store: {redact_secrets(dsn)}\n")
    try:
        async with StatefulAgentLoop(
            llm=llm, dsn=dsn, tool_registry=build_demo_tools(), config=CLI_LOOP_CONFIG
        ) as loop:
            loop.event_bus.subscribe("tool_call_completed", _show_tool_call)
            session_id = await loop.new_session(metadata={"demo": True})
            print(f"process 1 (pid {os.getpid()}): new session {session_id}")
            result = await _send(loop, "Hi, my name is Ada. What is 17 * 23?", session_id)
            print(f"  -> status={result.status} rounds={result.rounds} tool_calls={result.tool_calls}\n")
    finally:
        await llm.close()
    return session_id


async def _second_part(dsn: str, session_id: str) -> None:
    llm, _ = build_demo_llm()
    print(f"process 2 (pid {os.getpid()}): a brand-new loop on the same store resumes {session_id}")
    try:
        async with StatefulAgentLoop(
            llm=llm, dsn=dsn, tool_registry=build_demo_tools(), config=CLI_LOOP_CONFIG
        ) as loop:
            history = await loop.get_messages(session_id)
            print(f"  loaded {len(history)} stored messages")
            await _send(loop, "Do you remember my name and what we computed?", session_id)
            stats = await loop.get_session_stats(session_id)
            if stats is not None:
                print(
                    f"  -> session stats: sends={stats.sends} llm_calls={stats.llm_calls} tool_calls={stats.tool_calls}"
                )
    finally:
        await llm.close()


def run_demo(dsn: str, *, resume_session: str | None = None, debug: bool = False) -> int:
    import asyncio

    if resume_session is not None:
        asyncio.run(_second_part(dsn, resume_session))
        return 0
    session_id = asyncio.run(_first_part(dsn))
    # A separate OS process proves the conversation lives in the store, not in memory. The DSN (which
    # may hold a password) travels in the environment: a command line is visible to every local user.
    argv = [
        sys.executable,
        "-m",
        "power_loop",
        *(["--debug"] if debug else []),
        "demo",
        "--resume",
        session_id,
    ]
    completed = subprocess.run(argv, env={**os.environ, "POWER_LOOP_DSN": dsn}, check=False)
    return completed.returncode
