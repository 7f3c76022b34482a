from __future__ import annotations

import subprocess
import sys

import power_loop.llm as llm
import power_loop.testing as testing


def test_public_surface_is_pinned() -> None:
    assert sorted(llm.__all__) == sorted(
        [
            "AnthropicChatConfig",
            "CancellationLike",
            "CancellationToken",
            "EchoLLMService",
            "LLMProviderConfig",
            "LLMRequest",
            "LLMResponse",
            "LLMRetryPolicy",
            "LLMService",
            "LLMServiceBase",
            "LLMStreamChunk",
            "LLMTokenUsage",
            "OpenAICompatibleChatConfig",
            "ToolCallAccumulator",
            "complete_from_stream",
            "create_llm_service_from_config",
            "create_llm_service_from_env",
            "normalize_tool_call",
            "normalize_usage",
            "is_permanent_llm_error",
            "parse_tool_arguments",
            "retry_after_s",
            "with_retry",
        ]
    )
    assert sorted(testing.__all__) == sorted(
        ["ScriptExhaustedError", "ScriptedCall", "ScriptedLLM", "ScriptedTurn", "Turn", "VirtualClock"]
    )
    for module in (llm, testing):
        for name in module.__all__:
            assert getattr(module, name) is not None


def test_import_needs_only_the_standard_library() -> None:
    code = (
        "import sys\n"
        "for blocked in ('openai', 'anthropic', 'httpx', 'pydantic'):\n"
        "    sys.modules[blocked] = None\n"
        "import power_loop.llm, power_loop.testing\n"
        "loaded = [m for m in ('openai', 'anthropic', 'email', 'http') if sys.modules.get(m) is not None]\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
