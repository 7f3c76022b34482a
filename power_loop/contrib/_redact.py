"""Secret redaction and size capping shared by every observability sink.

Two layers, because secrets reach events in two shapes:

* **by key** — a mapping key whose lower-cased name *contains* one of the redact keys (``"api_key"``,
  ``"DB_PASSWORD"``, ``"Authorization"``) has its whole value replaced by ``"***"``;
* **by value** — inside any string: ``scheme://user:PASSWORD@host`` → ``scheme://user:***@host``,
  ``Bearer TOKEN`` → ``Bearer ***``, ``sk-…`` keys, and ``<key>=VALUE`` / ``"<key>": "VALUE"`` for the
  same key names (tool outputs and error messages are free text) — the one rule,
  :func:`power_loop.base.redact_secrets`, also applied by the loop, the tools and the CLI.

Then strings are truncated to ``max_field_len`` with a ``"…(+N)"`` marker and sequences are capped.
The result is always JSON-serialisable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from ..base import DEFAULT_REDACT_KEYS, REDACTED, redact_secrets, resolve_redact
from ..events import AgentEvent, AgentEventType

__all__ = ["DEFAULT_REDACT_KEYS", "REDACTED", "resolve_redact", "sanitize", "sanitize_payload", "scrub_text"]

# The rule itself lives in the base layer so the loop, the store, the tools and the CLI apply the same one.
_MAX_DEPTH = 20
_DEFAULT_MAX_ITEMS = 50
# Scrub a little past the cut so a secret straddling ``max_field_len`` is still recognised whole.
_SCRUB_MARGIN = 256


def _key_is_secret(key: str, keys: tuple[str, ...]) -> bool:
    low = key.lower()
    return any(k in low for k in keys)


def scrub_text(text: str, redact_keys: Iterable[str] | None = None) -> str:
    """:func:`power_loop.base.redact_secrets` (kept under this name for the sinks)."""
    return redact_secrets(text, redact_keys)


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
