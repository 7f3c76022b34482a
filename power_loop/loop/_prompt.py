"""System prompt resolution: per-call > session > loop config > the built-in default, plus a tool catalog."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from ..tools import SkillLoader, ToolDefinition, ToolRegistry
    from ._types import AgentLoopConfig

__all__ = [
    "DEFAULT_AGENT_SYSTEM_PROMPT",
    "ToolsLike",
    "attach_skills",
    "build_system_prompt",
    "format_tool_catalog",
    "loop_system_prompt",
    "tool_entries",
]

ToolsLike: TypeAlias = "ToolRegistry | Iterable[ToolDefinition | Mapping[str, Any]]"
"""A registry, tool definitions, or tool dicts in the OpenAI shape."""

DEFAULT_AGENT_SYSTEM_PROMPT = (
    "You are a capable assistant embedded in an application. Answer directly and accurately. "
    "When a tool can get a better answer than guessing, call it; read each tool result before "
    "deciding what to do next. If a tool fails, explain the failure or try a corrected call. "
    "Keep replies concise unless the user asks for detail."
)


def tool_entries(tools: ToolsLike) -> list[tuple[str, str]]:
    """``(name, description)`` of a registry, definitions or OpenAI-style tool dicts."""
    from ..tools import ToolDefinition, ToolRegistry  # a catalog is built only when there are tools

    items: Iterable[ToolDefinition | Mapping[str, Any]] = (
        tools.definitions() if isinstance(tools, ToolRegistry) else tools
    )
    out: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, ToolDefinition):
            out.append((item.name, item.description))
            continue
        inner = item.get("function")
        function = inner if isinstance(inner, Mapping) else item
        out.append((str(function.get("name", "")), str(function.get("description", "") or "")))
    return out


def format_tool_catalog(tools: ToolsLike, *, header: str = "# Available Tools") -> str:
    """``header`` then one ``- **name**: description`` line per tool (schemas travel separately).

    ``tools`` is a ``ToolRegistry``, ``ToolDefinition``s, or tool dicts in the OpenAI shape.
    """
    lines = [header, ""]
    lines.extend(f"- **{name}**: {description}" for name, description in tool_entries(tools))
    return "\n".join(lines)


def build_system_prompt(
    *,
    per_call: str | None,
    session: str | None,
    configured: str | None,
    registry: ToolRegistry | None,
    inject_catalog: bool,
    catalog_header: str,
    skills_section: str = "",
) -> str:
    base = per_call or session or configured or DEFAULT_AGENT_SYSTEM_PROMPT
    parts = [base]
    if inject_catalog and registry is not None and registry.names():
        parts.append(format_tool_catalog(registry, header=catalog_header))
    if skills_section:
        parts.append(skills_section)
    return "\n\n".join(parts)


def loop_system_prompt(
    config: AgentLoopConfig,
    skills: SkillLoader | None,
    per_call: str | None,
    session: str | None,
    registry: ToolRegistry | None,
) -> str:
    """:func:`build_system_prompt` with a loop's configuration and skills."""
    return build_system_prompt(
        per_call=per_call,
        session=session,
        configured=config.system_prompt,
        registry=registry,
        inject_catalog=config.inject_tool_descriptions,
        catalog_header=config.tool_catalog_header,
        skills_section=skills.build_system_prompt_section() if skills is not None else "",
    )


def attach_skills(
    skills_dir: str | None, registry: ToolRegistry | None
) -> tuple[SkillLoader | None, ToolRegistry | None]:
    """A loop's skills: the loader for ``skills_dir`` and the registry with ``load_skill`` added
    (created when the loop had none); ``(None, registry)`` without a skills directory."""
    if skills_dir is None:
        return None, registry
    from ..tools import (  # only for skills
        LOAD_SKILL_DEFINITION,
        SkillLoader,
        ToolRegistry,
        register_skill_tools,
    )

    loader = SkillLoader(skills_dir)
    if registry is None:
        registry = ToolRegistry()
    if not registry.has(LOAD_SKILL_DEFINITION.name):
        register_skill_tools(registry, loader=loader)
    return loader, registry
