"""A shared blackboard for cooperating agents, stored atomically in the session store.

A board is one JSON document in ``shared_state(owner="blackboard:<board_id>", key="board")``:
``{"version": 1, "next_id": n, "entries": [...]}``. Every change is a single
``mutate_shared_state`` read-modify-write, so concurrent writers (tasks, loops, processes, on any
backend) never lose an update.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..base import get_tool_runtime_context
from ..errors import BlackboardError
from ..store import MUTATE_SKIP, SessionStore
from ..tools import ToolDefinition, ToolRegistry, get_runtime_env

__all__ = [
    "BOARD_TOOL_NAMES",
    "Blackboard",
    "BlackboardEntry",
    "SqliteBlackboard",
    "StoreBlackboard",
    "register_blackboard_tools",
    "render_entries",
]

_BOARD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_KIND = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
BOARD_TOOL_NAMES = ("board_read", "board_post", "board_update", "board_remove")


def _now_iso() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class BlackboardEntry:
    """One entry of a board; ``created_at``/``updated_at`` are ISO-8601 UTC (``...Z``)."""

    id: int
    text: str
    kind: str = "note"
    status: str | None = None
    author: str | None = None
    created_at: str = ""
    updated_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "kind": self.kind,
            "status": self.status,
            "author": self.author,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BlackboardEntry:
        return cls(
            id=int(data["id"]),
            text=str(data["text"]),
            kind=str(data.get("kind") or "note"),
            status=None if data.get("status") is None else str(data["status"]),
            author=None if data.get("author") is None else str(data["author"]),
            created_at=str(data.get("created_at") or ""),
            updated_at=str(data.get("updated_at") or ""),
        )

    def render(self) -> str:
        """``- #id [kind·status] (author) text`` (status and author omitted when unset)."""
        tag = self.kind if self.status is None else f"{self.kind}·{self.status}"
        who = f"({self.author}) " if self.author else ""
        return f"- #{self.id} [{tag}] {who}{self.text}"


def render_entries(entries: Iterable[BlackboardEntry], *, header: str | None = None, empty: str = "") -> str:
    """The entries one per line, under ``header``; ``empty`` stands in for an empty board."""
    lines = [entry.render() for entry in entries]
    body = "\n".join(lines) if lines else empty
    if header is None:
        return body
    return f"{header}\n{body}" if body else header


@runtime_checkable
class Blackboard(Protocol):
    """Storage of shared boards, each a list of entries addressed by ``board_id``."""

    async def read(self, board_id: str) -> list[BlackboardEntry]: ...

    async def post(
        self,
        board_id: str,
        *,
        text: str,
        kind: str = "note",
        status: str | None = None,
        author: str | None = None,
    ) -> BlackboardEntry: ...

    async def update(
        self, board_id: str, entry_id: int, *, text: str | None = None, status: str | None = None
    ) -> BlackboardEntry: ...

    async def remove(self, board_id: str, entry_id: int) -> bool: ...


def _doc(current: Any) -> dict[str, Any]:
    if not isinstance(current, Mapping):
        return {"version": 1, "next_id": 1, "entries": []}
    return {
        "version": 1,
        "next_id": int(current.get("next_id") or 1),
        "entries": [dict(e) for e in current.get("entries") or []],
    }


