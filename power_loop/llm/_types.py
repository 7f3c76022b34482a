"""The LLM contract: request/response dataclasses, the ``LLMService`` protocol and tool-call helpers.

Everything here is duck-typed on purpose: any object with ``complete``/``stream``/``close`` is a model,
and responses coming from the official SDKs (pydantic objects) or from plain dicts are both understood.
Tool calls always travel in the OpenAI shape::

    {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{\\"a\\": 1}"}}
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ChunkCallback",
    "LLMRequest",
    "LLMResponse",
    "LLMService",
    "LLMStreamChunk",
    "LLMTokenUsage",
    "StreamEndCallback",
    "call_maybe_async",
    "field_of",
    "message_text",
    "normalize_tool_call",
    "normalize_usage",
    "parse_tool_arguments",
]

ChunkCallback = Callable[[str], Any]
"""``on_chunk_delta_text`` / ``on_chunk_think``: sync or async, called with each text delta."""
StreamEndCallback = Callable[["LLMResponse"], Any]
"""``on_stream_end``: sync or async, called once with the finished response."""


async def call_maybe_async(callback: Callable[[Any], Any] | None, arg: Any) -> None:
    """Invoke a user callback that may be a plain function or a coroutine function."""
    if callback is None:
        return
    result = callback(arg)
    if inspect.isawaitable(result):
        await result


def field_of(obj: Any, key: str) -> Any:
    """Read ``key`` from a mapping or an attribute from an object (SDK models), ``None`` when absent."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def message_text(content: Any) -> str:
    """The text of a message ``content``: a string, or the ``text`` parts of a multimodal list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return str(content)


# --------------------------------------------------------------------------------------------- usage


@dataclass(slots=True, repr=False)
class LLMTokenUsage:
    """Token counts reported by a provider; every field is optional because providers differ."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_audio_tokens: int | None = None
    prompt_cached_tokens: int | None = None
    prompt_cache_miss_tokens: int | None = None
    prompt_text_tokens: int | None = None
    prompt_image_tokens: int | None = None
    completion_reasoning_tokens: int | None = None
    completion_audio_tokens: int | None = None
    completion_text_tokens: int | None = None
    completion_image_tokens: int | None = None
    accepted_prediction_tokens: int | None = None
    rejected_prediction_tokens: int | None = None
    cached_tokens: int | None = None
    cache_hit_tokens: int | None = None
    cache_miss_tokens: int | None = None
    reasoning_tokens: int | None = None
    accepted_tokens: int | None = None
    rejected_tokens: int | None = None

    def as_dict(self) -> dict[str, int]:
        """The reported fields only (``None`` dropped)."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.as_dict().items())
        return f"LLMTokenUsage({shown})"

    def to_log_str(self) -> str:
        n = self.normalized()
        return (
            f"prompt={n['prompt_tokens']} completion={n['completion_tokens']} "
            f"cache_read={n['cache_read_tokens']} reasoning={n['reasoning_tokens']} total={n['total_tokens']}"
        )

    def normalized(self) -> dict[str, int]:
        """The five figures the loop accounts for; see :func:`normalize_usage`."""
        return normalize_usage(self)


_CACHE_READ_KEYS = (
    "cache_read_input_tokens",
    "cache_read_tokens",
    "cached_tokens",
    "cache_hit_tokens",
    "prompt_cached_tokens",
)


def _first_int(source: Any, keys: Sequence[str]) -> int:
    for key in keys:
        value = field_of(source, key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value)
    return 0


def normalize_usage(usage: Any) -> dict[str, int]:
    """Map any provider's usage (``LLMTokenUsage``, dict or SDK object) to five integers.

    ``prompt_tokens`` ← prompt_tokens | input_tokens; ``completion_tokens`` ← completion_tokens |
    output_tokens; ``cache_read_tokens`` ← the first of cache_read_input_tokens, cache_read_tokens,
    cached_tokens, cache_hit_tokens, prompt_cached_tokens; ``reasoning_tokens`` ←
    completion_reasoning_tokens | reasoning_tokens; ``total_tokens`` ← total_tokens, derived as
    prompt + completion when missing or 0.
    """
    prompt = _first_int(usage, ("prompt_tokens", "input_tokens"))
    completion = _first_int(usage, ("completion_tokens", "output_tokens"))
    total = _first_int(usage, ("total_tokens",)) or prompt + completion
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cache_read_tokens": _first_int(usage, _CACHE_READ_KEYS),
        "reasoning_tokens": _first_int(usage, ("completion_reasoning_tokens", "reasoning_tokens")),
        "total_tokens": total,
    }


# ------------------------------------------------------------------------------------------ tool calls


def normalize_tool_call(tc: Any, index: int = 0) -> dict[str, Any]:
    """Return ``tc`` (dict or SDK object) in the OpenAI shape with ``arguments`` as a string.

    ``arguments`` that are a mapping are JSON-encoded, ``None``/blank become ``"{}"``, and any other
    string is kept verbatim even when it is not valid JSON: the loop reports it to the model instead of
    silently replacing it. A flat ``{"name", "arguments"}`` and an Anthropic ``tool_use`` block
    (``input``) are accepted too. A missing id becomes ``call_<index>``.
    """
    fn = field_of(tc, "function")
    source = fn if fn is not None else tc
    name = field_of(source, "name") or field_of(tc, "name") or ""
    args = field_of(source, "arguments")
    if args is None:
        args = field_of(tc, "input")
    if args is None or (isinstance(args, str) and not args.strip()):
        arguments = "{}"
    elif isinstance(args, str):
        arguments = args
    else:
        arguments = json.dumps(args, ensure_ascii=False)
    call_id = field_of(tc, "id") or f"call_{index}"
    return {
        "id": _storable(str(call_id)),
        "type": "function",
        "function": {"name": _storable(str(name)), "arguments": arguments},
    }


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(text: str) -> str:
    """A model-chosen id or name with NUL and lone surrogates replaced by U+FFFD: they are stored in
    plain text columns, which no database driver accepts them in (the arguments stay verbatim)."""
    return _UNSTORABLE.sub("\ufffd", text)


def parse_tool_arguments(
    arguments: str | Mapping[str, Any] | None,
) -> tuple[dict[str, Any] | None, str | None]:
    """Parse a tool call's ``arguments``: ``(dict, None)`` or ``(None, message for the model)``.

    Raw control characters inside JSON strings (a common model slip) are tolerated.
    """
    if arguments is None:
        return {}, None
    if isinstance(arguments, Mapping):
        return dict(arguments), None
    if not arguments.strip():
        return {}, None
    try:
        value = json.loads(arguments, strict=False)
    except ValueError as exc:  # also an integer beyond the interpreter's digit limit
        return None, f"invalid JSON in tool arguments: {exc}"
    except RecursionError:
        return None, "tool arguments are nested too deeply"
    if not isinstance(value, dict):
        return None, f"tool arguments must be a JSON object, got {type(value).__name__}"
    return value, None


def _calls_from_message(message: Any) -> list[dict[str, Any]]:
    if message is None:
        return []
    calls = field_of(message, "tool_calls")
    legacy = field_of(message, "function_call")
    if not calls and legacy is None and not isinstance(message, Mapping):
        dump = getattr(message, "model_dump", None)
        if callable(dump):
            dumped = dump()
            calls, legacy = field_of(dumped, "tool_calls"), field_of(dumped, "function_call")
    if calls:
        return [normalize_tool_call(tc, i) for i, tc in enumerate(calls)]
    if legacy is not None:
        return [normalize_tool_call({"type": "function", "function": legacy})]
    return []


def _first_choice_message(completion: Any) -> Any:
    choices = field_of(completion, "choices")
    if not choices and completion is not None and not isinstance(completion, Mapping):
        dump = getattr(completion, "model_dump", None)
        if callable(dump):
            choices = field_of(dump(), "choices")
    if not choices:
        return None
    return field_of(choices[0], "message")


# ------------------------------------------------------------------------------------------- request


@dataclass(slots=True)
class LLMRequest:
    """One model call. ``messages`` must not contain the system message: it goes in ``system_prompt``."""

    messages: list[dict[str, Any]]
    system_prompt: str | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    parse_json: bool = False
    reason: bool | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any | None = None
    response_format: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_messages(self, capabilities: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The wire message list: the system prompt first, then ``messages``.

        With ``capabilities={"system_message": False}`` (models without a system role) the system
        prompt is sent as a leading user message instead.
        """
        if not self.system_prompt:
            return list(self.messages)
        role = "system"
        if capabilities is not None and capabilities.get("system_message") is False:
            role = "user"
        return [{"role": role, "content": self.system_prompt}, *self.messages]

    @classmethod
    def from_prompt(
        cls,
        *,
        prompt: str,
        system_prompt: str | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        parse_json: bool = False,
        reason: bool | None = None,
        **kwargs: Any,
    ) -> LLMRequest:
        """A one-user-message request; unknown keyword arguments land in ``extra``."""
        return cls(
            messages=[{"role": "user", "content": prompt}],
            system_prompt=system_prompt,
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            parse_json=parse_json,
            reason=reason,
            extra=dict(kwargs),
        )


