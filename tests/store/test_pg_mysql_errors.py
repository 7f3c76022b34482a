"""Driver errors map to specific power_loop errors that never reveal the DSN password.

Runs against the real local servers (DSNs from ``POWER_LOOP_TEST_POSTGRES_DSN`` /
``POWER_LOOP_TEST_MYSQL_DSN``). Note: the local PostgreSQL uses ``trust`` authentication, so a wrong
password cannot be rejected there; the PostgreSQL authentication case uses a role that does not exist
(the server answers with the same SQLSTATE class 28 "invalid authorization"), while MariaDB checks a
real wrong password for a user created by the test.
"""

from __future__ import annotations

import socket
import traceback
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from power_loop.errors import (
    StoreAuthError,
    StoreDatabaseMissing,
    StoreError,
    StoreSchemaError,
    StoreUnavailable,
)

DsnFor = Callable[[str], str]
ConnectServer = Callable[..., Awaitable[Any]]  # the conftest fixtures
SECRET = "Pw-" + uuid.uuid4().hex  # must never appear in any error text


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_no_secret(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for rendering in (str(exc), repr(exc), text):
        assert SECRET not in rendering
    assert "Traceback" in text


async def test_unreachable_server(
    server_backend: str, server_dsn: DsnFor, connect_server: ConnectServer
) -> None:
    port = free_port()
    with pytest.raises(StoreUnavailable) as info:
        await connect_server(
            server_backend,
            with_parts(server_dsn(server_backend), password=SECRET, port=port),
            connect_timeout=10,
        )
    exc = info.value
    assert type(exc) is StoreUnavailable and exc.code == "store.unavailable"
    assert f"127.0.0.1:{port}" in str(exc) and "running" in str(exc)
    assert_no_secret(exc)


async def test_missing_database(
    server_backend: str, server_dsn: DsnFor, connect_server: ConnectServer
) -> None:
    name = "pl_missing_" + uuid.uuid4().hex[:8]
    dsn = server_dsn(server_backend)
    # MariaDB checks the password before the database: keep the real one there (trust auth on PG).
    password = SECRET if server_backend == "postgres" else (urlsplit(dsn).password or "")
    with pytest.raises(StoreDatabaseMissing) as info:
        await connect_server(
            server_backend, with_parts(dsn, password=password, database=name), connect_timeout=10
        )
    exc = info.value
    assert exc.code == "store.database_missing" and isinstance(exc, StoreUnavailable)
    assert name in str(exc) and "CREATE DATABASE" in str(exc)
    assert_no_secret(exc)


async def test_postgres_rejected_role(server_dsn: DsnFor, connect_server: ConnectServer) -> None:
    role = "pl_no_role_" + uuid.uuid4().hex[:8]
    with pytest.raises(StoreAuthError) as info:
        await connect_server(
            "postgres", with_parts(server_dsn("postgres"), user=role, password=SECRET), connect_timeout=10
        )
    exc = info.value
    assert exc.code == "store.auth_failed" and role in str(exc)
    assert_no_secret(exc)


async def test_mysql_wrong_password(server_dsn: DsnFor, connect_server: ConnectServer) -> None:
    dsn = server_dsn("mysql")
    admin = await connect_server("mysql", dsn, connect_timeout=10)
    user = "pl_u_" + uuid.uuid4().hex[:8]
    try:
        for host in ("%", "localhost"):
            await admin.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY 'the-right-one'")
        with pytest.raises(StoreAuthError) as info:
            await connect_server("mysql", with_parts(dsn, user=user, password=SECRET), connect_timeout=10)
        exc = info.value
        assert exc.code == "store.auth_failed" and user in str(exc)
        assert_no_secret(exc)
    finally:
        for host in ("%", "localhost"):
            await admin.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
        await admin.close()


async def test_other_sql_errors_become_store_errors(
    server_backend: str, server_dsn: DsnFor, connect_server: ConnectServer
) -> None:
    db = await connect_server(server_backend, server_dsn(server_backend), connect_timeout=10)
    try:
        with pytest.raises(StoreError) as info:
            await db.execute("SELECT nope_x FROM (SELECT 1 AS one) AS t")
        assert type(info.value) is StoreError and info.value.code == "store.error"
        assert "nope_x" in str(info.value) and db.server in str(info.value)
        assert info.value.__cause__ is not None  # the driver's error stays attached for debugging
        assert await db.fetchone("SELECT 1 AS one") == {"one": 1}
        # A missing table says how to get it back (a table dropped under an open store).
        with pytest.raises(StoreSchemaError) as missing:
            await db.execute("SELECT * FROM pl_table_that_does_not_exist_x")
        assert missing.value.code == "store.schema_mismatch" and "auto_create" in str(missing.value)
        assert "pl_table_that_does_not_exist_x" in str(missing.value) and db.server in str(missing.value)
        assert await db.fetchone("SELECT 1 AS one") == {"one": 1}
    finally:
        await db.close()
