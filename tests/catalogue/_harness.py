"""The bad-input catalogue's harness: every case names the `PowerLoopError` code it must produce, and
after every case the session it ran next to is checked (SPEC §2.4, issue 10).

A case is ``Case(area, name, action, code)``: ``action`` is ``async (env) -> str | None`` and may
raise; its *outcome code* is the ``.code`` of the ``PowerLoopError`` it raised, else what it returned
(e.g. the code of a tool outcome the model was told about, or ``None`` for "handled without error").
Any other exception fails the case: that is exactly the uncoded failure the catalogue hunts.

After the action, :func:`assert_session_valid` checks the environment's session: its active history
pairs every tool call with exactly one result, nothing is left pending, everything committed before
the case is still there, and a next send with a :class:`ScriptedLLM` completes.

Use::

    CASES = [Case("tools", "unknown tool", lambda env: env.model_says(ScriptedLLM.tool_call("nope")),
                  "tool.not_found")]

    @pytest.mark.parametrize("case", params(CASES))
    async def test_catalogue(case, env):          # `env`: SQLite file (tests/catalogue/conftest.py)
        await run_case(case, env)

``backend_env`` (same API) runs on the SQLite file, PostgreSQL and MySQL; use it only where the
backend matters.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from power_loop import (
    AgentLoopConfig,
    LLMRetryPolicy,
    PowerLoopError,
    StatefulAgentLoop,
    ToolDefinition,
    ToolRegistry,
)
from power_loop.store import SessionStore
from power_loop.testing import ScriptedLLM, ScriptedTurn
from power_loop.tools import (
    ToolRuntimeContext,
    execute_tool_call,
    register_session_tools,
    use_tool_runtime_context,
)

__all__ = ["Case", "Env", "assert_session_valid", "check_history", "open_env", "params", "run_case"]

Action = Callable[["Env"], Awaitable[str | None]]


@dataclass(frozen=True)
class Case:
    """One catalogue entry: ``action(env)`` must end with ``code`` (see the module docstring)."""

    area: str
    name: str
    action: Action
    code: str | None


def params(cases: Iterable[Case]) -> list[Any]:
    """``pytest.param`` s for ``@pytest.mark.parametrize("case", ...)``, with readable ids."""
    out = [pytest.param(c, id=f"{c.area}:{c.name}") for c in cases]
    ids = [p.id for p in out]
    assert len(ids) == len(set(ids)), "catalogue case names must be unique within a file"
    return out


def _object(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


@dataclass
class Env:
    """One loop on one database with one session that already holds a tool round.

    Tools: ``echo(x: str)`` returns ``x``; ``add(a: int, b: int)``; ``ret()`` returns
    ``env.result`` (set it to any value); ``boom()`` raises ``env.raises``; ``noargs()`` returns "ok";
    and the wake-up tools ``schedule_wakeup``, ``cancel_wakeup``, ``list_wakeups``.
    """

    dsn: str
    prefix: str
    tmp_path: Path
    llm: ScriptedLLM
    registry: ToolRegistry
    loop: StatefulAgentLoop
    sid: str = ""
    result: Any = None
    raises: BaseException = field(default_factory=lambda: RuntimeError("boom"))

    async def store(self) -> SessionStore:
        """The loop's store (the same database and prefix)."""
        return await self.loop.ensure_store()

    async def model_says(self, *turns: ScriptedTurn | str) -> str | None:
        """The model answers ``turns`` (then "done" if the last one calls tools); the send must complete. Returns the first error
        code among the tool outcomes the model was told about (``None``: every call succeeded)."""
        last = turns[-1] if turns else ""
        closing = [ScriptedLLM.text("done")] if isinstance(last, ScriptedTurn) and last.calls else []
        self.llm.push(*turns, *closing)
        result = await self.loop.send("go", self.sid)
        assert result.status == "completed", (result.status, result.final_text)
        for turn in turns:
            for call in turn.calls if isinstance(turn, ScriptedTurn) else ():
                wire = {
                    "id": "x",
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                runtime = ToolRuntimeContext(self.sid, store=await self.store(), loop=self.loop)
                with use_tool_runtime_context(runtime):  # as the loop runs it
                    outcome = await execute_tool_call(self.registry, wire)
                if outcome.code is not None:
                    return outcome.code
        return None


def _registry(env_box: list[Env]) -> ToolRegistry:
    registry = ToolRegistry()

    def tool(name: str, schema: dict[str, Any], handler: Callable[..., Any]) -> None:
        registry.register(
            ToolDefinition(name=name, description=f"catalogue tool {name}", input_schema=schema), handler
        )

    def boom() -> Any:
        raise env_box[0].raises

    tool("echo", _object({"x": {"type": "string"}}, ["x"]), lambda x: x)
    tool("add", _object({"a": {"type": "integer"}, "b": {"type": "integer"}}, ["a", "b"]), lambda a, b: a + b)
    tool("ret", _object({}, []), lambda: env_box[0].result)
    tool("boom", _object({}, []), boom)
    tool("noargs", _object({}, []), lambda: "ok")
    register_session_tools(registry, include=["schedule_wakeup", "cancel_wakeup", "list_wakeups"])
    return registry


async def open_env(dsn: str, prefix: str, tmp_path: Path) -> Env:
    """A loop on ``dsn``/``prefix`` and a session holding one committed tool round."""
    box: list[Env] = []
    registry = _registry(box)
    llm = ScriptedLLM()
    policy = LLMRetryPolicy(max_attempts=1, backoff_initial=0.0, backoff_max=0.0, total_timeout=None)
    loop = StatefulAgentLoop(
        llm=llm,
        dsn=dsn,
        table_prefix=prefix,
        tool_registry=registry,
        config=AgentLoopConfig(retry_policy=policy),
    )
    env = Env(dsn, prefix, tmp_path, llm, registry, loop)
    box.append(env)
    env.sid = await loop.new_session(system_prompt="catalogue")
    llm.push(ScriptedLLM.tool_call("echo", {"x": "seed"}), ScriptedLLM.text("seeded"))
    result = await loop.send("seed the session", env.sid)
    assert result.status == "completed"
    return env


def check_history(messages: list[dict[str, Any]]) -> None:
    """Every assistant tool call has exactly one result, every result its call, in order."""
    open_calls: set[str] = set()
    for msg in messages:
        role = msg["role"]
        if role == "tool":
            call_id = msg["tool_call_id"]
            assert call_id in open_calls, f"tool result without an open call: {call_id!r}"
            open_calls.discard(call_id)
            continue
        assert not open_calls, f"{role} message while calls are open: {open_calls}"
        if role == "assistant":
            open_calls = {c["id"] for c in msg.get("tool_calls") or []}
    assert not open_calls, f"unanswered tool calls at the end: {open_calls}"


def _shape(messages: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(m, sort_keys=True, default=str) for m in messages]


async def assert_session_valid(env: Env, before: list[dict[str, Any]]) -> None:
    """History valid, nothing pending, nothing committed lost, and a next send completes."""
    messages = await env.loop.get_messages(env.sid)
    check_history(messages)
    assert await env.loop.get_pending(env.sid) is None, "the session was left pending"
    assert _shape(messages[: len(before)]) == _shape(before), "committed messages changed or were lost"
    env.llm.push(ScriptedLLM.text("still here"))
    result = await env.loop.send("are you there?", env.sid)
    assert (result.status, result.final_text) == ("completed", "still here")
    after = await env.loop.get_messages(env.sid)
    check_history(after)
    assert after[-2:] == [
        {"role": "user", "content": "are you there?"},
        {"role": "assistant", "content": "still here"},
    ]


async def run_case(case: Case, env: Env) -> None:
    """Run ``case`` next to ``env``'s session and check the outcome code, then the session."""
    before = await env.loop.get_messages(env.sid)
    try:
        got = await case.action(env)
    except PowerLoopError as exc:
        got = exc.code
    assert got == case.code, f"{case.area}:{case.name}: expected {case.code!r}, got {got!r}"
    await assert_session_valid(env, before)
