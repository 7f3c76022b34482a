"""`send_events`: one send as an async iterator of its events (what `StatefulAgentLoop.stream` yields).

The send runs as its own task publishing into a private bus (the *tap*) that feeds a queue; the
iterator yields from the queue until the task ends, then one ``send_completed`` event carrying the
result. Leaving the iteration early, or cancelling it, cancels the send and waits for its cleanup, so
the session is left valid (open tool calls answered) before the iterator returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from .. import events as P
from ..events import AgentEvent, AgentEventBus, AgentEventType, resolve_event_type

if TYPE_CHECKING:
    from ._types import StatefulResult

__all__ = ["send_events"]


async def send_events(
    start: Callable[[AgentEventBus], Coroutine[Any, Any, StatefulResult]],
    session_id: str,
    events: Iterable[AgentEventType | str] | None,
) -> AsyncGenerator[AgentEvent, None]:
    """Run ``start(tap)`` and yield the events published to ``tap`` (only ``events`` types when given),
    then ``send_completed`` with the result."""
    tap = AgentEventBus()
    queue: asyncio.Queue[AgentEvent | None] = asyncio.Queue()
    targets: list[AgentEventType | None] = (
        [None] if events is None else [resolve_event_type(t) for t in events]
    )
    for event_type in targets:
        tap.subscribe(event_type, queue.put_nowait)
    task = asyncio.ensure_future(start(tap))
    task.add_done_callback(lambda _: queue.put_nowait(None))
    try:
        while (item := await queue.get()) is not None:
            yield item
        result = task.result()
        yield AgentEvent(
            AgentEventType.SEND_COMPLETED,
            data=P.SendCompletedPayload(
                status=result.status,
                final_text=result.final_text,
                rounds=result.rounds,
                tool_calls=result.tool_calls,
                result=result,
            ),
            session_id=session_id,
        )
    finally:
        if not task.done():
            task.cancel()
        # Wait for the send to finish its cleanup (answering open calls) before returning.
        await asyncio.gather(task, return_exceptions=True)
