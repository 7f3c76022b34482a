"""Shared scenario for the observability sink tests: a real loop, a tool round, a failing tool, secrets."""

from __future__ import annotations

from pathlib import Path

from power_loop import (
    AgentEventBus,
    AgentLoopConfig,
    LLMRetryPolicy,
    StatefulAgentLoop,
    StatefulResult,
    ToolRegistry,
)
from power_loop.testing import ScriptedLLM

API_KEY = "sk-live-A1B2C3D4E5F6"
PASSWORD = "hunter2-Pw9"
BEARER = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0dG9rZW4"
DSN_PASSWORD = "dsnPa55wordX"
SECRETS = (API_KEY, PASSWORD, BEARER, DSN_PASSWORD)
DSN = f"postgresql://admin:{DSN_PASSWORD}@db.internal:5432/app"


def make_tools() -> ToolRegistry:
    tools = ToolRegistry()

    @tools.tool
    def lookup(api_key: str, dsn: str, query: str) -> str:
        """Look something up (its output leaks secrets on purpose)."""
        return f"connected to {dsn}; password={PASSWORD}; sent Authorization: Bearer {BEARER}; {query}=42"

    @tools.tool
    def boom(x: int) -> str:
        """Always fails, naming a DSN and a token in its error."""
        raise RuntimeError(f"cannot reach {DSN} with Bearer {BEARER} (x={x})")

    return tools


def script() -> list[object]:
    return [
        ScriptedLLM.tool_calls(
            [("lookup", {"api_key": API_KEY, "dsn": DSN, "query": "answer"}), ("boom", {"x": 1})]
        ),
        ScriptedLLM.text("All done."),
    ]


async def run_scenario(bus: AgentEventBus, db: Path, *, llm: ScriptedLLM | None = None) -> StatefulResult:
    """One send: round 0 calls ``lookup`` (succeeds) and ``boom`` (fails), round 1 answers."""
    llm = llm or ScriptedLLM(script())  # type: ignore[arg-type]
    config = AgentLoopConfig(retry_policy=LLMRetryPolicy(max_attempts=2, backoff_initial=0.0, jitter=0.0))
    async with StatefulAgentLoop(
        llm=llm, dsn=str(db), tool_registry=make_tools(), event_bus=bus, config=config
    ) as loop:
        sid = await loop.new_session()
        return await loop.send("Look it up, then break something.", sid)


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"secret {secret!r} leaked"
