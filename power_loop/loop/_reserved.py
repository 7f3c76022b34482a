"""Registering the built-in tools a preset only reserved (the context's note and recall tools)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..tools import ToolRegistry

__all__ = ["fill_reserved_tools"]


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
