"""``power-loop sessions | show | export | import``: inspect and move sessions from the command line.

``sessions``, ``show`` and ``export`` only read: they never create a database file, a directory or a
table (a SQLite path that does not exist is an error, the schema is verified, not provisioned).
``import`` writes into an existing store, or provisions a fresh one with ``--create-schema``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import SessionStore

__all__ = ["DSN_ENV", "add_session_commands", "default_dsn", "run_session_command"]

_COMMANDS = ("sessions", "show", "export", "import")
#: The environment variable that supplies ``--dsn``'s default (and carries it to child processes).
DSN_ENV = "POWER_LOOP_DSN"
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def default_dsn() -> str:
    """``$POWER_LOOP_DSN``, else the file ``./power_loop_sessions.db``."""
    return os.environ.get(DSN_ENV) or "./power_loop_sessions.db"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_session_commands(sub: Any, dsn_help: str) -> None:
    """Register the session subcommands on an ``argparse`` subparsers object."""

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dsn", default=default_dsn(), help=dsn_help)
        parser.add_argument("--prefix", default="pl_", help="table prefix (default: %(default)s)")

    listing = sub.add_parser("sessions", help="list sessions with their message counts and statistics")
    common(listing)
    listing.add_argument("--limit", type=_positive, default=50)
    show = sub.add_parser("show", help="print a session's messages")
    common(show)
    show.add_argument("session_id")
    show.add_argument("--all", action="store_true", help="include folded (compacted) messages")
    show.add_argument(
        "--hooks", action="store_true", help="print the recorded hook decisions instead (record_hook_events)"
    )
    export = sub.add_parser("export", help="write a session as a versioned JSON archive")
    common(export)
    export.add_argument("session_id")
    export.add_argument("-o", "--output", help="file to write (default: standard output)")
    imp = sub.add_parser("import", help="import a JSON archive written by 'export'")
    common(imp)
    imp.add_argument("archive", help="archive file ('-' for standard input)")
    imp.add_argument("--new-id", help="session id to import as (default: the archive's id)")
    imp.add_argument(
        "--create-schema",
        action="store_true",
        help="create the database and its tables when missing (default: the store must already exist)",
    )


def _sqlite_file(dsn: str) -> Path | None:
    """The file a SQLite DSN names (``None``: in-memory, or not SQLite); nothing is created."""
    m = _SCHEME_RE.match(dsn)
    if m is None:
        path = dsn
    else:
        if m.group(1).lower().split("+", 1)[0] not in ("sqlite", "sqlite3"):
            return None
        rest = dsn[m.end() :]
        if not rest.startswith("/"):
            return None  # open_store explains the malformed DSN
        path = rest[1:]
    if path in ("", ":memory:", "/:memory:"):
        return None
    return Path(os.path.expanduser(path))


def _check_sqlite_target(args: argparse.Namespace, create: bool) -> None:
    """Refuse a SQLite path that does not exist (read-only commands, ``import`` without
    ``--create-schema``) before anything could create it."""
    from .errors import ConfigError

    path = _sqlite_file(args.dsn)
    if path is None:
        return
    if path.is_dir():
        raise ConfigError(f"--dsn {str(path)!r} is a directory, not a SQLite database file")
    if not create and not path.exists():
        how = "pass --create-schema to create it" if args.command == "import" else "check --dsn"
        raise ConfigError(f"no SQLite database at {str(path)!r}; {how}")


def _write(path: str, text: str) -> None:
    Path(path).write_text(text, encoding="utf-8")


def _read(path: str) -> str:
    from .errors import ConfigError

    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"archive file not found: {path!r}") from None
    except IsADirectoryError:
        raise ConfigError(f"archive {path!r} is a directory, not a file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"archive {path!r} is not UTF-8 text (expected JSON written by 'export')") from None


def _line(text: Any, width: int = 100) -> str:
    from .base import redact_secrets

    flat = " ".join(redact_secrets(str(text)).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


async def _run(args: argparse.Namespace, store: SessionStore) -> int:
    if args.command == "sessions":
        for session_row in await store.list_sessions(limit=args.limit):
            sid = session_row.session_id
            stats = await store.get_session_stats(sid)
            sends = stats.sends if stats is not None else 0
            tokens = stats.total_tokens if stats is not None else 0
            count = await store.count_messages(sid)
            print(f"{sid}  messages={count} sends={sends} tokens={tokens}  {session_row.kind.value}")
        return 0
    if args.command == "show":
        session = await store.get_session(args.session_id)
        if session is None:
            print(f"power-loop show: session not found: {args.session_id}", file=sys.stderr)
            return 2
        if args.hooks:
            return await _show_hook_events(store, args.session_id)
        rows = await (store.load_all_messages if args.all else store.load_active_messages)(args.session_id)
        if session.system_prompt:
            print(f"[system] {_line(session.system_prompt)}")
        for row in rows:
            calls = ", ".join(c.get("function", {}).get("name", "?") for c in row.tool_calls or [])
            extra = f" → {calls}" if calls else ""
            state = "" if row.state.value == "active" else f" ({row.state.value})"
            print(
                f"#{row.seq} [{row.role}{'/' + row.name if row.name else ''}]{state}{extra} {_line(row.content or '')}"
            )
        return 0
    if args.command == "export":
        text = json.dumps(await store.export_session(args.session_id), ensure_ascii=False, indent=1)
        if args.output:
            _write(args.output, text + "\n")
        else:
            print(text)
        return 0
    await _refuse_an_existing_target(args, store)
    print(await store.import_session(args.archive_data, new_session_id=args.new_id))
    return 0


async def _refuse_an_existing_target(args: argparse.Namespace, store: SessionStore) -> None:
    """The store's own refusal names the Python keyword; here the hint names the flag."""
    from .errors import ConfigError

    data = args.archive_data
    target = (
        args.new_id if args.new_id is not None else data.get("session_id") if isinstance(data, dict) else None
    )
    if isinstance(target, str) and target and await store.get_session(target) is not None:
        raise ConfigError(
            f"session {target} already exists in the store; pass --new-id ID to import it as a copy"
        )


async def _show_hook_events(store: SessionStore, session_id: str) -> int:
    """One line per recorded hook decision (the values of ``full`` mode are already redacted)."""
    for e in await store.list_hook_events(session_id):
        changed = f" changed={','.join(e.changed)}" if e.changed else ""
        values = f" {_line(json.dumps(e.values, ensure_ascii=False))}" if e.values is not None else ""
        print(
            f"#{e.seq} send={e.send_index} round={e.round_index} {e.point} {e.decision} {e.hook}{changed}{values}"
        )
    return 0


def _load_archive(source: str) -> Any:
    """The parsed archive (read before any store is opened, so a bad file creates nothing)."""
    from .errors import ConfigError

    raw = sys.stdin.read() if source == "-" else _read(source)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"the archive is not JSON ({exc})") from None


def run_session_command(args: argparse.Namespace) -> int | None:
    """Run a session subcommand; ``None`` when ``args.command`` is not one of them.

    Errors propagate (the caller prints them as one line).
    """
    if args.command not in _COMMANDS:
        return None
    import asyncio

    from .store import open_store

    create = args.command == "import" and args.create_schema
    if args.command == "import":
        args.archive_data = _load_archive(args.archive)
    _check_sqlite_target(args, create)

    async def main() -> int:
        schema = "auto_create" if create else "verify"
        read_only = args.command != "import"  # inspection never writes, creates or provisions
        async with await open_store(
            args.dsn, table_prefix=args.prefix, schema=schema, read_only=read_only
        ) as store:
            return await _run(args, store)

    return asyncio.run(main())
