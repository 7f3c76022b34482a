"""Typed views of the chat messages the loop exchanges: ``ToolCall``, ``AgentMessage``, ``MessageRole``.

The loop itself works on plain OpenAI-shaped dicts (that is what the store keeps and providers take);
these dataclasses are for application code that prefers attributes, and they convert both ways.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from ._types import normalize_tool_call, parse_tool_arguments

__all__ = ["AgentMessage", "MessageRole", "ToolCall"]

MessageRole = Literal["system", "user", "assistant", "tool"]
"""The four roles a chat message can have."""

_ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class ToolCall:
    """One tool call of an assistant message, with its arguments parsed into a dict."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def to_openai_tool_call(self) -> dict[str, Any]:
        """The OpenAI wire shape (``arguments`` as a JSON string), as the loop stores it."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments, ensure_ascii=False)},
        }

    @classmethod
    def from_openai_tool_call(cls, call: Mapping[str, Any]) -> ToolCall:
        """Read a tool call in OpenAI shape (or any shape ``normalize_tool_call`` understands)."""
        norm = normalize_tool_call(call)
        function = norm["function"]
        args, _problem = parse_tool_arguments(function.get("arguments"))
        # Unparsable arguments read as {} (the published behaviour); the loop reports them to the model.
        return cls(id=str(norm.get("id") or ""), name=str(function.get("name") or ""), arguments=args or {})


@dataclass
class AgentMessage:
    """One chat message: ``role``, ``content`` and, for assistant turns, ``tool_calls``."""

    role: MessageRole
    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ValueError(f"AgentMessage.role must be one of {_ROLES}, got {self.role!r}")

    def to_openai_message(self) -> dict[str, Any]:
        """The message as the loop and the providers take it (``metadata`` is not sent)."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [call.to_openai_tool_call() for call in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        return out

    @classmethod
    def from_openai_message(cls, message: Mapping[str, Any]) -> AgentMessage:
        """Read a stored or provider message dict."""
        content = message.get("content")
        return cls(
            role=cast(MessageRole, message.get("role")),
            content=content if content is None or isinstance(content, str) else str(content),
            tool_calls=[ToolCall.from_openai_tool_call(c) for c in message.get("tool_calls") or ()],
            tool_call_id=message.get("tool_call_id"),
            name=message.get("name"),
        )
