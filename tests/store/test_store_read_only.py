"""``open_store(read_only=True)``: inspection that never creates, provisions or writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from power_loop import open_store
from power_loop.errors import StoreError, StoreSchemaError


async def test_a_missing_sqlite_file_is_an_error_and_nothing_is_created(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        await open_store(str(tmp_path / "typo" / "x.db"), read_only=True)
    assert not os.listdir(tmp_path)


async def test_an_unprovisioned_file_is_verified_not_provisioned(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(StoreSchemaError):
        await open_store(str(path), read_only=True, schema="auto_create")
    assert os.stat(path).st_size == 0 and os.listdir(tmp_path) == ["empty.db"]


async def test_an_existing_store_reads_and_refuses_writes(tmp_path: Path) -> None:
    dsn = str(tmp_path / "s.db")
    async with await open_store(dsn) as store:
        sid = await store.create_session()
    async with await open_store(dsn, read_only=True) as store:
        assert await store.get_session(sid) is not None
        with pytest.raises(StoreError):
            await store.create_session()
