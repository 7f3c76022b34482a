"""The public test kit: a scripted model that calls tools, a virtual clock, a conformance checker for
your own ``Database`` adapter, and a pytest plugin (``power_loop_*`` fixtures, loaded by entry point).

Standard library only, so applications can use it in their own test suites.
"""

from __future__ import annotations

from ._clock import VirtualClock
from ._conformance import DatabaseFactory, DatabaseReport, check_database
from ._scripted import ScriptedCall, ScriptedLLM, ScriptedTurn, ScriptExhaustedError, Turn

__all__ = [
    "DatabaseFactory",
    "DatabaseReport",
    "ScriptExhaustedError",
    "ScriptedCall",
    "ScriptedLLM",
    "ScriptedTurn",
    "Turn",
    "VirtualClock",
    "check_database",
]
