"""Fold strategies: how old sends are folded into one summary when the window grows past its budget.

A strategy only *decides*: it receives the sends to fold (already rendered by the session's
representation) and returns a :class:`FoldResult`. The loop records it (one transaction), so a
strategy never touches the store and any representation composes with any strategy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from ..errors import ConfigError
from ._representation import Representation, SendView, truncate

if TYPE_CHECKING:
    from ..store import NoteRow
    from ..tools import ToolRegistry

__all__ = [
    "DEFAULT_FOLD_AGENT_PROMPT",
    "DEFAULT_SUMMARY_PROMPT",
    "AgenticFold",
    "FoldContext",
    "FoldResult",
    "FoldStrategy",
    "LLMSummaryFold",
    "NoteOp",
    "extract_summary",
    "render_transcript",
]

DEFAULT_SUMMARY_PROMPT = (
    "You compress the early part of a conversation between a user and an AI agent so the agent can "
    "continue without it. Keep: the user's goals and constraints, decisions made, facts learned, files "
    "and identifiers touched, open questions and unfinished work. Drop chit-chat and verbatim tool "
    "output. Answer with the summary only, inside <summary>...</summary>."
)

DEFAULT_FOLD_AGENT_PROMPT = (
    "You are folding the early part of a conversation between a user and an AI agent. First save any "
    "durable fact worth keeping beyond this conversation (user preferences, decisions, identifiers) "
    "with note_add, or correct an existing note with note_update; save nothing trivial. Then answer, "
    "without tool calls, with a summary the agent can continue from, inside <summary>...</summary>."
)

_SUMMARY_RE = re.compile(r"<summary>(.*?)(?:</summary>|$)", re.DOTALL | re.IGNORECASE)
_TRANSCRIPT_PIECE = 2000


@dataclass(frozen=True, slots=True)
class NoteOp:
    """A note change a fold asks for, applied (best effort, under the notes policy) after it commits."""

    op: Literal["add", "update"]
    content: str | None = None
    pinned: bool | None = None
    note_id: int | None = None

    def __post_init__(self) -> None:
        if self.op not in ("add", "update"):
            raise ConfigError(f"NoteOp.op must be 'add' or 'update', got {self.op!r}")
        if self.op == "add" and not self.content:
            raise ConfigError("NoteOp 'add' needs content")
        if self.op == "update" and self.note_id is None:
            raise ConfigError("NoteOp 'update' needs note_id")


@dataclass(frozen=True, slots=True)
class FoldContext:
    """Everything a strategy may use. ``sends`` are the oldest finished sends, oldest first, as the
    model currently sees them (rendered by ``representation``); ``raw_sends`` are the same sends as
    recorded; ``prior_summary`` is the summary they roll forward (if any)."""

    session_id: str
    sends: tuple[SendView, ...]
    representation: Representation
    raw_sends: tuple[SendView, ...] = ()
    prior_summary: str | None = None
    llm: Any = None
    tool_registry: ToolRegistry | None = None
    notes: tuple[NoteRow, ...] = ()
    budget_tokens: int = 0
    current_tokens: int = 0
    model: str | None = None


@dataclass(frozen=True, slots=True)
class FoldResult:
    """A strategy's decision. ``fold_through`` folds only the offered sends up to that send index
    (default: all offered); ``summary`` replaces them and the prior summary."""

    summary: str
    note_ops: tuple[NoteOp, ...] = ()
    fold_through: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class FoldStrategy(Protocol):
    """Decides how old sends are folded. ``keep_last_sends`` finished sends always stay unfolded;
    folding starts once the window's estimate reaches ``trigger_ratio`` of the token budget.
    ``fold`` returns ``None`` to decline (nothing is folded) and must not write the store."""

    keep_last_sends: int
    trigger_ratio: float
    fold_id: str

    async def fold(self, context: FoldContext) -> FoldResult | None: ...


def _content(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, default=str)


def render_transcript(
    sends: Sequence[SendView], *, prior_summary: str | None = None, piece_chars: int = _TRANSCRIPT_PIECE
) -> str:
    """The sends as plain text for a summarising model (long pieces cut to ``piece_chars``)."""
    lines: list[str] = []
    if prior_summary:
        lines.append(f"<previous_summary>\n{prior_summary}\n</previous_summary>")
    for send in sends:
        lines.append(f"<send index={send.send_index}>")
        for msg in send.messages:
            role = msg.get("role", "?")
            text = truncate(_content(msg.get("content")), piece_chars)
            if role == "tool":
                lines.append(f"[tool result {msg.get('name') or ''}] {text}")
                continue
            if text:
                lines.append(f"[{role}] {text}")
            for tc in msg.get("tool_calls") or ():
                fn = tc.get("function") or {}
                lines.append(
                    f"[{role} calls {fn.get('name')}] {truncate(str(fn.get('arguments') or ''), piece_chars)}"
                )
        lines.append("</send>")
    return "\n".join(lines)


def extract_summary(text: str) -> str:
    """The text inside ``<summary>`` (or all of it when the tag is missing), stripped."""
    match = _SUMMARY_RE.search(text or "")
    return (match.group(1) if match else (text or "")).strip()


def _validate(keep_last_sends: int, trigger_ratio: float, summary_max_tokens: int) -> None:
    if isinstance(keep_last_sends, bool) or not isinstance(keep_last_sends, int) or keep_last_sends < 1:
        raise ConfigError(f"keep_last_sends must be an int >= 1, got {keep_last_sends!r}")
    if not isinstance(trigger_ratio, (int, float)) or not 0.0 < trigger_ratio <= 1.0:
        raise ConfigError(f"trigger_ratio must be in (0, 1], got {trigger_ratio!r}")
    if (
        isinstance(summary_max_tokens, bool)
        or not isinstance(summary_max_tokens, int)
        or summary_max_tokens < 1
    ):
        raise ConfigError(f"summary_max_tokens must be an int >= 1, got {summary_max_tokens!r}")


async def _complete(llm: Any, request: Any) -> Any:
    if llm is None:
        raise ConfigError("this fold strategy needs an LLM (summary_llm= or the loop's llm)")
    return await llm.complete(request)


class LLMSummaryFold:
    """Folds with one summarisation call (temperature 0). The LLM used is ``summary_llm`` when given,
    else the loop's. An empty summary declines the fold."""

    def __init__(
        self,
        keep_last_sends: int = 4,
        trigger_ratio: float = 0.75,
        summary_max_tokens: int = 5000,
        summary_llm: Any = None,
        fold_id: str = "llm_summary",
        prompt: str = DEFAULT_SUMMARY_PROMPT,
    ) -> None:
        _validate(keep_last_sends, trigger_ratio, summary_max_tokens)
        self.keep_last_sends = keep_last_sends
        self.trigger_ratio = float(trigger_ratio)
        self.summary_max_tokens = summary_max_tokens
        self.summary_llm = summary_llm
        self.fold_id = fold_id
        self.prompt = prompt

    def __repr__(self) -> str:
        return f"LLMSummaryFold(keep_last_sends={self.keep_last_sends}, trigger_ratio={self.trigger_ratio})"

    async def fold(self, context: FoldContext) -> FoldResult | None:
        summary = await summarise(
            self.summary_llm or context.llm, context, prompt=self.prompt, max_tokens=self.summary_max_tokens
        )
        return FoldResult(summary=summary) if summary else None


