"""Shared helpers for loop tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from power_loop import ToolDefinition, ToolRegistry


def check_history(messages: list[dict[str, Any]]) -> None:
    """SPEC §2.4: every assistant tool call has exactly one result and every result has its call."""
    open_calls: dict[str, int] = {}
    answered: set[str] = set()
    for msg in messages:
        if msg["role"] == "assistant":
            assert not open_calls, f"assistant turn while calls are open: {open_calls}"
            answered.clear()  # ids are unique per assistant turn (a scripted model reuses them later)
            for call in msg.get("tool_calls") or []:
                open_calls[call["id"]] = 1
        elif msg["role"] == "tool":
            call_id = msg["tool_call_id"]
            assert call_id in open_calls, f"tool result without a call: {call_id}"
            assert call_id not in answered, f"duplicate result for {call_id}"
            del open_calls[call_id]
            answered.add(call_id)
        else:
            assert not open_calls, f"{msg['role']} turn while calls are open: {open_calls}"
    assert not open_calls, f"unanswered calls at the end: {open_calls}"


def make_tools(**handlers: Callable[..., Any]) -> ToolRegistry:
    """A registry of tools taking one string argument ``x`` (handlers get ``x=...``)."""
    registry = ToolRegistry()
    for name, handler in handlers.items():
        registry.register(
            ToolDefinition(
                name=name,
                description=f"test tool {name}",
                input_schema={"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]},
            ),
            handler,
        )
    return registry
