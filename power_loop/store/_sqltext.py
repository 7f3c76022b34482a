"""SQL text helpers shared by the PostgreSQL and MySQL dialects.

Everything here is pure string work done once per distinct statement (the dialects cache results).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._port import ColumnSpec, TableSpec

__all__ = [
    "check_columns",
    "check_ident",
    "check_table",
    "render_default",
    "replace_placeholders",
    "status_rowcount",
]

_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# A quoted literal / quoted identifier (kept whole, so a ``?`` inside is not a placeholder), a
# placeholder, or a percent sign.
_TOKEN_RE = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|%")


def check_ident(name: str, *, max_len: int) -> str:
    """Return ``name`` if it is a safe unquoted SQL identifier no longer than ``max_len``."""
    if not _IDENT_RE.match(name) or len(name) > max_len:
        raise ValueError(
            f"invalid SQL identifier {name!r}: use letters, digits and '_' "
            f"(not starting with a digit), at most {max_len} characters"
        )
    return name


def check_table(table: TableSpec, prefix: str, *, max_len: int) -> str:
    """Validate every identifier of ``table`` (with ``prefix``); return the full table name."""
    full = check_ident(prefix + table.name, max_len=max_len)
    names = {check_ident(c.name, max_len=max_len) for c in table.columns}
    if len(names) != len(table.columns):
        raise ValueError(f"table {table.name!r} declares a column twice")
    used: list[str] = list(table.primary_key)
    for index in table.indexes:
        check_ident(prefix + index.name, max_len=max_len)
        used.extend(index.columns)
    unknown = sorted(set(used) - names)
    if unknown:
        raise ValueError(f"table {table.name!r}: key/index names unknown column(s) {unknown}")
    if not table.primary_key:
        raise ValueError(f"table {table.name!r} has no primary key")
    return full


def check_columns(cols: Iterable[str], *, max_len: int) -> list[str]:
    return [check_ident(c, max_len=max_len) for c in cols]


def render_default(column: ColumnSpec, *, backslash_escapes: bool) -> str:
    """`` DEFAULT <literal>`` for ``column`` ('' if it has none); strings are quoted safely."""
    value = column.default
    if value is None:
        return ""
    if isinstance(value, bool):
        return f" DEFAULT {int(value)}"
    if isinstance(value, int):
        return f" DEFAULT {value}"
    text = value.replace("'", "''")
    if backslash_escapes:  # MySQL treats '\' in literals as an escape character
        text = text.replace("\\", "\\\\")
    return f" DEFAULT '{text}'"


def replace_placeholders(sql: str, placeholder: Callable[[int], str], *, double_percent: bool) -> str:
    """Replace each ``?`` outside quotes by ``placeholder(n)`` (n from 1).

    With ``double_percent`` every ``%`` (inside literals too) becomes ``%%``, because drivers using
    ``%s`` parameters run Python %-formatting over the whole statement.
    """
    counter = 0

    def token(match: re.Match[str]) -> str:
        nonlocal counter
        text = match.group(0)
        if text == "?":
            counter += 1
            return placeholder(counter)
        if double_percent:
            return text.replace("%", "%%")
        return text

    return _TOKEN_RE.sub(token, sql)


def status_rowcount(status: str) -> int:
    """Affected rows from a PostgreSQL command tag (``INSERT 0 3`` → 3, ``CREATE TABLE`` → 0)."""
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0
