"""The one exception tree of power_loop.

Every error the library raises on purpose is a :class:`PowerLoopError` with a frozen, machine-readable
``code`` class attribute. Codes never change within a major version (``tests/test_errors.py`` pins them).
Where the published interface raised a builtin (``ValueError``, ``RuntimeError``, ``ImportError``), our
error also derives from that builtin so existing ``except`` clauses keep working.

::

    PowerLoopError                      power_loop.error
    ├── ConfigError (ValueError)        config.invalid
    │   ├── RuntimeEnvError (RuntimeError)  runtime_env.missing
    │   └── InvalidSessionIdError       session.invalid_id
    ├── MissingDependencyError (ImportError)   dependency.missing
    ├── LoopClosedError (RuntimeError)  loop.closed
    ├── SessionNotFoundError            session.not_found
    ├── SessionPendingError             session.pending
    ├── SessionBusy                     session.busy
    ├── InteractionNotFoundError (ValueError)  interaction.not_found
    ├── JobNotFoundError                job.not_found
    ├── JobNotStoppable                 job.not_stoppable
    ├── CancellationRequested           cancelled
    ├── LLMError                        llm.error
    │   ├── LLMTimeout                  llm.timeout
    │   ├── LLMRetryExhausted           llm.retry_exhausted
    │   │   └── LLMNonRetryable         llm.non_retryable
    │   ├── LLMStreamIncomplete         llm.stream_incomplete
    │   └── ProviderNotAvailable        llm.provider_unavailable
    ├── ModelCapabilityError (RuntimeError)  llm.capability
    ├── StructuredOutputError           structured_output.invalid
    ├── ToolNotFound                    tool.not_found
    ├── ToolValidationError             tool.invalid_args
    ├── ToolResultError                 tool.invalid_result
    ├── HookDirectiveError              hook.invalid_directive
    ├── AsyncHookInSyncContext (TypeError)  hook.async_in_sync
    ├── AsyncToolInSyncContext (TypeError)  tool.async_in_sync
    ├── WorkspaceViolation (ValueError)  tool.workspace_violation
    ├── ToolBudgetExceeded (ValueError)  tool.budget_exceeded
    ├── CompactionFailed                compaction.failed
    ├── NoteRejectedError (ValueError)  notes.rejected
    │   └── NotesFullError              notes.full
    ├── MCPError                        mcp.error
    │   └── MCPToolError                mcp.tool_error
    ├── SpecValidationError             spec.invalid
    │   └── AgentSpecError              agent_spec.invalid
    ├── BlackboardError (ValueError)    blackboard.invalid
    └── StoreError                      store.error
        ├── InvalidDSN (ValueError)     store.invalid_dsn
        ├── InvalidTablePrefix (ValueError)  store.invalid_prefix
        ├── StoreSchemaError (RuntimeError)  store.schema_mismatch
        │   └── SchemaTooNewError       store.schema_too_new
        ├── StoreUnavailable            store.unavailable
        │   ├── StoreAuthError          store.auth_failed
        │   └── StoreDatabaseMissing    store.database_missing
        ├── StoreConnectionLost         store.connection_lost
        ├── StoreIntegrityError         store.integrity
        ├── CorruptRowError             store.corrupt_row
        ├── StoreCorruptError           store.corrupt
        ├── HistoryInvariantError (ValueError)  history.invalid
        ├── LeaseLostError              store.lease_lost
        ├── ArchiveError (ValueError)   store.archive_invalid
        └── StoreClosedError            store.closed
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

__all__ = [
    "AgentSpecError",
    "ArchiveError",
    "AsyncHookInSyncContext",
    "BlackboardError",
    "AsyncToolInSyncContext",
    "CancellationRequested",
    "CompactionFailed",
    "ConfigError",
    "CorruptRowError",
    "HistoryInvariantError",
    "HookDirectiveError",
    "InteractionNotFoundError",
    "JobNotFoundError",
    "JobNotStoppable",
    "InvalidDSN",
    "InvalidSessionIdError",
    "InvalidTablePrefix",
    "LeaseLostError",
    "LLMError",
    "LLMNonRetryable",
    "LLMRetryExhausted",
    "LLMStreamIncomplete",
    "LLMTimeout",
    "LoopClosedError",
    "MCPError",
    "MCPToolError",
    "MissingDependencyError",
    "ModelCapabilityError",
    "NoteRejectedError",
    "NotesFullError",
    "PowerLoopError",
    "ProviderNotAvailable",
    "RuntimeEnvError",
    "SchemaTooNewError",
    "SessionBusy",
    "SessionNotFoundError",
    "SessionPendingError",
    "SpecValidationError",
    "StoreAuthError",
    "StoreClosedError",
    "StoreConnectionLost",
    "StoreCorruptError",
    "StoreDatabaseMissing",
    "StoreError",
    "StoreIntegrityError",
    "StoreSchemaError",
    "StoreUnavailable",
    "StructuredOutputError",
    "ToolBudgetExceeded",
    "ToolNotFound",
    "ToolResultError",
    "ToolValidationError",
    "WorkspaceViolation",
]


class PowerLoopError(Exception):
    """Base of every error power_loop raises on purpose; ``code`` is stable and machine-readable."""

    code: ClassVar[str] = "power_loop.error"


class ConfigError(PowerLoopError, ValueError):
    """A constructor argument or configuration value is invalid."""

    code = "config.invalid"


class InvalidSessionIdError(ConfigError):
    """A session id is not a non-empty string of at most 255 characters without control characters
    or lone surrogates. Checked up front, so every backend rejects the same ids the same way."""

    code = "session.invalid_id"


class MissingDependencyError(PowerLoopError, ImportError):
    """An optional package is needed; the message names the package to ``pip install`` and the extra
    to install from a checkout. (A bare ``pip install 'power-loop[extra]'`` is never suggested: on the
    package index that name belongs to a different distribution.)"""

    code = "dependency.missing"

    def __init__(self, package: str, extra: str, feature: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{feature} needs the optional package {package!r}: pip install {package}"
            f" (from a power_loop checkout: pip install -e '.[{extra}]')"
        )


class LoopClosedError(PowerLoopError, RuntimeError):
    """The loop is closing or closed and accepts no new work."""

    code = "loop.closed"


class SessionNotFoundError(PowerLoopError):
    code = "session.not_found"

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(f"session not found: {session_id}")


class SessionPendingError(PowerLoopError):
    """The session has tool calls without results (an interrupted send); recover before sending."""

    code = "session.pending"

    def __init__(
        self, session_id: str, *, assistant_seq: int, pending_tool_calls: Sequence[dict[str, Any]]
    ) -> None:
        self.session_id = session_id
        self.assistant_seq = assistant_seq
        self.pending_tool_calls = list(pending_tool_calls)
        names = (
            ", ".join(str(tc.get("function", {}).get("name", "?")) for tc in self.pending_tool_calls) or "?"
        )
        super().__init__(
            f"session {session_id} has {len(self.pending_tool_calls)} unresolved tool call(s) ({names}) "
            "from an interrupted send; recover with loop.resume(session_id), "
            "loop.abort_pending(session_id) or send(..., heal_pending=True)"
        )


class SessionBusy(PowerLoopError):
    """Another live process holds the session's lease."""

    code = "session.busy"

    def __init__(self, session_id: str, *, holder: str, expires_at_ms: int) -> None:
        self.session_id = session_id
        self.holder = holder
        self.expires_at_ms = expires_at_ms
        super().__init__(
            f"session {session_id} is being driven by {holder} (lease expires at {expires_at_ms} ms)"
        )


