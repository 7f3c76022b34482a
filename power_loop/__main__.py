"""The ``power-loop`` command line (``python -m power_loop``).

Subcommands: ``demo`` (offline tool-using conversation, persisted and resumed by a second process),
``chat`` (interactive chat on the configured provider, session kept in the store), ``ddl`` (print the
schema script a DBA can run out of band), and ``sessions`` / ``show`` / ``export`` / ``import`` to
inspect and move sessions; ``inspect`` serves a read-only web page over the store.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from ._cli_inspect import add_inspect_command, run_inspect
from ._cli_sessions import add_session_commands, run_session_command

if TYPE_CHECKING:
    from .store import Dialect

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="power-loop", description="power_loop agent kernel tools")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="offline demo: a tool call, persisted, resumed in a second process")
    demo.add_argument("--dsn", default="./power_loop_sessions.db", help="store DSN (default: %(default)s)")
    demo.add_argument("--resume", metavar="SESSION_ID", help=argparse.SUPPRESS)

    chat = sub.add_parser("chat", help="interactive chat with the configured provider (POWER_LOOP_* env)")
    chat.add_argument("--dsn", default="./power_loop_sessions.db")
    chat.add_argument("--session", help="continue this session id instead of starting a new one")

    ddl = sub.add_parser("ddl", help="print the schema DDL for a dialect")
    ddl.add_argument("--dialect", choices=["sqlite", "postgres", "mysql"], default="sqlite")
    ddl.add_argument("--prefix", default="pl_", help="table prefix (default: %(default)s)")
    add_session_commands(sub)
    add_inspect_command(sub)
    return parser


def _dialect(name: str) -> Dialect:
    # The dialect classes hold SQL text only; no database driver is imported here.
    if name == "postgres":
        from .store import PostgresDialect

        return PostgresDialect()
    if name == "mysql":
        from .store import MySQLDialect

        return MySQLDialect()
    from .store import SqliteDialect

    return SqliteDialect()


def _ddl(dialect: str, prefix: str) -> int:
    from .errors import PowerLoopError
    from .store import provisioning_ddl

    try:
        script = provisioning_ddl(_dialect(dialect), prefix)
    except PowerLoopError as exc:
        print(f"power-loop ddl: {exc}", file=sys.stderr)
        return 2
    for statement in script:
        print(statement.rstrip().rstrip(";") + ";\n")
    return 0


async def _chat(dsn: str, session_id: str | None) -> int:
    from ._demo import build_demo_llm, build_demo_tools
    from .loop import StatefulAgentLoop

    llm, label = build_demo_llm()
    print(f"model: {label} · store: {dsn} · empty line or Ctrl-D to quit")
    async with StatefulAgentLoop(llm=llm, dsn=dsn, tool_registry=build_demo_tools()) as loop:
        sid = session_id or await loop.new_session()
        print(f"session: {sid}")
        while True:
            try:
                line = await asyncio.to_thread(input, "you> ")
            except EOFError:
                break
            if not line.strip():
                break
            result = await loop.send(line, sid, heal_pending=True)
            print(f"assistant> {result.final_text}")
    await llm.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    handled = run_session_command(args)
    if handled is not None:
        return handled
    if args.command == "demo":
        from ._demo import run_demo

        return run_demo(args.dsn, resume_session=args.resume)
    if args.command == "inspect":
        return run_inspect(args)
    if args.command == "chat":
        return asyncio.run(_chat(args.dsn, args.session))
    return _ddl(args.dialect, args.prefix)


if __name__ == "__main__":
    sys.exit(main())
