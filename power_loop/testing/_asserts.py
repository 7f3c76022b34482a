"""Assertion helpers for tests of agents: which tools were called (with what, returning what) and
which events were published, in which order. They read what the loop already exposes — the
provider-shape messages of ``loop.get_messages(sid)`` and the loop's event bus — so they work the
same against a scripted or a real model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..events import AgentEvent, AgentEventType, EventBusProtocol


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call found in a history: its id, name, parsed arguments, and the result's content
    (``None`` while no result message answers it)."""

    id: str
    name: str
    arguments: dict[str, Any]
    result: Any = None


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        parsed = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {"__raw__": raw}
    return parsed if isinstance(parsed, dict) else {"__raw__": raw}


def find_tool_calls(messages: Iterable[Mapping[str, Any]], name: str | None = None) -> list[ToolCallRecord]:
    """Every tool call of ``messages`` (optionally only those of tool ``name``), in order, with results."""
    messages = list(messages)
    results = {m.get("tool_call_id"): m.get("content") for m in messages if m.get("role") == "tool"}
    found = []
    for message in messages:
        for call in message.get("tool_calls") or ():
            function = call.get("function", {})
            if name is None or function.get("name") == name:
                found.append(
                    ToolCallRecord(
                        id=str(call.get("id")),
                        name=str(function.get("name")),
                        arguments=_arguments(function.get("arguments")),
                        result=results.get(call.get("id")),
                    )
                )
    return found


def assert_tool_called(
    messages: Iterable[Mapping[str, Any]],
    name: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    times: int | None = None,
) -> ToolCallRecord:
    """Assert that tool ``name`` was called (with ``arguments`` as a subset of its arguments, and
    exactly ``times`` times when given); return the first matching call."""
    calls = find_tool_calls(messages, name)
    if arguments is not None:
        calls = [
            c for c in calls if all(k in c.arguments and c.arguments[k] == v for k, v in arguments.items())
        ]
    if not calls or (times is not None and len(calls) != times):
        seen = [(c.name, c.arguments) for c in find_tool_calls(messages)]
        wanted = f"{name}({dict(arguments) if arguments is not None else '...'})"
        count = "at least once" if times is None else f"{times} time(s), got {len(calls)}"
        raise AssertionError(f"expected a call to {wanted} {count}; tool calls made: {seen}")
    return calls[0]


def assert_tool_not_called(messages: Iterable[Mapping[str, Any]], name: str) -> None:
    """Assert that tool ``name`` was never called."""
    calls = find_tool_calls(messages, name)
    if calls:
        raise AssertionError(f"{name} was called {len(calls)} time(s): {[c.arguments for c in calls]}")


class EventRecorder:
    """Records the events published on a bus (all types, or only ``types``) until :meth:`close`.

    Use it as a context manager, or call :meth:`close`; :attr:`events` holds what was recorded.
    """

    def __init__(self, bus: EventBusProtocol, types: Iterable[AgentEventType | str] | None = None) -> None:
        self.events: list[AgentEvent] = []
        if types is None:
            self._unsubscribe = [bus.subscribe(None, self.events.append)]
        else:
            self._unsubscribe = [bus.subscribe(t, self.events.append) for t in types]

    def of(self, event_type: AgentEventType | str) -> list[AgentEvent]:
        """The recorded events of one type (enum or value)."""
        wanted = AgentEventType(event_type)
        return [e for e in self.events if e.type == wanted]

    def types(self) -> list[str]:
        """The recorded event types' values, in publication order."""
        return [AgentEventType(e.type).value for e in self.events]

    def close(self) -> None:
        """Stop recording (the events recorded so far stay)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    def __enter__(self) -> EventRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def assert_events_in_order(
    events: EventRecorder | Iterable[AgentEvent], expected: Sequence[AgentEventType | str]
) -> None:
    """Assert that ``expected`` event types occur in this order (other events may come between)."""
    recorded = events.events if isinstance(events, EventRecorder) else list(events)
    seen = [AgentEventType(e.type).value for e in recorded]
    wanted = [AgentEventType(t).value for t in expected]
    position = 0
    for value in seen:
        if position < len(wanted) and value == wanted[position]:
            position += 1
    if position < len(wanted):
        raise AssertionError(
            f"events out of order or missing: matched {wanted[:position]}, then no {wanted[position]!r} "
            f"in {seen}"
        )
