"""The base of every event payload, apart from the payload classes so the bus loads without them.

The ~40 payload dataclasses (``_payloads``) load when the loop first builds a payload, which it does
only for an event with a subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["BaseEventPayload"]

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


@dataclass(slots=True)
class BaseEventPayload:
    """Base of every payload; :meth:`to_dict` returns the public fields (a shallow copy)."""

    def to_dict(self) -> dict[str, Any]:
        cls = type(self)
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(self) if not f.name.startswith("_"))
        return {name: getattr(self, name) for name in names}
