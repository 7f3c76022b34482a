"""Turning a stream of :class:`LLMStreamChunk` into one :class:`LLMResponse`.

Providers stream tool calls as OpenAI-style deltas: ``{"index": 0, "id": ..., "function": {"name": ...,
"arguments": "<partial>"}}`` with the id and name on the first delta and ``arguments`` split across
many. :class:`ToolCallAccumulator` reassembles them; :func:`complete_from_stream` drives the
``complete()`` callbacks from any chunk iterator, so a service only has to implement ``stream()``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from ._types import (
    LLMResponse,
    LLMTokenUsage,
    call_maybe_async,
    field_of,
    normalize_tool_call,
)

if TYPE_CHECKING:
    from ._types import (
        ChunkCallback,
        LLMStreamChunk,
        StreamEndCallback,
    )

__all__ = ["ToolCallAccumulator", "complete_from_stream", "parse_json_text"]


class ToolCallAccumulator:
    """Reassemble streamed tool-call deltas (dicts or SDK objects) into OpenAI-shape calls."""

    __slots__ = ("_calls", "_order")

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}
        self._order: list[int] = []

    def add(self, deltas: Any) -> None:
        """Fold one chunk's ``delta_tool_calls`` (a delta or a list of deltas) into the state."""
        if deltas is None:
            return
        items: Iterable[Any] = deltas if isinstance(deltas, (list, tuple)) else (deltas,)
        for delta in items:
            self._add_one(delta)

    def _add_one(self, delta: Any) -> None:
        call_id = field_of(delta, "id")
        index = field_of(delta, "index")
        if not isinstance(index, int):
            # No index: a delta with an id starts a new call, one without continues the last.
            index = self._order[-1] if self._order and not call_id else self._next_key()
        slot = self._calls.get(index)
        if slot is not None and call_id and slot["id"] and slot["id"] != str(call_id):
            # Some vendors reuse index 0 for every call; a new id means a new call.
            index = self._next_key()
            slot = None
        if slot is None:
            slot = self._calls[index] = {"id": "", "name": "", "arguments": ""}
            self._order.append(index)
        if call_id:
            slot["id"] = str(call_id)
        fn = field_of(delta, "function")
        name = field_of(fn, "name")
        # Some vendors repeat the full name on every delta; others split it. Handle both.
        if name and name != slot["name"]:
            slot["name"] = name if not slot["name"] else slot["name"] + name
        args = field_of(fn, "arguments")
        if args:
            slot["arguments"] += args

    def _next_key(self) -> int:
        return max(self._calls, default=-1) + 1

    def result(self) -> list[dict[str, Any]]:
        """The calls seen so far, in stream order, normalised (blank arguments become ``"{}"``)."""
        return [
            normalize_tool_call(
                {"id": s["id"], "function": {"name": s["name"], "arguments": s["arguments"]}}, pos
            )
            for pos, s in enumerate(self._calls[i] for i in self._order)
        ]


def parse_json_text(text: str) -> tuple[dict[str, Any], str | None]:
    """Parse a JSON object answer, tolerating a surrounding markdown code fence."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        if body.rstrip().endswith("```"):
            body = body.rstrip()[:-3]
    try:
        value = json.loads(body)
    except ValueError as exc:
        return {}, f"invalid JSON: {exc}"
    if not isinstance(value, dict):
        return {}, f"expected a JSON object, got {type(value).__name__}"
    return value, None


async def complete_from_stream(
    chunks: AsyncIterator[LLMStreamChunk],
    *,
    on_chunk_delta_text: ChunkCallback | None = None,
    on_chunk_think: ChunkCallback | None = None,
    on_stream_end: StreamEndCallback | None = None,
    parse_json: bool = False,
    keep_chunks: bool = False,
) -> LLMResponse:
    """Consume ``chunks``, firing the callbacks (sync or async), and return the aggregated response.

    A final chunk's non-empty ``tool_calls`` win over the reassembled deltas; the last reported
    ``token_usage`` wins. With ``parse_json`` the text is parsed into ``json_data``.
    """
    text_parts: list[str] = []
    think_parts: list[str] = []
    acc = ToolCallAccumulator()
    final_calls: list[dict[str, Any]] = []
    usage: LLMTokenUsage | None = None
    kept: list[LLMStreamChunk] = []
    notices: list[str] = []
    async for chunk in chunks:
        if keep_chunks:
            kept.append(chunk)
        if chunk.think:
            think_parts.append(chunk.think)
            await call_maybe_async(on_chunk_think, chunk.think)
        if chunk.delta_text:
            text_parts.append(chunk.delta_text)
            await call_maybe_async(on_chunk_delta_text, chunk.delta_text)
        acc.add(chunk.delta_tool_calls)
        if chunk.tool_calls:
            final_calls = [normalize_tool_call(tc, i) for i, tc in enumerate(chunk.tool_calls)]
        if chunk.token_usage is not None:
            usage = chunk.token_usage
        notices.extend(chunk.notices)
    text = "".join(text_parts)
    response = LLMResponse(
        raw_text=text,
        content_text=text,
        think="".join(think_parts),
        token_usage=usage if usage is not None else LLMTokenUsage(),
        tool_calls=final_calls or acc.result(),
        stream_chunks=kept,
    )
    if notices:
        response.debug["notices"] = notices
    if parse_json:
        data, error = parse_json_text(text)
        response.raw_json_data = data
        response.json_data = data
        response.raw_json_error = error
        response.parse_error = error
    await call_maybe_async(on_stream_end, response)
    return response
