"""Parsing and redaction of network-database DSNs (PostgreSQL / MySQL).

The password is kept out of every string this module produces: `DSNParts.redacted` renders it as
``***`` and the dataclass ``repr`` omits it, so a DSN object may be logged or put in an error safely.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from ..errors import (
    InvalidDSN,
    StoreAuthError,
    StoreConnectionLost,
    StoreDatabaseMissing,
    StoreUnavailable,
)

__all__ = [
    "DSNParts",
    "auth_failed",
    "connection_lost",
    "database_missing",
    "describe_error",
    "parse_dsn",
    "redact_dsn",
    "sanitized_cause",
    "scrub_secret",
    "unavailable",
]

# userinfo of a URL (``scheme://user:password@``), used to redact DSNs we could not parse.
_USERINFO_RE = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*):[^/?#\s]*@")
_PASSWORD_PARAM_RE = re.compile(r"(?i)(?P<head>[?&]password=)[^&#\s]*")


@dataclass(frozen=True, slots=True)
class DSNParts:
    """A DSN split into its components; ``scheme`` is normalised (``+driver`` stripped, lower-cased)."""

    scheme: str
    user: str | None
    password: str | None = field(repr=False)
    host: str | None
    port: int
    database: str | None
    query: tuple[tuple[str, str], ...] = ()

    @property
    def where(self) -> str:
        """``host:port/db`` — names the server in messages without any credential."""
        return f"{self.host or 'localhost'}:{self.port}/{self.database or ''}"

    @property
    def redacted(self) -> str:
        """The DSN with the password replaced by ``***`` (and dropped from the query)."""
        return self.to_url(include_password=False, mask=True)

    def to_url(self, *, include_password: bool, mask: bool = False) -> str:
        """Rebuild a URL. Without ``include_password`` the password is omitted (or ``***`` if ``mask``)."""
        userinfo = ""
        if self.user is not None:
            userinfo = quote(self.user, safe="")
            if self.password is not None and (include_password or mask):
                userinfo += ":" + ("***" if not include_password else quote(self.password, safe=""))
            userinfo += "@"
        host = self.host or ""
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        url = f"{self.scheme}://{userinfo}{host}:{self.port}/{quote(self.database or '', safe='')}"
        if self.query:
            url += "?" + urlencode(self.query)
        return url


def parse_dsn(dsn: str, *, schemes: dict[str, str], default_port: int, kind: str) -> DSNParts:
    """Parse ``dsn`` whose scheme must be a key of ``schemes`` (mapped to the normalised scheme).

    A ``password`` query parameter is folded into :attr:`DSNParts.password`. Raises
    :class:`~power_loop.errors.InvalidDSN` (with the DSN redacted) when the DSN is malformed.
    """
    safe = redact_dsn(dsn)
    try:
        parts = urlsplit(dsn)
        port = parts.port
    except ValueError as exc:
        raise InvalidDSN(f"invalid {kind} DSN {safe!r}: {scrub_secret(str(exc), dsn)}") from None
    scheme = parts.scheme.lower().split("+", 1)[0]
    if scheme not in schemes:
        raise InvalidDSN(f"invalid {kind} DSN {safe!r}: scheme must be one of {', '.join(sorted(schemes))}")
    password = unquote(parts.password) if parts.password is not None else None
    query: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() == "password":
            password = value
        else:
            query.append((key, value))
    database = unquote(parts.path[1:]) if parts.path.startswith("/") else unquote(parts.path)
    return DSNParts(
        scheme=schemes[scheme],
        user=unquote(parts.username) if parts.username else None,
        password=password,
        host=parts.hostname,
        port=port if port is not None else default_port,
        database=database or None,
        query=tuple(query),
    )


def redact_dsn(dsn: str) -> str:
    """Best-effort redaction of any URL-shaped DSN: ``user:secret@host`` → ``user:***@host``."""
    masked = _USERINFO_RE.sub(lambda m: f"{m.group('head')}:***@", dsn)
    return _PASSWORD_PARAM_RE.sub(lambda m: f"{m.group('head')}***", masked)


def scrub_secret(text: str, secret: str | None) -> str:
    """Remove ``secret`` (raw and percent-encoded) from ``text``."""
    if not secret:
        return text
    for form in {secret, quote(secret, safe=""), quote(secret)}:
        text = text.replace(form, "***")
    return text


def describe_error(exc: BaseException, secret: str | None) -> str:
    """``Type: message`` of a driver exception, with ``secret`` scrubbed out."""
    text = str(exc) or repr(exc)
    return scrub_secret(f"{type(exc).__name__}: {text}", secret)


def sanitized_cause(error: BaseException, cause: BaseException, secret: str | None) -> BaseException:
    """Chain ``cause`` under ``error`` only if no exception in its chain mentions ``secret``.

    Returns ``error`` ready to ``raise``: when the chain is tainted it is suppressed (as ``from None``),
    the caller's message already carrying a scrubbed summary from :func:`describe_error`.
    """
    clean = True
    if secret:
        seen: set[int] = set()
        todo: list[BaseException] = [cause]
        while todo and clean:
            node = todo.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            clean = secret not in str(node) and secret not in repr(node)
            todo.extend(e for e in (node.__cause__, node.__context__) if e is not None)
    error.__cause__ = cause if clean else None
    error.__suppress_context__ = True
    return error


# Error builders: every message names the server (never the password) and the fix.


def unavailable(server: str, parts: DSNParts, summary: str) -> StoreUnavailable:
    return StoreUnavailable(
        f"cannot reach the {server} server at {parts.where} ({summary}); check that the server is "
        "running and that host and port in the DSN are right"
    )


def auth_failed(server: str, parts: DSNParts, summary: str) -> StoreAuthError:
    return StoreAuthError(
        f"the {server} server at {parts.where} rejected user {parts.user or '(default)'!r} "
        f"({summary}); fix the user/password in the DSN or the server's access rules"
    )


def database_missing(server: str, parts: DSNParts, summary: str) -> StoreDatabaseMissing:
    host = parts.where.rsplit("/", 1)[0]
    return StoreDatabaseMissing(
        f"database {parts.database!r} does not exist on the {server} server at {host} ({summary}); "
        f"create it (CREATE DATABASE {parts.database}) or fix the database name in the DSN"
    )


def connection_lost(server: str, parts: DSNParts, summary: str) -> StoreConnectionLost:
    return StoreConnectionLost(
        f"lost the connection to the {server} server at {parts.where} ({summary}); the open "
        "transaction was not committed (if the loss hit COMMIT itself its outcome is unknown); "
        "retry the operation"
    )
