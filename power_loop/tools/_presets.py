"""Built-in tool presets and :func:`create_default_tool_registry`.

Presets name sets of built-in tools: ``core`` (files + bash + asking the user), ``explore`` (read-only
files + bash + asking the user) and ``full`` (everything built in). Tools that touch the filesystem
need an explicit ``workspace_dir``: there is deliberately no fallback to the current directory.

The note and recall tools belong to the context layer, which sits above this one: a preset only
*reserves* their places (:meth:`ToolRegistry.reserve`), and ``power_loop.context.register_reserved_tools``
fills them — ``StatefulAgentLoop`` does so for every registry it is given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import ConfigError, RuntimeEnvError
from ._background import BACKGROUND_TOOL_NAMES, register_background_tools
from ._files import FILE_TOOL_NAMES, register_file_tools
from ._human import register_request_user_input
from ._registry import ToolRegistry
from ._runtime_env import ENV_WORKSPACE, RuntimeEnv
from ._session_tools import register_session_tools
from ._shell import ShellBackend, register_bash_tool
from ._skills import register_skill_tools

__all__ = [
    "CORE_TOOL_NAMES",
    "EXPLORE_TOOL_NAMES",
    "FULL_TOOL_NAMES",
    "TOOL_PRESETS",
    "WORKSPACE_TOOL_NAMES",
    "create_default_tool_registry",
]

CORE_TOOL_NAMES: tuple[str, ...] = (
    "bash",
    "read_file",
    "write_file",
    "edit_file",
    "apply_patch",
    "glob",
    "grep",
    "request_user_input",
)
EXPLORE_TOOL_NAMES: tuple[str, ...] = ("bash", "read_file", "glob", "grep", "request_user_input")
#: Every built-in tool, in the order the published package lists them (minus the ones not built here).
FULL_TOOL_NAMES: tuple[str, ...] = (
    "write_file",
    "read_file",
    "edit_file",
    "apply_patch",
    "bash",
    "glob",
    "grep",
    "todo",
    "note_add",
    "note_update",
    "note_delete",
    "schedule_wakeup",
    "list_wakeups",
    "cancel_wakeup",
    "current_time",
    "recall_compacted",
    "recall_send",
    "background_run",
    "check_background",
    "request_user_input",
)
TOOL_PRESETS: dict[str, tuple[str, ...]] = {
    "core": CORE_TOOL_NAMES,
    "explore": EXPLORE_TOOL_NAMES,
    "full": FULL_TOOL_NAMES,
}
#: Tools that need ``workspace_dir``.
WORKSPACE_TOOL_NAMES: frozenset[str] = frozenset({"bash", "background_run", *FILE_TOOL_NAMES})
# Built-in tools provided by ``power_loop.context`` (reserved here, registered there).
_CONTEXT_TOOLS = frozenset({"note_add", "note_update", "note_delete", "recall_compacted", "recall_send"})
_SESSION_TOOLS = ("todo", "schedule_wakeup", "list_wakeups", "cancel_wakeup", "current_time")


def _select(preset: str | None, include: Sequence[str] | None, exclude: Sequence[str] | None) -> list[str]:
    for label, names in (("include", include), ("exclude", exclude)):
        if isinstance(names, str):
            raise ConfigError(f"{label}= must be a sequence of tool names, not a string ({names!r})")
        unknown = [n for n in names or () if n not in FULL_TOOL_NAMES]
        if unknown:
            raise ConfigError(
                f"unknown built-in tool(s) {unknown} in {label}=; available: {', '.join(FULL_TOOL_NAMES)}"
            )
    if include is not None:
        chosen: Sequence[str] = include
    elif preset is not None:
        if preset not in TOOL_PRESETS:
            raise ConfigError(f"unknown tool preset {preset!r}; available: {', '.join(TOOL_PRESETS)}")
        chosen = TOOL_PRESETS[preset]
    else:
        chosen = FULL_TOOL_NAMES
    dropped = set(exclude or ())
    return [name for name in dict.fromkeys(chosen) if name not in dropped]


def _bound_workspace(needs: list[str], workspace_dir: str | os.PathLike[str] | None) -> os.PathLike[str]:
    """The workspace of a bound registry: ``workspace_dir``, else ``$POWER_LOOP_WORKSPACE``."""
    env = RuntimeEnv.from_env(workspace_dir=workspace_dir)
    if env.workspace_dir is None:
        raise RuntimeEnvError(
            f"tools {needs} need a workspace: pass workspace_dir= or set ${ENV_WORKSPACE} (there is no "
            "fallback to the current directory), pass bind=False to resolve it per call from "
            "runtime_env_context(), or exclude them"
        )
    return env.workspace_dir


def _families(
    selected: set[str],
    needs_workspace: list[str],
    workspace: str | os.PathLike[str] | None,
    shell_backend: ShellBackend | None,
) -> ToolRegistry:
    """A scratch registry with every tool family that has a selected member (a family registers
    all its members at once)."""
    scratch = ToolRegistry()
    if needs_workspace:
        files = [n for n in FILE_TOOL_NAMES if n in selected]
        bound = register_file_tools(scratch, workspace, include=files)
        if "bash" in selected:
            register_bash_tool(scratch, bound, backend=shell_backend)
    background = [n for n in BACKGROUND_TOOL_NAMES if n in selected]
    if background:
        register_background_tools(scratch, workspace, backend=shell_backend, include=background)
    session = [n for n in _SESSION_TOOLS if n in selected]
    if session:
        register_session_tools(scratch, include=session)
    if "request_user_input" in selected:
        register_request_user_input(scratch)
    return scratch


def _in_order(names: list[str], scratch: ToolRegistry) -> ToolRegistry:
    """The selection copied from ``scratch`` in its own order (the order the model sees the tools
    in); the context layer's tools get reserved places."""
    registry = ToolRegistry()
    for name in names:
        entry = scratch.get(name)
        if entry is None:
            assert name in _CONTEXT_TOOLS, name
            registry.reserve(name)
        else:
            registry.register(entry.definition, entry.handler)
    return registry


