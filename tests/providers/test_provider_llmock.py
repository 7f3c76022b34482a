"""An independent wire peer: the adapters and the loop against ``llmock`` (OpenAI + Anthropic mock
server with chaos modes), started on 127.0.0.1 by its pytest fixture.

Each chaos mode hits the first model call of a tool conversation; the loop must either recover
through its retry policy or stop with a clear status while the stored history stays valid. llmock
also grades the client (``assert_resilient``): ignored ``Retry-After``, retried 4xx, accepted
truncated streams and more count as failures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llmock")

from power_loop import AgentLoopConfig, StatefulAgentLoop, ToolRegistry
from power_loop.llm import AnthropicChatConfig, LLMRetryPolicy, OpenAICompatibleChatConfig
from power_loop.llm._anthropic import AnthropicMessagesLLMService
from power_loop.llm._openai import OpenAICompatibleChatLLMService

PROVIDERS = ["openai", "anthropic"]
# Generous: a loaded machine must not turn a slow answer into a retry. Only the "stall" chaos mode,
# where the server goes silent for longer, runs with the short timeout (its retries leave slack).
TIMEOUT_S = 30.0
STALL_TIMEOUT_S = 0.5


def make_service(llmock: Any, provider: str, timeout_s: float) -> Any:
    if provider == "openai":
        return OpenAICompatibleChatLLMService(
            OpenAICompatibleChatConfig(
                base_url=llmock.base_url("openai"), api_key="k", model="gpt-mock", timeout_s=timeout_s
            )
        )
    return AnthropicMessagesLLMService(
        AnthropicChatConfig(
            base_url=llmock.base_url("anthropic"), api_key="k", model="claude-mock", timeout_s=timeout_s
        )
    )


def tools(calls: list[dict[str, Any]]) -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        calls.append({"city": city})
        return f"21C in {city}"

    return registry


def roles_are_paired(history: list[dict[str, Any]]) -> bool:
    """Every assistant tool call has its result and every result its call (SPEC §2.4)."""
    called = {tc["id"] for m in history for tc in m.get("tool_calls") or ()}
    answered = {m["tool_call_id"] for m in history if m["role"] == "tool"}
    return called == answered


async def run(
    llmock: Any, provider: str, tmp_path: Path, *, policy: LLMRetryPolicy, timeout_s: float = TIMEOUT_S
) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []
    llm = make_service(llmock, provider, timeout_s)
    cfg = AgentLoopConfig(retry_policy=policy)
    try:
        async with StatefulAgentLoop(
            llm=llm, dsn=str(tmp_path / "x.db"), tool_registry=tools(calls), config=cfg
        ) as loop:
            sid = await loop.new_session(system_prompt="Help with the weather.")
            result = await loop.send("What's the weather in Paris?", sid)
            history = await loop.get_messages(sid)
    finally:
        await llm.close()
    return result, history, calls


def retrying() -> LLMRetryPolicy:
    return LLMRetryPolicy(max_attempts=4, backoff_initial=0.02, backoff_max=0.1, total_timeout=20.0)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_clean_tool_conversation(llmock: Any, provider: str, tmp_path: Path) -> None:
    result, history, calls = await run(llmock, provider, tmp_path, policy=retrying())
    assert result.status == "completed" and result.final_text
    assert len(calls) == 1 and isinstance(calls[0]["city"], str)
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant"]
    llmock.assert_resilient(strict=True)


FAULTS = {
    "rate_limit": lambda m, p: m.rate_limit(retry_after=0.05, provider=p),
    "server_error": lambda m, p: m.fail(500, provider=p),
    "overloaded": lambda m, p: m.fail(529 if p == "anthropic" else 503, retry_after=0.05, provider=p),
    "truncate": lambda m, p: m.truncate(after_chunks=2, provider=p),
    "disconnect": lambda m, p: m.disconnect(after_chunks=2, provider=p),
    "malformed": lambda m, p: m.corrupt(after_chunks=1, provider=p),
    "stall": lambda m, p: m.stall(after_chunks=1, seconds=1.5, provider=p),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_loop_survives_chaos_mode(llmock: Any, provider: str, fault: str, tmp_path: Path) -> None:
    FAULTS[fault](llmock, provider)
    timeout_s = STALL_TIMEOUT_S if fault == "stall" else TIMEOUT_S
    result, history, calls = await run(llmock, provider, tmp_path, policy=retrying(), timeout_s=timeout_s)
    assert result.status == "completed", result.final_text
    assert len(calls) == 1
    assert roles_are_paired(history)
    records = llmock.requests
    assert records[0].fault is not None  # the first attempt really got the fault
    assert len(records) >= 3  # the faulty attempt, its retry, the answer after the tool
    llmock.assert_resilient()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_permanent_client_error_is_not_retried_and_history_survives(
    llmock: Any, provider: str, tmp_path: Path
) -> None:
    llmock.fail(400, provider=provider, message="bad request")
    result, history, calls = await run(llmock, provider, tmp_path, policy=retrying())
    assert result.status == "degraded" and "400" in result.final_text
    assert calls == [] and history[0]["content"] == "What's the weather in Paris?"
    assert len(llmock.requests) == 1
    llmock.assert_resilient()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_outage_ends_degraded_within_the_deadline(llmock: Any, provider: str, tmp_path: Path) -> None:
    llmock.outage(provider=provider)
    policy = LLMRetryPolicy(max_attempts=5, backoff_initial=0.02, total_timeout=0.5)
    result, history, _calls = await run(llmock, provider, tmp_path, policy=policy)
    assert result.status == "degraded"
    assert history[0]["role"] == "user" and roles_are_paired(history)
