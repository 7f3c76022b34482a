"""Helpers shared by the SDK-backed adapters (``_openai``, ``_anthropic``).

Both adapters turn an SDK stream into :class:`LLMStreamChunk` values, refuse streams that stop
early, and build request arguments from the installed SDK's own signature (SDK majors add and drop
parameters; unknown ones travel in ``extra_body`` instead of raising ``TypeError``).
:class:`SDKChatService` is their common shell: ``stream``/``complete``/``close`` over one ``_chunks``.
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ..base import schema_from_response_format, structured_result
from ..errors import LLMStreamIncomplete
from ._service import LLMServiceBase
from ._stream import complete_from_stream
from ._types import (
    ChunkCallback,
    LLMRequest,
    LLMResponse,
    LLMStreamChunk,
    LLMTokenUsage,
    StreamEndCallback,
    call_maybe_async,
)

if TYPE_CHECKING:
    from ._retry import LLMRetryPolicy

__all__ = [
    "CallState",
    "SDKChatService",
    "apply_options",
    "as_dict",
    "complete_call",
    "final_chunk",
    "guarded_events",
    "sdk_parameters",
    "split_known",
    "structured_fields",
]


def as_dict(obj: Any) -> dict[str, Any]:
    """An SDK (pydantic) object or mapping as a plain dict; anything else → ``{}``."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return dict(obj)
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        dumped = dump()
        return dumped if isinstance(dumped, dict) else {}
    return {}


def sdk_parameters(method: Callable[..., Any]) -> frozenset[str]:
    """The keyword names an SDK method accepts (``extra_body`` etc. included)."""
    try:
        return frozenset(inspect.signature(method).parameters)
    except (TypeError, ValueError):
        return frozenset()


