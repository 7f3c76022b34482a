"""Shared test machinery: every store-backed test runs on each backend.

Fixtures
- ``store_dsn_and_prefix``: ``(dsn, table_prefix)`` for one backend (``sqlite-file``, ``sqlite-memory``,
  ``postgres``, ``mysql``), with a fresh random prefix whose tables are dropped afterwards. Reuse it to
  open loops/stores by DSN on every backend (``":memory:"`` gives each opener its own database).
- ``store``: an open :class:`SessionStore` on each of those backends and on ``aiosqlite``: the
  bring-your-own-driver adapter of ``examples/support/aiosqlite_db.py`` (no DSN of its own, so
  DSN-based tests do not run on it), which proves the storage port is truly pluggable.
- ``loop_dsn_and_prefix``: the same for loop tests, on ``sqlite-file``, ``postgres`` and ``mysql``.
- ``make_store``: ``await make_store()`` opens another store handle on the same database and prefix
  (as a second process would); on ``sqlite-memory`` it shares the in-memory database.
- ``server_backend`` (``postgres`` / ``mysql``), ``server_dsn(backend)`` and
  ``await connect_server(backend, dsn, **pool_options)``: for tests of the server backends' raw
  ``Database`` (no schema, no store).

Server backends read ``POWER_LOOP_TEST_POSTGRES_DSN`` / ``POWER_LOOP_TEST_MYSQL_DSN``. When unset or
unreachable the test is skipped with the reason — unless ``CI`` is set, where that is a failure.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest

from power_loop.errors import MissingDependencyError, StoreError
from power_loop.store import SessionStore, all_table_names, connect_database, open_store

BACKENDS = [
    pytest.param("sqlite-file", id="sqlite-file"),
    pytest.param("sqlite-memory", id="sqlite-memory"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]
# The conformance suite (the ``store`` fixture) also runs on the example's aiosqlite adapter.
STORE_BACKENDS = [*BACKENDS, pytest.param("aiosqlite", id="aiosqlite")]
_EXAMPLE_ADAPTER = Path(__file__).resolve().parent.parent / "examples" / "support" / "aiosqlite_db.py"
_SERVER = {
    "postgres": ("POWER_LOOP_TEST_POSTGRES_DSN", "power_loop.store._postgres"),
    "mysql": ("POWER_LOOP_TEST_MYSQL_DSN", "power_loop.store._mysql"),
}
SERVER_BACKENDS = [b for b in BACKENDS if b.values[0] in _SERVER]


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so server backends are required)")
    pytest.skip(reason)


def _configured_dsn(backend: str) -> str:
    """The test server's DSN from its environment variable (skip, or fail under ``CI``, if unset)."""
    env = _SERVER[backend][0]
    dsn = os.environ.get(env)
    if not dsn:
        _unavailable(f"{backend}: set {env} to a test database DSN to run this backend")
    return dsn


async def _connect_server(backend: str, dsn: str, **pool_options: Any) -> Any:
    """The server backend's own ``Database`` (``connect_postgres`` / ``connect_mysql``)."""
    if backend == "postgres":
        from power_loop.store._postgres import connect_postgres

        return await connect_postgres(dsn, **pool_options)
    from power_loop.store._mysql import connect_mysql

    return await connect_mysql(dsn, **pool_options)


async def _server_dsn(backend: str) -> str:
    module = _SERVER[backend][1]
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            _unavailable(f"{backend}: backend not built")
        raise
    dsn = _configured_dsn(backend)
    try:
        db = await connect_database(dsn)
    except (StoreError, MissingDependencyError, OSError) as exc:
        _unavailable(f"{backend}: server unreachable ({exc})")
        raise
    await db.close()
    return dsn


async def drop_tables(dsn: str, prefix: str) -> None:
    """Drop every table of ``prefix`` (server backends: keeps the shared test database clean)."""
    db = await connect_database(dsn)
    try:
        for name in all_table_names(prefix):
            await db.execute(f"DROP TABLE IF EXISTS {name}")
    finally:
        await db.close()


