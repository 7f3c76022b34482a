"""Session notes under a :class:`NotesPolicy`, and the ``note_add`` / ``note_update`` / ``note_delete``
tools that let the agent keep them.

Notes are durable rows of the session (they survive folds, restarts and export/import). The policy
bounds them: too-long or empty notes are rejected, never truncated; when the session is full,
``eviction="reject"`` refuses new notes and ``eviction="fifo"`` deletes the oldest unpinned one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..base import get_tool_runtime_context
from ..errors import ConfigError, NoteRejectedError, NotesFullError, PowerLoopError

if TYPE_CHECKING:
    from ..store import NoteRow, SessionStore
    from ..tools import ToolDefinition, ToolRegistry
    from ._fold import NoteOp

__all__ = [
    "DEFAULT_NOTES_POLICY",
    "NOTE_TOOL_NAMES",
    "NotesPolicy",
    "add_note_checked",
    "apply_note_ops",
    "register_note_tools",
    "render_notes",
    "update_note_checked",
]

NOTE_TOOL_NAMES = ("note_add", "note_update", "note_delete")


@dataclass(frozen=True, slots=True)
class NotesPolicy:
    """Limits on a session's notes. ``inject_max_chars`` bounds what :func:`render_notes` shows."""

    max_notes: int = 50
    max_note_chars: int = 1000
    inject_max_chars: int = 8000
    eviction: Literal["reject", "fifo"] = "reject"

    def __post_init__(self) -> None:
        for name in ("max_notes", "max_note_chars", "inject_max_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"NotesPolicy.{name} must be an int >= 1, got {value!r}")
        if self.eviction not in ("reject", "fifo"):
            raise ConfigError(f"NotesPolicy.eviction must be 'reject' or 'fifo', got {self.eviction!r}")


DEFAULT_NOTES_POLICY = NotesPolicy()


def _check_content(content: object, policy: NotesPolicy) -> str:
    if not isinstance(content, str) or not content.strip():
        raise NoteRejectedError("a note needs non-empty text")
    text = content.strip()
    if len(text) > policy.max_note_chars:
        raise NoteRejectedError(
            f"note is {len(text)} characters; the limit is {policy.max_note_chars} (shorten it, notes are never truncated)"
        )
    return text


async def add_note_checked(
    store: SessionStore,
    session_id: str,
    content: str,
    *,
    pinned: bool = False,
    policy: NotesPolicy = DEFAULT_NOTES_POLICY,
) -> NoteRow:
    """Add a note if the policy allows it (evicting the oldest unpinned note under ``"fifo"``).

    Raises :class:`NoteRejectedError` for empty/too-long text and :class:`NotesFullError` when full.
    """
    text = _check_content(content, policy)
    if await store.count_notes(session_id) >= policy.max_notes:
        if policy.eviction == "reject":
            raise NotesFullError(
                f"the session already has {policy.max_notes} notes; update or delete one first"
            )
        notes = await store.list_notes(session_id)
        unpinned = [n for n in notes if not n.pinned]
        excess = len(notes) - policy.max_notes + 1
        if len(unpinned) < excess:
            raise NotesFullError(f"all {len(notes)} notes are pinned; unpin or delete one first")
        for note in unpinned[:excess]:
            await store.delete_note(session_id, note.note_id)
    return await store.add_note(session_id, text, pinned=pinned)


async def update_note_checked(
    store: SessionStore,
    session_id: str,
    note_id: int,
    *,
    content: str | None = None,
    pinned: bool | None = None,
    policy: NotesPolicy = DEFAULT_NOTES_POLICY,
) -> bool:
    """Update a note's text and/or pin under the policy; False when the note does not exist."""
    text = None if content is None else _check_content(content, policy)
    return await store.update_note(session_id, note_id, content=text, pinned=pinned)


def render_notes(notes: Sequence[NoteRow], *, policy: NotesPolicy = DEFAULT_NOTES_POLICY) -> str:
    """Notes as text for the model: ``#id [pinned] text`` lines within ``policy.inject_max_chars``.

    Pinned notes are kept first; the oldest unpinned notes are left out when over budget, with a
    line saying how many. Empty string for no notes.
    """
    if not notes:
        return ""

    def line(n: NoteRow) -> str:
        return f"#{n.note_id} {'[pinned] ' if n.pinned else ''}{n.content}"

    pinned = [line(n) for n in notes if n.pinned]
    unpinned = [line(n) for n in notes if not n.pinned]
    header = f"Notes ({len(notes)}):"
    used = len(header) + sum(len(x) + 1 for x in pinned) + sum(len(x) + 1 for x in unpinned)
    dropped = 0
    # Room for the "not shown" line is reserved once anything has to go; pinned notes always stay.
    while (
        unpinned and used + (40 if dropped or used > policy.inject_max_chars else 0) > policy.inject_max_chars
    ):
        used -= len(unpinned.pop(0)) + 1
        dropped += 1
    shown = pinned + unpinned
    out = [header, *shown]
    if dropped:
        out.append(f"({dropped} older note(s) not shown)")
    return "\n".join(out)


async def apply_note_ops(
    store: SessionStore, session_id: str, ops: Sequence[NoteOp], *, policy: NotesPolicy = DEFAULT_NOTES_POLICY
) -> tuple[int, list[str]]:
    """Apply a fold's note ops one by one; returns ``(applied, problems)`` — a rejected op never stops the rest."""
    applied = 0
    problems: list[str] = []
    for op in ops:
        try:
            if op.op == "add":
                await add_note_checked(
                    store, session_id, op.content or "", pinned=bool(op.pinned), policy=policy
                )
                applied += 1
            elif op.note_id is not None and await update_note_checked(
                store, session_id, op.note_id, content=op.content, pinned=op.pinned, policy=policy
            ):
                applied += 1
            else:
                problems.append(f"note #{op.note_id} does not exist")
        except PowerLoopError as exc:
            problems.append(str(exc))
    return applied, problems


def register_note_tools(
    registry: ToolRegistry, *, policy: NotesPolicy = DEFAULT_NOTES_POLICY, overwrite: bool = False
) -> list[str]:
    """Register ``note_add``, ``note_update`` and ``note_delete`` (they act on the calling session)."""
    handlers = _note_handlers(policy)
    definitions = _note_definitions(policy.max_note_chars)
    for definition in definitions:
        registry.register(definition, handlers[definition.name], overwrite=overwrite)
    return [d.name for d in definitions]


def _note_handlers(policy: NotesPolicy) -> dict[str, Callable[..., Any]]:
    """The three note tool handlers, by tool name."""
    from ..tools import ToolHandlerResult

    async def note_add(content: str, pinned: bool = False) -> ToolHandlerResult:
        ctx = get_tool_runtime_context(required=True)
        if ctx.store is None:
            return ToolHandlerResult(ok=False, content="Error: notes need a session store")
        try:
            note = await add_note_checked(ctx.store, ctx.session_id, content, pinned=pinned, policy=policy)
        except NoteRejectedError as exc:
            return ToolHandlerResult(ok=False, content=f"Error: {exc}")
        return ToolHandlerResult(
            ok=True, content=f"saved note #{note.note_id}", data={"note_id": note.note_id}
        )

    async def note_update(
        note_id: int, content: str | None = None, pinned: bool | None = None
    ) -> ToolHandlerResult:
        ctx = get_tool_runtime_context(required=True)
        if ctx.store is None:
            return ToolHandlerResult(ok=False, content="Error: notes need a session store")
        try:
            found = await update_note_checked(
                ctx.store, ctx.session_id, note_id, content=content, pinned=pinned, policy=policy
            )
        except NoteRejectedError as exc:
            return ToolHandlerResult(ok=False, content=f"Error: {exc}")
        if not found:
            return ToolHandlerResult(ok=False, content=f"Error: no note #{note_id}")
        return ToolHandlerResult(ok=True, content=f"updated note #{note_id}")

    async def note_delete(note_id: int) -> ToolHandlerResult:
        ctx = get_tool_runtime_context(required=True)
        if ctx.store is None:
            return ToolHandlerResult(ok=False, content="Error: notes need a session store")
        if not await ctx.store.delete_note(ctx.session_id, note_id):
            return ToolHandlerResult(ok=False, content=f"Error: no note #{note_id}")
        return ToolHandlerResult(ok=True, content=f"deleted note #{note_id}")

    return {f.__name__: f for f in (note_add, note_update, note_delete)}


def _note_definitions(limit: int) -> list[ToolDefinition]:
    """The three note tool definitions (``limit``: the longest note, in characters)."""
    from ..tools import ToolDefinition

    return [
        ToolDefinition(
            "note_add",
            f"Save a durable note for this session (at most {limit} characters). Notes survive "
            "context folding and are shown to you at the start of every request.",
            {
                "type": "object",
                "properties": {
                    "content": {"type": "string", "minLength": 1, "maxLength": limit},
                    "pinned": {"type": "boolean", "description": "pinned notes are never evicted"},
                },
                "required": ["content"],
                "additionalProperties": False,
            },
        ),
        ToolDefinition(
            "note_update",
            "Change the text and/or pin of a note by its id.",
            {
                "type": "object",
                "properties": {
                    "note_id": {"type": "integer"},
                    "content": {"type": "string", "minLength": 1, "maxLength": limit},
                    "pinned": {"type": "boolean"},
                },
                "required": ["note_id"],
                "additionalProperties": False,
            },
        ),
        ToolDefinition(
            "note_delete",
            "Delete a note by its id.",
            {
                "type": "object",
                "properties": {"note_id": {"type": "integer"}},
                "required": ["note_id"],
                "additionalProperties": False,
            },
        ),
    ]
