"""Registering the built-in tools a preset only reserved (the context's note and recall tools), and
the registry a send's ``tools=`` argument names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..tools import ToolRegistry

__all__ = ["fill_reserved_tools", "registry_for"]


def fill_reserved_tools(registry: ToolRegistry) -> ToolRegistry:
    """``registry`` with the note/recall places a preset reserved filled by ``power_loop.context``.

    ``create_default_tool_registry`` (layer ``tools``) cannot register tools of the context layer
    above it, so it reserves their places and the loop fills them here; the context package is only
    imported when there is something to fill.
    """
    if registry.reserved():
        from ..context import register_reserved_tools

        register_reserved_tools(registry)
    return registry


def registry_for(
    base: ToolRegistry | None,
    subsets: dict[tuple[str, ...], ToolRegistry],
    tools: Sequence[str] | ToolRegistry | None,
) -> ToolRegistry | None:
    """The registry a send offers: ``base`` for ``tools=None``, a given registry (reserved places
    filled), or the subset of ``base`` naming ``tools`` (memoized in ``subsets``)."""
    if tools is None:
        return base
    from ..tools import ToolRegistry  # loaded already by whoever built one

    if isinstance(tools, ToolRegistry):
        return fill_reserved_tools(tools)
    if isinstance(tools, str):
        raise ConfigError("tools= takes a list of tool names or a ToolRegistry, not a string")
    key = tuple(tools)
    if base is None:
        raise ConfigError("tools= names tools but the loop has no tool_registry")
    subset = subsets.get(key)
    if subset is None:
        unknown = [name for name in key if not base.has(name)]
        if unknown:
            raise ConfigError(f"tools= names unknown tools: {', '.join(unknown)}")
        subset = subsets[key] = base.subset(key)
    return subset
