"""Memory providers: what the agent should be reminded of at the start of each send.

``recall`` runs once per send; its messages are added at the *end* of every request of that send and
never stored, so the history prefix stays identical from request to request (provider prompt caches
keep hitting). ``remember`` runs when the send ends, whatever its status. A failing provider emits
``MEMORY_FAILED`` and the send carries on without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..base import get_tool_runtime_context
from ._notes import DEFAULT_NOTES_POLICY, NotesPolicy, render_notes

if TYPE_CHECKING:
    from ..store import SessionStore

__all__ = ["MemoryProvider", "MemorySnapshot", "NotesMemory", "SQLiteNoteMemory", "tag_as_memory"]

LoopMessage = dict[str, Any]


@dataclass(slots=True)
class MemorySnapshot:
    """What ``remember`` gets at the end of a send."""

    session_id: str
    messages: list[LoopMessage] = field(default_factory=list)
    final_text: str = ""
    rounds: int = 0
    status: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class MemoryProvider(Protocol):
    """Recall per send, remember at send end. Both may raise; the loop reports and continues."""

    async def recall(
        self, *, messages: list[LoopMessage], session_id: str | None, budget_tokens: int = 1500
    ) -> list[LoopMessage]: ...

    async def remember(self, *, snapshot: MemorySnapshot, session_id: str | None) -> None: ...


def tag_as_memory(messages: Sequence[LoopMessage], *, prefix: str = "memory_") -> list[LoopMessage]:
    """Recalled messages as the model will see them: ``user`` messages named ``<prefix><name or i>``,
    content wrapped in ``<memory>`` so the model can tell them from what the user typed."""
    tagged: list[LoopMessage] = []
    for i, msg in enumerate(messages):
        name = msg.get("name")
        label = name[len(prefix) :] if isinstance(name, str) and name.startswith(prefix) else (name or str(i))
        content = msg.get("content")
        text = content if isinstance(content, str) else str(content or "")
        tagged.append({"role": "user", "content": f"<memory>\n{text}\n</memory>", "name": f"{prefix}{label}"})
    return tagged


class NotesMemory:
    """Recalls the session's notes (rendered under ``policy``) as one message; ``remember`` does nothing.

    Works on every store backend. Without ``store=`` it uses the store of the send being run.
    """

    def __init__(
        self, store: SessionStore | None = None, *, policy: NotesPolicy = DEFAULT_NOTES_POLICY
    ) -> None:
        self.store = store
        self.policy = policy

    def __repr__(self) -> str:
        return f"NotesMemory(policy={self.policy!r})"

    def _store(self) -> SessionStore | None:
        if self.store is not None:
            return self.store
        ctx = get_tool_runtime_context()
        return None if ctx is None else ctx.store

    async def recall(
        self, *, messages: list[LoopMessage], session_id: str | None, budget_tokens: int = 1500
    ) -> list[LoopMessage]:
        store = self._store()
        if store is None or session_id is None:
            return []
        text = render_notes(await store.list_notes(session_id), policy=self.policy)
        return [{"role": "user", "name": "memory_notes", "content": text}] if text else []

    async def remember(self, *, snapshot: MemorySnapshot, session_id: str | None) -> None:
        return None


class SQLiteNoteMemory(NotesMemory):
    """:class:`NotesMemory` under the published name: the store is required, any backend works."""

    def __init__(self, store: SessionStore, *, policy: NotesPolicy = DEFAULT_NOTES_POLICY) -> None:
        super().__init__(store, policy=policy)

    def __repr__(self) -> str:
        return f"SQLiteNoteMemory(policy={self.policy!r})"
