"""Filling the places a registry reserved for the context's built-in tools (notes and recall).

``power_loop.tools.create_default_tool_registry`` sits below this layer, so for ``note_*`` and
``recall_*`` it only reserves places in the registry's order; this registers the tools there.
``StatefulAgentLoop`` calls it for every registry it is given, so a preset behaves as if it had
registered them itself.
"""

from __future__ import annotations

from ..tools import ToolRegistry
from ._notes import DEFAULT_NOTES_POLICY, NOTE_TOOL_NAMES, NotesPolicy, register_note_tools
from ._recall import RECALL_TOOL_NAMES, register_recall_tools

__all__ = ["CONTEXT_TOOL_NAMES", "register_reserved_tools"]

#: The built-in tools this package provides to presets.
CONTEXT_TOOL_NAMES: tuple[str, ...] = (*NOTE_TOOL_NAMES, *RECALL_TOOL_NAMES)


def register_reserved_tools(
    registry: ToolRegistry, *, notes_policy: NotesPolicy = DEFAULT_NOTES_POLICY
) -> list[str]:
    """Register the note/recall tools whose places ``registry`` reserved, in those places.

    Returns the names registered (none when nothing of ours is reserved); other reservations are
    left alone. The note tools enforce ``notes_policy``.
    """
    wanted = [name for name in registry.reserved() if name in CONTEXT_TOOL_NAMES]
    if not wanted:
        return []
    scratch = ToolRegistry()
    if any(name in NOTE_TOOL_NAMES for name in wanted):
        register_note_tools(scratch, policy=notes_policy)
    if any(name in RECALL_TOOL_NAMES for name in wanted):
        register_recall_tools(scratch)
    for name in wanted:
        entry = scratch.get(name)
        assert entry is not None, name
        registry.register(entry.definition, entry.handler)
    return wanted
