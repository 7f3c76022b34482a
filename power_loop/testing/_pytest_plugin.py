"""The pytest plugin of power_loop (entry point ``pytest11``: loaded wherever the package is installed).

It adds fixtures, all named ``power_loop_*`` so they never shadow a project's own ``loop`` or
``store`` fixtures:

* ``power_loop_scripted_llm`` — a fresh, empty :class:`~power_loop.testing.ScriptedLLM` (``push`` turns);
* ``power_loop_store`` — an open :class:`~power_loop.store.SessionStore`, parametrized per backend:
  SQLite in ``tmp_path`` always, PostgreSQL / MySQL when ``POWER_LOOP_TEST_POSTGRES_DSN`` /
  ``POWER_LOOP_TEST_MYSQL_DSN`` are set (each test gets its own table prefix, dropped afterwards);
* ``power_loop_loop`` — a :class:`~power_loop.loop.StatefulAgentLoop` on those two.

The store and loop fixtures are async: they need ``pytest-asyncio`` (any mode) and are left out
without it. This module imports nothing outside the standard library until pytest configures it.
"""

from __future__ import annotations

import os
import types
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..loop import StatefulAgentLoop
from ..store import SessionStore, all_table_names, connect_database, open_store
from ._scripted import ScriptedLLM

#: Environment variables naming the server databases the ``power_loop_store`` fixture also runs on.
DSN_ENV = {"postgres": "POWER_LOOP_TEST_POSTGRES_DSN", "mysql": "POWER_LOOP_TEST_MYSQL_DSN"}


def store_backends(environ: Any = None) -> list[str]:
    """The backends ``power_loop_store`` is parametrized over: SQLite plus every configured server."""
    env = os.environ if environ is None else environ
    return ["sqlite", *(name for name, var in DSN_ENV.items() if env.get(var))]


def pytest_configure(config: Any) -> None:
    """Register the fixtures (built here, so importing this module never needs pytest)."""
    config.pluginmanager.register(_fixtures_module(), "power_loop.fixtures")


def _fixtures_module() -> types.ModuleType:
    import pytest

    module = types.ModuleType("power_loop_fixtures")

    @pytest.fixture
    def power_loop_scripted_llm() -> ScriptedLLM:
        """A fresh ScriptedLLM with an empty script."""
        return ScriptedLLM()

    module.power_loop_scripted_llm = power_loop_scripted_llm  # type: ignore[attr-defined]
    try:
        import pytest_asyncio
    except ImportError:  # the async fixtures need pytest-asyncio
        return module

    @pytest_asyncio.fixture(params=store_backends())
    async def power_loop_store(request: Any, tmp_path: Path) -> AsyncIterator[SessionStore]:
        """An open SessionStore on each configured backend, with a table prefix of its own."""
        backend: str = request.param
        dsn = str(tmp_path / "power_loop_test.db") if backend == "sqlite" else os.environ[DSN_ENV[backend]]
        prefix = f"plt{uuid.uuid4().hex[:10]}_"
        store = await open_store(dsn, table_prefix=prefix)
        try:
            yield store
        finally:
            await store.close()
            if backend != "sqlite":
                db = await connect_database(dsn)
                try:
                    for name in all_table_names(prefix):
                        await db.execute(f"DROP TABLE IF EXISTS {name}")
                finally:
                    await db.close()

    @pytest_asyncio.fixture
    async def power_loop_loop(
        power_loop_scripted_llm: ScriptedLLM, power_loop_store: SessionStore
    ) -> AsyncIterator[StatefulAgentLoop]:
        """A StatefulAgentLoop on ``power_loop_scripted_llm`` and ``power_loop_store``."""
        async with StatefulAgentLoop(llm=power_loop_scripted_llm, store=power_loop_store) as loop:
            yield loop

    module.power_loop_store = power_loop_store  # type: ignore[attr-defined]
    module.power_loop_loop = power_loop_loop  # type: ignore[attr-defined]
    return module
