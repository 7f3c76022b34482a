"""Sub-agents and shared blackboards.

* `AgentSpec` describes a sub-agent; `run_agent_spec` runs one as a child session of the running
  send; `register_spawn_agent` gives a model the ``spawn_agent`` tool to delegate tasks itself.
* `StoreBlackboard` is a board of entries shared by cooperating agents (atomic in the session store);
  `register_blackboard_tools` gives a model ``board_read/post/update/remove``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_dir, lazy_getattr

if TYPE_CHECKING:
    from ._board import (
        BOARD_TOOL_NAMES,
        Blackboard,
        BlackboardEntry,
        SqliteBlackboard,
        StoreBlackboard,
        register_blackboard_tools,
        render_entries,
    )
    from ._run import (
        DEFAULT_DELEGATE_PROMPT,
        RUN_AGENT_DEFINITION,
        SPAWN_AGENT_DEFINITION,
        register_spawn_agent,
        run_agent_spec,
    )
    from ._spec import (
        DEFAULT_MAX_ROUNDS,
        LIFECYCLES,
        MAX_SPEC_ROUNDS,
        AgentSpec,
    )

__all__ = [
    "BOARD_TOOL_NAMES",
    "DEFAULT_DELEGATE_PROMPT",
    "DEFAULT_MAX_ROUNDS",
    "LIFECYCLES",
    "MAX_SPEC_ROUNDS",
    "RUN_AGENT_DEFINITION",
    "SPAWN_AGENT_DEFINITION",
    "AgentSpec",
    "Blackboard",
    "BlackboardEntry",
    "SqliteBlackboard",
    "StoreBlackboard",
    "register_blackboard_tools",
    "register_spawn_agent",
    "render_entries",
    "run_agent_spec",
]

# Loaded on first access: a program that needs only `AgentSpec` (the workflow worker) does not
# pay for the blackboards and the store they bring in.
_LAZY = {
    "BOARD_TOOL_NAMES": "._board",
    "Blackboard": "._board",
    "BlackboardEntry": "._board",
    "SqliteBlackboard": "._board",
    "StoreBlackboard": "._board",
    "register_blackboard_tools": "._board",
    "render_entries": "._board",
    "DEFAULT_DELEGATE_PROMPT": "._run",
    "RUN_AGENT_DEFINITION": "._run",
    "SPAWN_AGENT_DEFINITION": "._run",
    "register_spawn_agent": "._run",
    "run_agent_spec": "._run",
    "DEFAULT_MAX_ROUNDS": "._spec",
    "LIFECYCLES": "._spec",
    "MAX_SPEC_ROUNDS": "._spec",
    "AgentSpec": "._spec",
}
__getattr__ = lazy_getattr(__name__, _LAZY, globals())
__dir__ = lazy_dir(_LAZY, globals())
