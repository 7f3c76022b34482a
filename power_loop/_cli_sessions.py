"""``power-loop sessions | show | export | import``: inspect and move sessions from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import SessionStore

__all__ = ["add_session_commands", "run_session_command"]

_COMMANDS = ("sessions", "show", "export", "import")


def add_session_commands(sub: Any) -> None:
    """Register the session subcommands on an ``argparse`` subparsers object."""

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--dsn", default="./power_loop_sessions.db", help="store DSN (default: %(default)s)"
        )
        parser.add_argument("--prefix", default="pl_", help="table prefix (default: %(default)s)")

    listing = sub.add_parser("sessions", help="list sessions with their message counts and statistics")
    common(listing)
    listing.add_argument("--limit", type=int, default=50)
    show = sub.add_parser("show", help="print a session's messages")
    common(show)
    show.add_argument("session_id")
    show.add_argument("--all", action="store_true", help="include folded (compacted) messages")
    export = sub.add_parser("export", help="write a session as a versioned JSON archive")
    common(export)
    export.add_argument("session_id")
    export.add_argument("-o", "--output", help="file to write (default: standard output)")
    imp = sub.add_parser("import", help="import a JSON archive written by 'export'")
    common(imp)
    imp.add_argument("archive", help="archive file ('-' for standard input)")
    imp.add_argument("--new-id", help="session id to import as (default: the archive's id)")


def _write(path: str, text: str) -> None:
    Path(path).write_text(text, encoding="utf-8")


def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


def _line(text: Any, width: int = 100) -> str:
    flat = " ".join(str(text).split())
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
    raw = sys.stdin.read() if args.archive == "-" else _read(args.archive)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        print(f"power-loop import: the archive is not JSON ({exc})", file=sys.stderr)
        return 2
    print(await store.import_session(data, new_session_id=args.new_id))
    return 0


def run_session_command(args: argparse.Namespace) -> int | None:
    """Run a session subcommand; ``None`` when ``args.command`` is not one of them."""
    if args.command not in _COMMANDS:
        return None
    import asyncio

    from .errors import PowerLoopError
    from .store import open_store

    async def main() -> int:
        async with await open_store(args.dsn, table_prefix=args.prefix, schema="verify") as store:
            return await _run(args, store)

    try:
        return asyncio.run(main())
    except PowerLoopError as exc:
        print(f"power-loop {args.command}: {exc}", file=sys.stderr)
        return 2
