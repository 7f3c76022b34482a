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

from collections.abc import Iterable
from typing import Any

from ..base import DEFAULT_REDACT_KEYS, REDACTED, redact_secrets, resolve_redact, sanitize
from ..events import AgentEvent, AgentEventType

__all__ = ["DEFAULT_REDACT_KEYS", "REDACTED", "resolve_redact", "sanitize", "sanitize_payload", "scrub_text"]

# The rule and the walker live in the base layer so the loop (the hook audit trail), the store, the
# tools and the CLI apply the same ones.


def scrub_text(text: str, redact_keys: Iterable[str] | None = None) -> str:
    """:func:`power_loop.base.redact_secrets` (kept under this name for the sinks)."""
    return redact_secrets(text, redact_keys)


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
