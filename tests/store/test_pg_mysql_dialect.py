"""Server-free tests of the PostgreSQL / MySQL dialects, DSN parsing and secret redaction."""

from __future__ import annotations

import re
import sys
import traceback

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_loop.errors import InvalidDSN, MissingDependencyError, StoreUnavailable
from power_loop.store import ColumnSpec, Dialect, IndexSpec, MySQLDialect, PostgresDialect, TableSpec
from power_loop.store._dsn import parse_dsn, redact_dsn, sanitized_cause
from power_loop.store._mysql import connect_mysql, lock_name
from power_loop.store._postgres import connect_postgres, lock_key

TABLE = TableSpec(
    "things",
    (
        ColumnSpec("owner", "key", nullable=False),
        ColumnSpec("thing_id", "int", nullable=False),
        ColumnSpec("status", "enum", nullable=False, default="armed"),
        ColumnSpec("body", "text", default="it's"),
        ColumnSpec("flag", "small", nullable=False, default=0),
    ),
    ("owner", "thing_id"),
    (IndexSpec("idx_things_status", ("status", "thing_id")),),
)


def test_dialects_satisfy_the_port() -> None:
    assert isinstance(PostgresDialect(), Dialect)
    assert isinstance(MySQLDialect(), Dialect)
    assert PostgresDialect().name == "postgres" and MySQLDialect().name == "mysql"
    assert PostgresDialect().for_update == MySQLDialect().for_update == " FOR UPDATE"


def test_postgres_translate_numbers_placeholders_outside_quotes() -> None:
    d = PostgresDialect()
    sql = "SELECT 'why?', ?, \"col?\", 'it''s ?', ? FROM t WHERE a LIKE '5%' AND b = ?"
    assert d.translate(sql) == (
        "SELECT 'why?', $1, \"col?\", 'it''s ?', $2 FROM t WHERE a LIKE '5%' AND b = $3"
    )
    assert d.translate(sql) is d.translate(sql)  # cached: translated once


def test_mysql_translate_uses_percent_s_and_doubles_literal_percent() -> None:
    d = MySQLDialect()
    sql = "SELECT 'why?' AS w, ? AS v FROM t WHERE a LIKE 'x%' AND b = ? AND c = 100 % 7"
    assert d.translate(sql) == (
        "SELECT 'why?' AS w, %s AS v FROM t WHERE a LIKE 'x%%' AND b = %s AND c = 100 %% 7"
    )
    assert d.prepare(sql)[1] is False
    assert d.prepare(d.upsert("t", ["k"], ["v"]))[1] is True


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["?", "'?'", "'a''?'", "x", " ", "%", '"q?"', "'%'"]), max_size=30))
def test_translate_replaces_exactly_the_unquoted_marks(parts: list[str]) -> None:
    sql = "".join(parts)
    bare = parts.count("?")
    pg = PostgresDialect().translate(sql)
    assert re.findall(r"\$\d+", pg) == [f"${n}" for n in range(1, bare + 1)]
    my = MySQLDialect().translate(sql)
    # Undo the driver escaping: %s marks are the placeholders, %% the literal percents.
    assert my.count("%s") == bare
    assert my.replace("%s", "?").replace("%%", "%") == sql


def test_postgres_ddl() -> None:
    stmts = PostgresDialect().create_table(TABLE, "p_")
    assert stmts[0].startswith("CREATE TABLE IF NOT EXISTS p_things (")
    assert "owner TEXT NOT NULL" in stmts[0]
    assert "thing_id BIGINT NOT NULL" in stmts[0]
    assert "status TEXT NOT NULL DEFAULT 'armed'" in stmts[0]
    assert "body TEXT DEFAULT 'it''s'" in stmts[0]
    assert "flag SMALLINT NOT NULL DEFAULT 0" in stmts[0]
    assert "PRIMARY KEY (owner, thing_id)" in stmts[0]
    assert stmts[1] == "CREATE INDEX IF NOT EXISTS p_idx_things_status ON p_things (status, thing_id)"
    add = PostgresDialect().add_column("things", ColumnSpec("extra", "int"), "p_")
    assert add == "ALTER TABLE p_things ADD COLUMN IF NOT EXISTS extra BIGINT"