class InteractionNotFoundError(PowerLoopError, ValueError):
    code = "interaction.not_found"

    def __init__(self, session_id: str, interaction_id: str) -> None:
        self.session_id = session_id
        self.interaction_id = interaction_id
        super().__init__(f"pending interaction not found: {interaction_id} (session {session_id})")


class JobNotFoundError(PowerLoopError):
    """``stop_job`` named no job of the session (a malformed id, or no such task, run or timer)."""

    code = "job.not_found"

    def __init__(self, session_id: str, job_id: str) -> None:
        self.session_id = session_id
        self.job_id = job_id
        super().__init__(f"no job {job_id!r} in session {session_id}")


class JobNotStoppable(PowerLoopError):
    """The job runs where this process cannot reach it (e.g. a background task on another host)."""

    code = "job.not_stoppable"

    def __init__(self, session_id: str, job_id: str, reason: str) -> None:
        self.session_id = session_id
        self.job_id = job_id
        self.reason = reason
        super().__init__(f"job {job_id!r} of session {session_id} cannot be stopped from here: {reason}")


class CancellationRequested(PowerLoopError):
    code = "cancelled"

    def __init__(self, reason: str = "cancelled") -> None:
        self.reason = reason
        super().__init__(reason)


class LLMError(PowerLoopError):
    code = "llm.error"


