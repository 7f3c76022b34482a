"""The native Anthropic Messages transport over the official ``anthropic`` SDK.

The loop speaks the OpenAI message shape; this module converts it to Messages API form (system
blocks, ``tool_use`` / ``tool_result`` blocks, images, consecutive same-role turns merged) and the
streamed answer back (``tool_use`` → OpenAI-shape tool calls). Prompt caching places
``cache_control`` breakpoints on the stable prefix. A ``json_schema`` ``response_format`` becomes a
forced tool whose input is the structured answer.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from ..base import schema_from_response_format
from ..errors import LLMStreamIncomplete, MissingDependencyError
from ._capabilities import ModelCapabilities
from ._config import AnthropicChatConfig
from ._types import (
    LLMRequest,
    LLMStreamChunk,
    LLMTokenUsage,
    message_text,
    parse_tool_arguments,
)
from ._wire import (
    CallState,
    SDKChatService,
    apply_options,
    as_dict,
    final_chunk,
    guarded_events,
    sdk_parameters,
)

__all__ = [
    "MAX_CACHE_BREAKPOINTS",
    "AnthropicMessagesLLMService",
    "anthropic_usage",
    "place_cache_breakpoints",
    "to_anthropic_messages",
    "to_anthropic_tool_choice",
    "to_anthropic_tools",
]

PROVIDER = "anthropic"
MAX_CACHE_BREAKPOINTS = 4
"""The Messages API accepts at most four ``cache_control`` blocks per request."""

_EPHEMERAL = {"type": "ephemeral"}
_UNCACHEABLE = frozenset({"thinking", "redacted_thinking"})


def _import_anthropic() -> Any:
    try:
        return importlib.import_module("anthropic")
    except ImportError:
        raise MissingDependencyError("anthropic", "anthropic", "the Anthropic provider") from None


# ------------------------------------------------------------------------------ request conversion


def _image_block(part: Mapping[str, Any]) -> dict[str, Any] | None:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str) or not url:
        return None
    if url.startswith("data:") and ";base64," in url:
        header, data = url[5:].split(";base64,", 1)
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": header or "image/png", "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _document_block(part: Mapping[str, Any]) -> dict[str, Any] | None:
    """An OpenAI ``file`` part (``file_data`` as a base64 data URL) as a ``document`` block."""
    file = part.get("file")
    data = file.get("file_data") if isinstance(file, Mapping) else None
    if not isinstance(data, str) or not data.startswith("data:") or ";base64," not in data:
        return None
    header, payload = data[5:].split(";base64,", 1)
    block: dict[str, Any] = {
        "type": "document",
        "source": {"type": "base64", "media_type": header or "application/pdf", "data": payload},
    }
    name = file.get("filename") if isinstance(file, Mapping) else None
    if isinstance(name, str) and name:
        block["title"] = name
    return block


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    """OpenAI message content (a string or a list of parts) as Messages API blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        text = message_text(content)
        return [{"type": "text", "text": text}] if text else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            if part:
                blocks.append({"type": "text", "text": part})
            continue
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind == "text" and part.get("text"):
            blocks.append({"type": "text", "text": str(part["text"])})
        elif kind in ("image_url", "file"):
            block = _image_block(part) if kind == "image_url" else _document_block(part)
            if block is not None:
                blocks.append(block)
        elif kind in ("image", "document", "tool_use", "tool_result"):
            blocks.append(dict(part))  # already in Anthropic form
    return blocks


def _tool_use_block(tc: Mapping[str, Any], position: int) -> dict[str, Any]:
    fn = tc.get("function")
    if not isinstance(fn, Mapping):
        fn = {}
    args, _error = parse_tool_arguments(fn.get("arguments"))
    # The API requires an object; the loop already told the model about malformed arguments.
    return {
        "type": "tool_use",
        "id": str(tc.get("id") or f"toolu_{position}"),
        "name": str(fn.get("name") or ""),
        "input": args if args is not None else {},
    }


