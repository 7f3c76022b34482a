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
    assert proc.returncode == 2 and "invalid table_prefix" in proc.stderr


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
    again = _run(["import", "a.json", "--new-id", "sess_copy"], tmp_path)
    assert (
        again.returncode == 2 and "store.archive_invalid" not in again.stdout and "sess_copy" in again.stderr
    )


def test_session_commands_report_clear_errors(tmp_path: Path) -> None:
    assert _run(["demo"], tmp_path).returncode == 0
    missing = _run(["show", "sess_nope"], tmp_path)
    assert missing.returncode == 2 and "session not found" in missing.stderr
    (tmp_path / "bad.json").write_text("{not json")
    bad = _run(["import", "bad.json"], tmp_path)
    assert bad.returncode == 2 and "not JSON" in bad.stderr
    empty = _run(["sessions", "--dsn", str(tmp_path / "other.db")], tmp_path)
    assert empty.returncode == 2 and "schema" in empty.stderr and "CREATE TABLE" in empty.stderr
