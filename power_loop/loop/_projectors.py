"""Runtime projectors: transient messages added to every model call, never stored.

Before each round's model call the loop asks every projector of ``AgentLoopConfig.runtime_projectors``
for messages describing live state (the todo list, say) and appends them after the history. They are
rebuilt each round from the store, so they always show the current state and never pile up in the
conversation or the audit log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..store import SessionStore

__all__ = [
    "BackgroundRuntimeProjector",
    "ProjectionContext",
    "RuntimeMessage",
    "RuntimeProjector",
    "TodoRuntimeProjector",
    "default_runtime_projectors",
]


@dataclass(frozen=True, slots=True)
class RuntimeMessage:
    """One transient message: sent with this round's request only."""

    content: str
    name: str = "runtime"
    role: str = "user"

    def to_message(self) -> dict[str, Any]:
        """The chat message dict the request carries."""
        return {"role": self.role, "content": self.content, "name": self.name}


@dataclass(frozen=True, slots=True)
class ProjectionContext:
    """What a projector may look at: the tools offered this round and the history being sent."""

    tool_names: tuple[str, ...] = ()
    messages: Sequence[Mapping[str, Any]] = field(default_factory=tuple)


@runtime_checkable
class RuntimeProjector(Protocol):
    """Produces this round's transient messages for a session (``[]`` for none)."""

    async def project(
        self, *, store: SessionStore, session_id: str, round_index: int, context: ProjectionContext
    ) -> list[RuntimeMessage]: ...


class TodoRuntimeProjector:
    """Shows the session's todo list (``runtime_todo_state``, ``<current_todos>...</current_todos>``).

    Only while the ``todo`` tool is offered: without it the model could not change the list, and
    loops that do not use it pay no store read per round.
    """

    __slots__ = ("state_key",)

    def __init__(self, state_key: str = "todo") -> None:
        self.state_key = state_key

    def __repr__(self) -> str:
        return f"TodoRuntimeProjector(state_key={self.state_key!r})"

    async def project(
        self, *, store: SessionStore, session_id: str, round_index: int, context: ProjectionContext
    ) -> list[RuntimeMessage]:
        if "todo" not in context.tool_names:
            return []
        from ..tools import render_todo  # the session tools load only for loops offering `todo`

        items = await store.get_runtime_state(session_id, self.state_key, None)
        if not isinstance(items, list) or not items:
            return []
        try:
            rendered = render_todo(items)
        except (KeyError, TypeError):  # state written by someone else in another shape
            return []
        return [RuntimeMessage(f"<current_todos>\n{rendered}\n</current_todos>", name="runtime_todo_state")]


class BackgroundRuntimeProjector:
    """Announces finished background tasks once (``runtime_background_updates``,
    ``<background_updates><task id=... status=...>...</background_updates>``).

    Only while ``background_run`` or ``check_background`` is offered, so loops without background
    tasks pay nothing per round. A task whose process vanished is reported ``lost``. With
    ``mark_seen`` (the default) each finish is shown in one round only.
    """

    __slots__ = ("mark_seen",)

    def __init__(self, mark_seen: bool = True) -> None:
        self.mark_seen = mark_seen

    def __repr__(self) -> str:
        return f"BackgroundRuntimeProjector(mark_seen={self.mark_seen!r})"

    async def project(
        self, *, store: SessionStore, session_id: str, round_index: int, context: ProjectionContext
    ) -> list[RuntimeMessage]:
        if "background_run" not in context.tool_names and "check_background" not in context.tool_names:
            return []
        from ..tools import collect_background_updates, render_background_updates

        done = await collect_background_updates(store, session_id, mark_seen=self.mark_seen)
        if not done:
            return []
        return [RuntimeMessage(render_background_updates(done), name="runtime_background_updates")]


def default_runtime_projectors() -> tuple[RuntimeProjector, ...]:
    """The projectors a loop uses unless configured otherwise: the todo list and background tasks
    (each active only while its tools are offered)."""
    return (TodoRuntimeProjector(), BackgroundRuntimeProjector())
