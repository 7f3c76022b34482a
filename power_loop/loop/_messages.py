"""Conversions between stored rows and provider-shape message dicts.

Both the warm path (messages appended to a cached window) and the cold path (rows loaded from the
store) build dicts with `message_dict`, so a cold loop produces byte-identical requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import hooks as H
from .. import store as S
from ..errors import ConfigError, SessionNotFoundError
from ..hooks import HookPoint

if TYPE_CHECKING:
    from ..hooks import AgentHooks
    from ..store import NewMessage, SessionStore

__all__ = [
    "call_name",
    "message_dict",
    "row_to_message",
    "run_message_hooks",
    "session_messages",
    "user_content",
    "user_row",
]


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
    """A stored `MessageRow` (or a `NewMessage` about to be stored) as the dict the provider sees."""
    return message_dict(
        row.role,
        row.content,
        name=row.name,
        tool_calls=row.tool_calls,
        tool_call_id=row.tool_call_id,
    )


async def session_messages(
    store: SessionStore, session_id: str, include_compacted: bool
) -> list[dict[str, Any]]:
    """A session's messages as provider-shape dicts: the active window, or every stored row."""
    if await store.get_session(session_id) is None:
        raise SessionNotFoundError(session_id)
    load = store.load_all_messages if include_compacted else store.load_active_messages
    return [row_to_message(row) for row in await load(session_id)]


def user_content(user_input: Any) -> tuple[str | list[dict[str, Any]], str | None]:
    """Validate a `send` input: a string, or a ``{"role": "user", "content": ...}`` dict whose content
    is a string or a list of content parts (text, images, PDFs: see ``power_loop.attachment``)."""
    if isinstance(user_input, str):
        return user_input, None
    if isinstance(user_input, dict):
        role = user_input.get("role", "user")
        content = user_input.get("content")
        if role != "user":
            raise ConfigError(f"send() accepts user messages only, got role={role!r}")
        if not isinstance(content, str):
            from ..llm import validate_parts  # only sends with content parts load it

            content = validate_parts(content)
        name = user_input.get("name")
        return content, name if isinstance(name, str) else None
    raise ConfigError(f"send() expects a str or a user message dict, got {type(user_input).__name__}")


async def user_row(
    hooks: AgentHooks, session_id: str, content: str | list[dict[str, Any]], name: str | None
) -> NewMessage:
    """A send's user row, as the ``message.append`` hooks leave it (still a user message with text
    or content parts)."""
    user = S.NewMessage(role="user", content=content, name=name, round_index=0)
    if not hooks.has(HookPoint.MESSAGE_APPEND):
        return user
    (user,) = await run_message_hooks(hooks, session_id, [user])
    if user.role != "user" or not isinstance(user.content, (str, list)):
        raise ConfigError("a message.append hook must keep a user message a user message with content")
    return user


async def run_message_hooks(
    hooks: AgentHooks, session_id: str, messages: list[NewMessage]
) -> list[NewMessage]:
    """``message.append`` hooks see each message before it is written and may replace it.

    A replacement must keep the history valid (the store refuses, e.g., a result for an unknown call).
    """
    out: list[NewMessage] = []
    for message in messages:
        shown = row_to_message(message)
        ctx = H.MessageAppendCtx(session_id=session_id, round_index=message.round_index or 0, message=shown)
        await hooks.run(HookPoint.MESSAGE_APPEND, ctx)
        edited = ctx.message
        if edited is shown and edited == row_to_message(message):
            out.append(message)
            continue
        out.append(
            S.NewMessage(
                role=str(edited.get("role", message.role)),
                content=edited.get("content"),
                name=edited.get("name"),
                tool_calls=edited.get("tool_calls"),
                tool_call_id=edited.get("tool_call_id"),
                round_index=message.round_index,
                meta=message.meta,
            )
        )
    return out


def call_name(call: dict[str, Any]) -> str:
    fn = call.get("function")
    return str(fn.get("name", "")) if isinstance(fn, dict) else ""


def call_args(call: dict[str, Any]) -> dict[str, Any]:
    """A tool call's arguments as a dict (``{}`` when they do not parse)."""
    from ..llm import parse_tool_arguments  # the llm types load with the engine anyway

    fn = call.get("function")
    raw = fn.get("arguments") if isinstance(fn, dict) else None
    parsed, _error = parse_tool_arguments(raw)
    return parsed if parsed is not None else {}