async def summarise(llm: Any, context: FoldContext, *, prompt: str, max_tokens: int) -> str:
    """One summarisation call over ``context.sends``; returns the extracted summary text."""
    from ..llm import LLMRequest  # the llm package is only needed once a fold actually runs

    request = LLMRequest(
        messages=[
            {"role": "user", "content": render_transcript(context.sends, prior_summary=context.prior_summary)}
        ],
        system_prompt=prompt,
        model=context.model,
        temperature=0.0,
        max_tokens=max_tokens,
    )
    response = await _complete(llm, request)
    return extract_summary(response.text)


_CAPTURE_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "note_add",
            "description": "Save a durable note (a fact worth keeping beyond this conversation).",
            "parameters": {
                "type": "object",
                "properties": {"content": {"type": "string"}, "pinned": {"type": "boolean"}},
                "required": ["content"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "note_update",
            "description": "Correct an existing note by its id.",
            "parameters": {
                "type": "object",
                "properties": {
                    "note_id": {"type": "integer"},
                    "content": {"type": "string"},
                    "pinned": {"type": "boolean"},
                },
                "required": ["note_id"],
            },
        },
    },
]


def _capture(call: Mapping[str, Any], known_ids: set[int]) -> tuple[NoteOp | None, str]:
    fn = call.get("function") or {}
    name = fn.get("name")
    try:
        args = json.loads(fn.get("arguments") or "{}")
    except ValueError:
        return None, "Error: arguments are not valid JSON"
    if not isinstance(args, dict):
        return None, "Error: arguments must be a JSON object"
    content = args.get("content")
    pinned = args.get("pinned")
    pinned = pinned if isinstance(pinned, bool) else None
    if name == "note_add":
        if not isinstance(content, str) or not content.strip():
            return None, "Error: note_add needs a non-empty 'content'"
        return NoteOp("add", content=content.strip(), pinned=pinned), "captured"
    if name == "note_update":
        note_id = args.get("note_id")
        if isinstance(note_id, bool) or not isinstance(note_id, int) or note_id not in known_ids:
            return None, f"Error: no note with id {note_id!r}"
        text = content.strip() if isinstance(content, str) and content.strip() else None
        return NoteOp("update", content=text, pinned=pinned, note_id=note_id), "captured"
    return None, f"Error: unknown tool {name!r}; only note_add and note_update are available"