class LLMTimeout(LLMError):
    code = "llm.timeout"

    def __init__(self, *, elapsed: float, attempts: int, total_timeout: float) -> None:
        self.elapsed = elapsed
        self.attempts = attempts
        self.total_timeout = total_timeout
        super().__init__(
            f"LLM call timed out after {elapsed:.2f}s over {attempts} attempt(s) "
            f"(total timeout {total_timeout:.2f}s)"
        )


class LLMRetryExhausted(LLMError):
    code = "llm.retry_exhausted"

    def __init__(self, *, attempts: int, last_error: BaseException) -> None:
        self.attempts = attempts
        self.last_error = last_error
        super().__init__(
            f"LLM call failed after {attempts} attempt(s): {type(last_error).__name__}: {last_error}"
        )


class LLMNonRetryable(LLMRetryExhausted):
    """The provider answered with a permanent error (e.g. 400/401/403/404); retrying cannot help."""

    code = "llm.non_retryable"


class LLMStreamIncomplete(LLMError):
    """A provider stream broke off: it ended without its terminator (finish reason, ``[DONE]``,
    ``message_stop``), carried an undecodable event, or lost its connection mid-way.

    The official SDKs accept a silently truncated stream as a short answer; the adapters refuse it.
    It is retryable: :class:`~power_loop.llm.LLMRetryPolicy` treats it like a dropped connection.
    ``reason`` is one of ``"no_terminator"``, ``"malformed_event"``, ``"connection_lost"``,
    ``"timeout"``; ``chunks`` counts the events received before the failure.
    """

    code = "llm.stream_incomplete"

    def __init__(self, *, provider: str, reason: str, chunks: int, detail: str = "") -> None:
        self.provider = provider
        self.reason = reason
        self.chunks = chunks
        self.detail = detail
        text = f"{provider} stream incomplete ({reason}) after {chunks} event(s)"
        super().__init__(f"{text}: {detail}" if detail else text)


class ModelCapabilityError(PowerLoopError, RuntimeError):
    """A request needs something the model cannot do (an image for a model without vision, a PDF
    for one without documents); raised before anything is sent. ``capability`` names what is missing."""

    code = "llm.capability"

    def __init__(self, message: str, *, capability: str = "") -> None:
        super().__init__(message)
        self.capability = capability


class StructuredOutputError(PowerLoopError):
    """A structured answer could not be parsed or does not match its schema.

    ``reason`` is ``"no_json"``, ``"invalid_json"``, ``"not_object"``, ``"missing_required:<field>"``
    or ``"schema_mismatch"``; ``raw_text`` is the model's answer (cut to 1000 characters) and
    ``detail`` explains what is wrong (the first schema problems, with JSON paths).
    """

    code = "structured_output.invalid"

    RAW_TEXT_LIMIT: ClassVar[int] = 1000

    def __init__(self, *, reason: str, raw_text: str, detail: str = "") -> None:
        self.reason = reason
        self.raw_text = raw_text[: self.RAW_TEXT_LIMIT]
        self.detail = detail
        message = f"structured output invalid ({reason})"
        super().__init__(f"{message}: {detail}" if detail else message)


class ProviderNotAvailable(LLMError):
    """The selected provider cannot be built (unknown name or adapter not available)."""

    code = "llm.provider_unavailable"


class ToolNotFound(PowerLoopError):
    code = "tool.not_found"

    def __init__(self, tool_name: str) -> None:
        self.tool_name = tool_name
        super().__init__(f"tool not found: {tool_name}")


