"""System prompt resolution: per-call > session > loop config > the built-in default, plus a tool catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..tools import ToolRegistry

__all__ = ["DEFAULT_AGENT_SYSTEM_PROMPT", "build_system_prompt", "format_tool_catalog"]

DEFAULT_AGENT_SYSTEM_PROMPT = (
    "You are a capable assistant embedded in an application. Answer directly and accurately. "
    "When a tool can get a better answer than guessing, call it; read each tool result before "
    "deciding what to do next. If a tool fails, explain the failure or try a corrected call. "
    "Keep replies concise unless the user asks for detail."
)


def format_tool_catalog(registry: ToolRegistry, *, header: str = "# Available Tools") -> str:
    """A short, human-readable list of tools (names and descriptions; schemas travel separately)."""
    lines = [header, ""]
    for definition in registry.definitions():
        lines.append(f"- **{definition.name}**: {definition.description}")
    return "\n".join(lines)


def build_system_prompt(
    *,
    per_call: str | None,
    session: str | None,
    configured: str | None,
    registry: ToolRegistry | None,
    inject_catalog: bool,
    catalog_header: str,
) -> str:
    base = per_call or session or configured or DEFAULT_AGENT_SYSTEM_PROMPT
    if inject_catalog and registry is not None and registry.names():
        return f"{base}\n\n{format_tool_catalog(registry, header=catalog_header)}"
    return base