def _tool_result_block(message: Mapping[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": str(message.get("tool_call_id") or "")}
    if isinstance(content, list):
        block["content"] = _content_blocks(content)
    else:
        block["content"] = "" if content is None else str(content)
    return block


def to_anthropic_messages(
    messages: Sequence[Mapping[str, Any]], system_prompt: str | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(system blocks, messages)`` in Messages API form from an OpenAI-shape history.

    Leading ``system`` messages join the system prompt; a later one becomes user text (the API has
    no mid-conversation system role). ``tool`` results become ``tool_result`` blocks in a user turn;
    assistant ``tool_calls`` become ``tool_use`` blocks; consecutive same-role turns are merged, and
    turns left without content are dropped (the API rejects empty ones).
    """
    system: list[dict[str, Any]] = []
    if system_prompt:
        system.append({"type": "text", "text": system_prompt})
    converted: list[dict[str, Any]] = []
    leading = True
    for message in messages:
        role = message.get("role")
        if role == "system" and leading:
            text = message_text(message.get("content"))
            if text:
                system.append({"type": "text", "text": text})
            continue
        leading = False
        if role == "assistant":
            blocks = _content_blocks(message.get("content"))
            for position, tc in enumerate(message.get("tool_calls") or ()):
                if isinstance(tc, Mapping):
                    blocks.append(_tool_use_block(tc, position))
            api_role = "assistant"
        elif role == "tool":
            blocks, api_role = [_tool_result_block(message)], "user"
        elif role == "system":
            text = message_text(message.get("content"))
            blocks, api_role = ([{"type": "text", "text": f"[system] {text}"}] if text else []), "user"
        else:
            blocks, api_role = _content_blocks(message.get("content")), "user"
        if not blocks:
            continue
        if converted and converted[-1]["role"] == api_role:
            previous = converted[-1]["content"]
            # Tool results must open a user turn: keep them ahead of text merged into it.
            if api_role == "user" and blocks[0]["type"] == "tool_result":
                head = [b for b in previous if b["type"] == "tool_result"]
                tail = [b for b in previous if b["type"] != "tool_result"]
                converted[-1]["content"] = [*head, *blocks, *tail]
            else:
                previous.extend(blocks)
        else:
            converted.append({"role": api_role, "content": blocks})
    return system, converted


def to_anthropic_tools(tools: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """OpenAI ``{"type": "function", "function": {...}}`` tools as Messages API tools."""
    converted: list[dict[str, Any]] = []
    for tool in tools or ():
        fn = tool.get("function") if isinstance(tool.get("function"), Mapping) else None
        if fn is None:
            converted.append(dict(tool))  # already Anthropic-shaped
            continue
        entry: dict[str, Any] = {
            "name": str(fn.get("name") or ""),
            "input_schema": dict(fn.get("parameters") or {"type": "object", "properties": {}}),
        }
        if fn.get("description"):
            entry["description"] = str(fn["description"])
        converted.append(entry)
    return converted


def to_anthropic_tool_choice(choice: Any) -> dict[str, Any] | None:
    """``"auto"``/``"none"``/``"required"``/``{"type": "function", ...}`` in Messages API form."""
    if choice is None:
        return None
    if isinstance(choice, str):
        return {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}.get(choice)
    if isinstance(choice, Mapping):
        fn = choice.get("function")
        if choice.get("type") == "function" and isinstance(fn, Mapping):
            return {"type": "tool", "name": str(fn.get("name") or "")}
        return dict(choice)
    return None


def _mark_last_block(blocks: list[dict[str, Any]]) -> bool:
    """Mark the last cacheable block; False when there is none or it is already marked."""
    for block in reversed(blocks):
        if block.get("type") in _UNCACHEABLE:
            continue
        if "cache_control" in block:
            return False
        block["cache_control"] = dict(_EPHEMERAL)
        return True
    return False


def place_cache_breakpoints(
    system: list[dict[str, Any]], tools: list[dict[str, Any]], messages: list[dict[str, Any]]
) -> int:
    """Mark the stable prefix for prompt caching; returns how many breakpoints were placed.

    Breakpoints go on the last tool, the last system block and the last block of the turn before
    the newest one (so the next request, which only appends, reads everything before it from the
    cache). Existing ``cache_control`` marks count toward the API limit of
    :data:`MAX_CACHE_BREAKPOINTS`; none are added beyond it.
    """
    existing = sum(1 for block in (*system, *tools) if "cache_control" in block)
    existing += sum(
        1 for m in messages for b in m["content"] if isinstance(b, Mapping) and "cache_control" in b
    )
    budget = MAX_CACHE_BREAKPOINTS - existing
    placed = 0
    targets: list[list[dict[str, Any]]] = [tools, system]
    if len(messages) >= 2:
        targets.append(messages[-2]["content"])
    for blocks in targets:
        if placed >= budget:
            break
        if _mark_last_block(blocks):
            placed += 1
    return placed


def anthropic_usage(raw: Mapping[str, Any]) -> LLMTokenUsage:
    """Messages API usage. ``prompt_tokens`` counts every input token (uncached + cache read +
    cache write), like OpenAI's; cache reads are ``cached_tokens``, uncached input (including cache
    writes) is ``cache_miss_tokens``."""
    fresh = int(raw.get("input_tokens") or 0)
    read = int(raw.get("cache_read_input_tokens") or 0)
    written = int(raw.get("cache_creation_input_tokens") or 0)
    output = int(raw.get("output_tokens") or 0)
    prompt = fresh + read + written
    return LLMTokenUsage(
        prompt_tokens=prompt,
        completion_tokens=output,
        total_tokens=prompt + output,
        prompt_cached_tokens=read,
        prompt_cache_miss_tokens=fresh + written,
        cached_tokens=read,
        cache_hit_tokens=read,
        cache_miss_tokens=fresh + written,
    )


def _merge_usage(into: dict[str, Any], update: Mapping[str, Any]) -> None:
    # message_delta usage is cumulative; it may repeat or refine the message_start figures.
    for key, value in update.items():
        if isinstance(value, int) and not isinstance(value, bool) and (value or key not in into):
            into[key] = value


# ----------------------------------------------------------------------------------- the service


class _StreamTranslator:
    """Messages API stream events → :class:`LLMStreamChunk` (tool calls as OpenAI deltas)."""

    def __init__(self, state: CallState, structured_tool: str | None) -> None:
        self.state = state
        self.structured_tool = structured_tool
        self.blocks: dict[int, tuple[str, int]] = {}  # content index -> (kind, tool index)
        self.tool_count = 0

    def start(self, index: int, block: dict[str, Any], event: Any) -> LLMStreamChunk | None:
        kind = str(block.get("type") or "")
        if kind == "tool_use" and block.get("name") == self.structured_tool:
            self.blocks[index] = ("structured", -1)
            initial = block.get("input")
            if isinstance(initial, dict) and initial:
                return LLMStreamChunk(delta_text=json.dumps(initial, ensure_ascii=False), raw_event=event)
            return None
        if kind == "tool_use":
            position = self.tool_count
            self.tool_count += 1
            self.blocks[index] = ("tool_use", position)
            initial = block.get("input")
            arguments = (
                json.dumps(initial, ensure_ascii=False) if isinstance(initial, dict) and initial else ""
            )
            head = {
                "index": position,
                "id": str(block.get("id") or f"toolu_{position}"),
                "type": "function",
                "function": {"name": str(block.get("name") or ""), "arguments": arguments},
            }
            return LLMStreamChunk(delta_tool_calls=[head], raw_event=event)
        self.blocks[index] = (kind, -1)
        if kind == "text" and block.get("text"):
            return LLMStreamChunk(delta_text=str(block["text"]), raw_event=event)
        if kind == "thinking" and block.get("thinking"):
            return LLMStreamChunk(think=str(block["thinking"]), raw_event=event)
        return None

    def delta(self, index: int, delta: dict[str, Any], event: Any) -> LLMStreamChunk | None:
        kind, position = self.blocks.get(index, ("", -1))
        delta_type = delta.get("type")
        if delta_type == "text_delta":
            return LLMStreamChunk(delta_text=str(delta.get("text") or ""), raw_event=event)
        if delta_type == "thinking_delta":
            return LLMStreamChunk(think=str(delta.get("thinking") or ""), raw_event=event)
        if delta_type == "input_json_delta":
            partial = str(delta.get("partial_json") or "")
            if kind == "structured":
                return LLMStreamChunk(delta_text=partial, raw_event=event) if partial else None
            if kind == "tool_use" and partial:
                piece = {"index": position, "function": {"arguments": partial}}
                return LLMStreamChunk(delta_tool_calls=[piece], raw_event=event)
        return None

    def translate(self, event: Any) -> LLMStreamChunk | None:
        data = as_dict(event)
        kind = data.get("type")
        if kind == "message_start":
            message = as_dict(data.get("message"))
            self.state.model = message.get("model") or self.state.model
            _merge_usage(self.state.raw_usage, as_dict(message.get("usage")))
        elif kind == "content_block_start":
            return self.start(int(data.get("index") or 0), as_dict(data.get("content_block")), event)
        elif kind == "content_block_delta":
            return self.delta(int(data.get("index") or 0), as_dict(data.get("delta")), event)
        elif kind == "message_delta":
            stop = as_dict(data.get("delta")).get("stop_reason")
            if stop:
                self.state.finish_reason = str(stop)
            _merge_usage(self.state.raw_usage, as_dict(data.get("usage")))
        elif kind == "message_stop":
            self.state.terminated = True
        return None


class AnthropicMessagesLLMService(SDKChatService[AnthropicChatConfig]):
    """``LLMService`` over ``anthropic.AsyncAnthropic`` Messages.

    A request's ``extra`` entries that the installed SDK's ``messages.create()`` accepts
    (``thinking``, ``stop_sequences``, ``metadata``, ``timeout``, ...) are passed as keyword arguments;
    the rest go in ``extra_body``. ``client`` lets you pass a pre-built ``AsyncAnthropic``.
    In ``complete()``'s ``debug``, ``finish_reason`` is the ``stop_reason`` and ``usage`` includes
    ``cache_creation_input_tokens``.
    """

    def __init__(self, cfg: AnthropicChatConfig, *, client: Any = None) -> None:
        anthropic = _import_anthropic()
        self.cfg = cfg
        self._anthropic = anthropic
        base_url = cfg.base_url.rstrip("/")
        if base_url.endswith("/v1"):
            base_url = base_url[:-3]  # the SDK appends /v1/messages itself
        self._client = (
            client
            if client is not None
            else anthropic.AsyncAnthropic(
                api_key=cfg.api_key, base_url=base_url, timeout=cfg.timeout_s, max_retries=0
            )
        )
        self._known = sdk_parameters(self._client.messages.create)

    @property
    def capabilities(self) -> ModelCapabilities:
        """The declared capabilities, or :meth:`AnthropicChatConfig.default_capabilities`."""
        return self.cfg.capabilities or self.cfg.default_capabilities()

    def __repr__(self) -> str:
        return f"AnthropicMessagesLLMService(base_url={self.cfg.base_url!r}, model={self.cfg.model!r})"

    # ----------------------------------------------------------------------------- request

    def build_arguments(self, request: LLMRequest, *, stream: bool) -> tuple[dict[str, Any], str | None]:
        """``(keyword arguments for messages.create, name of the structured-output tool or None)``."""
        cfg = self.cfg
        system, messages = to_anthropic_messages(request.messages, request.system_prompt)
        tools = to_anthropic_tools(request.tools)
        tool_choice = to_anthropic_tool_choice(request.tool_choice) if tools else None
        structured = schema_from_response_format(request.response_format)
        if structured is not None:
            tools.append(
                {
                    "name": structured.name,
                    "description": structured.description
                    or "Give the final answer as this structured object.",
                    "input_schema": dict(structured.schema),
                }
            )
            # With other tools offered the model may still call them; the answer tool ends the turn.
            tool_choice = {"type": "tool", "name": structured.name} if len(tools) == 1 else {"type": "any"}
        if cfg.prompt_caching:
            place_cache_breakpoints(system, tools, messages)
        args: dict[str, Any] = {
            "model": request.model or cfg.model,
            "max_tokens": request.max_tokens or cfg.max_tokens,
            "messages": messages,
            "timeout": cfg.timeout_s,
        }
        if system:
            args["system"] = system
        if tools:
            args["tools"] = tools
        caps = cfg.capabilities
        if tools and caps is not None and not caps.parallel_tools:
            tool_choice = {**(tool_choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if tool_choice is not None:
            args["tool_choice"] = tool_choice
        if stream:
            args["stream"] = True
        options: dict[str, Any] = {}
        temperature = cfg.temperature if request.temperature is None else request.temperature
        if "temperature" in self._known:
            options["temperature"] = temperature
        options.update(request.extra)
        apply_options(args, options, self._known)
        return args, structured.name if structured is not None else None

    # ------------------------------------------------------------------------------ stream

    async def _chunks(self, request: LLMRequest, state: CallState) -> AsyncIterator[LLMStreamChunk]:
        args, structured_tool = self.build_arguments(request, stream=self.cfg.stream)
        if not self.cfg.stream:
            async for single in self._single(args, structured_tool, state):
                yield single
            return
        sdk_stream = await self._client.messages.create(**args)
        translator = _StreamTranslator(state, structured_tool)
        try:
            async for event in guarded_events(PROVIDER, sdk_stream.__aiter__(), state, self._passthrough):
                chunk = translator.translate(event)
                if chunk is not None:
                    yield chunk
        finally:
            await sdk_stream.close()
        if not state.terminated:
            raise LLMStreamIncomplete(
                provider=PROVIDER,
                reason="no_terminator",
                chunks=state.events,
                detail="the stream ended without message_stop",
            )
        yield final_chunk(anthropic_usage(state.raw_usage) if state.raw_usage else None)

    async def _single(
        self, args: dict[str, Any], structured_tool: str | None, state: CallState
    ) -> AsyncIterator[LLMStreamChunk]:
        message = await self._client.messages.create(**args)
        state.raw_completion = message
        data = as_dict(message)
        state.model = data.get("model")
        state.finish_reason = data.get("stop_reason") or "end_turn"
        state.terminated = True
        state.raw_usage = {k: v for k, v in as_dict(data.get("usage")).items() if isinstance(v, int)}
        text: list[str] = []
        think: list[str] = []
        calls: list[dict[str, Any]] = []
        for block in data.get("content") or ():
            block = as_dict(block)
            kind = block.get("type")
            if kind == "text":
                text.append(str(block.get("text") or ""))
            elif kind == "thinking":
                think.append(str(block.get("thinking") or ""))
            elif kind == "tool_use" and block.get("name") == structured_tool:
                text.append(json.dumps(block.get("input") or {}, ensure_ascii=False))
            elif kind == "tool_use":
                calls.append(block)
        yield LLMStreamChunk(delta_text="".join(text), think="".join(think), raw_event=message)
        yield LLMStreamChunk(
            tool_calls=calls,
            token_usage=anthropic_usage(state.raw_usage) if state.raw_usage else None,
            is_final=True,
        )

    def _passthrough(self, exc: BaseException) -> bool:
        return isinstance(exc, self._anthropic.APIStatusError)
