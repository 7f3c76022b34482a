"""``LLMServiceBase``: an optional base class for models that implement only ``stream``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ._stream import complete_from_stream
from ._types import LLMRequest

if TYPE_CHECKING:
    from ._types import ChunkCallback, LLMResponse, LLMStreamChunk, StreamEndCallback

__all__ = ["LLMServiceBase"]


class LLMServiceBase:
    """Optional base class adding the convenience calls ``predict``/``chat``/``predict_stream``.

    Subclasses implement ``stream`` (and ``close`` when they hold resources); the default
    ``complete`` aggregates ``stream``, so they override it only to add provider details.
    """

    async def complete(
        self,
        request: LLMRequest,
        *,
        on_chunk_delta_text: ChunkCallback | None = None,
        on_chunk_think: ChunkCallback | None = None,
        on_stream_end: StreamEndCallback | None = None,
    ) -> LLMResponse:
        """The streamed answer, aggregated; callbacks (sync or async) see every delta."""
        return await complete_from_stream(
            self.stream(request),
            on_chunk_delta_text=on_chunk_delta_text,
            on_chunk_think=on_chunk_think,
            on_stream_end=on_stream_end,
            parse_json=request.parse_json,
        )

    def stream(self, request: LLMRequest) -> AsyncIterator[LLMStreamChunk]:
        raise NotImplementedError

    async def close(self) -> None:
        return None

    async def predict(self, prompt: str, system_prompt: str | None = None, **kwargs: Any) -> str:
        """One prompt in, the stripped answer text out."""
        request = LLMRequest.from_prompt(prompt=prompt, system_prompt=system_prompt, **kwargs)
        return (await self.complete(request)).text

    async def chat(
        self, messages: list[dict[str, Any]], system_prompt: str | None = None, **kwargs: Any
    ) -> str:
        """A message list in, the stripped answer text out."""
        request = LLMRequest(messages=list(messages), system_prompt=system_prompt, extra=dict(kwargs))
        return (await self.complete(request)).text

    async def predict_stream(
        self, prompt: str, system_prompt: str | None = None, **kwargs: Any
    ) -> AsyncIterator[str]:
        """Yield the answer's text deltas as they arrive."""
        request = LLMRequest.from_prompt(prompt=prompt, system_prompt=system_prompt, **kwargs)
        async for chunk in self.stream(request):
            if chunk.delta_text:
                yield chunk.delta_text
