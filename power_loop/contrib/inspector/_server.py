"""The inspector's HTTP side: a threaded ``http.server`` in front of one asyncio loop holding the store.

Request threads hand each query to the loop thread (``run_coroutine_threadsafe``), so one database
connection (or pool) serves every request. Only ``GET``/``HEAD`` exist; a token, when set, is checked on
every request (static files too) with a constant-time compare.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import socket
import threading
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ...errors import ConfigError, PowerLoopError, SessionNotFoundError
from ...store import connect_database, ensure_schema
from .._redact import scrub_text
from ._queries import InspectorQueries

__all__ = ["Inspector", "is_loopback"]

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
}
_COOKIE = "pl_inspector_token"
# The page loads only its own script and style: even a string that slipped into markup could not run.
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _static(name: str) -> bytes:
    return resources.files(__package__).joinpath("static").joinpath(name).read_bytes()


class Inspector:
    """A running inspector: ``start()`` opens the store read-only and binds; ``close()`` stops it.

    ``port=0`` picks a free port (see :attr:`url`). A non-loopback ``host`` requires ``token``.
    """

    def __init__(
        self,
        dsn: str,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        prefix: str = "pl_",
        token: str | None = None,
    ) -> None:
        if not is_loopback(host) and not token:
            raise ConfigError(
                f"refusing to serve the inspector on non-loopback host {host!r} without a token; "
                "pass --token (every request must then carry it)"
            )
        self.dsn_display = scrub_text(dsn, ())
        self.prefix = prefix
        self._dsn, self._host, self._port, self._token = dsn, host, port, token
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self.queries: InspectorQueries | None = None
        self._db: Any = None

    @property
    def url(self) -> str:
        """The page's address (with the actual port once started)."""
        port = self._httpd.server_address[1] if self._httpd else self._port
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{port}/"

    def run(self, coro: Awaitable[Any]) -> Any:
        """Run ``coro`` on the database loop from another thread and wait for its result."""
        if self._loop is None:
            raise RuntimeError("the inspector is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()  # type: ignore[arg-type]

    async def _open(self) -> None:
        db = await connect_database(self._dsn, read_only=True)
        try:
            # VERIFY only reads: a missing or partial schema raises StoreSchemaError, nothing is created.
            await ensure_schema(db, self.prefix, policy="verify")
        except BaseException:
            await db.close()
            raise
        self._db = db
        self.queries = InspectorQueries(db, self.prefix)

    def start(self) -> Inspector:
        """Open the store (read-only, schema verified) and start serving in background threads."""
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="inspector-db", daemon=True)
        self._loop_thread.start()
        try:
            self.run(self._open())
            handler = type("_BoundHandler", (_Handler,), {"inspector": self})
            server = _Server6 if ":" in self._host else ThreadingHTTPServer
            self._httpd = server((self._host, self._port), handler)
        except BaseException:
            self._stop_loop()
            raise
        self._httpd.daemon_threads = True
        self._http_thread = threading.Thread(
            target=self._httpd.serve_forever, name="inspector-http", daemon=True
        )
        self._http_thread.start()
        return self

    def serve_forever(self) -> None:
        """Block until interrupted (Ctrl-C), then close."""
        try:
            if self._http_thread is not None:
                self._http_thread.join()
        except KeyboardInterrupt:
            pass
        finally:
            self.close()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._loop_thread
        if loop is None or thread is None:
            return
        if self._db is not None:
            self.run(self._db.close())
            self._db = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._loop_thread = None

    def close(self) -> None:
        """Stop serving and close the database (idempotent)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        self._stop_loop()

    def host_allowed(self, host_header: str | None) -> bool:
        """Without a token, only requests addressed to a loopback name are served.

        A page on another site that rebinds its own DNS name to 127.0.0.1 would otherwise read the API
        from the user's browser; its requests carry that foreign name in ``Host``.
        """
        if self._token is not None:
            return True
        if not host_header:
            return False
        name = urlsplit("//" + host_header).hostname or ""
        return is_loopback(name) or name == self._host.lower().strip("[]")

    def check_token(self, offered: str | None) -> bool:
        """Constant-time token check; always true when no token is configured."""
        if self._token is None:
            return True
        return offered is not None and hmac.compare_digest(offered.encode(), self._token.encode())

    def __enter__(self) -> Inspector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Server6(ThreadingHTTPServer):
    """The threaded server on an IPv6 address (``--host ::1``)."""

    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    inspector: Inspector
    server_version = "power-loop-inspector"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the inspector is a local tool, access logs would only be noise."""

    def _send(self, status: int, body: bytes, ctype: str, cookie: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", str(len(body)))
        for key, value in _SECURITY_HEADERS.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        body = json.dumps(data, ensure_ascii=False, default=str).encode()
        self._send(status, body, "application/json; charset=utf-8")

    def _offered_token(self, query: dict[str, list[str]]) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[7:]
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        morsel = cookie.get(_COOKIE)
        return (
            self.headers.get("X-Inspector-Token")
            or _first(query, "token")
            or (morsel.value if morsel else None)
        )

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if not self.inspector.host_allowed(self.headers.get("Host")):
            self._json(HTTPStatus.FORBIDDEN, {"error": "unexpected Host header", "code": "host"})
            return
        if not self.inspector.check_token(self._offered_token(query)):
            self._json(HTTPStatus.UNAUTHORIZED, {"error": "a valid token is required", "code": "auth"})
            return
        if parts.path in _STATIC:
            name, ctype = _STATIC[parts.path]
            # The page's own script and style requests then carry the token as a cookie.
            offered = _first(query, "token")
            cookie = f"{_COOKIE}={offered}; HttpOnly; SameSite=Strict; Path=/" if offered else None
            self._send(HTTPStatus.OK, _static(name), ctype, cookie)
            return
        if not parts.path.startswith("/api/"):
            self._json(HTTPStatus.NOT_FOUND, {"error": "not found", "code": "not_found"})
            return
        try:
            data = self.inspector.run(_route(self.inspector, parts.path[5:], query))
        except SessionNotFoundError as exc:
            self._json(HTTPStatus.NOT_FOUND, {"error": str(exc), "code": exc.code})
        except (PowerLoopError, ValueError) as exc:
            code = getattr(exc, "code", "bad_request")
            self._json(HTTPStatus.BAD_REQUEST, {"error": scrub_text(str(exc), ()), "code": code})
        else:
            self._json(HTTPStatus.OK, data)

    def _refuse(self) -> None:
        self._json(
            HTTPStatus.METHOD_NOT_ALLOWED, {"error": "the inspector is read-only", "code": "read_only"}
        )

    do_POST = do_PUT = do_PATCH = do_DELETE = _refuse


def _first(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def _int(query: dict[str, list[str]], key: str) -> int | None:
    values = query.get(key)
    return int(values[0]) if values and values[0] != "" else None


async def _route(inspector: Inspector, path: str, query: dict[str, list[str]]) -> Any:
    queries = inspector.queries
    assert queries is not None
    parts = [unquote(p) for p in path.split("/") if p]
    limit = _int(query, "limit")
    if parts == ["info"]:
        return {"dsn": inspector.dsn_display, "prefix": inspector.prefix, "read_only": True}
    if parts == ["sessions"]:
        return await queries.list_sessions(
            q=(query.get("q") or [""])[0], cursor=_first(query, "cursor"), limit=limit or 50
        )
    if len(parts) in (4, 6) and parts[0] == "sessions" and parts[2] == "workflows":
        if len(parts) == 4:
            return await queries.workflows.run(parts[1], parts[3])
        if parts[4] == "steps":
            return await queries.workflows.step(parts[1], parts[3], parts[5])
    handlers: dict[int, Callable[[], Awaitable[Any]]] = {}
    if len(parts) >= 2 and parts[0] == "sessions":
        sid = parts[1]
        handlers[2] = lambda: queries.session(sid, counts=_first(query, "counts") != "0")
        handlers[3] = lambda: queries.messages(
            sid, before=_int(query, "before"), after=_int(query, "after"), limit=limit or 200
        )
        handlers[4] = lambda: queries.message(sid, int(parts[3]))
        valid = len(parts) == 2 or parts[2] == "messages"
        if valid and len(parts) in handlers:
            return await handlers[len(parts)]()
    raise SessionNotFoundError(f"no API route /api/{path}")
