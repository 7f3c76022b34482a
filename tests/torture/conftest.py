"""Torture suites: real processes killed at random points, then recovered (marker ``torture``).

Each test runs a CI-sized number of kills by default; set ``POWER_LOOP_TORTURE_N`` for more. The
multi-backend fixtures come from ``tests/conftest.py``; ``loop_helpers`` from ``tests/loop``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "loop"))

import pytest


@pytest.fixture
def target(loop_dsn_and_prefix: tuple[str, str]) -> dict[str, str]:
    """``dsn`` and ``table_prefix`` of this test's database (SQLite file, PostgreSQL, MySQL)."""
    dsn, prefix = loop_dsn_and_prefix
    return {"dsn": dsn, "table_prefix": prefix}


@pytest.fixture
async def make_loop(target: dict[str, str]) -> Any:
    """``make_loop(**kwargs)`` opens a loop on this test's database; all are closed afterwards."""
    from power_loop import StatefulAgentLoop

    loops: list[StatefulAgentLoop] = []

    def factory(**kwargs: Any) -> StatefulAgentLoop:
        for key, value in target.items():
            kwargs.setdefault(key, value)
        loops.append(StatefulAgentLoop(**kwargs))
        return loops[-1]

    factory.dsn = target["dsn"]  # type: ignore[attr-defined]
    yield factory
    for loop in loops:
        await loop.aclose()