class ToolValidationError(PowerLoopError):
    code = "tool.invalid_args"

    def __init__(self, tool_name: str, message: str) -> None:
        self.tool_name = tool_name
        self.message = message
        super().__init__(f"{tool_name}: {message}")


class ToolResultError(PowerLoopError):
    """A tool handler returned a value that cannot be turned into text (its ``__str__`` raised, or a
    number is too large to print). The model is told so in the tool result; the session stays usable."""

    code = "tool.invalid_result"

    def __init__(self, tool_name: str, message: str) -> None:
        self.tool_name = tool_name
        super().__init__(f"{tool_name}: {message}")


class AsyncToolInSyncContext(PowerLoopError, TypeError):
    """A coroutine tool handler was invoked through the synchronous ``ToolRegistry.invoke``."""

    code = "tool.async_in_sync"

    def __init__(self, tool_name: str) -> None:
        self.tool_name = tool_name
        super().__init__(
            f"tool {tool_name!r} has an async handler; call `await registry.invoke_async(...)` instead of invoke()"
        )


class StoreError(PowerLoopError):
    code = "store.error"


class InvalidDSN(StoreError, ValueError):
    code = "store.invalid_dsn"


class InvalidTablePrefix(StoreError, ValueError):
    code = "store.invalid_prefix"


class StoreSchemaError(StoreError, RuntimeError):
    """The database schema is missing, partial or mismatched; ``ddl`` is the exact script to run."""

    code = "store.schema_mismatch"

    def __init__(self, message: str, *, ddl: Sequence[str] | None = None) -> None:
        self.ddl = list(ddl or [])
        self.reason = message
        text = message
        if self.ddl:
            text += (
                "\n\nRun this DDL (or open the store with schema='auto_create'):\n\n"
                + ";\n".join(self.ddl)
                + ";"
            )
        super().__init__(text)


class SchemaTooNewError(StoreSchemaError):
    """The database was migrated by a newer power_loop; this code refuses to touch it."""

    code = "store.schema_too_new"


class StoreUnavailable(StoreError):
    """The database server cannot be reached."""

    code = "store.unavailable"


class StoreAuthError(StoreUnavailable):
    code = "store.auth_failed"


class StoreDatabaseMissing(StoreUnavailable):
    code = "store.database_missing"


class StoreConnectionLost(StoreError):
    code = "store.connection_lost"


class CorruptRowError(StoreError):
    """A stored row cannot be decoded (e.g. invalid JSON); the message names the table and key."""

    code = "store.corrupt_row"


class ArchiveError(StoreError, ValueError):
    """An export archive is malformed, from a newer version, or targets an existing session id.

    ``problems`` lists every problem found (an import is refused before anything is written).
    """

    code = "store.archive_invalid"

    def __init__(self, message: str, *, problems: Sequence[str] = ()) -> None:
        self.problems = list(problems) or [message]
        super().__init__(message)


class StoreClosedError(StoreError):
    code = "store.closed"


class StoreCorruptError(StoreError):
    """The database file is damaged or is not a database at all; restore it from a backup."""

    code = "store.corrupt"


class HistoryInvariantError(StoreError, ValueError):
    """A write would break the tool-call history invariant (a call without its result or vice versa).

    Raised before anything is written: the transaction that would have broken the history is rolled back.
    """

    code = "history.invalid"


class HookDirectiveError(PowerLoopError):
    """A hook handler asked for a directive the loop does not honour at that hook point.

    Raised instead of silently ignoring the directive; ``allowed`` lists what the point accepts.
    """

    code = "hook.invalid_directive"

    def __init__(self, hook_point: str, directive: object, allowed: Sequence[str], handler: str) -> None:
        self.hook_point = hook_point
        self.directive = directive
        self.allowed = list(allowed)
        self.handler = handler
        super().__init__(
            f"hook handler {handler} returned {directive!r} at hook point {hook_point!r}; "
            f"allowed there: {', '.join(self.allowed)}"
        )


class AsyncHookInSyncContext(PowerLoopError, TypeError):
    """An async hook handler was registered at a point the caller runs synchronously (``run_sync``)."""

    code = "hook.async_in_sync"

    def __init__(self, hook_point: str, handler: str) -> None:
        self.hook_point = hook_point
        self.handler = handler
        super().__init__(
            f"hook handler {handler} at {hook_point!r} is async, but this hook point is run synchronously; "
            "register a plain (non-async) function"
        )


