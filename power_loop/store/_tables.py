"""The logical tables: every table the store uses, described once as a :class:`TableSpec`.

Version 1 is ``SCHEMA_TABLES`` as first created; each later table is appended with the migration
step that creates it (see ``_schema``).
"""

from __future__ import annotations

from ._port import ColumnSpec, IndexSpec, TableSpec

__all__ = [
    "ATTACHMENTS_TABLE",
    "BACKGROUND_TASKS_TABLE",
    "HOOK_EVENTS_TABLE",
    "INBOX_TABLE",
    "SCHEMA_TABLES",
    "SESSIONS_BY_TIME_INDEX",
    "TOOL_CALL_LOG",
    "VERSION_TABLE",
    "WORKFLOW_JOURNAL_TABLE",
    "col",
]


def col(name: str, type_: str, nullable: bool = True, default: str | int | None = None) -> ColumnSpec:
    return ColumnSpec(name, type_, nullable, default)  # type: ignore[arg-type]


def _counter(name: str) -> ColumnSpec:
    return ColumnSpec(name, "int", False, 0)


VERSION_TABLE = TableSpec(
    "schema_migrations",
    (col("id", "int", False), col("version", "int", False)),
    ("id",),
)

# What became of each side-effecting tool call (see ``_tool_calls``): ``started`` before its
# handler runs, ``finished`` with its output after, so recovery never re-runs one blindly.
TOOL_CALL_LOG = TableSpec(
    "tool_call_log",
    (
        col("session_id", "key", False),
        col("tool_call_id", "key", False),
        col("assistant_seq", "int", False),
        col("tool_name", "text"),
        col("status", "enum", False, "started"),
        col("output", "text"),
        col("started_at", "int", False),
        col("finished_at", "int"),
    ),
    ("session_id", "tool_call_id"),
)

SESSIONS_BY_TIME_INDEX = "idx_sessions_parent_created"