def create_default_tool_registry(
    *,
    preset: str | None = None,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    workspace_dir: str | os.PathLike[str] | None = None,
    shell_backend: ShellBackend | None = None,
    home_dir: str | os.PathLike[str] | None = None,
    skills_dir: str | os.PathLike[str] | None = None,
    bind: bool = True,
    blackboard: object | None = None,
    blackboard_id: str | None = None,
) -> ToolRegistry:
    """A new registry holding built-in tools.

    Selection: ``include`` (explicit names) wins over ``preset`` (a key of :data:`TOOL_PRESETS`),
    which wins over "all of :data:`FULL_TOOL_NAMES`"; ``exclude`` is removed last. Unknown presets
    or names raise ``ConfigError``, as does selecting a workspace tool (``bash``, file tools)
    without a workspace (``workspace_dir``, else ``$POWER_LOOP_WORKSPACE``: ``RuntimeEnvError``) or
    with one that is not an existing directory. ``shell_backend`` (default
    :class:`LocalShellBackend`) runs ``bash`` and ``background_run`` — *not* a security boundary.

    ``bind=False`` registers the workspace tools unbound: no workspace is needed now, and each call
    uses the workspace (and ``shell_backend``) of the current ``RuntimeEnv`` (``runtime_env_context``).
    ``skills_dir`` also registers ``load_skill`` for that directory; ``home_dir``, ``blackboard`` and
    ``blackboard_id`` are accepted for the published call shape: no built-in tool here uses the home
    directory or a board (the board tools, ``register_blackboard_tools``, take theirs from their own
    arguments or the current ``RuntimeEnv``, as published).

    The note and recall tools live in ``power_loop.context``: here
    their places are only reserved, in order, and ``StatefulAgentLoop`` registers them (the notes
    with the default ``NotesPolicy``) when it is given the registry — or call
    ``power_loop.context.register_reserved_tools(registry)`` yourself. With a ``ContextPipeline``
    that has its own notes policy, exclude them here and let the pipeline register its own.
    """
    names = _select(preset, include, exclude)
    needs_workspace = [n for n in names if n in WORKSPACE_TOOL_NAMES]
    workspace: str | os.PathLike[str] | None = None  # None with bind=False: resolved per call
    if bind and needs_workspace:
        workspace = _bound_workspace(needs_workspace, workspace_dir)
    registry = _in_order(names, _families(set(names), needs_workspace, workspace, shell_backend))
    if skills_dir is not None:
        register_skill_tools(registry, skills_dir=skills_dir)
    return registry
