"""Fixtures for loop tests: a fresh SQLite file per test and a helper to build loops on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from power_loop import StatefulAgentLoop


@pytest.fixture
def dsn(tmp_path: Path) -> str:
    return str(tmp_path / "loop.db")


@pytest.fixture
async def make_loop(dsn: str) -> AsyncIterator[Callable[..., StatefulAgentLoop]]:
    loops: list[StatefulAgentLoop] = []

    def factory(**kwargs: Any) -> StatefulAgentLoop:
        kwargs.setdefault("dsn", dsn)
        loop = StatefulAgentLoop(**kwargs)
        loops.append(loop)
        return loop

    yield factory
    for loop in loops:
        await loop.aclose()
