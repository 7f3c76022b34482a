"""The command line: the offline demo (the README's main job) and the DDL printer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWER_LOOP_")}
    return subprocess.run(
        [sys.executable, "-m", "power_loop", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_uses_a_tool_persists_and_resumes_in_a_second_process(tmp_path: Path) -> None:
    proc = _run(["demo"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "offline demo model" in out
    assert "calculator" in out and "391" in out
    assert "process 2" in out and "Your name is Ada" in out
    pids = {line.split("pid ")[1].split(")")[0] for line in out.splitlines() if "(pid " in line}
    assert len(pids) == 2, "the conversation is resumed by a different OS process"
    assert (tmp_path / "power_loop_sessions.db").exists()


@pytest.mark.parametrize(
    "dialect, marker", [("sqlite", "INTEGER"), ("postgres", "BIGINT"), ("mysql", "ENGINE=InnoDB")]
)
def test_ddl_prints_the_schema_for_each_dialect(tmp_path: Path, dialect: str, marker: str) -> None:
    proc = _run(["ddl", "--dialect", dialect, "--prefix", "app_"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "CREATE TABLE IF NOT EXISTS app_messages" in proc.stdout
    assert "app_schema_migrations" in proc.stdout and marker in proc.stdout


def test_ddl_rejects_a_bad_prefix(tmp_path: Path) -> None:
    proc = _run(["ddl", "--prefix", "drop table;"], tmp_path)
    assert proc.returncode == 2 and "invalid --prefix" in proc.stderr and "table_prefix" not in proc.stderr


def test_sessions_show_export_import_round_trip(tmp_path: Path) -> None:
    assert _run(["demo"], tmp_path).returncode == 0
    listing = _run(["sessions"], tmp_path)
    assert listing.returncode == 0, listing.stderr
    sid = listing.stdout.split()[0]
    assert sid.startswith("sess_") and "messages=6" in listing.stdout and "sends=2" in listing.stdout
    shown = _run(["show", sid], tmp_path)
    assert (
        shown.returncode == 0 and "[tool/calculator] 391" in shown.stdout and "→ calculator" in shown.stdout
    )
    assert _run(["export", sid, "-o", "a.json"], tmp_path).returncode == 0
    imported = _run(["import", "a.json", "--new-id", "sess_copy"], tmp_path)
    assert imported.returncode == 0 and imported.stdout.strip() == "sess_copy"
    copy = _run(["show", "sess_copy"], tmp_path)
    assert copy.returncode == 0 and copy.stdout == shown.stdout
    again = _one_line_error(_run(["import", "a.json", "--new-id", "sess_copy"], tmp_path))
    assert "sess_copy already exists" in again and "--new-id" in again and "new_session_id" not in again
    original = _one_line_error(_run(["import", "a.json"], tmp_path))
    assert f"{sid} already exists" in original and "pass --new-id" in original


def test_session_commands_report_clear_errors(tmp_path: Path) -> None:
    assert _run(["demo"], tmp_path).returncode == 0
    missing = _run(["show", "sess_nope"], tmp_path)
    assert missing.returncode == 2 and "session not found" in missing.stderr
    (tmp_path / "bad.json").write_text("{not json")
    bad = _run(["import", "bad.json"], tmp_path)
    assert bad.returncode == 2 and "not JSON" in bad.stderr
    (tmp_path / "empty.db").touch()  # a file without the schema: verified, never provisioned
    empty = _run(["sessions", "--dsn", str(tmp_path / "empty.db")], tmp_path)
    assert empty.returncode == 2 and "schema" in empty.stderr and "CREATE TABLE" not in empty.stderr
    assert "--create-schema" in empty.stderr and len(empty.stderr.splitlines()) == 1
    assert (tmp_path / "empty.db").stat().st_size == 0


def _one_line_error(proc: subprocess.CompletedProcess[str], status: int = 2) -> str:
    assert proc.returncode == status, (proc.stdout, proc.stderr)
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["sessions", "--dsn", "typo/dir/sessions.db"],
        ["show", "sess_x", "--dsn", "typo/dir/sessions.db"],
        ["export", "sess_x", "--dsn", "sqlite:///typo/dir/sessions.db"],
        ["import", "a.json", "--dsn", "typo/dir/sessions.db"],
    ],
)
def test_a_mistyped_sqlite_path_creates_nothing(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "a.json").write_text("{}")
    err = _one_line_error(_run(args, tmp_path))
    assert "no SQLite database at" in err and ("--create-schema" in err or "--dsn" in err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_reader_that_goes_away_is_not_an_error(tmp_path: Path) -> None:
    assert _run(["demo"], tmp_path).returncode == 0
    sid = _run(["sessions"], tmp_path).stdout.split()[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWER_LOOP_")}
    read_end, write_end = os.pipe()
    os.close(read_end)  # `… | head` after head exited: every write fails with EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "power_loop", "show", sid],
            cwd=tmp_path,
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 141 and proc.stderr == "", proc.stderr


def test_import_create_schema_targets_a_fresh_database(tmp_path: Path) -> None:
    assert _run(["demo"], tmp_path).returncode == 0
    sid = _run(["sessions"], tmp_path).stdout.split()[0]
    assert _run(["export", sid, "-o", "a.json"], tmp_path).returncode == 0
    fresh = str(tmp_path / "new" / "fresh.db")
    imported = _run(["import", "a.json", "--dsn", fresh, "--create-schema"], tmp_path)
    assert imported.returncode == 0 and imported.stdout.strip() == sid, imported.stderr
    assert "[tool/calculator] 391" in _run(["show", sid, "--dsn", fresh], tmp_path).stdout


def test_import_of_a_missing_file_is_one_line(tmp_path: Path) -> None:
    err = _one_line_error(_run(["import", "nope.json"], tmp_path))
    assert "archive file not found: 'nope.json'" in err and not list(tmp_path.iterdir())


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = _run(["--debug", "import", "nope.json"], tmp_path)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_usage_errors_are_one_line_naming_the_help(tmp_path: Path) -> None:
    err = _one_line_error(_run(["show"], tmp_path))
    assert "session_id" in err and "power-loop show --help" in err


def _run_env(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("POWER_LOOP_")}
    return subprocess.run(
        [sys.executable, "-m", "power_loop", *args],
        cwd=cwd,
        env={**base, **env},
        input="hello\n",
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_mistyped_provider_is_rejected_with_the_valid_names(tmp_path: Path) -> None:
    for command in ("chat", "demo"):
        err = _one_line_error(_run_env([command], tmp_path, POWER_LOOP_PROVIDER="opnai"))
        assert "unknown POWER_LOOP_PROVIDER 'opnai'" in err and "anthropic" in err and "echo" in err


def test_chat_with_an_unreachable_provider_fails_in_one_line(tmp_path: Path) -> None:
    pytest.importorskip("openai")
    key = "sk-test-0123456789abcdefSECRET"
    proc = _run_env(
        ["chat", "--dsn", "c.db"],
        tmp_path,
        POWER_LOOP_PROVIDER="openai",
        POWER_LOOP_BASE_URL="http://127.0.0.1:9/v1",  # the discard port: connection refused
        POWER_LOOP_API_KEY=key,
        POWER_LOOP_MODEL="m",
        POWER_LOOP_MAX_RETRIES="0",
    )
    err = _one_line_error(proc)
    assert "the model call failed" in err and key not in proc.stdout + proc.stderr
    # Nothing the model never said is stored: the user's line, and no "[degraded: …]" reply.
    import sqlite3

    with sqlite3.connect(tmp_path / "c.db") as db:
        rows = db.execute("SELECT role, content FROM pl_messages ORDER BY seq").fetchall()
    assert rows == [("user", "hello")], rows


def test_chat_never_prints_a_dsn_password(tmp_path: Path) -> None:
    proc = _run_env(["chat", "--dsn", "postgresql://u:pw-s3cret@127.0.0.1:1/db"], tmp_path)
    assert proc.returncode == 2 and "pw-s3cret" not in proc.stdout + proc.stderr
    assert "u:***@" in proc.stdout and len(proc.stderr.splitlines()) == 1


def test_demo_passes_the_dsn_to_its_child_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import power_loop._demo as demo

    seen: dict[str, object] = {}

    async def first_part(dsn: str) -> str:
        return "sess_1"

    def fake_run(argv: list[str], *, env: dict[str, str], check: bool) -> subprocess.CompletedProcess[str]:
        seen.update(argv=argv, env=env)
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(demo, "_first_part", first_part)
    monkeypatch.setattr(demo.subprocess, "run", fake_run)
    dsn = "postgresql://app:pw-s3cret@db/app"
    assert demo.run_demo(dsn) == 0
    assert not any("s3cret" in str(a) for a in seen["argv"])  # type: ignore[attr-defined]
    assert seen["env"]["POWER_LOOP_DSN"] == dsn  # type: ignore[index]


def test_show_prints_stored_secrets_redacted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from power_loop.__main__ import main
    from power_loop.store import NewMessage, open_store

    key = "sk-live-0123456789abcdefXYZ"
    dsn = str(tmp_path / "s.db")

    async def provision() -> str:
        async with await open_store(dsn) as store:
            sid = await store.create_session()
            text = f"my key is {key}, db postgresql://app:pw-s3cret@h/db"
            await store.append_messages(sid, [NewMessage(role="user", content=text)], begin_send=True)
            return sid

    sid = asyncio.run(provision())
    assert main(["show", sid, "--dsn", dsn]) == 0
    out = capsys.readouterr().out
    assert "my key is ***" in out and key not in out and "pw-s3cret" not in out and "app:***@h" in out


def test_import_create_schema_on_every_backend(
    loop_dsn_and_prefix: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio
    import json

    from power_loop.__main__ import main
    from power_loop.store import NewMessage, open_store

    async def archive() -> dict[str, object]:
        async with await open_store(str(tmp_path / "source.db")) as store:
            sid = await store.create_session(session_id="sess_moved")
            await store.append_messages(sid, [NewMessage(role="user", content="hi")], begin_send=True)
            return await store.export_session(sid)

    (tmp_path / "a.json").write_text(json.dumps(asyncio.run(archive())))
    dsn, prefix = loop_dsn_and_prefix
    target = ["--dsn", dsn, "--prefix", prefix]
    assert main(["import", str(tmp_path / "a.json"), *target]) == 2  # no schema there yet
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--create-schema" in err
    assert main(["import", str(tmp_path / "a.json"), *target, "--create-schema"]) == 0
    assert capsys.readouterr().out.strip() == "sess_moved"
    assert main(["show", "sess_moved", *target]) == 0
    assert "#1 [user] hi" in capsys.readouterr().out


def test_show_hooks_prints_the_recorded_hook_decisions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from power_loop.__main__ import main
    from power_loop.store import NewHookEvent, NewMessage, open_store

    dsn = str(tmp_path / "s.db")

    async def provision() -> str:
        async with await open_store(dsn) as store:
            sid = await store.create_session()
            skip = NewHookEvent(0, "tool.before", "app.deny_rm", "skip", ("output",), {"output": "refused"})
            await store.append_messages(sid, [NewMessage("user", "hi")], begin_send=True, hook_events=[skip])
            return sid

    sid = asyncio.run(provision())
    assert main(["show", sid, "--hooks", "--dsn", dsn]) == 0
    out = capsys.readouterr().out
    assert out == '#1 send=1 round=0 tool.before skip app.deny_rm changed=output {"output": "refused"}\n'
