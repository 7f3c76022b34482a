"""Fixtures for loop tests: every test runs on a SQLite file, PostgreSQL and MySQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from power_loop import StatefulAgentLoop


@pytest.fixture
def target(loop_dsn_and_prefix: tuple[str, str]) -> dict[str, str]:
    """Keyword arguments naming this test's database: ``dsn`` and ``table_prefix``."""
    dsn, prefix = loop_dsn_and_prefix
    return {"dsn": dsn, "table_prefix": prefix}


@pytest.fixture
async def make_loop(target: dict[str, str]) -> AsyncIterator[Callable[..., StatefulAgentLoop]]:
    loops: list[StatefulAgentLoop] = []

    def factory(**kwargs: Any) -> StatefulAgentLoop:
        for key, value in target.items():
            kwargs.setdefault(key, value)
        loop = StatefulAgentLoop(**kwargs)
        loops.append(loop)
        return loop

    yield factory
    for loop in loops:
        await loop.aclose()
