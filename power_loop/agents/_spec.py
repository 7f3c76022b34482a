"""`AgentSpec`: a declarative, validated description of one sub-agent."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import AgentSpecError

__all__ = ["DEFAULT_MAX_ROUNDS", "LIFECYCLES", "MAX_SPEC_ROUNDS", "AgentSpec"]

LIFECYCLES = ("ephemeral", "linked", "detached")
"""What happens to a sub-agent's session: deleted when it completes / kept and deleted with its
parent / kept and re-parented to nothing when its parent closes."""

MAX_SPEC_ROUNDS = 50
DEFAULT_MAX_ROUNDS = 20
"""Round limit of a ``spawn_agent`` call that does not name one."""


def _fail(message: str, key: str) -> AgentSpecError:
    return AgentSpecError(f"AgentSpec.{key}: {message}", field=key)


@dataclass(frozen=True)
class AgentSpec:
    """What a sub-agent is: its prompt, tool whitelist, limits and session lifecycle.

    ``tools=None`` inherits every tool of the parent loop; a list is a whitelist (``[]`` = no tools).
    ``output_schema`` is ``{"name": ..., "schema": {...}}`` or a bare JSON Schema; the child's final
    answer is then validated into the result's ``output``. Invalid values raise `AgentSpecError`.
    """

    name: str
    system_prompt: str
    tools: list[str] | None = None
    max_rounds: int = 8
    max_tokens: int = 4000
    temperature: float = 0.0
    model: str | None = None
    output_schema: dict[str, Any] | None = None
    lifecycle: str = "ephemeral"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise _fail("must be a non-empty string", "name")
        if not isinstance(self.system_prompt, str) or not self.system_prompt.strip():
            raise _fail("must be a non-empty string", "system_prompt")
        if self.tools is not None:
            if isinstance(self.tools, (str, bytes)) or not isinstance(self.tools, Sequence):
                raise _fail("must be a list of tool names or null", "tools")
            if not all(isinstance(t, str) and t for t in self.tools):
                raise _fail("every tool name must be a non-empty string", "tools")
            # A private copy: the frozen spec must not change when the caller's list does.
            object.__setattr__(self, "tools", list(self.tools))
        for key, low, high in (("max_rounds", 1, MAX_SPEC_ROUNDS), ("max_tokens", 1, None)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise _fail(f"must be an integer, got {value!r}", key)
            if value < low or (high is not None and value > high):
                raise _fail(f"must be in {low}..{high if high is not None else 'inf'}, got {value}", key)
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float)):
            raise _fail(f"must be a number, got {self.temperature!r}", "temperature")
        if not 0.0 <= float(self.temperature) <= 2.0:
            raise _fail(f"must be in 0..2, got {self.temperature}", "temperature")
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise _fail("must be a non-empty string or null", "model")
        if self.output_schema is not None:
            if not isinstance(self.output_schema, Mapping):
                raise _fail("must be an object ({name, schema} or a JSON Schema) or null", "output_schema")
            object.__setattr__(self, "output_schema", dict(self.output_schema))
        if self.lifecycle not in LIFECYCLES:
            raise _fail(f"must be one of {', '.join(LIFECYCLES)}, got {self.lifecycle!r}", "lifecycle")
        if not isinstance(self.metadata, Mapping):
            raise _fail("must be an object", "metadata")
        object.__setattr__(self, "metadata", dict(self.metadata))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentSpec:
        """Build a spec from a mapping; unknown or missing keys raise `AgentSpecError`."""
        if not isinstance(data, Mapping):
            raise AgentSpecError(f"an AgentSpec must be an object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise AgentSpecError(
                f"AgentSpec has unknown key(s): {', '.join(unknown)} (allowed: {', '.join(sorted(known))})",
                field=unknown[0],
            )
        for required in ("name", "system_prompt"):
            if required not in data:
                raise _fail("is required", required)
        return cls(**{str(k): v for k, v in data.items()})

    @classmethod
    def from_json(cls, text: str | bytes) -> AgentSpec:
        """Parse a JSON object into a spec (invalid JSON raises `AgentSpecError`)."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise AgentSpecError(f"AgentSpec is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def coerce(cls, value: AgentSpec | Mapping[str, Any] | str | bytes) -> AgentSpec:
        """A spec from a spec, a mapping or a JSON string."""
        if isinstance(value, AgentSpec):
            return value
        if isinstance(value, (str, bytes)):
            return cls.from_json(value)
        return cls.from_dict(value)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that `from_dict` turns back into an equal spec."""
        return {
            "name": self.name,
            "system_prompt": self.system_prompt,
            "tools": None if self.tools is None else list(self.tools),
            "max_rounds": self.max_rounds,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "model": self.model,
            "output_schema": None if self.output_schema is None else dict(self.output_schema),
            "lifecycle": self.lifecycle,
            "metadata": dict(self.metadata),
        }
