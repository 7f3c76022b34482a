"""The one secret-redaction rule: every place that stores, emits, logs, exports or prints error text
runs it through :func:`redact_secrets`.

It replaces, inside free text:

* DSN passwords: ``scheme://user:PASSWORD@host`` → ``scheme://user:***@host``;
* bearer tokens and basic credentials: ``Bearer TOKEN`` / ``Basic CREDS`` (so ``Authorization: …``)
  → ``Bearer ***``;
* API keys by shape, wherever they appear: ``sk-…`` (OpenAI, Anthropic ``sk-ant-…`` and alike);
* ``<name>=VALUE`` / ``"<name>": "VALUE"`` / ``<name>: VALUE`` when ``name`` contains one of the
  secret key names (``api_key``, ``password``, ``authorization``, ``token`` kinds, …).

``power_loop.contrib`` sinks and the hook audit trail use the same rule through :func:`sanitize`, which
also redacts mapping *keys* by these names and caps sizes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

__all__ = ["DEFAULT_REDACT_KEYS", "REDACTED", "redact_secrets", "resolve_redact", "sanitize"]

#: What a redacted secret is replaced by.
REDACTED = "***"

#: Key names (matched case-insensitively, as substrings) whose values are secrets.
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

# Patterns start only where a token starts (negative lookbehind rather than ``\b``) and the key/value one
# ends in a lookahead: both keep scrubbing linear in the text length, even on long runs of word characters.
_DSN_PASSWORD = re.compile(
    r"(?P<head>(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)(?P<secret>[^\s@/]+)(?=@)"
)
_BEARER = re.compile(
    r"(?i)(?P<head>\bbearer\s+|\bauthorization[\"']?\s*[:=]\s*[\"']?basic\s+)(?P<secret>[A-Za-z0-9\-._~+/]+=*)"
)
_SCHEME_WORDS = frozenset({"bearer", "basic", REDACTED})
_KEY_SHAPE = re.compile(r"(?<![A-Za-z0-9_\-])sk-[A-Za-z0-9_\-]{8,}")
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


def redact_secrets(text: str, redact_keys: Iterable[str] | None = None) -> str:
    """``text`` with DSN passwords, bearer tokens, ``sk-…`` keys and ``key=value`` secrets as ``***``.

    DSN, bearer and key-shape scrubbing always apply; ``key=value`` scrubbing uses ``redact_keys``
    (``None`` → :data:`DEFAULT_REDACT_KEYS`, ``()`` → off).
    """
    keys = resolve_redact(redact_keys)
    if "://" in text:
        text = _DSN_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text)
    text = _BEARER.sub(lambda m: m.group("head") + REDACTED, text)
    if "sk-" in text:
        text = _KEY_SHAPE.sub(REDACTED, text)
    if not keys or ("=" not in text and ":" not in text):
        return text
    parts: list[str] = []
    last = 0
    for match in _KEY_VALUE.finditer(text):
        low = match.group("name").lower()
        if not any(k in low for k in keys):
            continue
        start, end = match.span("secret")
        if start < last or text[start:end].lower() in _SCHEME_WORDS:  # already redacted, or "Bearer ***"
            continue
        parts.append(text[last:start])
        parts.append(REDACTED)
        last = end
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


_MAX_DEPTH = 20
_DEFAULT_MAX_ITEMS = 50
# Scrub a little past the cut so a secret straddling ``max_field_len`` is still recognised whole.
_SCRUB_MARGIN = 256


def _key_is_secret(key: str, keys: tuple[str, ...]) -> bool:
    low = key.lower()
    return any(k in low for k in keys)


def _text(value: str, keys: tuple[str, ...], max_len: int | None) -> str:
    if max_len is None or len(value) <= max_len:
        return redact_secrets(value, keys)
    cleaned = redact_secrets(value[: max_len + _SCRUB_MARGIN], keys)
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
    scrubbed (:func:`redact_secrets`) and cut to ``max_field_len`` characters (``None``: no cut).
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
