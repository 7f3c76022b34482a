"""The ``power-loop`` command line (``python -m power_loop``).

Subcommands: ``demo`` (offline tool-using conversation, persisted and resumed by a second process),
``chat`` (interactive chat on the configured provider, session kept in the store), ``ddl`` (print the
schema script a DBA can run out of band), and ``sessions`` / ``show`` / ``export`` / ``import`` to
inspect and move sessions; ``inspect`` serves a read-only web page over the store.

Every error is one line on standard error: exit status 2 for a user or environment error (bad
arguments, a missing file, an unreachable store or provider), 1 for an unexpected internal error, 130
on Ctrl-C, 141 (silently) when the reader of its output goes away (``… | head``). ``--debug``
(before the subcommand) shows the traceback instead. Secrets in messages are redacted
(:func:`power_loop.base.redact_secrets`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, NoReturn

from ._cli_inspect import add_inspect_command, run_inspect
from ._cli_sessions import DSN_ENV, add_session_commands, default_dsn, run_session_command

if TYPE_CHECKING:
    from .loop import StatefulAgentLoop
    from .store import Dialect

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (argparse prints the whole usage block by default)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="power-loop", description="power_loop agent kernel tools")
    parser.add_argument("--debug", action="store_true", help="show the full traceback when a command fails")
    sub = parser.add_subparsers(dest="command", required=True)
    dsn_help = f"store DSN (default: ${DSN_ENV} or ./power_loop_sessions.db)"

    demo = sub.add_parser("demo", help="offline demo: a tool call, persisted, resumed in a second process")
    demo.add_argument("--dsn", default=default_dsn(), help=dsn_help)
    demo.add_argument("--resume", metavar="SESSION_ID", help=argparse.SUPPRESS)

    chat = sub.add_parser("chat", help="interactive chat with the configured provider (POWER_LOOP_* env)")
    chat.add_argument("--dsn", default=default_dsn(), help=dsn_help)
    chat.add_argument("--session", help="continue this session id instead of starting a new one")

    ddl = sub.add_parser("ddl", help="print the schema DDL for a dialect")
    ddl.add_argument("--dialect", choices=["sqlite", "postgres", "mysql"], default="sqlite")
    ddl.add_argument("--prefix", default="pl_", help="table prefix (default: %(default)s)")
    add_session_commands(sub, dsn_help)
    add_inspect_command(sub, dsn_help)
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
    from .store import provisioning_ddl

    for statement in provisioning_ddl(_dialect(dialect), prefix):
        print(statement.rstrip().rstrip(";") + ";\n")
    return 0


async def _chat_session(loop: StatefulAgentLoop, session_id: str | None) -> str:
    """``--session``'s id once the store knows it (checked before the first prompt), else a new one."""
    from .errors import SessionNotFoundError

    if session_id is None:
        return await loop.new_session()
    if await (await loop.ensure_store()).get_session(session_id) is None:
        raise SessionNotFoundError(session_id)
    return session_id


async def _chat(dsn: str, session_id: str | None) -> int:
    from ._demo import CLI_LOOP_CONFIG, build_demo_llm, build_demo_tools, failure_reason
    from .base import redact_secrets
    from .errors import LLMError
    from .loop import StatefulAgentLoop

    llm, label = build_demo_llm()
    print(f"model: {label} · store: {redact_secrets(dsn)} · empty line or Ctrl-D to quit")
    try:
        async with StatefulAgentLoop(
            llm=llm, dsn=dsn, tool_registry=build_demo_tools(), config=CLI_LOOP_CONFIG
        ) as loop:
            reasons = failure_reason(loop)
            sid = await _chat_session(loop, session_id)
            print(f"session: {sid}")
            while True:
                try:
                    line = await asyncio.to_thread(input, "you> ")
                except EOFError:
                    break
                if not line.strip():
                    break
                result = await loop.send(line, sid, heal_pending=True)
                if result.status in ("degraded", "error"):  # reported as one line by main()
                    raise LLMError(f"the model call failed: {reasons[-1] if reasons else result.status}")
                print(f"assistant> {result.final_text}")
    finally:
        await llm.close()
    return 0


def _one_line(command: str, exc: BaseException) -> tuple[str, int]:
    """The message and exit status for a failed command."""
    from .base import redact_secrets
    from .errors import PowerLoopError, StoreSchemaError

    if isinstance(exc, StoreSchemaError):
        text = (
            f"{exc.reason} — create the tables with 'power-loop import --create-schema ARCHIVE' or print "
            "them with 'power-loop ddl --dialect …' (they are never created by sessions/show/export)"
        )
    else:
        text = str(exc) or type(exc).__name__
    if text.startswith("invalid table_prefix "):  # the library's keyword; on the command line: --prefix
        text = "invalid --prefix " + text[len("invalid table_prefix ") :]
    lines = [part.strip() for part in text.splitlines() if part.strip()]
    text = " ".join(lines[:1]) if lines else type(exc).__name__
    if isinstance(exc, (PowerLoopError, OSError, ValueError)):
        return f"power-loop {command}: {redact_secrets(text)}", 2
    detail = f"internal error {type(exc).__name__}: {text}; rerun with 'power-loop --debug {command} …'"
    return f"power-loop {command}: {redact_secrets(detail)}", 1


def _dispatch(args: argparse.Namespace) -> int:
    handled = run_session_command(args)
    if handled is not None:
        return handled
    if args.command == "demo":
        from ._demo import run_demo

        return run_demo(args.dsn, resume_session=args.resume, debug=args.debug)
    if args.command == "inspect":
        return run_inspect(args)
    if args.command == "chat":
        return asyncio.run(_chat(args.dsn, args.session))
    return _ddl(args.dialect, args.prefix)


def _silence_stdout() -> None:
    """Point standard output at the null device so the exit-time flush raises no second error."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real descriptor (captured output): nothing left to flush
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _build_parser().parse_args(argv)
    try:
        status = _dispatch(args)
        sys.stdout.flush()  # a reader that went away shows here, not in the interpreter's exit flush
        return status
    except KeyboardInterrupt:
        print(f"power-loop {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`power-loop show … | head`): not an error to report
        _silence_stdout()
        return 141  # 128 + SIGPIPE, as a command killed by the signal would report
    except Exception as exc:
        if args.debug:
            raise
        message, status = _one_line(args.command, exc)
        print(message, file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
