"""Plumbing between a model call and the event stream: delta callbacks, the tool-call delta tap and
the race of an await against a cancellation token. Kept out of the round engine so it reads as rounds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from .. import events as P
from ..errors import CancellationRequested
from ..events import AgentEventType as ET
from ..llm import field_of

if TYPE_CHECKING:
    from ..llm import CancellationToken, LLMStreamChunk

__all__ = [
    "Emit",
    "publish_tool_call_deltas",
    "race_cancellation",
    "text_delta_callback",
]

T = TypeVar("T")
# The engine's publisher: (event type, zero-argument payload factory, round_index=, stream_id=).
Emit = Callable[..., None]


def text_delta_callback(emit: Emit, think: bool, round_index: int) -> Callable[[str], None]:
    """An ``on_chunk_delta_text`` / ``on_chunk_think`` callback publishing each fragment."""
    event = ET.STREAM_THINK_DELTA if think else ET.STREAM_DELTA

    def on_delta(text: str) -> None:
        emit(
            event,
            partial(P.StreamDeltaPayload, stream_id="main", text=text, is_think=think),
            round_index=round_index,
            stream_id="main",
        )

    return on_delta


async def publish_tool_call_deltas(
    chunks: AsyncIterator[LLMStreamChunk],
    emit: Emit,
    wants: Callable[[ET], bool],
    round_index: int,
) -> AsyncIterator[LLMStreamChunk]:
    """Pass chunks through, publishing each tool-call argument fragment as it arrives."""
    async for chunk in chunks:
        deltas = chunk.delta_tool_calls
        if deltas is not None and wants(ET.TOOL_CALL_DELTA):
            for delta in deltas if isinstance(deltas, (list, tuple)) else (deltas,):
                emit(
                    ET.TOOL_CALL_DELTA,
                    partial(_delta_payload, delta),
                    round_index=round_index,
                    stream_id="main",
                )
        yield chunk


def _delta_payload(delta: Any) -> P.ToolCallDeltaPayload:
    fn = field_of(delta, "function")
    index = field_of(delta, "index")
    return P.ToolCallDeltaPayload(
        stream_id="main",
        index=index if isinstance(index, int) else 0,
        tool_call_id=str(field_of(delta, "id") or ""),
        name=str(field_of(fn, "name") or ""),
        arguments_delta=str(field_of(fn, "arguments") or ""),
    )


async def race_cancellation(awaitable: Awaitable[T], token: CancellationToken) -> T:
    """Await ``awaitable`` unless ``token`` fires first: then cancel it and raise `CancellationRequested`."""
    work = asyncio.ensure_future(awaitable)
    stop = asyncio.ensure_future(token.wait())
    try:
        await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        work.cancel()
        stop.cancel()
        raise
    if work.done():
        stop.cancel()
        return work.result()
    work.cancel()
    await asyncio.gather(work, return_exceptions=True)
    raise CancellationRequested(token.reason or "cancelled")
