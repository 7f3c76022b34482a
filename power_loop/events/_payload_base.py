"""The base of every event payload, apart from the payload classes so the bus loads without them.

The ~40 payload dataclasses (``_payloads``) load when the loop first builds a payload, which it does
only for an event with a subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["BaseEventPayload"]

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
#: Free-text error fields: whatever a provider or a tool echoed (an API key, a DSN) is redacted on entry.
_ERROR_TEXT_FIELDS = ("error_message", "details")
_ERROR_FIELDS: dict[type, tuple[str, ...]] = {}


@dataclass(slots=True)
class BaseEventPayload:
    """Base of every payload; :meth:`to_dict` returns the public fields (a shallow copy).

    Error text fields (``error_message``, ``details``, a string ``error``) go through
    :func:`power_loop.base.redact_secrets` when the payload is built, so no subscriber sees a secret.
    """

    def __post_init__(self) -> None:
        cls = type(self)
        names = _ERROR_FIELDS.get(cls)
        if names is None:
            present = {f.name for f in fields(self)}
            names = _ERROR_FIELDS[cls] = tuple(n for n in (*_ERROR_TEXT_FIELDS, "error") if n in present)
        for name in names:
            value = getattr(self, name)
            if isinstance(value, str) and value:
                # Loaded only when there is error text to clean: most payloads carry none.
                from ..base import redact_secrets

                setattr(self, name, redact_secrets(value))

    def to_dict(self) -> dict[str, Any]:
        cls = type(self)
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(self) if not f.name.startswith("_"))
        return {name: getattr(self, name) for name in names}
