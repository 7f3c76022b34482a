"""The public test kit: a scripted model that calls tools and a virtual clock.

Standard library only, so applications can use it in their own test suites.
"""

from __future__ import annotations

from ._clock import VirtualClock
from ._scripted import ScriptedCall, ScriptedLLM, ScriptedTurn, ScriptExhaustedError, Turn

__all__ = ["ScriptExhaustedError", "ScriptedCall", "ScriptedLLM", "ScriptedTurn", "Turn", "VirtualClock"]
