"""ModelCapabilities: defaults, declaration on configs, reading from services, probing."""

from __future__ import annotations

import pytest

from power_loop import (
    AnthropicChatConfig,
    ConfigError,
    LLMProviderConfig,
    ModelCapabilities,
    ModelCapabilityError,
    OpenAICompatibleChatConfig,
    create_llm_service_from_config,
    probe_capabilities,
)
from power_loop.llm import DEFAULT_CAPABILITIES, EchoLLMService, capabilities_of, check_capabilities
from power_loop.testing import ScriptedLLM

IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
PDF = {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERg=="}}


def test_defaults_are_permissive_and_validated():
    caps = ModelCapabilities()
    assert caps.tools and caps.vision and caps.structured_output and caps.max_context is None
    assert caps.with_(vision=False).vision is False and caps.vision
    assert ModelCapabilities(max_context=128_000).as_dict()["max_context"] == 128_000
    with pytest.raises(ConfigError):
        ModelCapabilities(max_context=0)


def test_provider_configs_declare_and_default():
    oa = OpenAICompatibleChatConfig(base_url="http://x", api_key="k", model="m", stream_usage=False)
    assert oa.capabilities is None and oa.default_capabilities().documents is False
    assert oa.default_capabilities().streaming_usage is False
    an = AnthropicChatConfig(base_url="http://x", api_key="k", model="m", prompt_caching=False)
    assert an.default_capabilities().prompt_caching is False and an.default_capabilities().documents
    declared = ModelCapabilities(vision=False)
    cfg = LLMProviderConfig(base_url="http://x", api_key="k", model="m", capabilities=declared)
    assert cfg.to_openai_compatible().capabilities is declared and cfg.to_anthropic().capabilities is declared
    with pytest.raises(ConfigError):
        OpenAICompatibleChatConfig(base_url="x", api_key="k", model="m", capabilities={"vision": False})  # type: ignore[arg-type]


def test_services_expose_capabilities_and_duck_typed_ones_get_the_default():
    declared = ModelCapabilities(tools=False)
    echo = create_llm_service_from_config(
        LLMProviderConfig("", "", "", provider="echo", capabilities=declared)
    )
    assert capabilities_of(echo) is declared
    assert capabilities_of(EchoLLMService()) is DEFAULT_CAPABILITIES
    assert capabilities_of(object()) is DEFAULT_CAPABILITIES
    assert capabilities_of(ScriptedLLM(capabilities=declared)).tools is False


def test_openai_service_reports_learned_tool_streaming():
    pytest.importorskip("openai")
    from power_loop.llm._openai import OpenAICompatibleChatLLMService

    cfg = OpenAICompatibleChatConfig(base_url="http://127.0.0.1:9", api_key="k", model="m")
    service = OpenAICompatibleChatLLMService(cfg)
    assert service.capabilities.tool_streaming and service.capabilities.documents is False
    service.quirks.no_tool_streaming.add("m")
    assert service.capabilities.tool_streaming is False
    # Declared up front, the adapter never streams tool requests to that model.
    declared = OpenAICompatibleChatConfig(
        base_url="http://127.0.0.1:9",
        api_key="k",
        model="m",
        capabilities=ModelCapabilities(tool_streaming=False, streaming_usage=False, parallel_tools=False),
    )
    service = OpenAICompatibleChatLLMService(declared)
    assert "m" in service.quirks.no_tool_streaming and service.quirks.no_stream_options
    from power_loop import LLMRequest

    args = service.build_arguments(LLMRequest(messages=[], tools=[{"type": "function"}]), stream=True)
    assert args["parallel_tool_calls"] is False and "stream_options" not in args


def test_check_capabilities_names_what_is_missing():
    messages = [{"role": "user", "content": [{"type": "text", "text": "look"}, IMAGE]}]
    check_capabilities(DEFAULT_CAPABILITIES, messages)
    with pytest.raises(ModelCapabilityError) as info:
        check_capabilities(ModelCapabilities(vision=False), messages, model="m")
    assert info.value.code == "llm.capability" and info.value.capability == "vision"
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(ModelCapabilityError, match="documents"):
        check_capabilities(ModelCapabilities(documents=False), [{"role": "user", "content": [PDF]}])


class _Refusing(ScriptedLLM):
    """Refuses images with a 400, like a text-only server."""

    async def complete(self, request, **kwargs):  # type: ignore[no-untyped-def, override]
        if any(isinstance(m.get("content"), list) for m in request.messages):
            err = RuntimeError("image input is not supported")
            err.status_code = 400  # type: ignore[attr-defined]
            raise err
        if request.response_format:
            raise ConnectionError("network down")  # not a verdict: stays as declared
        return await super().complete(request, **kwargs)


async def test_probe_turns_off_what_the_server_refuses():
    llm = _Refusing(default="ok", capabilities=ModelCapabilities(structured_output=False))
    caps = await probe_capabilities(llm)
    assert caps.tools is True and caps.vision is False and caps.structured_output is False
    with pytest.raises(ConfigError):
        await probe_capabilities(llm, checks=("telepathy",))
