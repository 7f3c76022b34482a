"""``power-loop inspect``: a local, read-only web page showing what agents did, straight from the store.

::

    from power_loop.contrib.inspector import serve
    serve("./power_loop_sessions.db")          # http://127.0.0.1:8765/

The server is the standard library's threaded ``http.server``; the page is static HTML/CSS/JS shipped in
this package (nothing is built or fetched at run time). The store is opened read-only (SQLite
``mode=ro``; server backends are never provisioned): a missing file or schema is a coded error, never
created. Every query is bounded; the open session page polls the database, so a send running in another
process shows up live. See docs/inspector.md.
"""

from __future__ import annotations

from ._server import Inspector, is_loopback

__all__ = ["Inspector", "is_loopback", "serve"]


def serve(
    dsn: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    prefix: str = "pl_",
    token: str | None = None,
) -> None:
    """Serve the inspector for the store ``dsn`` until interrupted (blocks).

    Binds ``host`` (loopback by default); a non-loopback host requires ``token``, which every request
    must then carry (``?token=`` on the page address, or an ``Authorization: Bearer`` header). Raises
    ``StoreDatabaseMissing`` / ``StoreSchemaError`` when there is nothing to inspect and
    ``ConfigError`` for a non-loopback bind without a token.
    """
    inspector = Inspector(dsn, host=host, port=port, prefix=prefix, token=token).start()
    print(f"power-loop inspector: {inspector.url} ({inspector.dsn_display}, read-only)", flush=True)
    inspector.serve_forever()
