"""``AgentEvent``: one immutable-by-convention record of something the loop did.

Every event is stamped at creation with ``seq`` (a per-process counter) and ``mono`` (the monotonic clock,
nudged forward so it never repeats); both strictly increase in creation order, across threads. ``ts`` is
wall-clock seconds for humans and logs. The dict form of the payload is derived from ``data`` only when
something reads ``payload`` or serializes the event.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._types import AgentEventType, resolve_event_type

if TYPE_CHECKING:
    from ._payload_base import BaseEventPayload

__all__ = ["AgentEvent"]


class _Clock:
    """Hands out (seq, mono) pairs that strictly increase together, even when stamped from threads."""

    __slots__ = ("_counter", "_last", "_lock")

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._last = -math.inf

    def stamp(self, *, advance_seq: bool) -> tuple[int, float]:
        with self._lock:
            seq = next(self._counter) if advance_seq else 0
            now = time.monotonic()
            # Two readings can be equal at coarse clock resolution; step to the next float instead.
            if now <= self._last:
                now = math.nextafter(self._last, math.inf)
            self._last = now
        return seq, now


_CLOCK = _Clock()


class AgentEvent:
    """An event: ``type`` plus typed ``data`` (or a plain ``payload`` dict) and routing fields.

    ``ts``, ``seq`` and ``mono`` are filled automatically when left at 0 and are ignored by ``==``.
    """

    __slots__ = (
        "_payload",
        "data",
        "mono",
        "round_index",
        "seq",
        "session_id",
        "source",
        "stream_id",
        "ts",
        "type",
    )

    def __init__(
        self,
        type: AgentEventType | str,
        payload: Mapping[str, Any] | None = None,
        data: BaseEventPayload | None = None,
        session_id: str | None = None,
        round_index: int | None = None,
        stream_id: str | None = None,
        source: str | None = None,
        ts: float = 0.0,
        seq: int = 0,
        mono: float = 0.0,
    ) -> None:
        self.type: AgentEventType = type if isinstance(type, AgentEventType) else resolve_event_type(type)
        self._payload: dict[str, Any] | None = dict(payload) if payload else None
        self.data = data
        self.session_id = session_id
        self.round_index = round_index
        self.stream_id = stream_id
        self.source = source
        if not seq or not mono:
            new_seq, new_mono = _CLOCK.stamp(advance_seq=not seq)
            seq = seq or new_seq
            mono = mono or new_mono
        self.seq = seq
        self.mono = mono
        self.ts = ts or time.time()

    @property
    def payload(self) -> dict[str, Any]:
        """The payload as a dict: the one given, else ``data.to_dict()`` (built once, on first access)."""
        p = self._payload
        if p is None:
            p = self.data.to_dict() if self.data is not None else {}
            self._payload = p
        return p

    @payload.setter
    def payload(self, value: Mapping[str, Any]) -> None:
        self._payload = dict(value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict: ``type`` (its value), routing fields, ``ts``/``seq``/``mono`` and ``payload``."""
        return {
            "type": self.type.value,
            "session_id": self.session_id,
            "round_index": self.round_index,
            "stream_id": self.stream_id,
            "source": self.source,
            "ts": self.ts,
            "seq": self.seq,
            "mono": self.mono,
            "payload": self.payload,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AgentEvent:
        """Rebuild an event from :meth:`to_dict` output, keeping its ``ts``/``seq``/``mono`` when present.

        ``data`` is not reconstructed (the typed object is not serialized); ``payload`` carries the values.
        """
        return cls(
            d["type"],
            payload=d.get("payload") or None,
            session_id=d.get("session_id"),
            round_index=d.get("round_index"),
            stream_id=d.get("stream_id"),
            source=d.get("source"),
            ts=float(d["ts"]) if "ts" in d else 0.0,
            seq=int(d["seq"]) if "seq" in d else 0,
            mono=float(d["mono"]) if "mono" in d else 0.0,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AgentEvent):
            return NotImplemented
        return (
            self.type is other.type
            and self.session_id == other.session_id
            and self.round_index == other.round_index
            and self.stream_id == other.stream_id
            and self.source == other.source
            and self.payload == other.payload
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        return (
            f"AgentEvent(type={self.type.value!r}, session_id={self.session_id!r}, "
            f"round_index={self.round_index!r}, seq={self.seq}, payload={self.payload!r})"
        )