# ------------------------------------------------------------------------------------------ response


@dataclass(slots=True)
class LLMStreamChunk:
    """One streamed event. The last chunk has ``is_final=True`` and carries aggregated ``tool_calls``."""

    delta_text: str = ""
    think: str = ""
    delta_tool_calls: Any = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    token_usage: LLMTokenUsage | None = None
    raw_event: Any = None
    is_final: bool = False
    # Things the provider adapter wants the application told (a fallback it took); the loop publishes
    # each as a ``system_log`` event. Not part of the model's answer.
    notices: tuple[str, ...] = ()


@dataclass(slots=True)
class LLMResponse:
    """What a model returned. The assistant text the loop uses is :attr:`text`."""

    raw_text: str
    raw_message: Any = None
    raw_completion: Any = None
    raw_json_data: dict[str, Any] = field(default_factory=dict)
    raw_json_error: str | None = None
    content_text: str = ""
    think: str = ""
    json_data: dict[str, Any] = field(default_factory=dict)
    token_usage: LLMTokenUsage = field(default_factory=LLMTokenUsage)
    parse_error: str | None = None
    debug: dict[str, Any] = field(default_factory=dict)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    stream_chunks: list[LLMStreamChunk] = field(default_factory=list)

    @property
    def text(self) -> str:
        """``(raw_text or content_text).strip()``."""
        return (self.raw_text or self.content_text).strip()

    @property
    def ok(self) -> bool:
        """True when JSON was requested and parsed without error."""
        return bool(self.json_data) and self.parse_error is None

    def get_tool_calls(self) -> list[dict[str, Any]]:
        """The tool calls in OpenAI shape, wherever the provider put them.

        Order of lookup: ``tool_calls``; ``raw_message.tool_calls`` / ``.function_call``;
        ``raw_completion.choices[0].message``; each also through ``model_dump()`` for SDK objects.
        A legacy ``function_call`` is wrapped as a single tool call.
        """
        if self.tool_calls:
            return [normalize_tool_call(tc, i) for i, tc in enumerate(self.tool_calls)]
        return _calls_from_message(self.raw_message) or _calls_from_message(
            _first_choice_message(self.raw_completion)
        )

    def to_log_str(self, max_chars: int = 200) -> str:
        text = self.text
        if len(text) > max_chars:
            text = text[:max_chars] + "..."
        names = [tc["function"]["name"] for tc in self.get_tool_calls()]
        return f"text={text!r} tool_calls={names} usage=({self.token_usage.to_log_str()})"


# ------------------------------------------------------------------------------------------ protocol


@runtime_checkable
class LLMService(Protocol):
    """The model contract. ``complete`` is the only method the loop calls."""

    async def complete(
        self,
        request: LLMRequest,
        *,
        on_chunk_delta_text: ChunkCallback | None = None,
        on_chunk_think: ChunkCallback | None = None,
        on_stream_end: StreamEndCallback | None = None,
    ) -> LLMResponse: ...

    def stream(self, request: LLMRequest) -> AsyncIterator[LLMStreamChunk]: ...

    async def close(self) -> None: ...
