"""Subscribing a sink to all event types or to a chosen few, with one detach function."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..events import AgentEvent, AgentEventType, EventBusProtocol, resolve_event_type

__all__ = ["subscribe_filtered"]


def subscribe_filtered(
    bus: EventBusProtocol,
    handler: Callable[[AgentEvent], Any],
    events: Iterable[AgentEventType | str] | None,
    *,
    default: Iterable[AgentEventType] | None = None,
) -> Callable[[], None]:
    """Subscribe ``handler`` to ``events`` (else ``default``; both ``None``: every type); return detach.

    Subscribing per type (rather than to all and filtering) keeps ``bus.wants()`` false for the rest, so
    the loop does not even build events nobody needs.
    """
    chosen = events if events is not None else default
    if chosen is None:
        return bus.subscribe(None, handler)
    types = list(dict.fromkeys(resolve_event_type(e) for e in chosen))
    unsubscribers = [bus.subscribe(t, handler) for t in types]

    def detach() -> None:
        for unsubscribe in unsubscribers:
            unsubscribe()

    return detach
