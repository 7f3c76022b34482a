"""The OpenAI-compatible chat-completions transport over the official ``openai`` SDK.

Works with any server speaking ``POST {base_url}/chat/completions`` (OpenAI, vLLM, DeepSeek,
llama.cpp, ...). ``complete()`` streams by default and aggregates the chunks, so the text/think
callbacks see every delta and tool-call argument deltas reach ``LLMStreamChunk.delta_tool_calls``.

The SDK's own retries are switched off (``max_retries=0``): the loop's ``LLMRetryPolicy`` is the one
place retries happen, and it reads the status code and ``Retry-After`` off the SDK's errors.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..errors import LLMStreamIncomplete, MissingDependencyError
from ._config import OpenAICompatibleChatConfig
from ._types import LLMRequest, LLMStreamChunk, LLMTokenUsage
from ._wire import (
    CallState,
    SDKChatService,
    apply_options,
    as_dict,
    final_chunk,
    guarded_events,
    sdk_parameters,
)

__all__ = ["OpenAICompatibleChatLLMService", "openai_usage"]

PROVIDER = "openai"
_REASONING_KEYS = ("reasoning_content", "reasoning")


def _import_openai() -> Any:
    try:
        return importlib.import_module("openai")
    except ImportError:
        raise MissingDependencyError("openai", "openai", "the OpenAI-compatible provider") from None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def openai_usage(raw: Mapping[str, Any]) -> LLMTokenUsage:
    """Chat-completions ``usage`` (OpenAI, plus DeepSeek's ``prompt_cache_hit/miss_tokens``)."""
    prompt = as_dict(raw.get("prompt_tokens_details"))
    completion = as_dict(raw.get("completion_tokens_details"))
    cached = _int(prompt.get("cached_tokens"))
    hit = _int(raw.get("prompt_cache_hit_tokens"))
    miss = _int(raw.get("prompt_cache_miss_tokens"))
    reasoning = _int(completion.get("reasoning_tokens"))
    return LLMTokenUsage(
        prompt_tokens=_int(raw.get("prompt_tokens")),
        completion_tokens=_int(raw.get("completion_tokens")),
        total_tokens=_int(raw.get("total_tokens")),
        prompt_audio_tokens=_int(prompt.get("audio_tokens")),
        prompt_cached_tokens=cached if cached is not None else hit,
        prompt_cache_miss_tokens=miss,
        completion_reasoning_tokens=reasoning,
        completion_audio_tokens=_int(completion.get("audio_tokens")),
        accepted_prediction_tokens=_int(completion.get("accepted_prediction_tokens")),
        rejected_prediction_tokens=_int(completion.get("rejected_prediction_tokens")),
        cached_tokens=cached if cached is not None else hit,
        cache_hit_tokens=hit,
        cache_miss_tokens=miss,
        reasoning_tokens=reasoning,
    )


def _reasoning_text(delta: Mapping[str, Any]) -> str:
    for key in _REASONING_KEYS:
        value = delta.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _tool_call_deltas(raw: Any) -> list[dict[str, Any]]:
    """SDK ``ChoiceDeltaToolCall`` objects as OpenAI-shape delta dicts (absent fields omitted)."""
    deltas: list[dict[str, Any]] = []
    for item in raw or ():
        tc = as_dict(item)
        delta: dict[str, Any] = {}
        if isinstance(tc.get("index"), int):
            delta["index"] = tc["index"]
        if tc.get("id"):
            delta["id"] = tc["id"]
            delta["type"] = "function"
        fn = as_dict(tc.get("function"))
        function = {k: fn[k] for k in ("name", "arguments") if fn.get(k)}
        delta["function"] = function
        deltas.append(delta)
    return deltas


class OpenAICompatibleChatLLMService(SDKChatService[OpenAICompatibleChatConfig]):
    """``LLMService`` over ``openai.AsyncOpenAI`` chat completions.

    ``cfg.stream`` (default true) selects streaming; ``cfg.request_extra`` is merged into every
    request. A request's ``extra`` entries that the SDK's ``create()`` accepts are passed as keyword
    arguments (``top_p``, ``seed``, ``timeout``, ...), the rest go in ``extra_body``. ``client`` lets
    you pass a pre-built ``AsyncOpenAI`` (its own retry setting is then yours to choose).
    """

    def __init__(self, cfg: OpenAICompatibleChatConfig, *, client: Any = None) -> None:
        openai = _import_openai()
        self.cfg = cfg
        self._openai = openai
        self._client = (
            client
            if client is not None
            else openai.AsyncOpenAI(
                api_key=cfg.api_key, base_url=cfg.base_url, timeout=cfg.timeout_s, max_retries=0
            )
        )
        self._known = sdk_parameters(self._client.chat.completions.create)

    def __repr__(self) -> str:
        return f"OpenAICompatibleChatLLMService(base_url={self.cfg.base_url!r}, model={self.cfg.model!r})"

    # ----------------------------------------------------------------------------- request

    def build_arguments(self, request: LLMRequest, *, stream: bool) -> dict[str, Any]:
        """The keyword arguments for ``chat.completions.create`` (exposed for inspection/tests)."""
        cfg = self.cfg
        args: dict[str, Any] = {
            "model": request.model or cfg.model,
            "messages": request.to_messages(),
            "max_tokens": request.max_tokens or cfg.max_tokens,
            "temperature": cfg.temperature if request.temperature is None else request.temperature,
            "timeout": cfg.timeout_s,
        }
        if request.tools:
            args["tools"] = list(request.tools)
            if request.tool_choice is not None:
                args["tool_choice"] = request.tool_choice
        if request.response_format:
            args["response_format"] = dict(request.response_format)
        if stream:
            args["stream"] = True
            if cfg.stream_usage:
                args["stream_options"] = {"include_usage": True}
        options: dict[str, Any] = dict(cfg.request_extra)
        options.update(request.extra)
        if request.reason is not None:
            options.setdefault("reason", request.reason)
        apply_options(args, options, self._known)
        return args

    # ------------------------------------------------------------------------------ stream

    async def _chunks(self, request: LLMRequest, state: CallState) -> AsyncIterator[LLMStreamChunk]:
        if not self.cfg.stream:
            async for single in self._single(request, state):
                yield single
            return
        sdk_stream = await self._client.chat.completions.create(**self.build_arguments(request, stream=True))
        usage: LLMTokenUsage | None = None
        try:
            async for event in guarded_events(PROVIDER, sdk_stream.__aiter__(), state, self._passthrough):
                data = as_dict(event)
                state.model = data.get("model") or state.model
                if data.get("usage"):
                    state.raw_usage = as_dict(data["usage"])
                    usage = openai_usage(state.raw_usage)
                for choice in data.get("choices") or ():
                    chunk = self._choice_chunk(as_dict(choice), state, event)
                    if chunk is not None:
                        yield chunk
        finally:
            await sdk_stream.close()
        if state.finish_reason is None:
            raise LLMStreamIncomplete(
                provider=PROVIDER,
                reason="no_terminator",
                chunks=state.events,
                detail="the stream ended without a finish_reason",
            )
        yield final_chunk(usage)

    @staticmethod
    def _choice_chunk(choice: dict[str, Any], state: CallState, event: Any) -> LLMStreamChunk | None:
        if choice.get("index", 0) != 0:
            return None
        delta = as_dict(choice.get("delta"))
        if choice.get("finish_reason"):
            state.finish_reason = str(choice["finish_reason"])
        text = delta.get("content") if isinstance(delta.get("content"), str) else ""
        think = _reasoning_text(delta)
        calls = _tool_call_deltas(delta.get("tool_calls"))
        if not (text or think or calls):
            return None
        return LLMStreamChunk(
            delta_text=text or "", think=think, delta_tool_calls=calls or None, raw_event=event
        )

    async def _single(self, request: LLMRequest, state: CallState) -> AsyncIterator[LLMStreamChunk]:
        completion = await self._client.chat.completions.create(**self.build_arguments(request, stream=False))
        state.raw_completion = completion
        data = as_dict(completion)
        state.model = data.get("model")
        choices = data.get("choices") or []
        if not choices:
            raise LLMStreamIncomplete(
                provider=PROVIDER, reason="no_terminator", chunks=0, detail="no choices"
            )
        choice = as_dict(choices[0])
        state.finish_reason = choice.get("finish_reason") or "stop"
        message = as_dict(choice.get("message"))
        state.raw_usage = as_dict(data.get("usage"))
        yield LLMStreamChunk(
            delta_text=message.get("content") or "",
            think=_reasoning_text(message),
            raw_event=completion,
        )
        yield LLMStreamChunk(
            tool_calls=list(message.get("tool_calls") or []),
            token_usage=openai_usage(state.raw_usage) if state.raw_usage else None,
            is_final=True,
        )

    def _passthrough(self, exc: BaseException) -> bool:
        # API errors reported by the server keep their SDK type (and status code); a dropped or
        # timed-out connection mid-stream becomes LLMStreamIncomplete.
        return isinstance(exc, self._openai.APIError) and not isinstance(exc, self._openai.APIConnectionError)
