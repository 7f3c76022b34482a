"""Fixtures of the bad-input catalogue: ``env`` (a SQLite file) and ``backend_env`` (the SQLite file,
PostgreSQL and MySQL). Both yield a :class:`_harness.Env`; see ``_harness`` for the case API."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _harness import Env, open_env


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    opened = await open_env(str(tmp_path / "catalogue.db"), f"c{secrets.token_hex(3)}_", tmp_path)
    try:
        yield opened
    finally:
        await opened.loop.aclose()


@pytest.fixture
async def backend_env(loop_dsn_and_prefix: tuple[str, str], tmp_path: Path) -> AsyncIterator[Env]:
    dsn, prefix = loop_dsn_and_prefix
    opened = await open_env(dsn, prefix, tmp_path)
    try:
        yield opened
    finally:
        await opened.loop.aclose()