SCHEMA_TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "sessions",
        (
            col("session_id", "key", False),
            col("created_at", "int", False),
            col("updated_at", "int", False),
            col("system_prompt", "text"),
            col("model", "text"),
            col("config_json", "text"),
            col("status", "enum", False, "active"),
            col("kind", "enum", False, "root"),
            col("parent_session_id", "key"),
            col("spawn_tool_call_id", "text"),
            col("spawn_depth", "int", False, 0),
            col("lifecycle", "enum", False, "ephemeral"),
            col("metadata_json", "text"),
        ),
        ("session_id",),
        (
            IndexSpec("idx_sessions_parent", ("parent_session_id",)),
            # Newest-first pages of root sessions, and children in order (the inspector's lists).
            IndexSpec(SESSIONS_BY_TIME_INDEX, ("parent_session_id", "created_at", "session_id")),
        ),
    ),
    TableSpec(
        "messages",
        (
            col("session_id", "key", False),
            col("seq", "int", False),
            col("role", "enum", False),
            col("name", "text"),
            col("content", "text"),
            col("content_json", "small", False, 0),  # 1: content is stored JSON-encoded
            col("tool_calls_json", "text"),
            col("tool_call_id", "text"),
            col("round_index", "int"),
            col("state", "enum", False, "active"),
            col("meta_json", "text"),
            col("send_index", "int"),
            col("created_at", "int", False),
        ),
        ("session_id", "seq"),
        (IndexSpec("idx_messages_session_state", ("session_id", "state", "seq")),),
    ),
    TableSpec(
        "session_state",
        (
            col("session_id", "key", False),
            col("next_seq", "int", False, 1),
            col("send_index", "int", False, 0),
            col("round_index", "int", False, 0),
            col("last_compact_seq", "int", False, 0),
            col("follow_up_seq", "int", False, 0),
            # Queued follow-ups not yet delivered: returned by every append, so a loop learns of a
            # follow-up queued by another process without an extra query.
            col("follow_ups_waiting", "int", False, 0),
            # Bumped by every system-prompt edit: lets a loop's window cache notice one (SPEC §2.2).
            col("prompt_version", "int", False, 0),
            col("pending_json", "text"),
            col("updated_at", "int", False),
            # Bumped by every transaction that changes this row (sessions start at a random value):
            # an append that remembers the row it last wrote updates it only if it is still that
            # version, saving the read (see KnownState in _core). Writers outside the store must bump it.
            col("state_version", "int", False, 0),
        ),
        ("session_id",),
    ),
    TableSpec(
        "session_runtime_state",
        (
            col("session_id", "key", False),
            col("state_key", "key", False),
            col("value_json", "text"),
            col("updated_at", "int", False),
        ),
        ("session_id", "state_key"),
    ),
    TableSpec(
        "shared_state",
        (
            col("owner", "key", False),
            col("state_key", "key", False),
            col("value_json", "text"),
            col("updated_at", "int", False),
        ),
        ("owner", "state_key"),
    ),
    TableSpec(
        "session_stats",
        (
            col("session_id", "key", False),
            _counter("sends"),
            _counter("rounds"),
            _counter("llm_calls"),
            _counter("tool_calls"),
            _counter("prompt_tokens"),
            _counter("completion_tokens"),
            _counter("cache_read_tokens"),
            _counter("reasoning_tokens"),
            _counter("total_tokens"),
            col("first_send_at", "int"),
            col("last_send_at", "int"),
            col("updated_at", "int", False),
        ),
        ("session_id",),
    ),
    TableSpec(
        "usage_rounds",
        (
            col("session_id", "key", False),
            col("send_index", "int", False),
            col("round_index", "int", False),
            _counter("prompt_tokens"),
            _counter("completion_tokens"),
            _counter("total_tokens"),
            _counter("cache_read_tokens"),
            _counter("reasoning_tokens"),
            col("model", "text"),
            col("created_at", "int", False),
            # Version 6: how long the round's model call took (all attempts) and how many attempts.
            col("duration_ms", "int"),
            col("attempts", "int"),
        ),
        ("session_id", "send_index", "round_index"),
    ),
    TableSpec(
        "timers",
        (
            col("session_id", "key", False),
            col("timer_id", "int", False),
            col("due_at", "int", False),
            col("note", "text", False),
            col("status", "enum", False, "armed"),
            col("interval_s", "int"),
            _counter("fire_count"),
            col("last_fired_at", "int"),
            col("created_at", "int", False),
            col("updated_at", "int", False),
        ),
        ("session_id", "timer_id"),
        (IndexSpec("idx_timers_due", ("status", "due_at")),),
    ),
    TableSpec(
        "notes",
        (
            col("session_id", "key", False),
            col("note_id", "int", False),
            col("content", "text", False),
            col("pinned", "small", False, 0),
            col("created_at", "int", False),
            col("updated_at", "int", False),
        ),
        ("session_id", "note_id"),
    ),
    TableSpec(
        "follow_ups",
        (
            col("session_id", "key", False),
            col("item_id", "int", False),
            col("content", "text", False),
            col("created_at", "int", False),
            # "queue" (the next round boundary) or "steer" (interrupt at the next safe point).
            col("kind", "enum", False, "queue"),
        ),
        ("session_id", "item_id"),
    ),
    TableSpec(
        "compactions",
        (
            col("session_id", "key", False),
            col("compact_seq", "int", False),
            col("note_seq", "int", False),
            col("from_seq", "int", False),
            col("to_seq", "int", False),
            col("before_tokens", "int"),
            col("after_tokens", "int"),
            col("round_index", "int"),
            col("created_at", "int", False),
        ),
        ("session_id", "compact_seq"),
    ),
    # The cross-process lease of a session (see ``_lease``): ``epoch`` only ever grows, so a write
    # fenced with an old epoch is recognisably stale; a released lease keeps its row (expires 0).
    TableSpec(
        "session_leases",
        (
            col("session_id", "key", False),
            col("holder", "key", False),
            col("epoch", "int", False),
            col("expires_at_ms", "int", False),
        ),
        ("session_id",),
    ),
    TOOL_CALL_LOG,
)

