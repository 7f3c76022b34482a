"""The per-session window cache: a bounded LRU of each session's active history.

The store is the source of truth. An entry is only used when the sequence number the store allocated
for the next write equals the entry's ``next_seq`` and the session's prompt version is unchanged:
proof that nobody else wrote to the session or edited its prompt since the entry was filled. Any
mismatch or error drops the entry and the loop reloads from the store, so a cold loop and a warm loop
always build the same requests.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SessionWindow", "WindowCache"]


@dataclass(slots=True)
class SessionWindow:
    """A session's active messages (provider shape) plus what is needed to build requests."""

    messages: list[dict[str, Any]]
    next_seq: int
    system_prompt: str | None
    send_index: int = 0
    prompt_version: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class WindowCache:
    """LRU of `SessionWindow`s; ``capacity == 0`` disables caching entirely."""

    __slots__ = ("_entries", "capacity", "evictions", "hits", "misses")

    def __init__(self, capacity: int) -> None:
        self.capacity = max(0, int(capacity))
        self._entries: OrderedDict[str, SessionWindow] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def get(
        self, session_id: str, *, expected_next_seq: int, prompt_version: int = 0
    ) -> SessionWindow | None:
        """The entry if it is provably current (same ``next_seq`` and prompt version), else None (dropped)."""
        entry = self._entries.get(session_id)
        if (
            entry is not None
            and entry.next_seq == expected_next_seq
            and entry.prompt_version == prompt_version
        ):
            self._entries.move_to_end(session_id)
            self.hits += 1
            return entry
        if entry is not None:
            del self._entries[session_id]
        self.misses += 1
        return None

    def put(self, session_id: str, window: SessionWindow) -> None:
        if self.capacity == 0:
            return
        self._entries[session_id] = window
        self._entries.move_to_end(session_id)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
            self.evictions += 1

    def drop(self, session_id: str) -> None:
        self._entries.pop(session_id, None)

    def clear(self) -> None:
        self._entries.clear()

    def stats(self) -> dict[str, int]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
            "entries": len(self._entries),
        }