def test_mysql_ddl() -> None:
    (stmt,) = MySQLDialect().create_table(TABLE, "p_")
    assert stmt.startswith("CREATE TABLE IF NOT EXISTS p_things (")
    assert "owner VARCHAR(255) NOT NULL" in stmt
    assert "status VARCHAR(32) NOT NULL DEFAULT 'armed'" in stmt
    assert "body LONGTEXT DEFAULT ('it''s')" in stmt
    assert "flag TINYINT NOT NULL DEFAULT 0" in stmt
    assert "KEY p_idx_things_status (status, thing_id)" in stmt
    assert stmt.endswith("ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
    text_key = TableSpec("bad", (ColumnSpec("k", "text", nullable=False),), ("k",))
    with pytest.raises(ValueError, match="'text' column"):
        MySQLDialect().create_table(text_key, "p_")


@pytest.mark.parametrize("dialect", [PostgresDialect(), MySQLDialect()], ids=["postgres", "mysql"])
def test_identifiers_are_validated(dialect: Dialect) -> None:
    evil = TableSpec("t; DROP TABLE x", (ColumnSpec("a", "key", nullable=False),), ("a",))
    with pytest.raises(ValueError, match="invalid SQL identifier"):
        dialect.create_table(evil, "p_")
    with pytest.raises(ValueError, match="invalid SQL identifier"):
        dialect.upsert("t", ["k"], ["v = 1 --"])
    with pytest.raises(ValueError, match="unknown column"):
        dialect.create_table(TableSpec("t", (ColumnSpec("a", "key"),), ("b",)), "p_")
    with pytest.raises(ValueError, match="invalid SQL identifier"):
        dialect.create_table(TableSpec("t" * 70, (ColumnSpec("a", "key"),), ("a",)), "")


def test_upsert_text() -> None:
    pg = PostgresDialect().upsert("p_t", ["k"], ["v"], add_cols=["n"], insert_only_cols=["c"])
    assert pg == (
        "INSERT INTO p_t (k, v, n, c) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, n = p_t.n + EXCLUDED.n"
    )
    my = MySQLDialect().upsert("p_t", ["k"], ["v"], add_cols=["n"], insert_only_cols=["c"])
    assert my == (
        "INSERT INTO p_t (k, v, n, c) VALUES (?, ?, ?, ?) "
        "ON DUPLICATE KEY UPDATE v = VALUES(v), n = n + VALUES(n)"
    )
    assert "AS new_row" not in my  # MySQL-8-only syntax; MariaDB rejects it
    assert PostgresDialect().insert_ignore("p_t", ["k"]).endswith("ON CONFLICT DO NOTHING")
    assert MySQLDialect().insert_ignore("p_t", ["k"]).startswith("INSERT IGNORE INTO p_t (k)")


def test_lock_names() -> None:
    assert lock_key("a") == lock_key("a") != lock_key("b")
    assert -(2**63) <= lock_key("power_loop:provision:pl_") < 2**63
    assert lock_name("db", "short") == "db.short"
    long = lock_name("db", "x" * 100)
    assert len(long) <= 64 and long == lock_name("db", "x" * 100) != lock_name("db2", "x" * 100)


def test_parse_dsn_forms() -> None:
    schemes = {"postgresql": "postgresql", "postgres": "postgresql"}
    p = parse_dsn(
        "postgresql+asyncpg://al%40ice:p%2Fw@db.example:6543/app?sslmode=require",
        schemes=schemes,
        default_port=5432,
        kind="PostgreSQL",
    )
    assert (p.scheme, p.user, p.password, p.host, p.port, p.database) == (
        "postgresql",
        "al@ice",
        "p/w",
        "db.example",
        6543,
        "app",
    )
    assert p.query == (("sslmode", "require"),)
    assert p.where == "db.example:6543/app"
    assert "p/w" not in repr(p) and "p%2Fw" not in p.redacted and "***" in p.redacted
    q = parse_dsn("postgres://u@h/d?password=zz", schemes=schemes, default_port=5432, kind="x")
    assert q.password == "zz" and q.port == 5432 and q.query == ()
    with pytest.raises(InvalidDSN) as info:
        parse_dsn("postgresql://u:hunter2@h:notaport/d", schemes=schemes, default_port=5432, kind="x")
    assert "hunter2" not in str(info.value)


def test_redact_dsn() -> None:
    assert redact_dsn("mysql://root:s3cret@h:3306/db") == "mysql://root:***@h:3306/db"
    assert redact_dsn("postgresql://u:p@ss@h/db") == "postgresql://u:***@h/db"
    assert redact_dsn("postgresql://u@h/db?password=abc&x=1") == "postgresql://u@h/db?password=***&x=1"
    assert redact_dsn("postgresql://u@h/db") == "postgresql://u@h/db"


def test_tainted_driver_error_is_not_chained() -> None:
    secret = "hunter2-secret"
    driver = RuntimeError(f"connect failed for dsn postgresql://u:{secret}@h/db")
    clean = RuntimeError("connect failed")
    assert sanitized_cause(StoreUnavailable("x"), clean, secret).__cause__ is clean
    try:
        try:
            raise driver
        except RuntimeError as exc:
            raise sanitized_cause(StoreUnavailable("cannot reach h:5432/db"), exc, secret)
    except StoreUnavailable as err:
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        assert err.__cause__ is None and secret not in text and "cannot reach" in text


async def test_invalid_dsns_are_rejected_before_connecting() -> None:
    with pytest.raises(InvalidDSN, match="name the database"):
        await connect_mysql("mysql://root:pw@127.0.0.1:1")
    with pytest.raises(InvalidDSN, match="unsupported option") as info:
        await connect_mysql("mysql://root:topsecret@127.0.0.1:1/db?sslmode=x")
    assert "topsecret" not in str(info.value)
    with pytest.raises(InvalidDSN, match="scheme"):
        await connect_postgres("mysql://u@h/db")


async def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    with pytest.raises(MissingDependencyError, match=r"pip install asyncpg .*'\.\[postgres\]'"):
        await connect_postgres("postgresql://u@h/db")
    monkeypatch.setitem(sys.modules, "aiomysql", None)
    with pytest.raises(MissingDependencyError, match=r"pip install aiomysql .*'\.\[mysql\]'"):
        await connect_mysql("mysql://u@h/db")
