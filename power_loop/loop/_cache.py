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
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, SessionNotFoundError
from ._messages import message_dict, row_to_message

if TYPE_CHECKING:
    from ..store import AppendResult, NewMessage, SessionStore

__all__ = ["SessionWindow", "WindowCache", "load_window", "window_for_send"]


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
        if capacity < 0:
            raise ConfigError("session_cache_size must be >= 0")
        self.capacity = int(capacity)
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


async def load_window(store: SessionStore, session_id: str) -> SessionWindow:
    """The session's active window read from the store (one transaction); the cold path."""
    loaded = await store.load_window(session_id)
    if loaded is None:
        raise SessionNotFoundError(session_id)
    session, state, rows = loaded
    return SessionWindow(
        messages=[row_to_message(row) for row in rows],
        next_seq=state.next_seq,
        system_prompt=session.system_prompt,
        send_index=state.send_index,
        prompt_version=state.prompt_version,
    )


async def window_for_send(
    cache: WindowCache, store: SessionStore, session_id: str, appended: AppendResult, user: NewMessage
) -> SessionWindow:
    """The window a send runs on once its ``user`` row is ``appended``.

    The cached window extended by that row when the append proves it current, else read afresh.
    """
    window = cache.get(
        session_id, expected_next_seq=appended.first_seq, prompt_version=appended.prompt_version
    )
    if window is None:
        window = await load_window(store, session_id)
    else:
        window.messages.append(message_dict("user", user.content, name=user.name))
        window.next_seq = appended.next_seq
    window.send_index = appended.send_index
    return window
