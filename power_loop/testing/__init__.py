"""The public test kit: a scripted model that calls tools, a virtual clock, assertion helpers for
tool calls and events, ``replay_session`` (a stored conversation against new code), a conformance
checker for your own ``Database`` adapter, and a pytest plugin (``power_loop_*`` fixtures, loaded by
entry point).

Standard library only, so applications can use it in their own test suites.
"""

from __future__ import annotations

from ._asserts import (
    EventRecorder,
    ToolCallRecord,
    assert_events_in_order,
    assert_tool_called,
    assert_tool_not_called,
    find_tool_calls,
)
from ._clock import VirtualClock
from ._conformance import DatabaseFactory, DatabaseReport, check_database
from ._replay import LoopFactory, ReplayDifference, ReplayReport, replay_session
from ._scripted import ScriptedCall, ScriptedLLM, ScriptedTurn, ScriptExhaustedError, Turn

__all__ = [
    "DatabaseFactory",
    "DatabaseReport",
    "EventRecorder",
    "LoopFactory",
    "ReplayDifference",
    "ReplayReport",
    "ScriptExhaustedError",
    "ScriptedCall",
    "ScriptedLLM",
    "ScriptedTurn",
    "ToolCallRecord",
    "Turn",
    "VirtualClock",
    "assert_events_in_order",
    "assert_tool_called",
    "assert_tool_not_called",
    "check_database",
    "find_tool_calls",
    "replay_session",
]
