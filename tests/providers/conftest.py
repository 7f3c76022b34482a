"""Fixtures for the provider adapters: a wire server per test and services pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from wire_server import WireServer

from power_loop.llm import AnthropicChatConfig, OpenAICompatibleChatConfig

pytest.importorskip("openai")
pytest.importorskip("anthropic")

from provider_helpers import SleepRecorder

from power_loop.llm._anthropic import AnthropicMessagesLLMService
from power_loop.llm._openai import OpenAICompatibleChatLLMService

# Generous per-request timeout: a loaded machine must never turn a slow answer into a retry. The
# "server never answers" tests pass ``timeout_s=HANG_TIMEOUT_S`` (provider_helpers) themselves.
TIMEOUT_S = 30.0


@pytest.fixture
async def wire() -> AsyncIterator[WireServer]:
    async with WireServer() as server:
        yield server


@pytest.fixture
async def make_openai(wire: WireServer) -> AsyncIterator[Callable[..., OpenAICompatibleChatLLMService]]:
    made: list[OpenAICompatibleChatLLMService] = []

    def make(**overrides: Any) -> OpenAICompatibleChatLLMService:
        fields: dict[str, Any] = {
            "base_url": wire.url + "/v1",
            "api_key": "sk-wire-secret",
            "model": "wire-model",
            "timeout_s": TIMEOUT_S,
        }
        fields.update(overrides)
        service = OpenAICompatibleChatLLMService(OpenAICompatibleChatConfig(**fields))
        made.append(service)
        return service

    yield make
    for service in made:
        await service.close()


@pytest.fixture
async def make_anthropic(wire: WireServer) -> AsyncIterator[Callable[..., AnthropicMessagesLLMService]]:
    made: list[AnthropicMessagesLLMService] = []

    def make(**overrides: Any) -> AnthropicMessagesLLMService:
        fields: dict[str, Any] = {
            "base_url": wire.url,
            "api_key": "sk-ant-wire",
            "model": "wire-claude",
            "timeout_s": TIMEOUT_S,
        }
        fields.update(overrides)
        service = AnthropicMessagesLLMService(AnthropicChatConfig(**fields))
        made.append(service)
        return service

    yield make
    for service in made:
        await service.close()


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()
