"""Catalogue: store DSNs — malformed, unknown schemes, missing drivers, unreachable or refusing servers.
Each ends with a stable code, no error text shows a password, and the environment's session stays
valid (see ``_harness``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from _harness import Case, Env, params, run_case

from power_loop import PowerLoopError, StatefulAgentLoop
from power_loop.store import open_store
from power_loop.testing import ScriptedLLM

INVALID, UNAVAILABLE, MISSING_DB = "store.invalid_dsn", "store.unavailable", "store.database_missing"
AUTH, DEPENDENCY = "store.auth_failed", "dependency.missing"
SECRET = "s3cr3t-pw"
_ENV = {"postgres": "POWER_LOOP_TEST_POSTGRES_DSN", "mysql": "POWER_LOOP_TEST_MYSQL_DSN"}


def _server(backend: str) -> str:
    dsn = os.environ.get(_ENV[backend])
    if not dsn:
        if os.environ.get("CI"):
            pytest.fail(f"set {_ENV[backend]} (CI is set, so server backends are required)")
        pytest.skip(f"set {_ENV[backend]} to run this case")
    return dsn


def _variant(
    backend: str,
    *,
    user: str | None = None,
    password: str | None = None,
    port: int | None = None,
    path: str | None = None,
    query: str | None = None,
) -> str:
    """The configured server DSN with some parts replaced."""
    parts = urlsplit(_server(backend))
    name = user if user is not None else (parts.username or "")
    secret = f":{password}" if password else ""
    host = f"{parts.hostname}:{port if port is not None else parts.port}"
    netloc = f"{name}{secret}@{host}" if name else host
    return urlunsplit((parts.scheme, netloc, path if path is not None else parts.path, query or "", ""))


async def _open(dsn: Any) -> None:
    try:
        store = await open_store(dsn, table_prefix="dsncat_")
    except PowerLoopError as exc:
        assert SECRET not in f"{exc} {exc.__cause__!r} {exc.__context__!r}", "the error shows the password"
        raise
    await store.close()


def opens(make: Callable[[Env], Any]) -> Any:
    async def action(env: Env) -> str | None:
        await _open(make(env))
        return None

    return action


def fixed(dsn: Any) -> Any:
    return opens(lambda env: dsn)


def server(backend: str, **parts: Any) -> Any:
    return opens(lambda env: _variant(backend, **parts))


def through_the_loop(dsn: str) -> Any:
    async def action(env: Env) -> str | None:
        loop = StatefulAgentLoop(llm=ScriptedLLM(), dsn=dsn)
        try:
            await loop.new_session()
        finally:
            await loop.aclose()
        return None

    return action


def without(module: str, backend: str) -> Any:
    """The backend's driver is not installed: the error names the extra to install."""

    async def action(env: Env) -> str | None:
        saved = {k: v for k, v in sys.modules.items() if k == module or k.startswith(module + ".")}
        backend_modules = {
            k: sys.modules.pop(k) for k in list(sys.modules) if k.endswith(f"store._{backend}")
        }
        sys.modules.update({k: None for k in saved} or {module: None})  # type: ignore[dict-item]
        try:
            await _open(
                f"{backend}ql://u@127.0.0.1:1/db" if backend == "postgres" else "mysql://u@127.0.0.1:1/db"
            )
        except PowerLoopError as exc:
            assert f"pip install -e '.[{backend}]'" in str(exc), str(exc)
            raise
        finally:
            for k in saved or {module: None}:
                sys.modules.pop(k, None)
            sys.modules.update(saved)
            sys.modules.update(backend_modules)
        return None

    return action


