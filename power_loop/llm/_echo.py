"""The offline ``echo`` provider: answers with the last user message; never calls tools."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ._capabilities import DEFAULT_CAPABILITIES, ModelCapabilities
from ._service import LLMServiceBase
from ._types import LLMRequest, LLMStreamChunk, LLMTokenUsage, message_text

__all__ = ["EchoLLMService"]


class EchoLLMService(LLMServiceBase):
    """An offline model for demos and smoke tests.

    Replies ``prefix + reply`` when ``reply`` is given, else ``prefix + <last user message>``, after
    ``sleep_s`` seconds. Usage is always 1 prompt / 1 completion / 2 total tokens. For tests that need
    tool calls, use :class:`power_loop.testing.ScriptedLLM`. ``capabilities`` (default: everything)
    lets tests play a model that lacks something.
    """

    def __init__(
        self,
        reply: str | None = None,
        prefix: str = "",
        sleep_s: float = 0.0,
        *,
        capabilities: ModelCapabilities | None = None,
    ) -> None:
        self.reply = reply
        self.prefix = prefix
        self.sleep_s = sleep_s
        self.capabilities = capabilities or DEFAULT_CAPABILITIES

    def _answer(self, request: LLMRequest) -> str:
        if self.reply is not None:
            return self.prefix + self.reply
        for message in reversed(request.messages):
            if message.get("role") == "user":
                return self.prefix + message_text(message.get("content"))
        return self.prefix

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMStreamChunk]:
        if self.sleep_s > 0:
            await asyncio.sleep(self.sleep_s)
        text = self._answer(request)
        # Word-sized deltas so streaming consumers see more than one chunk.
        start = 0
        while start < len(text):
            end = text.find(" ", start)
            end = len(text) if end < 0 else end + 1
            yield LLMStreamChunk(delta_text=text[start:end])
            start = end
        yield LLMStreamChunk(
            token_usage=LLMTokenUsage(prompt_tokens=1, completion_tokens=1, total_tokens=2), is_final=True
        )

    def __repr__(self) -> str:
        return f"EchoLLMService(reply={self.reply!r}, prefix={self.prefix!r}, sleep_s={self.sleep_s!r})"
