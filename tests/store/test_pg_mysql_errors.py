"""Driver errors map to specific power_loop errors that never reveal the DSN password.

Runs against the real local servers (DSNs from ``POWER_LOOP_TEST_POSTGRES_DSN`` /
``POWER_LOOP_TEST_MYSQL_DSN``). Note: the local PostgreSQL uses ``trust`` authentication, so a wrong
password cannot be rejected there; the PostgreSQL authentication case uses a role that does not exist
(the server answers with the same SQLSTATE class 28 "invalid authorization"), while MariaDB checks a
real wrong password for a user created by the test.
"""

from __future__ import annotations

import os
import socket
import traceback
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from power_loop.errors import (
    StoreAuthError,
    StoreDatabaseMissing,
    StoreError,
    StoreUnavailable,
)

ENV = {"postgres": "POWER_LOOP_TEST_POSTGRES_DSN", "mysql": "POWER_LOOP_TEST_MYSQL_DSN"}
SECRET = "Pw-" + uuid.uuid4().hex  # must never appear in any error text


def dsn_for(backend: str) -> str:
    dsn = os.environ.get(ENV[backend])
    if not dsn:
        message = f"{ENV[backend]} is not set: no {backend} server configured for the store tests"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so this is an error)")
        pytest.skip(message)
    return dsn


def with_parts(
    dsn: str,
    *,
    user: str | None = None,
    password: str | None = None,
    port: int | None = None,
    database: str | None = None,
) -> str:
    parts = urlsplit(dsn)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user or parts.username}:{password}@{host}:{port or parts.port}"
    path = "/" + database if database else parts.path
    return urlunsplit((parts.scheme, netloc, path, parts.query, ""))


async def connect(backend: str, dsn: str) -> Any:
    if backend == "postgres":
        from power_loop.store._postgres import connect_postgres

        return await connect_postgres(dsn, connect_timeout=10)
    from power_loop.store._mysql import connect_mysql

    return await connect_mysql(dsn, connect_timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_no_secret(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for rendering in (str(exc), repr(exc), text):
        assert SECRET not in rendering
    assert "Traceback" in text


@pytest.fixture(params=["postgres", "mysql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_unreachable_server(backend: str) -> None:
    port = free_port()
    with pytest.raises(StoreUnavailable) as info:
        await connect(backend, with_parts(dsn_for(backend), password=SECRET, port=port))
    exc = info.value
    assert type(exc) is StoreUnavailable and exc.code == "store.unavailable"
    assert f"127.0.0.1:{port}" in str(exc) and "running" in str(exc)
    assert_no_secret(exc)


async def test_missing_database(backend: str) -> None:
    name = "pl_missing_" + uuid.uuid4().hex[:8]
    dsn = dsn_for(backend)
    # MariaDB checks the password before the database: keep the real one there (trust auth on PG).
    password = SECRET if backend == "postgres" else (urlsplit(dsn).password or "")
    with pytest.raises(StoreDatabaseMissing) as info:
        await connect(backend, with_parts(dsn, password=password, database=name))
    exc = info.value
    assert exc.code == "store.database_missing" and isinstance(exc, StoreUnavailable)
    assert name in str(exc) and "CREATE DATABASE" in str(exc)
    assert_no_secret(exc)


async def test_postgres_rejected_role() -> None:
    role = "pl_no_role_" + uuid.uuid4().hex[:8]
    with pytest.raises(StoreAuthError) as info:
        await connect("postgres", with_parts(dsn_for("postgres"), user=role, password=SECRET))
    exc = info.value
    assert exc.code == "store.auth_failed" and role in str(exc)
    assert_no_secret(exc)


async def test_mysql_wrong_password() -> None:
    dsn = dsn_for("mysql")
    admin = await connect("mysql", dsn)
    user = "pl_u_" + uuid.uuid4().hex[:8]
    try:
        for host in ("%", "localhost"):
            await admin.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY 'the-right-one'")
        with pytest.raises(StoreAuthError) as info:
            await connect("mysql", with_parts(dsn, user=user, password=SECRET))
        exc = info.value
        assert exc.code == "store.auth_failed" and user in str(exc)
        assert_no_secret(exc)
    finally:
        for host in ("%", "localhost"):
            await admin.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
        await admin.close()


async def test_other_sql_errors_become_store_errors(backend: str) -> None:
    db = await connect(backend, dsn_for(backend))
    try:
        with pytest.raises(StoreError) as info:
            await db.execute("SELECT * FROM pl_table_that_does_not_exist_x")
        assert type(info.value) is StoreError and info.value.code == "store.error"
        assert "pl_table_that_does_not_exist_x" in str(info.value) and db.server in str(info.value)
        assert info.value.__cause__ is not None  # the driver's error stays attached for debugging
        assert await db.fetchone("SELECT 1 AS one") == {"one": 1}
    finally:
        await db.close()
