"""Secret redaction and size capping shared by every observability sink.

Two layers, because secrets reach events in two shapes:

* **by key** — a mapping key whose lower-cased name *contains* one of the redact keys (``"api_key"``,
  ``"DB_PASSWORD"``, ``"Authorization"``) has its whole value replaced by ``"***"``;
* **by value** — inside any string: ``scheme://user:PASSWORD@host`` → ``scheme://user:***@host``,
  ``Bearer TOKEN`` → ``Bearer ***``, and ``<key>=VALUE`` / ``"<key>": "VALUE"`` for the same key names
  (tool outputs and error messages are free text).

Then strings are truncated to ``max_field_len`` with a ``"…(+N)"`` marker and sequences are capped.
The result is always JSON-serialisable.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from ..events import AgentEvent, AgentEventType

__all__ = ["DEFAULT_REDACT_KEYS", "REDACTED", "resolve_redact", "sanitize", "sanitize_payload", "scrub_text"]

REDACTED = "***"

DEFAULT_REDACT_KEYS: tuple[str, ...] = (
    "api_key",
    "api-key",
    "apikey",
    "authorization",
    "bearer",
    "password",
    "passwd",
    "secret",
    "secret_key",
    "access_key",
    "private_key",
    "access_token",
    "refresh_token",
    "auth_token",
    "id_token",
)

_DEFAULT_MAX_ITEMS = 50
_MAX_DEPTH = 20
# Scrub a little past the cut so a secret straddling ``max_field_len`` is still recognised whole.
_SCRUB_MARGIN = 256

# Patterns start only where a token starts (negative lookbehind rather than ``\b``) and the key/value one
# ends in a lookahead: both keep scrubbing linear in the text length, even on long runs of word characters.
_DSN_PASSWORD = re.compile(
    r"(?P<head>(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)(?P<secret>[^\s@/]+)(?=@)"
)
_BEARER = re.compile(r"(?i)\b(?P<head>bearer\s+)(?P<secret>[A-Za-z0-9\-._~+/]+=*)")
# ``name = value`` / ``"name": "value"``; the value is only looked at, so ``a=password=x`` still finds
# ``password``.
_KEY_VALUE = re.compile(r"""(?<![\w-])(?P<name>[\w-]+)["']?\s*[:=]\s*["']?(?=(?P<secret>[^\s"',;&}\]]+))""")


def resolve_redact(redact_keys: Iterable[str] | None) -> tuple[str, ...]:
    """``None`` → :data:`DEFAULT_REDACT_KEYS`; otherwise the given names, lower-cased (``()`` disables)."""
    if redact_keys is None:
        return DEFAULT_REDACT_KEYS
    if isinstance(redact_keys, str):  # a lone string would otherwise be split into characters
        return (redact_keys.lower(),)
    return tuple(dict.fromkeys(k.lower() for k in redact_keys if k))


def _key_is_secret(key: str, keys: tuple[str, ...]) -> bool:
    low = key.lower()
    return any(k in low for k in keys)


def scrub_text(text: str, redact_keys: Iterable[str] | None = None) -> str:
    """Replace DSN passwords, bearer tokens and ``key=value`` secrets inside ``text`` with ``***``.

    DSN and bearer scrubbing always apply; ``key=value`` scrubbing uses ``redact_keys`` (``None`` →
    defaults, ``()`` → off).
    """
    keys = resolve_redact(redact_keys)
    return _scrub(text, keys)


def _scrub(text: str, keys: tuple[str, ...]) -> str:
    if "://" in text:
        text = _DSN_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text)
    text = _BEARER.sub(lambda m: m.group("head") + REDACTED, text)
    if not keys or ("=" not in text and ":" not in text):
        return text
    parts: list[str] = []
    last = 0
    for match in _KEY_VALUE.finditer(text):
        if not _key_is_secret(match.group("name"), keys):
            continue
        start, end = match.span("secret")
        if start < last:  # inside a value already redacted
            continue
        parts.append(text[last:start])
        parts.append(REDACTED)
        last = end
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


def _text(value: str, keys: tuple[str, ...], max_len: int | None) -> str:
    if max_len is None or len(value) <= max_len:
        return _scrub(value, keys)
    cleaned = _scrub(value[: max_len + _SCRUB_MARGIN], keys)
    return f"{cleaned[:max_len]}…(+{len(value) - max_len})"


def sanitize(
    obj: Any,
    *,
    redact_keys: Iterable[str] | None = None,
    max_field_len: int | None = 2000,
    max_items: int = _DEFAULT_MAX_ITEMS,
) -> Any:
    """A JSON-serialisable copy of ``obj`` with secrets redacted and sizes capped.

    Mappings keep their keys (as strings) but secret-named keys get ``"***"``; lists, tuples and sets
    become lists of at most ``max_items`` entries plus a ``"…(+N items)"`` marker; dataclasses become
    dicts of their fields; enums their value; other objects their (scrubbed) ``str()``. Strings are
    scrubbed (:func:`scrub_text`) and cut to ``max_field_len`` characters (``None``: no cut).
    """
    return _walk(obj, resolve_redact(redact_keys), max_field_len, max(0, max_items), 0)


def _walk(obj: Any, keys: tuple[str, ...], max_len: int | None, max_items: int, depth: int) -> Any:
    if obj is None or isinstance(obj, (bool, int, float)):
        return obj
    if isinstance(obj, str):
        return _text(obj, keys, max_len)
    if depth >= _MAX_DEPTH:
        return "…(nested too deep)"
    if isinstance(obj, Enum):
        return _walk(obj.value, keys, max_len, max_items, depth + 1)
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            name = k if isinstance(k, str) else str(k)
            if keys and _key_is_secret(name, keys):
                out[name] = REDACTED
            else:
                out[name] = _walk(v, keys, max_len, max_items, depth + 1)
        return out
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = list(obj)
        capped = [_walk(v, keys, max_len, max_items, depth + 1) for v in items[:max_items]]
        if len(items) > max_items:
            capped.append(f"…(+{len(items) - max_items} items)")
        return capped
    if isinstance(obj, (bytes, bytearray)):
        return f"<{len(obj)} bytes>"
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if not f.name.startswith("_")}
        return _walk(fields, keys, max_len, max_items, depth + 1)
    return _text(str(obj), keys, max_len)


def sanitize_payload(
    event: AgentEvent, *, redact_keys: Iterable[str] | None = None, max_field_len: int | None = 2000
) -> Any:
    """:func:`sanitize` of ``event.payload``, except that a ``tool_call_delta``'s ``arguments_delta`` is
    replaced by its length.

    A fragment of streamed JSON arguments can hold part of a secret that no pattern recognises on its
    own; the complete arguments arrive (redacted by key) with ``tool_call_started``.
    """
    payload = event.payload
    if event.type is AgentEventType.TOOL_CALL_DELTA and "arguments_delta" in payload:
        payload = {**payload, "arguments_delta": f"<{len(str(payload['arguments_delta']))} chars>"}
    return sanitize(payload, redact_keys=redact_keys, max_field_len=max_field_len)
