"""Context engineering: what the model sees of a long session.

Two independent axes (any combination works):

- a :class:`Representation` decides how each *finished* send appears in later requests
  (:class:`VerbatimRepresentation`, :class:`ProjectedRepresentation`);
- a :class:`FoldStrategy` decides how old sends are folded into one summary when the window passes
  its token budget (:class:`LLMSummaryFold`, :class:`AgenticFold`, or your own).

Plus notes (:class:`NotesPolicy`, note tools), memory (:class:`MemoryProvider`, :class:`NotesMemory`),
recall tools reading the untouched audit log, and token estimation (:class:`TokenEstimator`
calibrates itself per model). :class:`ContextPipeline` ties them together: it *decides* (what the window is, whether and what to
fold, what memory brings back) and the loop acts on those decisions (hooks, events, store writes).
See ``docs/context.md``. Everything here imports with the standard library only.
"""

from __future__ import annotations

from ..base import ToolRuntimeContext, get_tool_runtime_context, use_tool_runtime_context
from ._decisions import (
    METADATA_KEY,
    CalibrationUpdate,
    FoldCommit,
    FoldFailure,
    FoldOutcome,
    FoldPlan,
    RepresentationSwitch,
)
from ._fold import (
    DEFAULT_FOLD_AGENT_PROMPT,
    DEFAULT_SUMMARY_PROMPT,
    AgenticFold,
    FoldContext,
    FoldResult,
    FoldStrategy,
    LLMSummaryFold,
    NoteOp,
    extract_summary,
    render_transcript,
)
from ._memory import MemoryProvider, MemorySnapshot, NotesMemory, SQLiteNoteMemory, tag_as_memory
from ._notes import (
    DEFAULT_NOTES_POLICY,
    NOTE_TOOL_NAMES,
    NotesPolicy,
    add_note_checked,
    apply_note_ops,
    register_note_tools,
    render_notes,
    update_note_checked,
)
from ._pipeline import ContextPipeline
from ._recall import (
    COMPACT_NOTE_NAME,
    RECALL_TOOL_NAMES,
    is_compact_note,
    recall_compacted,
    recall_send,
    register_recall_tools,
)
from ._representation import (
    CompactView,
    ProjectedRepresentation,
    ProjectedRow,
    ProjectedSend,
    ProjectMessageRow,
    Representation,
    SendView,
    VerbatimRepresentation,
    check_messages,
)
from ._reserved import CONTEXT_TOOL_NAMES, register_reserved_tools
from ._state import STATE_KEY, ContextState, WindowLike, row_message
from ._tokens import (
    CHARS_PER_TOKEN,
    TokenEstimator,
    estimate_message_tokens,
    estimate_text_tokens,
    estimate_tokens,
    message_chars,
    request_chars,
    trim_history,
)

__all__ = [
    "CHARS_PER_TOKEN",
    "COMPACT_NOTE_NAME",
    "CONTEXT_TOOL_NAMES",
    "DEFAULT_FOLD_AGENT_PROMPT",
    "DEFAULT_NOTES_POLICY",
    "DEFAULT_SUMMARY_PROMPT",
    "METADATA_KEY",
    "NOTE_TOOL_NAMES",
    "RECALL_TOOL_NAMES",
    "STATE_KEY",
    "AgenticFold",
    "CalibrationUpdate",
    "CompactView",
    "ContextPipeline",
    "ContextState",
    "FoldCommit",
    "FoldContext",
    "FoldFailure",
    "FoldOutcome",
    "FoldPlan",
    "FoldResult",
    "FoldStrategy",
    "LLMSummaryFold",
    "MemoryProvider",
    "MemorySnapshot",
    "NoteOp",
    "NotesMemory",
    "SQLiteNoteMemory",
    "NotesPolicy",
    "ProjectMessageRow",
    "ProjectedRepresentation",
    "ProjectedRow",
    "ProjectedSend",
    "Representation",
    "RepresentationSwitch",
    "SendView",
    "TokenEstimator",
    "ToolRuntimeContext",
    "VerbatimRepresentation",
    "WindowLike",
    "add_note_checked",
    "apply_note_ops",
    "check_messages",
    "estimate_message_tokens",
    "estimate_text_tokens",
    "estimate_tokens",
    "extract_summary",
    "get_tool_runtime_context",
    "is_compact_note",
    "message_chars",
    "recall_compacted",
    "recall_send",
    "register_note_tools",
    "register_recall_tools",
    "register_reserved_tools",
    "render_notes",
    "render_transcript",
    "request_chars",
    "row_message",
    "tag_as_memory",
    "trim_history",
    "update_note_checked",
    "use_tool_runtime_context",
]
