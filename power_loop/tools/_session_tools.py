"""Session tools: ``todo``, ``current_time`` and the wake-up tools (``schedule_wakeup``, ``list_wakeups``,
``cancel_wakeup``).

``todo`` and the wake-up tools act on the session whose send called them, found through
:func:`~power_loop.tools.get_tool_runtime_context`; outside a ``StatefulAgentLoop`` run they fail
with a ``ConfigError`` (an error result when run by the loop or ``execute_tool_call``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..base import ScheduledTimer, ToolRuntimeContext, get_tool_runtime_context
from ..errors import ConfigError
from ..events import AgentEventType, TodoUpdatedPayload
from ._definition import ToolDefinition, ToolHandlerResult
from ._registry import ToolRegistry

__all__ = [
    "MAX_ARMED_WAKEUPS",
    "MAX_TODO_ITEMS",
    "MAX_WAKEUP_SECONDS",
    "MIN_WAKEUP_SECONDS",
    "SESSION_TOOL_DEFINITIONS",
    "SESSION_TOOL_NAMES",
    "TODO_STATE_KEY",
    "register_session_tools",
    "render_todo",
]

TODO_STATE_KEY = "todo"
MAX_TODO_ITEMS = 20
MIN_WAKEUP_SECONDS = 5
MAX_WAKEUP_SECONDS = 30 * 24 * 3600
MAX_ARMED_WAKEUPS = 10
_TODO_STATUSES = ("pending", "in_progress", "completed")
_TODO_MARKS = {"pending": "[ ]", "in_progress": "[>]", "completed": "[x]"}
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %Z (%A)"


def _store_of(ctx: ToolRuntimeContext) -> Any:
    if ctx.store is None:
        raise ConfigError("this tool needs a session store (run it through StatefulAgentLoop)")
    return ctx.store


# -- todo ---------------------------------------------------------------------------------------------


def render_todo(items: list[dict[str, str]]) -> str:
    """The model-facing rendering of a todo list."""
    if not items:
        return "Todo list is empty."
    done = sum(1 for item in items if item["status"] == "completed")
    lines = [f"Todo list ({done}/{len(items)} completed):"]
    lines.extend(f"{_TODO_MARKS[item['status']]} {item['id']}: {item['text']}" for item in items)
    return "\n".join(lines)


async def _todo(items: list[dict[str, Any]]) -> ToolHandlerResult:
    ctx = get_tool_runtime_context(required=True)
    store = _store_of(ctx)
    clean = [
        {"id": str(item["id"]), "text": item["text"].strip(), "status": item["status"]} for item in items
    ]
    ids = [item["id"] for item in clean]
    if len(set(ids)) != len(ids):
        return ToolHandlerResult(ok=False, content="Error: todo item ids must be unique.")
    if sum(1 for item in clean if item["status"] == "in_progress") > 1:
        return ToolHandlerResult(
            ok=False,
            content="Error: at most one todo item may be in_progress; finish one before starting another.",
        )
    await store.set_runtime_state(ctx.session_id, TODO_STATE_KEY, clean)
    rendered = render_todo(clean)
    if ctx.loop is not None:
        counts = {status: sum(1 for item in clean if item["status"] == status) for status in _TODO_STATUSES}
        ctx.loop.event_bus.emit(
            AgentEventType.TODO_UPDATED,
            lambda: TodoUpdatedPayload(items=clean, counts=counts, rendered=rendered, text=rendered),
            session_id=ctx.session_id,
            source="tool",
        )
    return ToolHandlerResult(ok=True, content=rendered, data={"items": clean})


TODO_DEFINITION = ToolDefinition(
    name="todo",
    effect="idempotent",
    description=(
        "Replace this session's todo list with `items` and show it. Use it to plan multi-step work and "
        "track progress: keep at most one item in_progress and mark items completed as you finish them. "
        f"At most {MAX_TODO_ITEMS} items; send an empty list to clear it."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "maxItems": MAX_TODO_ITEMS,
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": ["string", "integer"], "description": "A short stable id, e.g. '1'."},
                        "text": {"type": "string", "minLength": 1, "pattern": r"\S"},
                        "status": {"type": "string", "enum": list(_TODO_STATUSES)},
                    },
                    "required": ["id", "text", "status"],
                    "additionalProperties": False,
                },
            }
        },
        "additionalProperties": False,
    },
    required_params=("items",),
)


# -- current_time ---------------------------------------------------------------------------------------


def _current_time() -> str:
    return datetime.now().astimezone().strftime(_TIME_FORMAT)


CURRENT_TIME_DEFINITION = ToolDefinition(
    name="current_time",
    effect="pure",
    description="The current local date, time, time zone and weekday.",
    input_schema={"type": "object", "properties": {}, "additionalProperties": False},
)


# -- wake-ups -------------------------------------------------------------------------------------------


def _local(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime(_TIME_FORMAT)


async def _schedule_wakeup(
    delay_seconds: int, note: str, every_seconds: int | None = None
) -> ToolHandlerResult:
    ctx = get_tool_runtime_context(required=True)
    store = _store_of(ctx)
    # Count-then-create is not atomic; concurrent calls in one round may overshoot by a few, which is
    # acceptable for a budget whose purpose is stopping a model from arming timers in a loop.
    armed = await store.list_timers(ctx.session_id, statuses=("armed", "firing"))
    if len(armed) >= MAX_ARMED_WAKEUPS:
        return ToolHandlerResult(
            ok=False,
            content=(
                f"Budget exceeded: this session already has {len(armed)} armed wake-ups (the maximum is "
                f"{MAX_ARMED_WAKEUPS}). Cancel one with cancel_wakeup before scheduling another."
            ),
        )
    timer: ScheduledTimer
    if ctx.loop is not None:
        timer = await ctx.loop.schedule_timer(
            ctx.session_id, delay_s=delay_seconds, note=note, interval_s=every_seconds
        )
    else:
        due = time.time_ns() // 1_000_000 + delay_seconds * 1000
        timer = await store.create_timer(ctx.session_id, due_at_ms=due, note=note, interval_s=every_seconds)
    repeat = f", then every {every_seconds}s" if every_seconds is not None else ""
    return ToolHandlerResult(
        ok=True,
        content=f"Wake-up #{timer.timer_id} scheduled for {_local(timer.due_at)} (in {delay_seconds}s{repeat}): {note}",
        data={"timer_id": timer.timer_id, "due_at": timer.due_at},
    )


async def _list_wakeups() -> str:
    ctx = get_tool_runtime_context(required=True)
    timers = await _store_of(ctx).list_timers(ctx.session_id)
    if not timers:
        return "No wake-ups scheduled."
    now = time.time_ns() // 1_000_000
    lines = []
    for t in timers:
        extra = f" (every {t.interval_s}s, fired {t.fire_count}x)" if t.interval_s is not None else ""
        lines.append(f"#{t.timer_id} in {max(0, (t.due_at - now) // 1000)}s{extra} ({t.status}): {t.note}")
    return "\n".join(lines)


async def _cancel_wakeup(timer_id: int) -> ToolHandlerResult:
    ctx = get_tool_runtime_context(required=True)
    if await _store_of(ctx).cancel_timer(ctx.session_id, timer_id):
        return ToolHandlerResult(ok=True, content=f"Cancelled wake-up #{timer_id}.")
    return ToolHandlerResult(ok=False, content=f"Error: no armed wake-up #{timer_id} in this session.")


_SECONDS = {"type": "integer", "minimum": MIN_WAKEUP_SECONDS, "maximum": MAX_WAKEUP_SECONDS}

SCHEDULE_WAKEUP_DEFINITION = ToolDefinition(
    name="schedule_wakeup",
    description=(
        "Schedule a wake-up: after `delay_seconds` this conversation receives a message with `note`, so "
        "you can continue work later. `every_seconds` makes it repeat. Delays and intervals are "
        f"{MIN_WAKEUP_SECONDS}..{MAX_WAKEUP_SECONDS} seconds; at most {MAX_ARMED_WAKEUPS} wake-ups may be armed."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "delay_seconds": {**_SECONDS, "description": "Seconds from now until the first wake-up."},
            "note": {
                "type": "string",
                "minLength": 1,
                "pattern": r"\S",
                "description": "What to do on waking.",
            },
            "every_seconds": {**_SECONDS, "description": "Repeat interval; omit for a one-shot wake-up."},
        },
        "additionalProperties": False,
    },
    required_params=("delay_seconds", "note"),
)

LIST_WAKEUPS_DEFINITION = ToolDefinition(
    name="list_wakeups",
    effect="pure",
    description="List this session's armed wake-ups (id, time left, repetition, note).",
    input_schema={"type": "object", "properties": {}, "additionalProperties": False},
)

CANCEL_WAKEUP_DEFINITION = ToolDefinition(
    name="cancel_wakeup",
    description="Cancel one of this session's armed wake-ups by its id (see list_wakeups).",
    input_schema={
        "type": "object",
        # Bounded: a model's 10**30 must be refused here, not overflow a database integer.
        "properties": {"timer_id": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}},
        "additionalProperties": False,
    },
    required_params=("timer_id",),
)

#: The session tool definitions by name, in registration order.
SESSION_TOOL_DEFINITIONS: dict[str, ToolDefinition] = {
    d.name: d
    for d in (
        TODO_DEFINITION,
        SCHEDULE_WAKEUP_DEFINITION,
        LIST_WAKEUPS_DEFINITION,
        CANCEL_WAKEUP_DEFINITION,
        CURRENT_TIME_DEFINITION,
    )
}
SESSION_TOOL_NAMES: tuple[str, ...] = tuple(SESSION_TOOL_DEFINITIONS)
_HANDLERS: dict[str, Any] = {
    "todo": _todo,
    "schedule_wakeup": _schedule_wakeup,
    "list_wakeups": _list_wakeups,
    "cancel_wakeup": _cancel_wakeup,
    "current_time": _current_time,
}


def register_session_tools(
    registry: ToolRegistry, *, include: Iterable[str] | None = None, overwrite: bool = False
) -> list[str]:
    """Register the session tools (all, or ``include``); returns the names registered."""
    names = list(include) if include is not None else list(SESSION_TOOL_NAMES)
    unknown = [n for n in names if n not in SESSION_TOOL_DEFINITIONS]
    if unknown:
        raise ConfigError(f"unknown session tool(s) {unknown}; available: {', '.join(SESSION_TOOL_NAMES)}")
    for name in names:
        registry.register(SESSION_TOOL_DEFINITIONS[name], _HANDLERS[name], overwrite=overwrite)
    return names
