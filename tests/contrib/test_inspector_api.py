"""The inspector's JSON API and safety rules over plain HTTP (no browser), on SQLite, PostgreSQL, MySQL."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from inspector_scenario import FOLD_SUMMARY, SCRIPT_RESULT, Scenario, build, live_send

from power_loop.__main__ import main
from power_loop.contrib.inspector import Inspector, is_loopback
from power_loop.contrib.inspector._queries import MAX_PAGE, InspectorQueries, clip
from power_loop.errors import ConfigError, StoreDatabaseMissing, StoreError, StoreSchemaError
from power_loop.store import Database, NewMessage, RoundUsage, all_table_names, connect_database, open_store

ROOT = Path(__file__).resolve().parents[2]


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            ctype = response.headers.get("Content-Type", "")
            return response.status, json.loads(body) if "json" in ctype else body.decode()
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
async def scenario(loop_dsn_and_prefix: tuple[str, str]) -> Scenario:
    dsn, prefix = loop_dsn_and_prefix
    return await build(Scenario(dsn, prefix))


async def test_api_shows_the_session_tree_timeline_and_side_panels(scenario: Scenario) -> None:
    with Inspector(scenario.dsn, port=0, prefix=scenario.prefix) as insp:
        status, page = get(insp.url + "api/sessions")
        assert status == 200 and page["next"] is None
        (root,) = page["sessions"]
        assert root["session_id"] == scenario.session_id and root["sends"] == 2 and root["state"] == "idle"
        assert [c["session_id"] for c in root["children"]] == [scenario.child_id]
        assert root["children"][0]["kind"] == "subagent"

        _, detail = get(insp.url + f"api/sessions/{scenario.session_id}")
        assert detail["folds"][0]["summary"] == FOLD_SUMMARY
        assert detail["folds"][0]["before_tokens"] == 900
        assert [n["content"] for n in detail["notes"]] == ["the user is called Ada"]
        assert [f["content"] for f in detail["follow_ups"]] == ["and then summarise everything"]
        assert detail["timers"][0]["note"] == "check back in an hour"
        assert [c["session_id"] for c in detail["children"]] == [scenario.child_id]
        assert detail["stats"]["tool_calls"] >= 3

        _, msgs = get(insp.url + f"api/sessions/{scenario.session_id}/messages")
        rows = msgs["messages"]
        assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
        by_name = {r["name"]: r for r in rows if r["role"] == "tool"}
        assert by_name["lookup"]["content"] == SCRIPT_RESULT
        assert by_name["boom"]["content"].startswith("Error") and "boom failed" in by_name["boom"]["content"]
        assert by_name["lookup"]["state"] == "compacted_out"  # folded, still listed
        assert by_name["delegate"]["state"] == "active" and "child done" in by_name["delegate"]["content"]
        calls = [c["function"]["name"] for r in rows for c in r["tool_calls"] or []]
        assert calls[:3] == ["lookup", "boom", "delegate"]

        _, tail = get(insp.url + f"api/sessions/{scenario.session_id}/messages?limit=2")
        assert tail["more"] and [r["seq"] for r in tail["messages"]] == [r["seq"] for r in rows[-2:]]
        first = rows[0]["seq"]
        _, one = get(insp.url + f"api/sessions/{scenario.session_id}/messages/{first}")
        assert one["seq"] == first and one["role"] == "user"
        status, err = get(insp.url + "api/sessions/nope")
        assert status == 404 and err["code"] == "session.not_found"


async def test_long_rows_are_clipped_in_listings_and_whole_on_request(tmp_path: Path) -> None:
    dsn = str(tmp_path / "s.db")
    store = await open_store(dsn)
    sid = await store.create_session()
    await store.append_messages(sid, [NewMessage("user", "x" * 10_000)], begin_send=True)
    await store.close()
    with Inspector(dsn, port=0) as insp:
        _, page = get(insp.url + f"api/sessions/{sid}/messages")
        (row,) = page["messages"]
        assert row["truncated"] and len(row["content"]) == 4000
        _, full = get(insp.url + f"api/sessions/{sid}/messages/1")
        assert len(full["content"]) == 10_000


async def test_usage_per_send_and_per_round(tmp_path: Path) -> None:
    dsn = str(tmp_path / "s.db")
    store = await open_store(dsn)
    sid = await store.create_session()
    for send, tokens in ((1, 100), (2, 250)):
        usage = RoundUsage(
            round_index=0,
            prompt_tokens=tokens,
            completion_tokens=7,
            model="m1",
            duration_ms=send * 100,
            attempts=send,
        )
        await store.append_messages(sid, [NewMessage("user", f"q{send}")], begin_send=True, round_usage=usage)
    await store.close()
    with Inspector(dsn, port=0) as insp:
        _, detail = get(insp.url + f"api/sessions/{sid}")
    assert [(u["send_index"], u["prompt_tokens"], u["completion_tokens"]) for u in detail["usage"]] == [
        (1, 100, 7),
        (2, 250, 7),
    ]
    assert detail["usage"][1]["per_round"] == [
        {
            "round_index": 0,
            "prompt_tokens": 250,
            "completion_tokens": 7,
            "model": "m1",
            "duration_ms": 200,
            "attempts": 2,
        }
    ]


async def test_read_only_open_never_creates_files_or_tables(
    loop_dsn_and_prefix: tuple[str, str], tmp_path: Path
) -> None:
    dsn, _ = loop_dsn_and_prefix
    missing = tmp_path / "sub" / "none.db"
    with pytest.raises(StoreDatabaseMissing):
        Inspector(str(missing), port=0).start()
    assert not missing.exists() and not missing.parent.exists()
    if not dsn.startswith(("postgres", "mysql")):
        empty = tmp_path / "empty.db"
        sqlite3.connect(empty).close()
        before = empty.read_bytes()
        dsn = str(empty)
    prefix = "tunused_"
    with pytest.raises(StoreSchemaError) as info:
        Inspector(dsn, port=0, prefix=prefix).start()
    assert info.value.code == "store.schema_mismatch"
    db = await connect_database(dsn, read_only=True)
    try:
        for name in all_table_names(prefix):
            assert await db.fetchone(db.dialect.table_exists_sql(), (name,)) is None
    finally:
        await db.close()
    if dsn.endswith("empty.db"):
        assert empty.read_bytes() == before


async def test_read_only_sqlite_connection_refuses_writes(tmp_path: Path) -> None:
    dsn = str(tmp_path / "s.db")
    await (await open_store(dsn)).close()
    db = await connect_database(dsn, read_only=True)
    try:
        with pytest.raises(StoreError, match=r"readonly"):
            await db.execute("CREATE TABLE x (a INTEGER)")
    finally:
        await db.close()


async def test_token_checked_on_every_request_and_required_off_loopback(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    dsn = str(tmp_path / "s.db")
    await (await open_store(dsn)).close()
    with pytest.raises(ConfigError):
        Inspector(dsn, host="0.0.0.0", port=0)
    with Inspector(dsn, port=0, token="s3cret-token") as insp:
        for path in ("", "static/app.js", "api/info", "api/sessions"):
            assert get(insp.url + path)[0] == 401
            assert get(insp.url + path, {"Authorization": "Bearer wrong"})[0] == 401
            assert get(insp.url + path + "?token=s3cret-tokeX")[0] == 401
        assert get(insp.url + "api/info", {"Authorization": "Bearer s3cret-token"})[0] == 200
        assert get(insp.url + "api/info?token=s3cret-token")[0] == 200
        assert get(insp.url + "static/app.css", {"Cookie": "pl_inspector_token=s3cret-token"})[0] == 200
        status, err = get(insp.url + "api/info", {"Authorization": "Bearer s3cret-token"}, method="POST")
        assert status == 405 and err["code"] == "read_only"


async def test_foreign_host_names_are_refused_without_a_token(tmp_path: Path) -> None:
    dsn = str(tmp_path / "s.db")
    await (await open_store(dsn)).close()
    with Inspector(dsn, port=0) as insp:
        port = insp.url.rsplit(":", 1)[1].strip("/")
        assert get(insp.url + "api/info", {"Host": f"localhost:{port}"})[0] == 200
        status, err = get(insp.url + "api/info", {"Host": f"evil.example:{port}"})
        assert status == 403 and err["code"] == "host"


def test_dsn_password_is_never_shown() -> None:
    insp = Inspector("postgresql://app:pa55w0rd@db.internal:5432/app", port=0)
    assert "pa55w0rd" not in insp.dsn_display and "***" in insp.dsn_display


async def test_page_is_static_and_packaged_without_inline_script(tmp_path: Path) -> None:
    dsn = str(tmp_path / "s.db")
    await (await open_store(dsn)).close()
    with Inspector(dsn, port=0) as insp:
        status, html = get(insp.url)
        assert status == 200 and '<script src="/static/app.js"' in html and "<script>" not in html
        _, js = get(insp.url + "static/app.js")
        assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "eval(" not in js
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"contrib/inspector/static/*"' in pyproject  # the page ships in the wheel


json_values = st.recursive(
    st.none() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@given(json_values, st.integers(min_value=1, max_value=20))
def test_clip_cuts_every_long_string_and_says_so(value: Any, limit: int) -> None:
    clipped, cut = clip(value, limit)

    def strings(v: Any) -> list[str]:
        if isinstance(v, str):
            return [v]
        items = v.values() if isinstance(v, dict) else v if isinstance(v, list) else []
        return [s for item in items for s in strings(item)]

    assert all(len(s) <= limit for s in strings(clipped))
    assert cut == any(len(s) > limit for s in strings(value))
    if not cut:
        assert clipped == value


class CountingDatabase:
    """A Database wrapper recording each query's SQL and how many rows it returned."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect
        self.reads: list[tuple[str, int]] = []

    async def fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        rows = await self.db.fetchall(sql, params)
        self.reads.append((sql, len(rows)))
        return rows


