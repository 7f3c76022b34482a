"""Bad-input catalogue: the ``power-loop`` command line.

Each case is one command with one bad input — a mistyped or wrong-kind store, a malformed DSN, a bad
archive, bad flags, a bad provider configuration — and the exit status it must give (2 for user and
environment errors). After each: exactly one line on standard error, no traceback, no secret printed,
and nothing created or changed in the working directory (read-only commands never provision).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from power_loop import open_store
from power_loop.__main__ import main

PASSWORD = "pw-s3cret"
UNREACHABLE_PG = f"postgresql://u:{PASSWORD}@127.0.0.1:1/db"


@dataclass(frozen=True)
class Case:
    id: str
    argv: list[str]
    says: str  # a fragment of the one-line message
    status: int = 2
    env: tuple[tuple[str, str], ...] = ()
    setup: str = ""  # "valid": a provisioned store.db with session sess_known; see _setup()


def _setup(kind: str, cwd: Path) -> None:
    (cwd / "some_dir").mkdir()
    (cwd / "notes.txt").write_text("not a database, just text\n" * 200)
    (cwd / "empty.db").touch()
    (cwd / "bad.json").write_text("{not json")
    (cwd / "list.json").write_text("[1, 2, 3]")
    (cwd / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (cwd / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (cwd / "wrong.json").write_text('{"format": "something-else", "version": 99}')
    if kind == "valid":

        async def provision() -> None:
            async with await open_store(str(cwd / "store.db")) as store:
                await store.create_session(session_id="sess_known")
                archive = await store.export_session("sess_known")
            (cwd / "known.json").write_text(json.dumps(archive))

        asyncio.run(provision())


V = "valid"
ECHO = (("POWER_LOOP_PROVIDER", "echo"),)

CASES: list[Case] = [
    # -- sessions ----------------------------------------------------------------------------
    Case("sessions-typo-path", ["sessions", "--dsn", "typo/dir/s.db"], "no SQLite database at"),
    Case("sessions-typo-uri", ["sessions", "--dsn", "sqlite:///typo/s.db"], "no SQLite database at"),
    Case("sessions-directory", ["sessions", "--dsn", "some_dir"], "is a directory"),
    Case("sessions-text-file", ["sessions", "--dsn", "notes.txt"], "notes.txt"),
    Case("sessions-empty-file", ["sessions", "--dsn", "empty.db"], "--create-schema"),
    Case("sessions-memory", ["sessions", "--dsn", ":memory:"], "in-memory"),
    Case("sessions-sqlite-host", ["sessions", "--dsn", "sqlite://host/x.db"], "host part"),
    Case("sessions-bad-scheme", ["sessions", "--dsn", "ftp://h/x"], "unsupported store DSN scheme"),
    Case("sessions-unreachable-pg", ["sessions", "--dsn", UNREACHABLE_PG], "127.0.0.1"),
    Case("sessions-wrong-prefix", ["sessions", "--dsn", "store.db", "--prefix", "other_"], "schema", setup=V),
    Case(
        "sessions-bad-prefix",
        ["sessions", "--dsn", "store.db", "--prefix", "drop table;"],
        "invalid --prefix",
        setup=V,
    ),
    Case("sessions-limit-zero", ["sessions", "--limit", "0"], "positive integer"),
    Case("sessions-limit-text", ["sessions", "--limit", "many"], "positive integer"),
    Case("sessions-unknown-flag", ["sessions", "--bogus"], "unrecognized arguments"),
    # -- show --------------------------------------------------------------------------------
    Case("show-no-id", ["show"], "session_id"),
    Case("show-unknown-session", ["show", "sess_nope", "--dsn", "store.db"], "session not found", setup=V),
    Case("show-nul-id", ["show", "a\x00b", "--dsn", "store.db"], "session", setup=V),
    Case("show-typo-path", ["show", "sess_known", "--dsn", "typo.db"], "no SQLite database at"),
    Case("show-empty-file", ["show", "sess_known", "--dsn", "empty.db"], "schema"),
    # -- export ------------------------------------------------------------------------------
    Case("export-unknown-session", ["export", "sess_nope", "--dsn", "store.db"], "sess_nope", setup=V),
    Case(
        "export-output-missing-dir",
        ["export", "sess_known", "--dsn", "store.db", "-o", "no/dir/a.json"],
        "no/dir/a.json",
        setup=V,
    ),
    Case(
        "export-output-is-dir",
        ["export", "sess_known", "--dsn", "store.db", "-o", "some_dir"],
        "some_dir",
        setup=V,
    ),
    Case("export-typo-path", ["export", "sess_known", "--dsn", "typo.db"], "no SQLite database at"),
    # -- import ------------------------------------------------------------------------------
    Case(
        "import-missing-file", ["import", "nope.json", "--dsn", "store.db"], "archive file not found", setup=V
    ),
    Case("import-directory", ["import", "some_dir", "--dsn", "store.db"], "is a directory", setup=V),
    Case("import-not-json", ["import", "bad.json", "--dsn", "store.db"], "not JSON", setup=V),
    Case("import-binary", ["import", "binary.json", "--dsn", "store.db"], "not UTF-8", setup=V),
    Case("import-deeply-nested", ["import", "deep.json", "--dsn", "store.db"], "not JSON", setup=V),
    Case("import-json-list", ["import", "list.json", "--dsn", "store.db"], "archive", setup=V),
    Case("import-wrong-format", ["import", "wrong.json", "--dsn", "store.db"], "archive", setup=V),
    Case("import-no-archive-arg", ["import"], "archive"),
    Case("import-existing-session", ["import", "known.json", "--dsn", "store.db"], "--new-id", setup=V),
    Case("import-typo-target", ["import", "list.json", "--dsn", "typo/t.db"], "--create-schema"),
    Case(
        "import-missing-file-fresh-target",
        ["import", "nope.json", "--dsn", "fresh.db", "--create-schema"],
        "archive file not found",
    ),
    Case("import-bad-scheme", ["import", "list.json", "--dsn", "ftp://h/x"], "unsupported store DSN scheme"),
    # -- ddl ---------------------------------------------------------------------------------
    Case("ddl-unknown-dialect", ["ddl", "--dialect", "oracle"], "invalid choice"),
    Case("ddl-bad-prefix", ["ddl", "--prefix", "drop table;"], "invalid --prefix"),
    # -- chat --------------------------------------------------------------------------------
    Case(
        "chat-provider-typo",
        ["chat", "--dsn", "c.db"],
        "valid names",
        env=(("POWER_LOOP_PROVIDER", "opnai"),),
    ),
    Case(
        "chat-provider-incomplete",
        ["chat", "--dsn", "c.db"],
        "POWER_LOOP_BASE_URL",
        env=(("POWER_LOOP_PROVIDER", "openai"),),
    ),
    Case(
        "chat-bad-timeout",
        ["chat", "--dsn", "c.db"],
        "POWER_LOOP_TIMEOUT_S",
        env=(*ECHO, ("POWER_LOOP_TIMEOUT_S", "soon")),
    ),
    Case("chat-bad-scheme", ["chat", "--dsn", "ftp://h/x"], "unsupported store DSN scheme", env=ECHO),
    Case("chat-unreachable-pg", ["chat", "--dsn", UNREACHABLE_PG], "127.0.0.1", env=ECHO),
    Case("chat-unknown-flag", ["chat", "--model", "x"], "unrecognized arguments"),
    Case(
        "chat-unknown-session", ["chat", "--dsn", "store.db", "--session", "sess_nope"], "not found", setup=V
    ),
    Case("chat-empty-session", ["chat", "--dsn", "store.db", "--session", ""], "session id", setup=V),
    # -- demo --------------------------------------------------------------------------------
    Case(
        "demo-provider-typo", ["demo", "--dsn", "d.db"], "valid names", env=(("POWER_LOOP_PROVIDER", "opn"),)
    ),
    Case("demo-bad-scheme", ["demo", "--dsn", "ftp://h/x"], "unsupported store DSN scheme"),
    Case("demo-unreachable-pg", ["demo", "--dsn", UNREACHABLE_PG], "127.0.0.1"),
    # -- the command itself ------------------------------------------------------------------
    Case("no-command", [], "required"),
    Case("unknown-command", ["serve"], "invalid choice"),
    Case("debug-needs-a-command", ["--debug"], "required"),
]


def _snapshot(cwd: Path) -> dict[str, tuple[int, float]]:
    out: dict[str, tuple[int, float]] = {}
    for dirpath, dirs, files in os.walk(cwd):
        for name in dirs:  # an empty directory created on the way to a mistyped path counts too
            out[str(Path(dirpath, name).relative_to(cwd)) + "/"] = (0, 0.0)
        for name in files:
            full = Path(dirpath, name)
            info = full.stat()
            out[str(full.relative_to(cwd))] = (info.st_size, info.st_mtime)
    return out


def _run(
    case: Case, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    for name in [k for k in os.environ if k.startswith(("POWER_LOOP_", "OPENAI_COMPAT_"))]:
        monkeypatch.delenv(name)
    for name, value in case.env:
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n"))
    try:
        status = main(case.argv)
    except SystemExit as exc:  # argparse's usage errors
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_case(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _setup(case.setup, tmp_path)
    before = _snapshot(tmp_path)
    status, out, err = _run(case, monkeypatch, capsys)
    assert status == case.status, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("power-loop"), lines[0]
    assert case.says in lines[0], lines[0]
    assert PASSWORD not in out + err
    after = _snapshot(tmp_path)
    if case.argv[:1] in (["import"], ["chat"]):  # writers: opening the store may touch its mtime, no more
        after = {k: (size, 0.0) for k, (size, _) in after.items()}
        before = {k: (size, 0.0) for k, (size, _) in before.items()}
    assert after == before, "the command created or changed files"


def test_debug_shows_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exception, match="archive file not found"):
        main(["--debug", "import", "nope.json"])


def test_catalogue_size() -> None:
    assert len(CASES) >= 45 and len({c.id for c in CASES}) == len(CASES)
