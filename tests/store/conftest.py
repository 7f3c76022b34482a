"""Fixtures for tests that drive one database from several OS processes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from power_loop.store import SessionStore, open_store


@pytest.fixture
async def shared(loop_dsn_and_prefix: tuple[str, str]) -> AsyncIterator[tuple[str, str, SessionStore]]:
    """``(dsn, prefix, store)`` on a file or server database that worker processes can also open."""
    dsn, prefix = loop_dsn_and_prefix
    store = await open_store(dsn, table_prefix=prefix)
    try:
        yield dsn, prefix, store
    finally:
        await store.close()