async def test_list_stays_paged_on_100000_sessions(tmp_path: Path) -> None:
    dsn = str(tmp_path / "big.db")
    await (await open_store(dsn)).close()
    conn = sqlite3.connect(dsn)
    rows = [(f"sess_{i:06d}", 1_000_000 + i, 1_000_000 + i) for i in range(100_000)]
    conn.executemany("INSERT INTO pl_sessions (session_id, created_at, updated_at) VALUES (?, ?, ?)", rows)
    conn.commit()
    conn.close()
    db = await connect_database(dsn, read_only=True)
    try:
        spy = CountingDatabase(db)
        queries = InspectorQueries(spy, "pl_")  # type: ignore[arg-type]
        page = await queries.list_sessions(limit=50)
        assert [s["session_id"] for s in page["sessions"][:2]] == ["sess_099999", "sess_099998"]
        second = await queries.list_sessions(limit=50, cursor=page["next"])
        assert second["sessions"][0]["session_id"] == "sess_099949"
        huge = await queries.list_sessions(limit=10**9)
        assert huge["limit"] == MAX_PAGE and len(huge["sessions"]) == MAX_PAGE
        found = await queries.list_sessions(q="sess_0123", limit=50)
        assert len(found["sessions"]) == 50 and found["next"]
        assert all("LIMIT" in sql for sql, _ in spy.reads)
        assert max(n for _, n in spy.reads) <= MAX_PAGE + 1
    finally:
        await db.close()


