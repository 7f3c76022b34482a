"""Representations: how each *finished* send appears in the requests of later sends.

The audit log (the ``messages`` table) is never rewritten. What the model sees of a finished send is
derived from its stored rows by a pure function, so a cold loop rebuilds exactly what a warm loop
cached. The send in progress is always shown verbatim (the model needs its tool results).

- :class:`VerbatimRepresentation` shows finished sends as recorded.
- :class:`ProjectedRepresentation` shows each finished send as two terse messages: what the human
  asked, and which tools ran (``ToolDefinition.project`` summarises a call when the tool provides it)
  plus the final answer. The full detail stays one ``recall_send(send_index=N)`` away.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import ConfigError
from ._state import row_message
from ._tokens import estimate_text_tokens

if TYPE_CHECKING:
    from ..store import MessageRow
    from ..tools import ToolRegistry

__all__ = [
    "CompactView",
    "ProjectMessageRow",
    "ProjectedRepresentation",
    "ProjectedRow",
    "ProjectedSend",
    "PublishedShapes",
    "Representation",
    "SendView",
    "VerbatimRepresentation",
    "check_messages",
    "truncate",
]

LoopMessage = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SendView:
    """One finished send: its index and its messages in provider shape, as stored."""

    send_index: int
    messages: tuple[LoopMessage, ...]


@dataclass(frozen=True, slots=True)
class CompactView:
    """The current fold summary, covering sends ``from_send..to_send``."""

    summary: str
    from_send: int
    to_send: int


@runtime_checkable
class Representation(Protocol):
    """Renders finished sends and the fold summary into provider-shape messages.

    Both methods must be pure (same input → equal output) and return structurally valid messages:
    roles ``user``/``assistant``/``tool`` only, every assistant tool call followed by its results.
    ``kind`` and ``version`` identify the rendering; change ``version`` when the output changes.
    """

    kind: str
    version: int

    def render_send(self, send: SendView, *, tool_registry: ToolRegistry | None) -> list[LoopMessage]: ...

    def render_compact(self, compact: CompactView) -> list[LoopMessage]: ...


@dataclass(frozen=True, slots=True)
class ProjectedRow:
    """One row of a projected send (published shape): ``kind`` ``"project"`` (or ``"user"``),
    ``content`` ``{"messages": [...]}`` and the messages' text."""

    kind: str
    content: dict[str, Any]
    rendered_text: str | None = None


@dataclass(frozen=True, slots=True)
class ProjectedSend:
    """What ``project_send`` makes of one finished send: its rows and the seq range it came from."""

    rows: list[ProjectedRow] = field(default_factory=list)
    source_seq_lo: int | None = None
    source_seq_hi: int | None = None

    def to_rows(
        self, session_id: str, send_index: int, *, projector_version: int = 1
    ) -> list[ProjectMessageRow]:
        """These rows as :class:`ProjectMessageRow` objects of ``session_id``'s send ``send_index``."""
        now = time.time_ns() // 1_000_000
        return [
            ProjectMessageRow(
                session_id=session_id,
                send_index=send_index,
                kind=row.kind,
                content=row.content,
                rendered_text=row.rendered_text,
                source_seq_lo=self.source_seq_lo,
                source_seq_hi=self.source_seq_hi,
                compact_from_send=None,
                compact_to_send=None,
                projector_version=projector_version,
                token_estimate=estimate_text_tokens(row.rendered_text),
                created_at=now,
            )
            for row in self.rows
        ]


@dataclass(frozen=True, slots=True)
class ProjectMessageRow:
    """A projected send (``kind`` ``"user"`` / ``"project"``) or a fold summary (``"compact"``,
    ``content`` ``{"summary": ...}`` covering ``compact_from_send..compact_to_send``), in the published
    row shape. Ours are computed from the audit log when needed, never stored."""

    session_id: str
    send_index: int
    kind: str
    content: dict[str, Any]
    rendered_text: str | None
    source_seq_lo: int | None
    source_seq_hi: int | None
    compact_from_send: int | None
    compact_to_send: int | None
    projector_version: int
    token_estimate: int | None
    created_at: int