# Version 2: the workflow journal (power_loop.workflow). Rows belong to the session owning the run.
WORKFLOW_JOURNAL_TABLE = TableSpec(
    "workflow_journal",
    (
        col("session_id", "key", False),
        col("run_id", "key", False),
        col("step_key", "key", False),
        col("status", "enum", False),
        col("body_json", "text"),
        col("created_at", "int", False),
        col("updated_at", "int", False),
    ),
    ("session_id", "run_id", "step_key"),
)
SCHEMA_TABLES = (*SCHEMA_TABLES, WORKFLOW_JOURNAL_TABLE)

# Version 3 (background tasks): one row per ``background_run`` process. ``pid``/``host``/``deadline_at``
# let a later check tell a task whose process vanished (``lost``) from one still running.
BACKGROUND_TASKS_TABLE = TableSpec(
    "background_tasks",
    (
        col("session_id", "key", False),
        col("task_id", "key", False),
        col("command", "text", False),
        col("status", "enum", False),
        col("return_code", "int"),
        col("output_tail", "text"),
        col("output_path", "text"),
        col("pid", "int"),
        col("host", "text"),
        col("deadline_at", "int"),
        col("last_seen_at", "int", False, 0),
        col("created_at", "int", False),
        col("updated_at", "int", False),
    ),
    ("session_id", "task_id"),
    (IndexSpec("idx_background_tasks_session_status", ("session_id", "status", "updated_at")),),
)
SCHEMA_TABLES = (*SCHEMA_TABLES, BACKGROUND_TASKS_TABLE)
# Version 4: binary payloads of content parts (images, PDFs), once per session and content hash; the
# message keeps an ``attachment:<sha256>`` reference (see _attachments.py).
ATTACHMENTS_TABLE = TableSpec(
    "attachments",
    (
        col("session_id", "key", False),
        col("hash", "key", False),
        col("mime", "key", False),
        col("size", "int", False),
        col("data", "blob", False),
        col("created_at", "int", False),
    ),
    ("session_id", "hash"),
)
SCHEMA_TABLES = (*SCHEMA_TABLES, ATTACHMENTS_TABLE)
# Version 8: the hook audit trail (AgentLoopConfig.record_hook_events, see _hook_events.py): one row
# per hook decision that changed something, numbered per session.
HOOK_EVENTS_TABLE = TableSpec(
    "hook_events",
    (
        col("session_id", "key", False),
        col("seq", "int", False),
        col("send_index", "int", False),
        col("round_index", "int", False),
        col("point", "key", False),
        col("hook", "text", False),
        col("decision", "enum", False),
        col("changed_json", "text"),
        col("values_json", "text"),
        col("created_at", "int", False),
    ),
    ("session_id", "seq"),
)
SCHEMA_TABLES = (*SCHEMA_TABLES, HOOK_EVENTS_TABLE)
# Version 9: the inbox — user input that carries a caller-chosen id (``send(message_id=)``,
# ``deliver``). The primary key is the dedupe: an id is stored once per session, whichever process
# races to store it. A row points at the send its message began (``send_index``/``message_seq``) or
# at the follow-up it waits as (``follow_up_id``); ``status``/``final_text``/``rounds`` are that
# send's outcome, written when it ends (see _inbox.py).
INBOX_TABLE = TableSpec(
    "inbox",
    (
        col("session_id", "key", False),
        col("item_id", "key", False),
        col("follow_up_id", "int"),
        col("send_index", "int"),
        col("message_seq", "int"),
        col("status", "text"),
        col("final_text", "text"),
        col("rounds", "int"),
        col("created_at", "int", False),
        col("updated_at", "int", False),
    ),
    ("session_id", "item_id"),
)
SCHEMA_TABLES = (*SCHEMA_TABLES, INBOX_TABLE)