def _adapter_module() -> ModuleType:
    """The example adapter module, imported by path (examples/ is not a package)."""
    name = "power_loop_example_custom_database_adapter"
    module = sys.modules.get(name)
    if module is None:
        pytest.importorskip("aiosqlite")
        spec = importlib.util.spec_from_file_location(name, _EXAMPLE_ADAPTER)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


@pytest.fixture
def custom_adapter() -> ModuleType:
    """``examples/support/aiosqlite_db.py`` (the aiosqlite implementation of the port)."""
    return _adapter_module()


async def _open_store(backend: str, dsn: str, prefix: str) -> SessionStore:
    if backend == "aiosqlite":
        store: SessionStore = await _adapter_module().open_aiosqlite_store(dsn, table_prefix=prefix)
        return store
    return await open_store(dsn, table_prefix=prefix)


@asynccontextmanager
async def _backend_target(backend: str, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    prefix = f"t{secrets.token_hex(4)}_"
    if backend in ("sqlite-file", "aiosqlite"):
        yield str(tmp_path / "store.db"), prefix
    elif backend == "sqlite-memory":
        yield ":memory:", prefix
    else:
        dsn = await _server_dsn(backend)
        try:
            yield dsn, prefix
        finally:
            await drop_tables(dsn, prefix)


@pytest.fixture(params=BACKENDS)
async def store_dsn_and_prefix(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str]]:
    async with _backend_target(request.param, tmp_path) as target:
        yield target


# Loop tests open several loops on one database (as several processes would), which an in-memory
# SQLite database cannot be shared for; they run on a SQLite file and on both servers.
LOOP_BACKENDS = [b for b in BACKENDS if b.values[0] != "sqlite-memory"]


@pytest.fixture(params=LOOP_BACKENDS)
async def loop_dsn_and_prefix(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str]]:
    async with _backend_target(request.param, tmp_path) as target:
        yield target


@pytest.fixture
def backend_name(store_dsn_and_prefix: tuple[str, str]) -> str:
    """``sqlite``, ``postgres`` or ``mysql`` for the current parametrisation."""
    dsn = store_dsn_and_prefix[0]
    if dsn.startswith("postgres"):
        return "postgres"
    if dsn.startswith("mysql"):
        return "mysql"
    return "sqlite"


@pytest.fixture(params=STORE_BACKENDS)
async def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, str, str]]:
    """``(backend, dsn, table_prefix)`` behind the ``store`` fixture."""
    async with _backend_target(request.param, tmp_path) as (dsn, prefix):
        yield request.param, dsn, prefix


@pytest.fixture
async def store(store_target: tuple[str, str, str]) -> AsyncIterator[SessionStore]:
    s = await _open_store(*store_target)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def make_store(
    store: SessionStore, store_target: tuple[str, str, str]
) -> AsyncIterator[Callable[[], Awaitable[SessionStore]]]:
    backend, dsn, prefix = store_target
    opened: list[SessionStore] = []

    async def make() -> SessionStore:
        if dsn == ":memory:":  # an in-memory database exists only behind its one connection
            return SessionStore(store.db, table_prefix=prefix)
        s = await _open_store(backend, dsn, prefix)
        opened.append(s)
        return s

    try:
        yield make
    finally:
        for s in opened:
            await s.close()


@pytest.fixture(params=SERVER_BACKENDS)
def server_backend(request: pytest.FixtureRequest) -> str:
    """``postgres`` or ``mysql``: tests of a server backend itself."""
    return str(request.param)


@pytest.fixture
def server_dsn() -> Callable[[str], str]:
    """``server_dsn(backend)``: the test server's DSN (skips, or fails under ``CI``, when unset)."""
    return _configured_dsn


@pytest.fixture
def connect_server() -> Callable[..., Awaitable[Any]]:
    """``await connect_server(backend, dsn, **pool_options)``: the backend's raw ``Database``."""
    return _connect_server