class PublishedShapes:
    """The published representation calls, on top of ``render_send`` / ``render_compact``:
    ``project_send(rows, *, send_index, tool_registry)`` and ``render(rows)``."""

    def render_send(self, send: SendView, *, tool_registry: ToolRegistry | None) -> list[LoopMessage]:
        raise NotImplementedError

    def render_compact(self, compact: CompactView) -> list[LoopMessage]:
        raise NotImplementedError

    def project_send(
        self, send_rows: Sequence[MessageRow], *, send_index: int, tool_registry: ToolRegistry | None = None
    ) -> ProjectedSend:
        """The send made of ``send_rows`` (stored rows, any order) as one ``project`` row holding
        exactly what :meth:`render_send` shows of it."""
        ordered = sorted(send_rows, key=lambda r: r.seq)
        messages = self.render_send(
            SendView(send_index, tuple(row_message(r) for r in ordered)), tool_registry=tool_registry
        )
        text = "\n".join(_text(m.get("content")) for m in messages)
        return ProjectedSend(
            rows=[ProjectedRow("project", {"messages": messages}, text)],
            source_seq_lo=ordered[0].seq if ordered else None,
            source_seq_hi=ordered[-1].seq if ordered else None,
        )

    def render(self, rows: Sequence[ProjectMessageRow | ProjectedRow]) -> list[LoopMessage]:
        """Messages for ``rows`` in the given order: a ``compact`` row through :meth:`render_compact`,
        the others as the messages they hold. A row of another shape raises ``ConfigError``."""
        out: list[LoopMessage] = []
        for row in rows:
            if row.kind == "compact" and isinstance(row, ProjectMessageRow):
                summary = row.content.get("summary")
                if not isinstance(summary, str):
                    raise ConfigError(f"compact row of send {row.send_index} has no 'summary' string")
                first = row.compact_from_send if row.compact_from_send is not None else row.send_index
                last = row.compact_to_send if row.compact_to_send is not None else row.send_index
                out.extend(self.render_compact(CompactView(summary, first, last)))
                continue
            messages = row.content.get("messages")
            if row.kind not in ("user", "project") or not isinstance(messages, list):
                raise ConfigError(f"cannot render a {row.kind!r} row without a 'messages' list")
            out.extend(dict(m) for m in messages)
        return out


