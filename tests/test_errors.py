"""Error codes are frozen (SPEC §2.6, C24): this table may grow, never change."""

from __future__ import annotations

import inspect

import pytest

import power_loop.errors as errors

FROZEN_CODES = {
    "AgentSpecError": "agent_spec.invalid",
    "ArchiveError": "store.archive_invalid",
    "AsyncHookInSyncContext": "hook.async_in_sync",
    "AsyncToolInSyncContext": "tool.async_in_sync",
    "BlackboardError": "blackboard.invalid",
    "CancellationRequested": "cancelled",
    "ConfigError": "config.invalid",
    "CorruptRowError": "store.corrupt_row",
    "HistoryInvariantError": "history.invalid",
    "HookDirectiveError": "hook.invalid_directive",
    "InteractionNotFoundError": "interaction.not_found",
    "JobNotFoundError": "job.not_found",
    "JobNotStoppable": "job.not_stoppable",
    "InvalidDSN": "store.invalid_dsn",
    "InvalidSessionIdError": "session.invalid_id",
    "InvalidTablePrefix": "store.invalid_prefix",
    "LLMError": "llm.error",
    "LLMNonRetryable": "llm.non_retryable",
    "LLMRetryExhausted": "llm.retry_exhausted",
    "LLMStreamIncomplete": "llm.stream_incomplete",
    "LLMTimeout": "llm.timeout",
    "LeaseLostError": "store.lease_lost",
    "LoopClosedError": "loop.closed",
    "MCPError": "mcp.error",
    "MCPToolError": "mcp.tool_error",
    "MissingDependencyError": "dependency.missing",
    "ModelCapabilityError": "llm.capability",
    "NoteRejectedError": "notes.rejected",
    "NotesFullError": "notes.full",
    "PowerLoopError": "power_loop.error",
    "ProviderNotAvailable": "llm.provider_unavailable",
    "SchemaTooNewError": "store.schema_too_new",
    "SessionBusy": "session.busy",
    "SessionNotFoundError": "session.not_found",
    "SessionPendingError": "session.pending",
    "SpecValidationError": "spec.invalid",
    "StoreAuthError": "store.auth_failed",
    "StoreClosedError": "store.closed",
    "StoreConnectionLost": "store.connection_lost",
    "StoreCorruptError": "store.corrupt",
    "StoreDatabaseMissing": "store.database_missing",
    "StoreError": "store.error",
    "StoreIntegrityError": "store.integrity",
    "StoreSchemaError": "store.schema_mismatch",
    "StoreUnavailable": "store.unavailable",
    "StructuredOutputError": "structured_output.invalid",
    "ToolBudgetExceeded": "tool.budget_exceeded",
    "ToolNotFound": "tool.not_found",
    "ToolResultError": "tool.invalid_result",
    "ToolValidationError": "tool.invalid_args",
    "WorkspaceViolation": "tool.workspace_violation",
}


def _error_classes() -> dict[str, type[BaseException]]:
    return {
        name: obj
        for name in errors.__all__
        if inspect.isclass(obj := getattr(errors, name)) and issubclass(obj, BaseException)
    }


@pytest.mark.parametrize("name, code", sorted(FROZEN_CODES.items()))
def test_code_is_frozen(name: str, code: str) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, errors.PowerLoopError)
    assert cls.code == code


def test_every_error_has_its_own_distinct_code_and_is_drawn_in_the_tree() -> None:
    classes = _error_classes()
    for name, cls in classes.items():
        assert issubclass(cls, errors.PowerLoopError), name
        assert name in (errors.__doc__ or ""), f"{name} missing from the tree in the module docstring"
        assert cls.code in (errors.__doc__ or ""), f"{cls.code} missing from the tree"
    codes = [cls.code for cls in classes.values()]
    assert len(codes) == len(set(codes)), "two error classes share a code"
    assert set(FROZEN_CODES) <= set(classes)


def test_builtin_compatibility() -> None:
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.StoreSchemaError, RuntimeError)
    assert issubclass(errors.MissingDependencyError, ImportError)
    assert issubclass(errors.LoopClosedError, RuntimeError)


def test_messages_carry_their_context() -> None:
    pending = errors.SessionPendingError(
        "sess_x", assistant_seq=3, pending_tool_calls=[{"function": {"name": "bash"}}]
    )
    assert "bash" in str(pending) and pending.assistant_seq == 3
    busy = errors.SessionBusy("sess_x", holder="host:1:abc", expires_at_ms=123)
    assert "host:1:abc" in str(busy) and busy.expires_at_ms == 123
    schema = errors.StoreSchemaError("schema missing", ddl=["CREATE TABLE t (x INT)"])
    assert "CREATE TABLE t (x INT);" in str(schema) and schema.ddl == ["CREATE TABLE t (x INT)"]
    missing = errors.MissingDependencyError("asyncpg", "postgres", "the PostgreSQL store")
    assert "pip install asyncpg" in str(missing) and "'.[postgres]'" in str(missing)
    assert "power-loop[" not in str(missing)
