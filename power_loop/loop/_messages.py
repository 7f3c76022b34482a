"""Conversions between stored rows and provider-shape message dicts.

Both the warm path (messages appended to a cached window) and the cold path (rows loaded from the
store) build dicts with `message_dict`, so a cold loop produces byte-identical requests.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError

__all__ = ["message_dict", "row_to_message", "user_content"]


def message_dict(
    role: str,
    content: Any,
    *,
    name: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    tool_call_id: str | None = None,
) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": role, "content": content}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    if tool_call_id is not None:
        msg["tool_call_id"] = tool_call_id
    if name is not None:
        msg["name"] = name
    return msg


def row_to_message(row: Any) -> dict[str, Any]:
    """A stored `MessageRow` as the dict the provider sees."""
    return message_dict(
        row.role,
        row.content,
        name=row.name,
        tool_calls=row.tool_calls,
        tool_call_id=row.tool_call_id,
    )


def user_content(user_input: Any) -> tuple[str, str | None]:
    """Validate a `send` input: a string, or a ``{"role": "user", "content": str}`` dict."""
    if isinstance(user_input, str):
        return user_input, None
    if isinstance(user_input, dict):
        role = user_input.get("role", "user")
        content = user_input.get("content")
        if role != "user":
            raise ConfigError(f"send() accepts user messages only, got role={role!r}")
        if not isinstance(content, str):
            raise ConfigError("a user message dict needs a string 'content'")
        name = user_input.get("name")
        return content, name if isinstance(name, str) else None
    raise ConfigError(f"send() expects a str or a user message dict, got {type(user_input).__name__}")
