"""The LLM layer: the model contract, provider configuration/factory, the offline echo model, retry
and cancellation. Standard library only; the provider adapters (``_openai``, ``_anthropic``) and
their SDKs load when the factory builds a provider."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr
from ._attachments import attachment, validate_parts
from ._cancel import CancellationLike, CancellationToken
from ._capabilities import (
    DEFAULT_CAPABILITIES,
    ModelCapabilities,
    capabilities_of,
    check_capabilities,
    probe_capabilities,
)
from ._retry import LLMRetryPolicy, is_permanent_llm_error, retry_after_s, with_retry
from ._service import LLMServiceBase
from ._stream import ToolCallAccumulator, complete_from_stream
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

if TYPE_CHECKING:
    from ._config import (
        AnthropicChatConfig,
        LLMProviderConfig,
        OpenAICompatibleChatConfig,
        create_llm_service_from_config,
        create_llm_service_from_env,
    )
    from ._echo import EchoLLMService
    from ._messages import AgentMessage, MessageRole, ToolCall

__all__ = [
    "DEFAULT_CAPABILITIES",
    "attachment",
    "validate_parts",
    "ModelCapabilities",
    "capabilities_of",
    "check_capabilities",
    "probe_capabilities",
    "AgentMessage",
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
    "MessageRole",
    "OpenAICompatibleChatConfig",
    "ToolCall",
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
]

# Configuration, the factory and the echo model load on first use: the round engine needs none of them.
_LAZY = {
    "AnthropicChatConfig": "._config",
    "LLMProviderConfig": "._config",
    "OpenAICompatibleChatConfig": "._config",
    "create_llm_service_from_config": "._config",
    "create_llm_service_from_env": "._config",
    "EchoLLMService": "._echo",
    "AgentMessage": "._messages",
    "MessageRole": "._messages",
    "ToolCall": "._messages",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