def truncate(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` characters, ending in ``…`` when cut."""
    if len(text) <= max_chars:
        return text
    return text[: max(0, max_chars - 1)] + "…"


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text"))
            if isinstance(p, Mapping) and "text" in p
            else json.dumps(p, ensure_ascii=False)
            for p in content
        )
    return json.dumps(content, ensure_ascii=False, default=str)


def _range(compact: CompactView) -> str:
    if compact.from_send == compact.to_send:
        return f"#{compact.from_send}"
    return f"#{compact.from_send}-#{compact.to_send}"


class VerbatimRepresentation(PublishedShapes):
    """Finished sends exactly as recorded; the fold summary as one user message."""

    kind = "verbatim"
    version = 1

    def render_send(self, send: SendView, *, tool_registry: ToolRegistry | None) -> list[LoopMessage]:
        return list(send.messages)

    def render_compact(self, compact: CompactView) -> list[LoopMessage]:
        return [
            {
                "role": "user",
                "content": (
                    f"[summary of earlier sends {_range(compact)} — their messages are folded; "
                    f"recall_send(send_index=N) shows one in full]\n{compact.summary}"
                ),
            }
        ]

    def __repr__(self) -> str:
        return "VerbatimRepresentation()"


class ProjectedRepresentation(PublishedShapes):
    """Each finished send as ``user: [#N] <asked>`` + ``assistant: #N [tools] …\\n<answer>``.

    Every piece is cut to ``max_chars``. A tool whose ``ToolDefinition.project(args, result)`` is set
    is summarised by it (a dict renders as ``k=v`` pairs); other calls show their arguments and the
    start of their result.
    """

    kind = "projection"
    version = 1

    def __init__(self, max_chars: int = 300) -> None:
        if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 20:
            raise ConfigError(f"ProjectedRepresentation max_chars must be an int >= 20, got {max_chars!r}")
        self.max_chars = max_chars

    def __repr__(self) -> str:
        return f"ProjectedRepresentation(max_chars={self.max_chars})"

    def render_send(self, send: SendView, *, tool_registry: ToolRegistry | None) -> list[LoopMessage]:
        cut = self.max_chars
        asked: list[str] = []
        results: dict[str, str] = {}
        calls: list[dict[str, Any]] = []
        final = ""
        for msg in send.messages:
            role = msg.get("role")
            if role == "user":
                text = _text(msg.get("content")).strip()
                if text:
                    asked.append(truncate(text, cut))
            elif role == "tool":
                results[str(msg.get("tool_call_id"))] = _text(msg.get("content"))
            elif role == "assistant":
                calls.extend(dict(tc) for tc in msg.get("tool_calls") or () if isinstance(tc, Mapping))
                text = _text(msg.get("content")).strip()
                if text:
                    final = text
        n = send.send_index
        tools = [self._tool_line(tc, results.get(str(tc.get("id"))), tool_registry) for tc in calls]
        body = f"#{n} [tools] " + "; ".join(tools) if tools else ""
        answer = truncate(final, cut) if final else ""
        content = "\n".join(part for part in (body, answer) if part) or f"#{n} (no output)"
        return [
            {"role": "user", "content": f"[#{n}] " + (" / ".join(asked) if asked else "(no text)")},
            {"role": "assistant", "content": content},
        ]

    def _tool_line(self, call: Mapping[str, Any], result: str | None, registry: ToolRegistry | None) -> str:
        fn = call.get("function")
        fn = fn if isinstance(fn, Mapping) else {}
        name = str(fn.get("name") or "?")
        raw = fn.get("arguments")
        try:
            args = json.loads(raw) if isinstance(raw, str) and raw.strip() else (raw or {})
        except ValueError:
            args = {"_raw": raw}
        entry = registry.get(name) if registry is not None else None
        project = entry.definition.project if entry is not None else None
        if project is not None and isinstance(args, Mapping):
            try:
                summary = project(args, result)
            except Exception:  # a faulty projector must not break the request; fall back below
                summary = None
            if isinstance(summary, Mapping):
                pairs = ", ".join(
                    f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in summary.items()
                )
                return truncate(f"{name}({pairs})", self.max_chars)
            if isinstance(summary, str):
                return truncate(f"{name}: {summary}", self.max_chars)
        shown = json.dumps(args, ensure_ascii=False, separators=(",", ":"), default=str)
        outcome = "<missing>" if result is None else result.strip().replace("\n", " ")
        return truncate(f"{name}({truncate(shown, self.max_chars // 2)}) → {outcome}", self.max_chars)

    def render_compact(self, compact: CompactView) -> list[LoopMessage]:
        return [
            {
                "role": "user",
                "content": (
                    f"[older sends {_range(compact)} folded - recall_send(send_index=N) to expand]\n"
                    f"{compact.summary}"
                ),
            }
        ]


def check_messages(messages: Sequence[Mapping[str, Any]], *, allow_open_tail: bool = False) -> str | None:
    """``None`` when ``messages`` is a structurally valid request body, else what is wrong.

    Valid: roles ``user``/``assistant``/``tool``; each assistant message with tool calls is followed
    directly by exactly one result per call (any order); no other tool results. With
    ``allow_open_tail`` the last assistant message's calls may still lack results.
    """
    open_ids: set[str] = set()
    for i, msg in enumerate(messages):
        role = msg.get("role")
        if role == "tool":
            tc_id = msg.get("tool_call_id")
            if tc_id not in open_ids:
                return f"message {i}: tool result {tc_id!r} has no open call"
            open_ids.discard(str(tc_id))
            continue
        if open_ids:
            return f"message {i}: {role} message while calls {sorted(open_ids)} have no result"
        if role not in ("user", "assistant"):
            return f"message {i}: role {role!r} is not allowed in the message list"
        if role == "assistant" and msg.get("tool_calls"):
            ids = [str(tc.get("id")) for tc in msg["tool_calls"] if isinstance(tc, Mapping)]
            if len(set(ids)) != len(ids):
                return f"message {i}: duplicate tool call ids"
            open_ids = set(ids)
    if open_ids and not allow_open_tail:
        return f"calls {sorted(open_ids)} have no result"
    return None
