"""Sub-agents and shared blackboards.

* `AgentSpec` describes a sub-agent; `run_agent_spec` runs one as a child session of the running
  send; `register_spawn_agent` gives a model the ``spawn_agent`` tool to delegate tasks itself.
* `StoreBlackboard` is a board of entries shared by cooperating agents (atomic in the session store);
  `register_blackboard_tools` gives a model ``board_read/post/update/remove``.
"""

from __future__ import annotations

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
from ._spec import DEFAULT_MAX_ROUNDS, LIFECYCLES, MAX_SPEC_ROUNDS, AgentSpec

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