CASES = [
    Case("type", "int", fixed(5), INVALID),
    Case("type", "None", fixed(None), INVALID),
    Case("type", "bytes", fixed(b"x.db"), INVALID),
    Case("type", "path object", opens(lambda env: env.tmp_path / "x.db"), INVALID),
    Case("scheme", "redis", fixed("redis://h/db"), INVALID),
    Case("scheme", "ftp", fixed("ftp://x/y"), INVALID),
    Case("scheme", "http", fixed("http://example.com/x"), INVALID),
    Case("scheme", "mongodb", fixed("mongodb://u:" + SECRET + "@h/db"), INVALID),
    Case("scheme", "oracle", fixed("oracle://h/db"), INVALID),
    Case("scheme", "through the loop", through_the_loop("redis://h/db"), INVALID),
    Case("sqlite", "host part", fixed("sqlite://host/x.db"), INVALID),
    Case("sqlite", "NUL in the path", fixed("x\x00.db"), INVALID),
    Case("sqlite", "only NUL", fixed("\x00"), INVALID),
    Case("sqlite", "escaped NUL", fixed("sqlite:///a%00b.db"), INVALID),
    Case(
        "sqlite",
        "upper-case scheme",
        opens(lambda env: f"SQLITE:///{env.tmp_path}/x.db".replace(":///", ":////")),
        None,
    ),
    Case("sqlite", "memory URL", fixed("sqlite:///:memory:"), None),
    Case("sqlite", "empty means memory", fixed(""), None),
    Case("sqlite", "very long name", fixed("x" * 5000), UNAVAILABLE),
    Case("postgres", "port not a number", fixed("postgresql://h:abc/db"), INVALID),
    Case("postgres", "port out of range", fixed("postgresql://h:70000/db"), INVALID),
    Case("postgres", "broken IPv6 host", fixed("postgresql://[::1/db"), INVALID),
    Case(
        "postgres",
        "NUL in the database name",
        fixed("postgresql://u:" + SECRET + "@127.0.0.1:5432/a%00b"),
        INVALID,
    ),
    Case("mysql", "no database", fixed("mysql://root@127.0.0.1:3306/"), INVALID),
    Case("mysql", "nothing at all", fixed("mysql://"), INVALID),
    Case("mysql", "unsupported option", fixed("mysql://root@127.0.0.1:3306/db?bogus=1"), INVALID),
    Case(
        "mysql",
        "unsupported charset option",
        fixed("mysql://root:" + SECRET + "@127.0.0.1:3306/db?charset=klingon"),
        INVALID,
    ),
    Case("drivers", "asyncpg missing", without("asyncpg", "postgres"), DEPENDENCY),
    Case("drivers", "aiomysql missing", without("aiomysql", "mysql"), DEPENDENCY),
]

SERVER_CASES = [
    Case("postgres", "closed port", server("postgres", port=1), UNAVAILABLE),
    Case("postgres", "closed port with a password", server("postgres", password=SECRET, port=1), UNAVAILABLE),
    Case(
        "postgres",
        "unknown host",
        fixed("postgresql://u:" + SECRET + "@no-such-host.invalid:5432/db"),
        UNAVAILABLE,
    ),
    Case("postgres", "unknown database", server("postgres", path="/plh_no_such_database"), MISSING_DB),
    Case("postgres", "unknown user", server("postgres", user="nobody_catalogue", password=SECRET), AUTH),
    Case("postgres", "bad sslmode", server("postgres", query="sslmode=bogus"), INVALID),
    Case("postgres", "unknown option", server("postgres", query="no_such_option=1"), INVALID),
    Case("postgres", "valid", server("postgres"), None),
    Case("mysql", "closed port", server("mysql", port=1), UNAVAILABLE),
    Case("mysql", "closed port with a password", server("mysql", password=SECRET, port=1), UNAVAILABLE),
    Case("mysql", "unknown database", server("mysql", path="/plh_no_such_database"), MISSING_DB),
    Case("mysql", "unknown user", server("mysql", user="nobody_catalogue", password=SECRET), AUTH),
    Case("mysql", "valid", server("mysql"), None),
]


@pytest.mark.parametrize("case", params(CASES))
async def test_dsn_case(case: Case, env: Env) -> None:
    await run_case(case, env)


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(p.values[0], id=p.id, marks=getattr(pytest.mark, p.values[0].area))
        for p in params(SERVER_CASES)
    ],
)
async def test_server_dsn_case(case: Case, env: Env) -> None:
    await run_case(case, env)