class StoreBlackboard:
    """A `Blackboard` on a `SessionStore`'s shared state: atomic across tasks, processes and backends.

    A board holds at most ``max_entries`` entries (posting to a full board raises `BlackboardError`);
    entry text is 1..``max_text_len`` characters. Entry ids are never reused within a board.
    """

    def __init__(self, store: SessionStore, *, max_entries: int = 200, max_text_len: int = 2000) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise BlackboardError(f"max_entries must be an int >= 1, got {max_entries!r}")
        if isinstance(max_text_len, bool) or not isinstance(max_text_len, int) or max_text_len < 1:
            raise BlackboardError(f"max_text_len must be an int >= 1, got {max_text_len!r}")
        self.store = store
        self.max_entries = max_entries
        self.max_text_len = max_text_len

    @staticmethod
    def owner(board_id: str) -> str:
        """The ``shared_state`` owner holding ``board_id``."""
        if not isinstance(board_id, str) or not _BOARD_ID.match(board_id):
            raise BlackboardError(
                f"invalid board id {board_id!r}: use 1-128 characters from [A-Za-z0-9_.:-], starting alphanumeric"
            )
        return f"blackboard:{board_id}"

    def _text(self, text: object) -> str:
        if not isinstance(text, str) or not text.strip():
            raise BlackboardError("entry text must be a non-empty string")
        if len(text) > self.max_text_len:
            raise BlackboardError(f"entry text is {len(text)} characters; the limit is {self.max_text_len}")
        return text

    @staticmethod
    def _label(value: object, what: str) -> str:
        if not isinstance(value, str) or not _KIND.match(value):
            raise BlackboardError(f"invalid {what} {value!r}: use 1-32 characters from [A-Za-z0-9_-]")
        return value

    async def read(self, board_id: str) -> list[BlackboardEntry]:
        doc = await self.store.get_shared_state(self.owner(board_id), "board")
        return [BlackboardEntry.from_dict(e) for e in _doc(doc)["entries"]]

    async def post(
        self,
        board_id: str,
        *,
        text: str,
        kind: str = "note",
        status: str | None = None,
        author: str | None = None,
    ) -> BlackboardEntry:
        owner = self.owner(board_id)
        text = self._text(text)
        kind = self._label(kind, "kind")
        if status is not None:
            status = self._label(status, "status")
        created: list[BlackboardEntry] = []

        def add(current: Any) -> dict[str, Any]:
            doc = _doc(current)
            if len(doc["entries"]) >= self.max_entries:
                raise BlackboardError(f"board {board_id!r} is full ({self.max_entries} entries)")
            stamp = _now_iso()
            entry = BlackboardEntry(doc["next_id"], text, kind, status, author, stamp, stamp)
            doc["entries"].append(entry.to_dict())
            doc["next_id"] += 1
            created[:] = [entry]  # the last attempt wins if the backend retries the transaction
            return doc

        await self.store.mutate_shared_state(owner, "board", add)
        return created[0]

    async def update(
        self, board_id: str, entry_id: int, *, text: str | None = None, status: str | None = None
    ) -> BlackboardEntry:
        owner = self.owner(board_id)
        if text is not None:
            text = self._text(text)
        if status is not None:
            status = self._label(status, "status")
        changed: list[BlackboardEntry] = []

        def edit(current: Any) -> dict[str, Any]:
            doc = _doc(current)
            for index, raw in enumerate(doc["entries"]):
                if int(raw["id"]) == entry_id:
                    old = BlackboardEntry.from_dict(raw)
                    entry = BlackboardEntry(
                        old.id,
                        old.text if text is None else text,
                        old.kind,
                        old.status if status is None else status,
                        old.author,
                        old.created_at,
                        _now_iso(),
                    )
                    doc["entries"][index] = entry.to_dict()
                    changed[:] = [entry]
                    return doc
            raise BlackboardError(f"board {board_id!r} has no entry #{entry_id}")

        await self.store.mutate_shared_state(owner, "board", edit)
        return changed[0]

    async def remove(self, board_id: str, entry_id: int) -> bool:
        owner = self.owner(board_id)
        removed: list[bool] = []

        def drop(current: Any) -> Any:
            doc = _doc(current)
            kept = [e for e in doc["entries"] if int(e["id"]) != entry_id]
            removed[:] = [len(kept) != len(doc["entries"])]
            if not removed[0]:
                return MUTATE_SKIP
            doc["entries"] = kept
            return doc

        await self.store.mutate_shared_state(owner, "board", drop)
        return removed[0]


def register_blackboard_tools(
    registry: ToolRegistry,
    board: Blackboard | None = None,
    board_id: str | None = None,
    *,
    kinds: tuple[str, ...] = ("note", "task"),
    statuses: tuple[str, ...] = ("open", "doing", "done"),
    default_kind: str | None = None,
    overwrite: bool = False,
) -> None:
    """Add ``board_read``, ``board_post``, ``board_update`` and ``board_remove``.

    With ``board`` and ``board_id`` the tools use that board. Without them (the published call shape)
    each call uses the ``blackboard`` / ``blackboard_id`` of the current ``RuntimeEnv``
    (``runtime_env_context``), and answers ``"Error: no shared board is configured for this agent."``
    when there is none. Every tool answers with the rendered board after its change; problems (unknown
    entry, full board, bad text) come back as ``"Error: ..."`` strings the model can react to. A post's
    author is the posting agent's spec name when it is a sub-agent, else its session id.
    """
    if not kinds or not statuses:
        raise BlackboardError("kinds and statuses must each name at least one value")
    kind_default = kinds[0] if default_kind is None else default_kind
    if kind_default not in kinds:
        raise BlackboardError(f"default_kind {kind_default!r} is not one of kinds {kinds!r}")
    if (board is None) != (board_id is None):
        raise BlackboardError("pass board and board_id together, or neither (to use the RuntimeEnv's board)")
    if board_id is not None:
        StoreBlackboard.owner(board_id)  # validate the id now, not at the first tool call
    handlers = _board_handlers(_locator(board, board_id), kind_default)
    label = repr(board_id) if board_id is not None else "of this agent"
    for definition in _board_definitions(label, kinds, statuses):
        registry.register(definition, handlers[definition.name], overwrite=overwrite)