class StoreIntegrityError(StoreError):
    """A statement violated a key or constraint (e.g. a duplicate primary key).

    Every backend maps its driver's integrity error to this class so store code can catch one type.
    """

    code = "store.integrity"


class RuntimeEnvError(ConfigError, RuntimeError):
    """A tool needs a directory the runtime environment does not name (workspace, home or skills),
    or a path is not one the environment allows. A ``ConfigError`` (and, as published, a
    ``RuntimeError``)."""

    code = "runtime_env.missing"


class WorkspaceViolation(PowerLoopError, ValueError):
    """A file tool was given a path outside its workspace root (``..``, absolute, or via a symlink)."""

    code = "tool.workspace_violation"

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"path {path!r} is not allowed: {reason}")


class ToolBudgetExceeded(PowerLoopError, ValueError):
    """A built-in tool stopped work that went over its bound (a ``grep`` pattern backtracking without end)."""

    code = "tool.budget_exceeded"

    def __init__(self, tool_name: str, message: str) -> None:
        self.tool_name = tool_name
        super().__init__(message)


class LeaseLostError(StoreError):
    """A write carried a session lease that is no longer current: the lease expired and another
    process took it over (a *zombie* writer). Nothing of that write was stored."""

    code = "store.lease_lost"

    def __init__(
        self,
        session_id: str,
        *,
        epoch: int,
        holder: str,
        current_epoch: int | None,
        current_holder: str | None,
    ) -> None:
        self.session_id = session_id
        self.epoch = epoch
        self.holder = holder
        self.current_epoch = current_epoch
        self.current_holder = current_holder
        now = (
            "no lease"
            if current_epoch is None
            else f"epoch {current_epoch} held by {current_holder or '(nobody)'}"
        )
        super().__init__(
            f"session {session_id}: lease epoch {epoch} of {holder} was lost (now {now}); the write was rejected"
        )


class NoteRejectedError(PowerLoopError, ValueError):
    """A note breaks the session's ``NotesPolicy`` (empty or too long); nothing was written."""

    code = "notes.rejected"


class NotesFullError(NoteRejectedError):
    """The session already holds ``NotesPolicy.max_notes`` notes and the policy rejects more
    (``eviction="reject"``, or ``"fifo"`` with every note pinned)."""

    code = "notes.full"


class CompactionFailed(PowerLoopError):
    """A fold strategy could not fold the window. Raise it from a custom ``FoldStrategy``: the loop
    then keeps the unfolded window for this round, reports the failure as an event and goes on."""

    code = "compaction.failed"


class MCPError(PowerLoopError):
    """An MCP server could not be reached or used: it failed to start or to complete the handshake,
    exited or closed its pipes mid-session, answered with a protocol error, or did not answer within
    the client's timeout. ``server`` names the command that was started."""

    code = "mcp.error"

    def __init__(self, server: str, message: str) -> None:
        self.server = server
        super().__init__(f"MCP server {server!r}: {message}")


class MCPToolError(MCPError):
    """An MCP tool ran and reported failure (``isError`` in its result); ``content`` is its text.

    Raised from a registered MCP tool's handler, so the loop hands it to the model as a failed tool result.
    """

    code = "mcp.tool_error"

    def __init__(self, server: str, tool_name: str, content: str) -> None:
        self.tool_name = tool_name
        self.content = content
        super().__init__(server, f"tool {tool_name!r} failed: {content or '(no details)'}")


class SpecValidationError(PowerLoopError):
    """A declarative spec (JSON/dict) is malformed; ``field`` names the offending key when known."""

    code = "spec.invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class AgentSpecError(SpecValidationError):
    """An ``AgentSpec`` is invalid: an unknown key, a wrong type or a value out of range."""

    code = "agent_spec.invalid"


class BlackboardError(PowerLoopError, ValueError):
    """A blackboard request is invalid: a bad board id, a full board, an unknown entry, bad text/kind/status."""

    code = "blackboard.invalid"