class AgenticFold:
    """Folds with a short tool loop: the model may capture durable notes (``note_add`` /
    ``note_update``, recorded as :class:`NoteOp` s, applied after the fold commits), then answers
    with the summary. At most ``max_rounds`` calls offer the tools; then one call without tools
    asks for the summary. If the loop fails, a plain one-call summary is used without the notes."""

    def __init__(
        self,
        keep_last_sends: int = 4,
        trigger_ratio: float = 0.75,
        summary_max_tokens: int = 5000,
        max_rounds: int = 4,
        system_prompt: str | None = None,
        summary_llm: Any = None,
        fold_id: str = "agentic",
    ) -> None:
        _validate(keep_last_sends, trigger_ratio, summary_max_tokens)
        if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
            raise ConfigError(f"AgenticFold max_rounds must be an int >= 1, got {max_rounds!r}")
        self.keep_last_sends = keep_last_sends
        self.trigger_ratio = float(trigger_ratio)
        self.summary_max_tokens = summary_max_tokens
        self.max_rounds = max_rounds
        self.system_prompt = system_prompt or DEFAULT_FOLD_AGENT_PROMPT
        self.summary_llm = summary_llm
        self.fold_id = fold_id

    def __repr__(self) -> str:
        return f"AgenticFold(keep_last_sends={self.keep_last_sends}, max_rounds={self.max_rounds})"

    async def fold(self, context: FoldContext) -> FoldResult | None:
        llm = self.summary_llm or context.llm
        try:
            summary, ops = await self._loop(llm, context)
        except Exception:
            summary = await summarise(
                llm, context, prompt=DEFAULT_SUMMARY_PROMPT, max_tokens=self.summary_max_tokens
            )
            return FoldResult(summary=summary) if summary else None
        return FoldResult(summary=summary, note_ops=tuple(ops)) if summary else None

    async def _loop(self, llm: Any, context: FoldContext) -> tuple[str, list[NoteOp]]:
        from ..llm import LLMRequest

        known = {note.note_id for note in context.notes}
        notes = "\n".join(f"#{n.note_id} {n.content}" for n in context.notes) or "(none)"
        transcript = render_transcript(context.sends, prior_summary=context.prior_summary)
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": f"<existing_notes>\n{notes}\n</existing_notes>\n{transcript}"}
        ]
        ops: list[NoteOp] = []
        for _ in range(self.max_rounds):
            response = await _complete(llm, self._request(LLMRequest, messages, context, tools=True))
            calls = response.get_tool_calls()
            if not calls:
                return extract_summary(response.text), ops
            messages.append({"role": "assistant", "content": response.text, "tool_calls": calls})
            for call in calls:
                op, reply = _capture(call, known)
                if op is not None:
                    ops.append(op)
                messages.append({"role": "tool", "tool_call_id": call.get("id"), "content": reply})
        # Out of rounds: one last call without tools must produce the summary.
        response = await _complete(llm, self._request(LLMRequest, messages, context, tools=False))
        return extract_summary(response.text), ops

    def _request(
        self, factory: Any, messages: list[dict[str, Any]], context: FoldContext, *, tools: bool
    ) -> Any:
        return factory(
            messages=list(messages),
            system_prompt=self.system_prompt,
            model=context.model,
            temperature=0.0,
            max_tokens=self.summary_max_tokens,
            tools=_CAPTURE_TOOLS if tools else None,
            tool_choice="auto" if tools else None,
        )