async def _wait_for(fetch: Any, check: Any, what: str) -> Any:
    for _ in range(300):
        data = await asyncio.to_thread(fetch)
        if check(data):
            return data
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
async def test_cli_server_in_another_process_sees_a_running_send(scenario: Scenario) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    argv = ["-m", "power_loop", "inspect", "--dsn", scenario.dsn, "--prefix", scenario.prefix, "--port", "0"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    running = None
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        match = re.search(r"http://\S+/", line)
        assert match, line
        url = match.group(0) + f"api/sessions/{scenario.session_id}/messages?after=10"
        assert get(url)[1]["messages"] == []
        running = asyncio.create_task(live_send(scenario, "wait for the test"))
        data = await _wait_for(
            lambda: get(url)[1], lambda d: any(m["tool_calls"] for m in d["messages"]), "call"
        )
        assert data["messages"][0]["content"] == "wait for the test"
        scenario.release.set()
        await running
        done = await _wait_for(
            lambda: get(url)[1], lambda d: "All done" in str(d["messages"][-1]["content"]), "answer"
        )
        assert [m["role"] for m in done["messages"]][-2:] == ["tool", "assistant"]
    finally:
        scenario.release.set()
        if running is not None:
            await running
        proc.terminate()
        await proc.wait()


async def test_a_session_page_reads_a_bounded_number_of_rows(tmp_path: Path) -> None:
    dsn = str(tmp_path / "long.db")
    store = await open_store(dsn)
    sid = await store.create_session()
    await store.close()
    conn = sqlite3.connect(dsn)
    conn.executemany(
        "INSERT INTO pl_messages (session_id, seq, role, content, send_index, round_index, created_at) "
        "VALUES (?, ?, ?, ?, ?, 0, ?)",
        [(sid, i, "user" if i % 2 else "assistant", f"m{i}", 1 + i // 100, i) for i in range(1, 20_001)],
    )
    conn.commit()
    conn.close()
    db = await connect_database(dsn, read_only=True)
    try:
        spy = CountingDatabase(db)
        queries = InspectorQueries(spy, "pl_")  # type: ignore[arg-type]
        detail = await queries.session(sid)
        assert detail["messages"] == {"n": 20_000, "active": 20_000}
        reads = len(spy.reads)
        light = await queries.session(sid, counts=False)
        assert light["messages"] == {"n": None, "active": None}
        assert not any("COUNT(*)" in sql for sql, _ in spy.reads[reads:])
        newest = await queries.messages(sid)
        assert [m["seq"] for m in newest["messages"]] == list(range(19_801, 20_001)) and newest["more"]
        older = await queries.messages(sid, before=19_801, limit=50)
        assert older["messages"][0]["seq"] == 19_751
        after = await queries.messages(sid, after=19_990)
        assert len(after["messages"]) == 10 and not after["more"]
        assert all("LIMIT" in sql for sql, _ in spy.reads if "COUNT(*)" not in sql)
        assert max(n for _, n in spy.reads) <= 201
    finally:
        await db.close()


def test_cli_inspect_reports_a_missing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--dsn", str(tmp_path / "none.db"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "store.database_missing" in err and not (tmp_path / "none.db").exists()
    assert main(["inspect", "--dsn", str(tmp_path / "none.db"), "--host", "0.0.0.0"]) == 2
    assert "--token" in capsys.readouterr().err


def test_cli_inspect_takes_its_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import power_loop.contrib.inspector as inspector

    seen: dict[str, Any] = {}
    monkeypatch.setattr(inspector, "serve", lambda dsn, **kwargs: seen.update(kwargs))
    monkeypatch.setenv("POWER_LOOP_INSPECT_TOKEN", "t0ken-from-env")
    assert main(["inspect", "--host", "0.0.0.0"]) == 0  # no secret on the command line
    assert seen["token"] == "t0ken-from-env"
    assert main(["inspect", "--token", "given"]) == 0 and seen["token"] == "given"  # the flag wins
    monkeypatch.delenv("POWER_LOOP_INSPECT_TOKEN")
    assert main(["inspect"]) == 0 and seen["token"] is None


async def test_api_shows_the_recorded_hook_decisions(scenario: Scenario) -> None:
    from power_loop.store import NewHookEvent

    async with await open_store(scenario.dsn, table_prefix=scenario.prefix) as store:
        event = NewHookEvent(2, "tool.before", "app.deny_rm", "skip", ("output",), {"output": "refused"})
        await store.record_hook_events(scenario.session_id, [event])
    with Inspector(scenario.dsn, port=0, prefix=scenario.prefix) as insp:
        _, detail = get(insp.url + f"api/sessions/{scenario.session_id}")
    (shown,) = detail["hook_events"]
    assert (shown["point"], shown["decision"], shown["hook"], shown["round_index"]) == (
        "tool.before",
        "skip",
        "app.deny_rm",
        2,
    )
    assert json.loads(shown["values_json"]) == {"output": "refused"}
