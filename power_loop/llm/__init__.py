"""The LLM layer: the model contract, provider configuration/factory, the offline echo model, retry
and cancellation. Standard library only; the provider adapters (``_openai``, ``_anthropic``) and
their SDKs load when the factory builds a provider."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_dir, lazy_getattr

if TYPE_CHECKING:
    from ._attachments import attachment, validate_parts
    from ._cancel import (
        CancellationLike,
        CancellationToken,
    )
    from ._capabilities import (
        DEFAULT_CAPABILITIES,
        ModelCapabilities,
        capabilities_of,
        check_capabilities,
        probe_capabilities,
    )
    from ._config import (
        AnthropicChatConfig,
        LLMProviderConfig,
        OpenAICompatibleChatConfig,
        create_llm_service_from_config,
        create_llm_service_from_env,
    )
    from ._echo import (
        EchoLLMService,
    )
    from ._messages import AgentMessage, MessageRole, ToolCall
    from ._retry import (
        LLMRetryPolicy,
        is_permanent_llm_error,
        retry_after_s,
        with_retry,
    )
    from ._service import (
        LLMServiceBase,
    )
    from ._stream import (
        ToolCallAccumulator,
        complete_from_stream,
    )
    from ._types import (
        LLMRequest,
        LLMResponse,
        LLMService,
        LLMStreamChunk,
        LLMTokenUsage,
        field_of,
        message_text,
        normalize_tool_call,
        normalize_usage,
        parse_tool_arguments,
    )

__all__ = [
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
    "field_of",
    "message_text",
    "normalize_tool_call",
    "normalize_usage",
    "is_permanent_llm_error",
    "parse_tool_arguments",
    "retry_after_s",
    "with_retry",
    "AgentMessage",
    "MessageRole",
    "ToolCall",
    "DEFAULT_CAPABILITIES",
    "attachment",
    "validate_parts",
    "ModelCapabilities",
    "capabilities_of",
    "check_capabilities",
    "probe_capabilities",
]

# Every name loads with its module on first use: the round engine needs neither the configuration,
# the factory nor the echo model, and importing a loop needs none of the request types yet.
_MODULES: dict[str, tuple[str, ...]] = {
    "._cancel": (
        "CancellationLike",
        "CancellationToken",
    ),
    "._config": (
        "AnthropicChatConfig",
        "LLMProviderConfig",
        "OpenAICompatibleChatConfig",
        "create_llm_service_from_config",
        "create_llm_service_from_env",
    ),
    "._echo": ("EchoLLMService",),
    "._retry": (
        "LLMRetryPolicy",
        "is_permanent_llm_error",
        "retry_after_s",
        "with_retry",
    ),
    "._service": ("LLMServiceBase",),
    "._stream": (
        "ToolCallAccumulator",
        "complete_from_stream",
    ),
    "._types": (
        "LLMRequest",
        "LLMResponse",
        "LLMService",
        "LLMStreamChunk",
        "LLMTokenUsage",
        "field_of",
        "message_text",
        "normalize_tool_call",
        "normalize_usage",
        "parse_tool_arguments",
    ),
    "._messages": (
        "AgentMessage",
        "MessageRole",
        "ToolCall",
    ),
    "._capabilities": (
        "DEFAULT_CAPABILITIES",
        "ModelCapabilities",
        "capabilities_of",
        "check_capabilities",
        "probe_capabilities",
    ),
    "._attachments": (
        "attachment",
        "validate_parts",
    ),
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}
__getattr__ = lazy_getattr(__name__, _LAZY, globals())
__dir__ = lazy_dir(_LAZY, globals())