def split_known(options: Mapping[str, Any], known: frozenset[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``options`` split into (SDK keyword arguments, ``extra_body`` entries)."""
    direct: dict[str, Any] = {}
    body: dict[str, Any] = {}
    for key, value in options.items():
        (direct if key in known else body)[key] = value
    return direct, body


def apply_options(args: dict[str, Any], options: Mapping[str, Any], known: frozenset[str]) -> None:
    """Add ``options`` to the SDK call ``args``: known parameters as keywords, the rest merged into
    ``extra_body`` (on top of any ``extra_body`` the options themselves carried)."""
    direct, body = split_known(options, known)
    args.update(direct)
    if body:
        merged = dict(args.get("extra_body") or {})
        merged.update(body)
        args["extra_body"] = merged


@dataclass(slots=True)
class CallState:
    """What one streamed call learned besides the chunks: finish reason, raw usage, raw objects."""

    finish_reason: str | None = None
    terminated: bool = False
    events: int = 0
    raw_usage: dict[str, Any] = field(default_factory=dict)
    raw_completion: Any = None
    model: str | None = None


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, (ValueError, json.JSONDecodeError)):
        # Undecodable SSE data (json.loads) or a chunk the SDK's models refuse (pydantic).
        return "malformed_event"
    if "timeout" in type(exc).__name__.lower():
        return "timeout"
    return "connection_lost"


async def guarded_events(
    provider: str,
    events: AsyncIterator[Any],
    state: CallState,
    passthrough: Callable[[BaseException], bool],
) -> AsyncIterator[Any]:
    """Yield SDK stream events; a mid-stream failure becomes :class:`LLMStreamIncomplete`.

    Errors for which ``passthrough(exc)`` is true (the SDK's API errors, e.g. an ``error`` SSE event)
    propagate unchanged so :class:`LLMRetryPolicy` still sees their status code and ``Retry-After``.
    """
    while True:
        try:
            event = await events.__anext__()
        except StopAsyncIteration:
            return
        except Exception as exc:
            if passthrough(exc):
                raise
            raise LLMStreamIncomplete(
                provider=provider,
                reason=_failure_reason(exc),
                chunks=state.events,
                detail=f"{type(exc).__name__}: {exc}",
            ) from exc
        state.events += 1
        yield event


async def complete_call(
    chunks: AsyncIterator[LLMStreamChunk],
    state: CallState,
    request: LLMRequest,
    *,
    on_chunk_delta_text: ChunkCallback | None,
    on_chunk_think: ChunkCallback | None,
    on_stream_end: StreamEndCallback | None,
) -> LLMResponse:
    """The adapters' ``complete()``: aggregate ``chunks`` (closing the generator even when a callback
    raises), attach what ``state`` learned, parse a structured answer, then fire ``on_stream_end``."""
    try:
        response = await complete_from_stream(
            chunks,
            on_chunk_delta_text=on_chunk_delta_text,
            on_chunk_think=on_chunk_think,
            parse_json=request.parse_json,
        )
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    response.raw_completion = state.raw_completion
    response.debug.update(finish_reason=state.finish_reason, model=state.model, usage=dict(state.raw_usage))
    structured_fields(response, request.response_format)
    await call_maybe_async(on_stream_end, response)
    return response


def structured_fields(response: LLMResponse, response_format: Mapping[str, Any] | None) -> None:
    """Parse and validate a structured answer into ``json_data`` / ``parse_error`` (never raises)."""
    spec = schema_from_response_format(response_format)
    if spec is None or response.tool_calls:
        # A round that calls tools is not the structured answer yet.
        return
    data, error = structured_result(response.raw_text or response.content_text, spec)
    response.json_data = data
    response.raw_json_data = data
    response.parse_error = error
    response.raw_json_error = error


def final_chunk(usage: LLMTokenUsage | None, notices: tuple[str, ...] = ()) -> LLMStreamChunk:
    """The closing chunk: usage (and notices) only; tool calls are reassembled from the deltas."""
    return LLMStreamChunk(token_usage=usage, is_final=True, notices=notices)


class _TransportConfig(Protocol):
    @property
    def max_retries(self) -> int: ...

    def retry_policy(self) -> LLMRetryPolicy: ...


C = TypeVar("C", bound=_TransportConfig)


class SDKChatService(LLMServiceBase, ABC, Generic[C]):
    """What the SDK adapters share around their streams: retry policy, ``stream``/``complete``, ``close``.

    A subclass sets ``cfg`` and ``_client`` (the SDK client) and implements :meth:`_chunks`, which
    records in its :class:`CallState` whatever a call learns besides the chunks.
    """

    cfg: C
    _client: Any

    @property
    def default_retry_policy(self) -> LLMRetryPolicy | None:
        """The retries ``max_retries`` asks for; the loop applies it when its config sets none."""
        return self.cfg.retry_policy() if self.cfg.max_retries > 0 else None

    @abstractmethod
    def _chunks(self, request: LLMRequest, state: CallState) -> AsyncIterator[LLMStreamChunk]:
        """The chunks of one SDK call; raises :class:`LLMStreamIncomplete` when it ends early."""

    def stream(self, request: LLMRequest) -> AsyncIterator[LLMStreamChunk]:
        """Chunks of one call; raises :class:`LLMStreamIncomplete` when the stream stops before its
        terminator (``finish_reason`` / ``message_stop``)."""
        return self._chunks(request, CallState())

    async def complete(
        self,
        request: LLMRequest,
        *,
        on_chunk_delta_text: ChunkCallback | None = None,
        on_chunk_think: ChunkCallback | None = None,
        on_stream_end: StreamEndCallback | None = None,
    ) -> LLMResponse:
        """One call, streamed into the callbacks and aggregated into an :class:`LLMResponse`.

        ``debug`` carries ``finish_reason``, ``model`` and the provider's raw ``usage`` dict; a
        structured answer (``response_format``) is parsed and validated into ``json_data``
        (``parse_error`` says why it failed; see :func:`power_loop.structured.parse_structured`).
        """
        state = CallState()
        return await complete_call(
            self._chunks(request, state),
            state,
            request,
            on_chunk_delta_text=on_chunk_delta_text,
            on_chunk_think=on_chunk_think,
            on_stream_end=on_stream_end,
        )

    async def close(self) -> None:
        """Close the SDK client's connection pool."""
        await self._client.close()
