"""Human input: a tool can pause the run and ask the user something.

A handler calls :func:`request_user_input`, which raises :class:`HumanInputRequired`. The exception is
control flow, not a failure: ``execute_tool_call`` lets it propagate so the loop can persist the
request as pending, end the send with ``waiting_for_input`` and continue when ``submit_input`` brings
the answer (possibly in another process).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import ConfigError
from ._definition import ToolDefinition

if TYPE_CHECKING:
    from ._registry import ToolRegistry

__all__ = [
    "REQUEST_USER_INPUT_DEFINITION",
    "HumanInputRequired",
    "register_request_user_input",
    "request_user_input",
]


def _new_interaction_id() -> str:
    return "input_" + secrets.token_hex(8)


class HumanInputRequired(Exception):
    """Raised by a tool to pause the run until a human answers ``prompt``.

    ``kind`` is a UI hint (``"text"``, ``"confirm"``, ``"choice"``, ...); ``options`` are choices as
    ``{"id", "label", "description"?}`` dicts; ``interaction_id`` identifies the request when the
    answer is submitted.
    """

    def __init__(
        self,
        kind: str = "text",
        prompt: str = "",
        options: Sequence[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        interaction_id: str | None = None,
    ) -> None:
        self.kind = kind
        self.prompt = prompt
        self.options: list[dict[str, Any]] = [dict(o) for o in options or ()]
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.interaction_id = interaction_id or _new_interaction_id()
        super().__init__(prompt)

    def __repr__(self) -> str:
        return (
            f"HumanInputRequired(kind={self.kind!r}, prompt={self.prompt!r}, options={self.options!r}, "
            f"metadata={self.metadata!r}, interaction_id={self.interaction_id!r})"
        )

    def to_pending(self, *, tool_call_id: str, tool_name: str = "request_user_input") -> dict[str, Any]:
        """A JSON-able record of the request, for the session's pending state."""
        return {
            "interaction_id": self.interaction_id,
            "tool_call_id": tool_call_id,
            "tool_name": tool_name,
            "kind": self.kind,
            "prompt": self.prompt,
            "options": [dict(o) for o in self.options],
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_pending(cls, record: Mapping[str, Any]) -> HumanInputRequired:
        """Rebuild the request from a :meth:`to_pending` record (e.g. in another process)."""
        return cls(
            kind=str(record.get("kind", "text")),
            prompt=str(record.get("prompt", "")),
            options=record.get("options") or None,
            metadata=record.get("metadata") or None,
            interaction_id=record.get("interaction_id") or None,
        )


def request_user_input(
    *,
    prompt: str,
    kind: str = "text",
    options: Sequence[Mapping[str, Any] | str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> NoReturn:
    """Pause the current run and ask the user; never returns (raises :class:`HumanInputRequired`).

    ``options`` may be given as plain strings, which become ``{"id": s, "label": s}``.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigError("request_user_input needs a non-empty prompt")
    normalised: list[dict[str, Any]] = []
    for option in options or ():
        if isinstance(option, str):
            normalised.append({"id": option, "label": option})
        elif isinstance(option, Mapping) and "id" in option:
            normalised.append({"label": str(option["id"]), **option})
        else:
            raise ConfigError(
                f"request_user_input option must be a string or a dict with an 'id': {option!r}"
            )
    raise HumanInputRequired(kind=kind, prompt=prompt, options=normalised, metadata=metadata)


REQUEST_USER_INPUT_DEFINITION = ToolDefinition(
    name="request_user_input",
    effect="pure",
    description=(
        "Ask the user a question and wait for the answer. Use it when you cannot proceed without a "
        "decision or information only the user has. The run pauses until the user replies; the reply "
        "arrives as this tool's result."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "minLength": 1, "description": "The question to show the user."},
            "kind": {
                "type": "string",
                "default": "text",
                "description": "How to ask: 'text' (free answer), 'confirm' (yes/no) or 'choice' (pick an option).",
            },
            "options": {
                "type": "array",
                "description": "Choices for kind='choice'.",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "label": {"type": "string"},
                        "description": {"type": "string"},
                    },
                    "required": ["id", "label"],
                },
            },
            "metadata": {"type": "object", "description": "Extra data for the application's UI."},
        },
        "additionalProperties": False,
    },
    required_params=("prompt",),
)


async def _request_user_input_tool(
    prompt: str,
    kind: str = "text",
    options: list[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None,
) -> NoReturn:
    # async so the loop raises it inline instead of hopping to a worker thread first
    request_user_input(prompt=prompt, kind=kind, options=options, metadata=metadata)


def register_request_user_input(registry: ToolRegistry, *, overwrite: bool = False) -> None:
    """Register the model-facing ``request_user_input`` tool on ``registry``."""
    registry.register(REQUEST_USER_INPUT_DEFINITION, _request_user_input_tool, overwrite=overwrite)
