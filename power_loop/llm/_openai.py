"""The OpenAI-compatible chat-completions transport over the official ``openai`` SDK.

Works with any server speaking ``POST {base_url}/chat/completions`` (OpenAI, vLLM, DeepSeek,
llama.cpp, ...). ``complete()`` streams by default and aggregates the chunks, so the text/think
callbacks see every delta and tool-call argument deltas reach ``LLMStreamChunk.delta_tool_calls``.

The SDK's own retries are switched off (``max_retries=0``): the loop's ``LLMRetryPolicy`` is the one
place retries happen, and it reads the status code and ``Retry-After`` off the SDK's errors.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..base import redact_secrets
from ..errors import LLMStreamIncomplete, MissingDependencyError
from ._capabilities import ModelCapabilities
from ._config import OpenAICompatibleChatConfig
from ._openai_compat import (
    ServerQuirks,
    ToolCallIds,
    history_call_ids,
    openai_parts,
    rejects_stream_options,
    wire_messages,
)
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
logger = logging.getLogger("power_loop.llm.openai")
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


def _tool_stream_failed(state: CallState) -> bool:
    """A streamed answer to a request with tools that shows the server cannot stream tool calls: it
    ended without a terminator, or said ``tool_calls`` without sending any."""
    return state.finish_reason in (None, "tool_calls")


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
        self.quirks = ServerQuirks()
        declared = cfg.capabilities
        if declared is not None and not declared.tool_streaming:
            self.quirks.no_tool_streaming.add(cfg.model)
        if declared is not None and not declared.streaming_usage:
            self.quirks.no_stream_options = True
        self._notices: list[str] = []

    @property
    def capabilities(self) -> ModelCapabilities:
        """What the configured model takes: the declared (or default) capabilities plus what this
        service learned about its server (``tool_streaming``, ``streaming_usage``)."""
        caps = self.cfg.capabilities or self.cfg.default_capabilities()
        if self.cfg.model in self.quirks.no_tool_streaming:
            caps = caps.with_(tool_streaming=False)
        if self.quirks.no_stream_options:
            caps = caps.with_(streaming_usage=False)
        return caps

    def __repr__(self) -> str:
        return f"OpenAICompatibleChatLLMService(base_url={self.cfg.base_url!r}, model={self.cfg.model!r})"

    # ----------------------------------------------------------------------------- request

    def build_arguments(self, request: LLMRequest, *, stream: bool) -> dict[str, Any]:
        """The keyword arguments for ``chat.completions.create`` (exposed for inspection/tests)."""
        cfg = self.cfg
        args: dict[str, Any] = {
            "model": request.model or cfg.model,
            "messages": wire_messages(openai_parts(request.to_messages())),
            "max_tokens": request.max_tokens or cfg.max_tokens,
            "temperature": cfg.temperature if request.temperature is None else request.temperature,
            "timeout": cfg.timeout_s,
        }
        if request.tools:
            args["tools"] = list(request.tools)
            # Explicit "auto": some compatible servers only consider tools when tool_choice is sent.
            args["tool_choice"] = request.tool_choice if request.tool_choice is not None else "auto"
            if self.cfg.capabilities is not None and not self.cfg.capabilities.parallel_tools:
                args["parallel_tool_calls"] = False
        if request.response_format:
            args["response_format"] = dict(request.response_format)
        if stream:
            args["stream"] = True
            if cfg.stream_usage and not self.quirks.no_stream_options:
                args["stream_options"] = {"include_usage": True}
        options: dict[str, Any] = dict(cfg.request_extra)
        options.update(request.extra)
        if request.reason is not None:
            options.setdefault("reason", request.reason)
        apply_options(args, options, self._known)
        return args

    # ------------------------------------------------------------------------------ stream

    async def _chunks(self, request: LLMRequest, state: CallState) -> AsyncIterator[LLMStreamChunk]:
        ids = ToolCallIds(history_call_ids(request.messages))
        model = request.model or self.cfg.model
        if not self.cfg.stream or (request.tools and model in self.quirks.no_tool_streaming):
            async for single in self._single(request, state, ids):
                yield single
            return
        sdk_stream = await self._open_stream(request)
        usage: LLMTokenUsage | None = None
        delivered = False
        try:
            async for event in guarded_events(PROVIDER, sdk_stream.__aiter__(), state, self._passthrough):
                data = as_dict(event)
                state.model = data.get("model") or state.model
                if data.get("usage"):
                    state.raw_usage = as_dict(data["usage"])
                    usage = openai_usage(state.raw_usage)
                for choice in data.get("choices") or ():
                    chunk = self._choice_chunk(as_dict(choice), state, event, ids)
                    if chunk is not None:
                        delivered = True
                        yield chunk
        finally:
            await sdk_stream.close()
        if request.tools and not delivered and _tool_stream_failed(state):
            # Nothing reached the caller yet, so the request can be repeated without streaming.
            self._stop_streaming_tools(model)
            async for single in self._single(request, state, ids, after_broken_stream=True):
                yield single
            return
        if state.finish_reason is None:
            raise LLMStreamIncomplete(
                provider=PROVIDER,
                reason="no_terminator",
                chunks=state.events,
                detail="the stream ended without a finish_reason",
            )
        yield final_chunk(usage, self._take_notices())

    async def _open_stream(self, request: LLMRequest) -> Any:
        """Start the SDK stream; a server refusing ``stream_options`` is asked again without it."""
        args = self.build_arguments(request, stream=True)
        try:
            return await self._client.chat.completions.create(**args)
        except self._openai.APIStatusError as exc:
            if "stream_options" not in args or not rejects_stream_options(exc.status_code, str(exc)):
                raise
        self.quirks.no_stream_options = True
        self._notice("the server rejects stream_options: streaming without it (no usage in streams)")
        del args["stream_options"]
        return await self._client.chat.completions.create(**args)

    def _stop_streaming_tools(self, model: str) -> None:
        self.quirks.no_tool_streaming.add(model)
        self._notice(
            f"the server sent an empty stream for a request with tools (model {model!r}): repeating it "
            "without streaming, and not streaming requests with tools to this model from now on",
        )

    def _notice(self, message: str) -> None:
        """Tell the application about a fallback: logged now, and carried by the final chunk of the next
        call that succeeds (the repeat that follows a fallback may itself fail and be retried)."""
        text = redact_secrets(f"openai-compatible server at {self.cfg.base_url}: {message}")
        logger.warning("%s", text)
        self._notices.append(text)

    def _take_notices(self) -> tuple[str, ...]:
        taken = tuple(self._notices)
        self._notices.clear()
        return taken

    @staticmethod
    def _choice_chunk(
        choice: dict[str, Any], state: CallState, event: Any, ids: ToolCallIds
    ) -> LLMStreamChunk | None:
        if choice.get("index", 0) != 0:
            return None
        delta = as_dict(choice.get("delta"))
        if choice.get("finish_reason"):
            state.finish_reason = str(choice["finish_reason"])
        text = delta.get("content") if isinstance(delta.get("content"), str) else ""
        think = _reasoning_text(delta)
        calls = _tool_call_deltas(delta.get("tool_calls"))
        for call in calls:
            ids.fix_delta(call)
        if not (text or think or calls):
            return None
        return LLMStreamChunk(
            delta_text=text or "", think=think, delta_tool_calls=calls or None, raw_event=event
        )

    async def _single(
        self, request: LLMRequest, state: CallState, ids: ToolCallIds, *, after_broken_stream: bool = False
    ) -> AsyncIterator[LLMStreamChunk]:
        args = self.build_arguments(request, stream=False)
        try:
            completion = await self._client.chat.completions.create(**args)
        except self._openai.APIConnectionError:
            if not after_broken_stream:
                raise
            # A server that failed the stream (llama.cpp raises inside its handler) may also drop the
            # pooled connection the repeat is sent on: one immediate second try, on a fresh connection.
            completion = await self._client.chat.completions.create(**args)
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
            tool_calls=ids.fix_calls(message.get("tool_calls") or []),
            token_usage=openai_usage(state.raw_usage) if state.raw_usage else None,
            is_final=True,
            notices=self._take_notices(),
        )

    def _passthrough(self, exc: BaseException) -> bool:
        # API errors reported by the server keep their SDK type (and status code); a dropped or
        # timed-out connection mid-stream becomes LLMStreamIncomplete.
        return isinstance(exc, self._openai.APIError) and not isinstance(exc, self._openai.APIConnectionError)