_NO_BOARD = "Error: no shared board is configured for this agent."
Locator = Callable[[], "tuple[Blackboard, str] | None"]


def _locator(board: Blackboard | None, board_id: str | None) -> Locator:
    """Where the tools find their board: the one given, else the current RuntimeEnv's."""
    if board is not None and board_id is not None:
        fixed = (board, board_id)
        return lambda: fixed

    def from_env() -> tuple[Blackboard, str] | None:
        env = get_runtime_env()
        if env.blackboard is None or not env.blackboard_id:
            return None
        return env.blackboard, env.blackboard_id

    return from_env


async def _author() -> str | None:
    """The posting agent: its spec name (sub-agents), else its session id."""
    ctx = get_tool_runtime_context()
    if ctx is None:
        return None
    if ctx.store is not None:
        row = await ctx.store.get_session(ctx.session_id)
        metadata = row.metadata if row is not None else {}
        name = metadata.get("spec_name") or metadata.get("name")
        if isinstance(name, str) and name:
            return name
    return ctx.session_id


def _board_handlers(locate: Locator, kind_default: str) -> dict[str, Callable[..., Any]]:
    """The four tool handlers, by tool name."""

    async def snapshot(board: Blackboard, board_id: str, note: str) -> str:
        entries = await board.read(board_id)
        header = f"Board {board_id!r} ({len(entries)} entries):"
        return render_entries(entries, header=f"{note}\n{header}" if note else header, empty="(empty)")

    async def board_read() -> str:
        found = locate()
        return _NO_BOARD if found is None else await snapshot(*found, "")

    async def board_post(text: str, kind: str = kind_default, status: str | None = None) -> str:
        found = locate()
        if found is None:
            return _NO_BOARD
        try:
            entry = await found[0].post(found[1], text=text, kind=kind, status=status, author=await _author())
        except BlackboardError as exc:
            return f"Error: {exc}"
        return await snapshot(*found, f"Posted #{entry.id}.")

    async def board_update(entry_id: int, text: str | None = None, status: str | None = None) -> str:
        found = locate()
        if found is None:
            return _NO_BOARD
        if text is None and status is None:
            return "Error: board_update needs text or status"
        try:
            entry = await found[0].update(found[1], entry_id, text=text, status=status)
        except BlackboardError as exc:
            return f"Error: {exc}"
        return await snapshot(*found, f"Updated #{entry.id}.")

    async def board_remove(entry_id: int) -> str:
        found = locate()
        if found is None:
            return _NO_BOARD
        if not await found[0].remove(found[1], entry_id):
            return f"Error: board {found[1]!r} has no entry #{entry_id}"
        return await snapshot(*found, f"Removed #{entry_id}.")

    return {f.__name__: f for f in (board_read, board_post, board_update, board_remove)}


def _board_definitions(label: str, kinds: tuple[str, ...], statuses: tuple[str, ...]) -> list[ToolDefinition]:
    """The four tool definitions of one board, in registration order."""
    text_schema = {"type": "string", "minLength": 1}
    status_schema = {"type": "string", "enum": list(statuses)}
    id_schema = {"type": "integer", "minimum": 1}
    return [
        ToolDefinition(
            "board_read",
            f"Read the shared board {label}.",
            {"type": "object", "properties": {}, "additionalProperties": False},
        ),
        ToolDefinition(
            "board_post",
            f"Post an entry to the shared board {label} that every cooperating agent can read.",
            {
                "type": "object",
                "properties": {
                    "text": text_schema,
                    "kind": {"type": "string", "enum": list(kinds)},
                    "status": status_schema,
                },
                "additionalProperties": False,
            },
            ("text",),
        ),
        ToolDefinition(
            "board_update",
            f"Change the text and/or status of an entry of the shared board {label}.",
            {
                "type": "object",
                "properties": {"entry_id": id_schema, "text": text_schema, "status": status_schema},
                "additionalProperties": False,
            },
            ("entry_id",),
        ),
        ToolDefinition(
            "board_remove",
            f"Remove an entry from the shared board {label}.",
            {"type": "object", "properties": {"entry_id": id_schema}, "additionalProperties": False},
            ("entry_id",),
        ),
    ]


class SqliteBlackboard(StoreBlackboard):
    """:class:`StoreBlackboard` under the published name and defaults (at most 60 entries).

    The name is historical: like every store-backed class here it works on SQLite, PostgreSQL and MySQL.
    """

    def __init__(self, store: SessionStore, *, max_entries: int = 60, max_text_len: int = 2000) -> None:
        super().__init__(store, max_entries=max_entries, max_text_len=max_text_len)
