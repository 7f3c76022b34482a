"""The test kit for users: ``check_database`` on good and broken adapters, and the pytest plugin."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from power_loop.errors import StoreError
from power_loop.store import Database, Transaction, connect_database
from power_loop.testing import DatabaseReport, check_database
from power_loop.testing._pytest_plugin import store_backends

ROOT = Path(__file__).resolve().parents[2]


async def test_check_database_passes_on_every_backend(
    store_target: tuple[str, str, str], request: pytest.FixtureRequest
) -> None:
    backend, dsn, _prefix = store_target
    if dsn == ":memory:":
        pytest.skip("a second connection to :memory: opens another database")
    if backend == "aiosqlite":
        adapter = request.getfixturevalue("custom_adapter")  # examples/support/aiosqlite_db.py
        report = await check_database(lambda: adapter.AiosqliteDatabase.open(dsn))
    else:
        report = await check_database(lambda: connect_database(dsn))
    assert report.ok and len(report.passed) == 8, report


class _NoRollback:
    """A broken adapter: ``transact`` runs each statement in autocommit, and integrity errors escape raw."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.dialect = db.dialect

    async def transact(self, work: Any) -> Any:
        return await work(self)

    async def execute(self, sql: str, params: Any = ()) -> int:
        try:
            return int(await self._db.execute(sql, params))
        except StoreError as exc:
            raise sqlite3.IntegrityError(str(exc)) from None  # unmapped driver error

    async def executemany(self, sql: str, rows: Any) -> None:
        for row in rows:
            await self.execute(sql, row)

    async def fetchone(self, sql: str, params: Any = ()) -> Any:
        return await self._db.fetchone(sql, params)

    async def fetchall(self, sql: str, params: Any = ()) -> Any:
        return await self._db.fetchall(sql, params)

    def advisory_lock(self, name: str) -> Any:
        return self._db.advisory_lock(name)

    async def close(self) -> None:
        await self._db.close()


async def test_check_database_reports_every_broken_promise(tmp_path: Path) -> None:
    dsn = f"sqlite:///{tmp_path / 'broken.db'}"

    async def factory() -> Any:
        db = _NoRollback(await connect_database(dsn))
        assert isinstance(db, Database) and isinstance(db, Transaction)
        return db

    report = await check_database(factory, raise_on_failure=False)
    assert isinstance(report, DatabaseReport) and not report.ok
    assert {"transaction_rollback", "integrity_errors_mapped"} <= set(report.failures)
    assert "sessions_round_trip" in report.passed
    with pytest.raises(AssertionError, match="transaction_rollback"):
        await check_database(factory)


class _NoLock(_NoRollback):
    """A broken adapter: its advisory lock excludes nobody."""

    def advisory_lock(self, name: str) -> Any:
        @contextlib.asynccontextmanager
        async def nothing() -> AsyncIterator[None]:
            yield

        return nothing()


async def test_check_database_catches_an_advisory_lock_that_excludes_nobody(tmp_path: Path) -> None:
    dsn = f"sqlite:///{tmp_path / 'nolock.db'}"

    async def factory() -> Any:
        return _NoLock(await connect_database(dsn))

    report = await check_database(factory, raise_on_failure=False)
    assert "advisory_lock" in report.failures
    assert "did not exclude" in report.failures["advisory_lock"]


def test_store_backends_follow_the_environment() -> None:
    assert store_backends({}) == ["sqlite"]
    env = {"POWER_LOOP_TEST_POSTGRES_DSN": "postgresql://x/y", "POWER_LOOP_TEST_MYSQL_DSN": ""}
    assert store_backends(env) == ["sqlite", "postgres"]


@pytest.mark.slow
def test_pytest_plugin_fixtures(tmp_path: Path) -> None:
    (tmp_path / "test_agent.py").write_text(
        textwrap.dedent(
            """
            from power_loop.testing import ScriptedLLM

            async def test_agent(power_loop_loop, power_loop_scripted_llm, power_loop_store):
                power_loop_scripted_llm.push(ScriptedLLM.text("hi"))
                sid = await power_loop_loop.new_session()
                result = await power_loop_loop.send("hello", sid)
                assert result.final_text == "hi"
                assert len(await power_loop_store.load_all_messages(sid)) == 2
            """
        )
    )
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": str(ROOT)}
    plugins = ["-p", "pytest_asyncio.plugin", "-p", "power_loop.testing._pytest_plugin"]
    cmd = [sys.executable, "-m", "pytest", "-q", "-o", "asyncio_mode=auto", *plugins, "test_agent.py"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(store_backends())} passed" in proc.stdout, proc.stdout
