"""``power-loop inspect``: serve the read-only session inspector (power_loop.contrib.inspector)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ._cli_sessions import default_dsn

__all__ = ["TOKEN_ENV", "add_inspect_command", "run_inspect"]

#: The environment variable that supplies ``--token``'s default.
TOKEN_ENV = "POWER_LOOP_INSPECT_TOKEN"


def add_inspect_command(sub: Any, dsn_help: str) -> None:
    """Register ``inspect`` on an ``argparse`` subparsers object."""
    parser = sub.add_parser("inspect", help="serve a local, read-only web page showing the store's sessions")
    parser.add_argument("--dsn", default=default_dsn(), help=dsn_help)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8765, help="port (default: %(default)s)")
    parser.add_argument("--prefix", default="pl_", help="table prefix (default: %(default)s)")
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"required on every request; mandatory for a non-loopback --host (default: ${TOKEN_ENV}, "
        "which keeps it off the command line other local users can read)",
    )


def run_inspect(args: argparse.Namespace) -> int:
    """Serve until interrupted; a store or configuration problem prints its message and returns 2."""
    from .base import redact_secrets
    from .contrib.inspector import serve
    from .errors import PowerLoopError

    try:
        serve(args.dsn, host=args.host, port=args.port, prefix=args.prefix, token=args.token)
    except PowerLoopError as exc:
        print(f"power-loop inspect: [{exc.code}] {redact_secrets(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"power-loop inspect: cannot bind {args.host}:{args.port} ({exc.strerror or exc})",
            file=sys.stderr,
        )
        return 2
    return 0
