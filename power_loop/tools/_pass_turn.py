"""``pass_turn``: an agent may decline to answer (multi-agent rooms, a moderator that only speaks
when needed). The call is answered and stored like any other; the send then ends ``completed`` with
``StatefulResult.passed`` set and no reply text."""

from __future__ import annotations

from typing import NoReturn

from ._definition import ToolDefinition
from ._registry import ToolRegistry

__all__ = ["PASS_TURN_TOOL", "TurnPassed", "register_pass_turn", "request_pass"]


class TurnPassed(Exception):
    """Raised by a tool handler to end the send without a reply (see :func:`request_pass`)."""

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        super().__init__(reason)


def request_pass(reason: str = "") -> NoReturn:
    """End the current send without a reply; the model's turn is passed (raises :class:`TurnPassed`)."""
    raise TurnPassed(str(reason))


PASS_TURN_TOOL = ToolDefinition(
    name="pass_turn",
    description=(
        "Decline to reply this turn, when nothing you could say would help (say why in reason). The "
        "conversation goes on without an answer from you."
    ),
    input_schema={
        "type": "object",
        "properties": {"reason": {"type": "string", "description": "Why you pass."}},
        "required": ["reason"],
        "additionalProperties": False,
    },
)


def register_pass_turn(registry: ToolRegistry, *, overwrite: bool = False) -> None:
    """Register ``pass_turn`` (``PASS_TURN_TOOL``)."""

    def pass_turn(reason: str) -> NoReturn:
        request_pass(reason)

    registry.register(PASS_TURN_TOOL, pass_turn, overwrite=overwrite)
