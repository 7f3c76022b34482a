"""Tool definitions: what the model sees about a tool, and the optional result envelope."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from ..errors import ConfigError

__all__ = ["TOOL_NAME_PATTERN", "ToolDefinition", "ToolEffect", "ToolHandlerResult"]

#: What running a tool call twice does, which decides what crash recovery may do with a call that
#: started but never finished: ``"pure"`` (no effect outside the result) and ``"idempotent"`` (a
#: repeat changes nothing more) are re-run; ``"side_effect"`` calls are never re-run blindly.
ToolEffect = Literal["pure", "idempotent", "side_effect"]
_EFFECTS = get_args(ToolEffect)

#: Providers (OpenAI, Anthropic) reject tool names outside this pattern; we reject them up front.
TOOL_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _default_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A tool as advertised to the model.

    ``input_schema`` is a JSON Schema for the arguments object; it is validated (not just sent)
    before the handler runs. ``required_params`` is merged into the schema's ``required`` list.
    ``project`` optionally summarises one call for ``ProjectedRepresentation``:
    ``project(args, result_or_None) -> dict | str``. ``effect`` (default ``"side_effect"``: the safe
    assumption for a tool nobody classified) decides crash recovery, see :data:`ToolEffect`.
    """

    name: str
    description: str
    input_schema: dict[str, Any] = field(default_factory=_default_schema)
    required_params: tuple[str, ...] = ()
    project: Callable[[Mapping[str, Any], str | None], dict[str, Any] | str] | None = field(
        default=None, compare=False
    )
    effect: ToolEffect = "side_effect"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not TOOL_NAME_PATTERN.match(self.name):
            raise ConfigError(
                f"invalid tool name {self.name!r}: use 1-64 characters from [a-zA-Z0-9_-] "
                "(LLM providers reject anything else)"
            )
        if not isinstance(self.description, str):
            raise ConfigError(f"tool {self.name!r}: description must be a string")
        if not isinstance(self.input_schema, dict):
            raise ConfigError(f"tool {self.name!r}: input_schema must be a dict (a JSON Schema object)")
        if isinstance(self.required_params, (str, bytes)) or not all(
            isinstance(p, str) for p in self.required_params
        ):
            raise ConfigError(f"tool {self.name!r}: required_params must be a tuple of parameter names")
        if self.effect not in _EFFECTS:
            raise ConfigError(
                f"tool {self.name!r}: effect must be one of {', '.join(_EFFECTS)}, not {self.effect!r}"
            )
        # Accept lists from callers but store an immutable, hashable tuple.
        object.__setattr__(self, "required_params", tuple(self.required_params))

    def parameters_schema(self) -> dict[str, Any]:
        """The JSON Schema actually enforced and advertised: ``input_schema`` + ``required_params``."""
        if not self.required_params:
            return self.input_schema
        schema = dict(self.input_schema)
        required = list(schema.get("required") or [])
        for param in self.required_params:
            if param not in required:
                required.append(param)
        schema["required"] = required
        return schema

    def to_openai_tool(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry: ``{"type": "function", "function": {name, description, parameters}}``."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters_schema(),
            },
        }


@dataclass(slots=True)
class ToolHandlerResult:
    """Optional structured return value of a handler: ``content`` goes to the model, ``data`` is for
    hooks, ``parts`` are content parts (images from ``power_loop.attachment``) sent after the text."""

    ok: bool
    content: str
    data: dict[str, Any] = field(default_factory=dict)
    parts: list[dict[str, Any]] = field(default_factory=list)
