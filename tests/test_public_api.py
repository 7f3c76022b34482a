"""Pins the public surface (SPEC §3, C24): STABLE_API names and the call shapes of their methods.

Adding names or optional keyword parameters is fine; removing or renaming anything here is a breaking
change that needs a major version.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import power_loop

STABLE = (
    "StatefulAgentLoop, StatefulResult, FollowUpQueued, AgentLoopConfig, AgentLoopResult, SessionStore, "
    "SubagentLifecycle, PowerLoopError, SessionPendingError, SessionNotFoundError, LLMTimeout, "
    "LLMRetryExhausted, CancellationRequested, LLMRetryPolicy, CancellationToken, AgentHooks, AgentEventBus, "
    "HookPoint, HookDirective, ToolRegistry, ToolDefinition, LLMService, LLMRequest, LLMResponse, "
    "LLMStreamChunk, LLMProviderConfig, create_llm_service_from_env, create_llm_service_from_config"
).split(", ")


def _shape(fn) -> list[tuple[str, str, str]]:
    sig = inspect.signature(fn)
    out = []
    for p in sig.parameters.values():
        default = "" if p.default is inspect.Parameter.empty else repr(p.default)
        out.append((p.name, p.kind.name, default))
    return out


def test_stable_api_is_exactly_the_28_names_in_order():
    assert list(power_loop.STABLE_API) == STABLE
    for name in STABLE:
        assert hasattr(power_loop, name), name
        assert name in power_loop.__all__, name


def test_every_name_in___all___is_importable():
    for name in power_loop.__all__:
        assert hasattr(power_loop, name), name


LOOP_METHODS = {
    "__init__": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("llm", "KEYWORD_ONLY", ""),
        ("store", "KEYWORD_ONLY", "None"),
        ("dsn", "KEYWORD_ONLY", "None"),
        ("db_path", "KEYWORD_ONLY", "None"),
        ("table_prefix", "KEYWORD_ONLY", "None"),
        ("schema", "KEYWORD_ONLY", "None"),
        ("config", "KEYWORD_ONLY", "None"),
        ("tool_registry", "KEYWORD_ONLY", "None"),
        ("hooks", "KEYWORD_ONLY", "None"),
        ("event_bus", "KEYWORD_ONLY", "None"),
        ("max_spawn_depth", "KEYWORD_ONLY", "None"),
        ("session_cache_size", "KEYWORD_ONLY", "256"),
    ],
    "send": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("user_input", "POSITIONAL_OR_KEYWORD", ""),
        ("session_id", "POSITIONAL_OR_KEYWORD", ""),
        ("stop_event", "KEYWORD_ONLY", "None"),
        ("tools", "KEYWORD_ONLY", "None"),
        ("system_prompt", "KEYWORD_ONLY", "None"),
        ("heal_pending", "KEYWORD_ONLY", "False"),
    ],
    "follow_up": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("user_input", "POSITIONAL_OR_KEYWORD", ""),
        ("session_id", "POSITIONAL_OR_KEYWORD", ""),
        ("stop_event", "KEYWORD_ONLY", "None"),
        ("tools", "KEYWORD_ONLY", "None"),
        ("system_prompt", "KEYWORD_ONLY", "None"),
        ("mode", "KEYWORD_ONLY", "'queue'"),
    ],
    "resume": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("session_id", "POSITIONAL_OR_KEYWORD", ""),
        ("stop_event", "KEYWORD_ONLY", "None"),
    ],
    "submit_input": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("session_id", "POSITIONAL_OR_KEYWORD", ""),
        ("interaction_id", "POSITIONAL_OR_KEYWORD", ""),
        ("value", "POSITIONAL_OR_KEYWORD", ""),
        ("stop_event", "KEYWORD_ONLY", "None"),
    ],
    "abort_pending": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("session_id", "POSITIONAL_OR_KEYWORD", ""),
        ("reason", "KEYWORD_ONLY", "'aborted'"),
    ],
    "new_session": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("metadata", "KEYWORD_ONLY", "None"),
        ("system_prompt", "KEYWORD_ONLY", "None"),
    ],
    "close_session": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("session_id", "POSITIONAL_OR_KEYWORD", ""),
        ("cascade", "KEYWORD_ONLY", "True"),
    ],
    "schedule_timer": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("session_id", "POSITIONAL_OR_KEYWORD", ""),
        ("delay_s", "KEYWORD_ONLY", "None"),
        ("due_at_ms", "KEYWORD_ONLY", "None"),
        ("note", "KEYWORD_ONLY", ""),
        ("interval_s", "KEYWORD_ONLY", "None"),
    ],
    "get_messages": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("session_id", "POSITIONAL_OR_KEYWORD", ""),
        ("include_compacted", "KEYWORD_ONLY", "False"),
    ],
    "aclose": [("self", "POSITIONAL_OR_KEYWORD", ""), ("drain_timeout_s", "KEYWORD_ONLY", "30.0")],
}


@pytest.mark.parametrize("method", sorted(LOOP_METHODS))
def test_stateful_agent_loop_call_shapes(method):
    shape = _shape(getattr(power_loop.StatefulAgentLoop, method))
    pinned = LOOP_METHODS[method]
    assert shape[: len(pinned)] == pinned
    # Additions are allowed only as optional keyword-only parameters after the pinned ones.
    assert all(kind == "KEYWORD_ONLY" and default for _, kind, default in shape[len(pinned) :])


@pytest.mark.parametrize(
    "name",
    [
        "ensure_store",
        "new_session_sync",
        "prewarm",
        "send_sync",
        "follow_up_sync",
        "get_pending",
        "get_session_stats",
        "list_session_stats",
        "resolve_system_prompt",
        "cancel_timer",
        "list_timers",
        "steer_event",
        "close",
        "__aenter__",
        "__aexit__",
    ],
)
def test_stateful_agent_loop_has_method(name):
    assert callable(getattr(power_loop.StatefulAgentLoop, name))


def test_result_and_config_fields():
    fields = [f.name for f in dataclasses.fields(power_loop.StatefulResult)]
    assert fields[:8] == [
        "session_id",
        "status",
        "final_text",
        "rounds",
        "pending_tool_calls",
        "pending_interactions",
        "usage",
        "tool_calls",
    ]
    assert fields[8:] == ["output", "passed", "pass_reason", "steers"]
    config = power_loop.AgentLoopConfig()
    assert (config.max_rounds, config.temperature, config.max_tokens, config.system_prompt) == (
        24,
        0.0,
        8000,
        None,
    )
    assert [f.name for f in dataclasses.fields(power_loop.FollowUpQueued)][:2] == [
        "session_id",
        "queue_depth",
    ]


def test_enum_values():
    assert power_loop.HookPoint.TOOL_BEFORE == "tool.before"
    assert {p.value for p in power_loop.HookPoint} >= {
        "session.start",
        "session.end",
        "round.start",
        "round.end",
        "llm.before",
        "llm.after",
        "tools.batch.before",
        "tools.batch.after",
        "tool.before",
        "tool.after",
        "tool.error",
        "round.decide",
        "compact.before",
        "compact.after",
        "message.append",
        "memory.recalled",
        "timer.fire",
        "tool.reconcile",
    }
    assert [d.value for d in power_loop.HookDirective] == ["continue", "skip", "break", "short_circuit"]
    assert [x.value for x in power_loop.SubagentLifecycle] == ["ephemeral", "linked", "detached"]


def test_llm_contract_shapes():
    request = power_loop.LLMRequest(messages=[{"role": "user", "content": "hi"}], system_prompt="s")
    assert request.to_messages()[0] == {"role": "system", "content": "s"}
    params = inspect.signature(power_loop.LLMService.complete).parameters
    assert list(params)[:2] == ["self", "request"]
    assert {"on_chunk_delta_text", "on_chunk_think", "on_stream_end"} <= set(params)


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_power_loop_is_lazy():
    loaded = _modules_after("import power_loop")
    assert not loaded & {
        "asyncio",
        "ssl",
        "subprocess",
        "http",
        "email",
        "power_loop.loop",
        "power_loop.store",
    }


def test_using_the_loop_pulls_no_network_or_driver_modules():
    loaded = _modules_after("from power_loop import StatefulAgentLoop, ToolRegistry")
    assert "power_loop.loop" in loaded
    assert not loaded & {"http", "email", "openai", "anthropic", "asyncpg", "aiomysql", "mcp", "jsonschema"}


def test_importing_the_loop_defers_what_only_a_send_needs():
    # bench/_imports.py measures the import cost; this pins its structure: payload and ctx classes,
    # the store, the round engine and the schema validator load on first use, not with the class.
    loaded = _modules_after("from power_loop import StatefulAgentLoop")
    assert not loaded & {
        "power_loop.events._payloads",
        "power_loop.hooks._contexts",
        "power_loop.store._rows",
        "power_loop.store._store",
        "power_loop.loop._engine",
        "power_loop.tools",
        "power_loop.base._schema",
        "power_loop.llm._types",
    }


def test_the_workflow_worker_imports_only_what_a_leaf_needs():
    # a SubprocessExecutor leaf pays this import in every worker: no engine, blackboards, provider
    # factory or tool presets until its job asks for them (docs/benchmarks.md, Workflows)
    loaded = _modules_after("import power_loop.workflow.worker")
    assert not loaded & {
        "power_loop.workflow._api",
        "power_loop.workflow._engine",
        "power_loop.agents._board",
        "power_loop.agents._run",
        "power_loop.llm._config",
        "power_loop.tools._presets",
        "http",
        "email",
    }


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError):
        power_loop.does_not_exist  # noqa: B018


# -- every public surface, pinned ---------------------------------------------------------------------
# Exact sorted ``__all__`` of the facade and of every public subpackage. Adding a name means adding it
# here (and to docs/ and CHANGELOG.md); removing or renaming one is a breaking change for its users.

PUBLIC_ALL: dict[str, list[str]] = {
    "power_loop": """
        AgentErrorPayload AgentEvent AgentEventBus AgentEventType AgentHooks AgentLoopConfig
        AgentLoopResult AgentMessage AgentPipeline AgentRunner AgentSpec AgentSpecError AgenticFold
        AnthropicChatConfig ArchiveError AsyncHookInSyncContext AsyncToolInSyncContext
        AutoCompactStatusPayload BUILTIN_SECTIONS BackgroundRuntimeProjector BaseEventPayload
        BaseHookCtx Blackboard BlackboardEntry BlackboardError BudgetExceededStatusPayload
        CORE_TOOL_NAMES CancellationLike CancellationRequested CancellationToken CompactAfterCtx
        CompactBeforeCtx CompactionFailed ConfigError ContextPipeline CorruptRowError
        DEFAULT_AGENT_SYSTEM_PROMPT DEFAULT_DB_PATH DEFAULT_EXPLORE_SUBAGENT_SYSTEM_PROMPT
        DEFAULT_NOTES_POLICY DEFAULT_SHELL_BACKEND DEFAULT_SUBAGENT_SYSTEM_PROMPT
        DEFAULT_TABLE_PREFIX DEFAULT_TOOL_HANDLERS EXPLORE_TOOL_NAMES EventBusProtocol EventHandler
        EventStream FULL_TOOL_NAMES FoldContext FoldResult FoldStrategy FollowUpDeliveredPayload
        FollowUpQueued HistoryInvariantError HitRoundLimitStatusPayload HookContext HookDirective
        HookDirectiveError HookEventRow HookHandler HookManagerProtocol HookPoint HookResult
        HumanInputRequired InboxItem InputRequestedPayload InteractionNotFoundError InvalidDSN
        InvalidSessionIdError InvalidTablePrefix Job JobNotFoundError JobNotStoppable LLMError
        LLMNonRetryable LLMProviderConfig LLMRequest LLMResponse LLMRetryExhausted LLMRetryPolicy
        LLMService LLMStreamChunk LLMStreamIncomplete LLMSummaryFold LLMTimeout LLMTokenUsage
        LOAD_SKILL_DEFINITION LeaseLostError LeaseToken LlmAfterCtx LlmBeforeCtx
        LlmCallCompletedPayload LlmCallStartedPayload LlmDegradedPayload LlmRetryAttemptedPayload
        LocalShellBackend LoopCancelledPayload LoopClosedError LoopMessage LoopStatus
        MAX_SPAWN_DEPTH MCPError MCPToolError MemoryFailedPayload MemoryProvider MemoryRecalledCtx
        MemoryRecalledPayload MemorySnapshot MessageAppendCtx MessageRole MessageRow MessageSink
        MessageState MissingDependencyError ModelCapabilities ModelCapabilityError NewMessage NoteOp
        NoteRejectedError NoteRow NotesFullError NotesMemory NotesPolicy NullSink
        OpenAICompatibleChatConfig PASS_TURN_TOOL PhaseContext PhaseEventPayload PhaseResult
        PowerLoopError ProjectMessageRow ProjectedRepresentation ProjectedRow ProjectedSend
        ProjectionContext ProviderNotAvailable RUN_AGENT_DEFINITION Representation
        RoundCompletedPayload RoundDecideCtx RoundEndCtx RoundStartCtx RoundStartedPayload
        RoundToolsPresentPayload RoundUsageStatusPayload RuntimeEnv RuntimeEnvError RuntimeMessage
        RuntimeProjector SPAWN_AGENT_DEFINITION SQLiteNoteMemory SQLiteSink STABLE_API SchemaPolicy
        SchemaTooNewError SendCompletedPayload SessionBusy SessionEndCtx SessionEndedPayload
        SessionKind SessionNotFoundError SessionPendingError SessionRow SessionStartCtx
        SessionStartedPayload SessionStateRow SessionStatsRow SessionStatus SessionStore
        ShellBackend SkillLoader SpecValidationError SqliteBlackboard StatefulAgentLoop
        StatefulResult StatusChangedPayload SteerInterruptedPayload StopPolicy StoreAuthError
        StoreBlackboard StoreClosedError StoreConnectionLost StoreCorruptError StoreDatabaseMissing
        StoreError StoreIntegrityError StoreSchemaError StoreUnavailable StreamCompletedPayload
        StreamDeltaPayload StreamStartedPayload StructuredOutputError StructuredOutputSpec
        SubagentCompletedPayload SubagentLifecycle SubagentLimitPayload SubagentTaskStartPayload
        SubagentTextPayload SyncCallInEventLoopError SystemLogPayload SystemPromptBuilder
        SystemPromptContext TOOL_PRESETS TimerFireCtx TimerFiredPayload TimerRow TimerRunner
        TodoRuntimeProjector TodoUpdatedPayload TokenEstimator ToolAfterCtx ToolArgsValidator
        ToolBeforeCtx ToolBudgetExceeded ToolCall ToolCallCompletedPayload ToolCallDeltaPayload
        ToolCallFailedPayload ToolCallStartedPayload ToolDefinition ToolErrorCtx ToolHandler
        ToolHandlerResult ToolNotFound ToolOutcome ToolRegistry ToolResultError ToolRuntimeContext
        ToolValidationError ToolsBatchAfterCtx ToolsBatchBeforeCtx TurnPassed UsageUpdatedPayload
        UserNotificationPayload VerbatimRepresentation WorkspaceViolation __version__ attachment
        build_agent_system_prompt build_explore_subagent_system_prompt build_registry
        build_subagent_system_prompt create_default_tool_registry create_llm_service_from_config
        create_llm_service_from_env default_runtime_projectors estimate_text_tokens estimate_tokens
        format_timer_message format_tool_catalog get_default_loader get_runtime_env
        get_tool_definitions get_tool_runtime_context open_store parse_structured phase
        probe_capabilities register_blackboard_tools register_pass_turn register_request_user_input
        register_skill_tools register_spawn_agent render_entries render_notes request_pass
        request_user_input run_agent_spec runtime_env_context safe_path tag_as_memory trim_history
        validate_tool_args wait_or_steer with_retry
    """.split(),
    "power_loop.agents": """
        AgentSpec BOARD_TOOL_NAMES Blackboard BlackboardEntry DEFAULT_DELEGATE_PROMPT
        DEFAULT_MAX_ROUNDS LIFECYCLES MAX_SPEC_ROUNDS RUN_AGENT_DEFINITION SPAWN_AGENT_DEFINITION
        SqliteBlackboard StoreBlackboard register_blackboard_tools register_spawn_agent
        render_entries run_agent_spec
    """.split(),
    "power_loop.base": """
        DEFAULT_REDACT_KEYS REDACTED ScheduledTimer SchemaValidator StructuredOutputSpec
        ToolEventEmitter ToolLoop ToolRuntimeContext UncancellableFuture compile_schema
        extract_json_object get_tool_runtime_context idempotency_key json_type_name
        parse_structured_text redact_secrets resolve_redact run_to_completion sanitize
        schema_from_response_format structured_result use_tool_runtime_context validate_tool_args
    """.split(),
    "power_loop.context": """
        AgenticFold CHARS_PER_TOKEN COMPACT_NOTE_NAME CONTEXT_TOOL_NAMES CalibrationUpdate
        CompactView ContextPipeline ContextState DEFAULT_FOLD_AGENT_PROMPT DEFAULT_NOTES_POLICY
        DEFAULT_SUMMARY_PROMPT FoldCommit FoldContext FoldFailure FoldOutcome FoldPlan FoldResult
        FoldStrategy LLMSummaryFold METADATA_KEY MemoryProvider MemorySnapshot NOTE_TOOL_NAMES
        NoteOp NotesMemory NotesPolicy ProjectMessageRow ProjectedRepresentation ProjectedRow
        ProjectedSend RECALL_TOOL_NAMES Representation
        RepresentationSwitch SQLiteNoteMemory STATE_KEY SendView TokenEstimator ToolRuntimeContext
        VerbatimRepresentation WindowLike add_note_checked apply_note_ops check_messages
        estimate_message_tokens estimate_text_tokens estimate_tokens extract_summary
        get_tool_runtime_context is_compact_note message_chars recall_compacted recall_send
        register_note_tools register_recall_tools register_reserved_tools render_notes
        render_transcript request_chars row_message tag_as_memory trim_history update_note_checked
        use_tool_runtime_context
    """.split(),
    "power_loop.contrib": [],
    "power_loop.contrib.celery": """
        CeleryExecutor CeleryTasks DELIVER_TASK RESUME_TASK SEND_TASK TIMERS_SCAN_TASK WORKFLOW_LEAF_TASK
        install_tasks leaf_task_args outcome_dict submit_deliver submit_send
    """.split(),
    "power_loop.contrib.inspector": """
        Inspector is_loopback serve
    """.split(),
    "power_loop.contrib.jsonl_sink": """
        DEFAULT_MAX_BYTES JsonlSink attach_jsonl_sink replay
    """.split(),
    "power_loop.contrib.logging_sink": """
        DEFAULT_LOGGER_NAME attach_logging_sink event_log_record
    """.split(),
    "power_loop.contrib.mcp": """
        MCPToolSource McpToolSpec StdioMCPClient mcp_tool_name normalise_input_schema
        register_mcp_tools render_tool_content
    """.split(),
    "power_loop.contrib.metrics_sink": """
        InMemoryMetricsBackend MetricsBackend PrometheusBackend StatsDBackend attach_metrics_sink
    """.split(),
    "power_loop.contrib.otel_sink": """
        OtelSpanBridge attach_otel_sink
    """.split(),
    "power_loop.errors": """
        AgentSpecError ArchiveError AsyncHookInSyncContext AsyncToolInSyncContext BlackboardError
        CancellationRequested CompactionFailed ConfigError CorruptRowError HistoryInvariantError
        HookDirectiveError InteractionNotFoundError InvalidDSN InvalidSessionIdError
        InvalidTablePrefix JobNotFoundError JobNotStoppable LLMError LLMNonRetryable LLMRetryExhausted LLMStreamIncomplete LLMTimeout
        LeaseLostError LoopClosedError MCPError MCPToolError MissingDependencyError
        ModelCapabilityError NoteRejectedError NotesFullError PowerLoopError ProviderNotAvailable
        RuntimeEnvError SchemaTooNewError SessionBusy SessionNotFoundError SessionPendingError
        SpecValidationError StoreAuthError StoreClosedError StoreConnectionLost StoreCorruptError
        StoreDatabaseMissing StoreError StoreIntegrityError StoreSchemaError StoreUnavailable
        StructuredOutputError ToolBudgetExceeded ToolNotFound ToolResultError ToolValidationError
        WorkspaceViolation
    """.split(),
    "power_loop.events": """
        AgentErrorPayload AgentEvent AgentEventBus AgentEventType AutoCompactStatusPayload
        BaseEventPayload BudgetExceededStatusPayload EventBusProtocol EventHandler EventStream
        FollowUpDeliveredPayload HitRoundLimitStatusPayload InputRequestedPayload
        LlmCallCompletedPayload LlmCallStartedPayload LlmDegradedPayload LlmRetryAttemptedPayload
        LoopCancelledPayload MemoryFailedPayload MemoryRecalledPayload PAYLOAD_TYPES
        PhaseEventPayload RoundCompletedPayload RoundStartedPayload RoundToolsPresentPayload
        RoundUsageStatusPayload SendCompletedPayload SessionEndedPayload SessionStartedPayload
        StatusChangedPayload SteerInterruptedPayload StreamCompletedPayload StreamDeltaPayload
        StreamStartedPayload SubagentCompletedPayload SubagentLimitPayload SubagentTaskStartPayload
        SubagentTextPayload SystemLogPayload TimerFiredPayload TodoUpdatedPayload
        ToolCallCompletedPayload ToolCallDeltaPayload ToolCallFailedPayload ToolCallStartedPayload
        UsageUpdatedPayload UserNotificationPayload WorkflowEventPayload WorkflowStepPayload
        resolve_event_type
    """.split(),
    "power_loop.hooks": """
        ALLOWED_DIRECTIVES AgentHooks BaseHookCtx CTX_TYPES CompactAfterCtx CompactBeforeCtx
        HookAuditSink HookContext HookDirective HookHandler HookManagerProtocol HookPoint HookResult
        LlmAfterCtx LlmBeforeCtx MemoryRecalledCtx MessageAppendCtx RoundDecideCtx RoundEndCtx
        RoundStartCtx SessionEndCtx SessionStartCtx TimerFireCtx ToolAfterCtx ToolBeforeCtx
        ToolErrorCtx ToolReconcileCtx ToolsBatchAfterCtx ToolsBatchBeforeCtx WorkflowStepEndCtx
        WorkflowStepStartCtx allowed_directives resolve_hook_point
    """.split(),
    "power_loop.llm": """
        AgentMessage AnthropicChatConfig CancellationLike CancellationToken DEFAULT_CAPABILITIES
        EchoLLMService LLMProviderConfig LLMRequest LLMResponse LLMRetryPolicy LLMService
        LLMServiceBase LLMStreamChunk LLMTokenUsage MessageRole ModelCapabilities
        OpenAICompatibleChatConfig ToolCall ToolCallAccumulator attachment capabilities_of
        check_capabilities complete_from_stream create_llm_service_from_config
        create_llm_service_from_env field_of is_permanent_llm_error message_text normalize_tool_call
        normalize_usage parse_tool_arguments probe_capabilities retry_after_s validate_parts
        with_retry
    """.split(),
    "power_loop.loop": """
        AgentLoopConfig AgentLoopResult AgentPipeline AgentRunner BUILTIN_SECTIONS
        BackgroundRuntimeProjector DEFAULT_AGENT_SYSTEM_PROMPT
        DEFAULT_EXPLORE_SUBAGENT_SYSTEM_PROMPT DEFAULT_SUBAGENT_SYSTEM_PROMPT DEFAULT_TOOL_HANDLERS
        FollowUpQueued InboxItem Job LoopMessage LoopStatus MessageSink NullSink PhaseContext
        PhaseResult ProjectionContext RuntimeMessage RuntimeProjector SQLiteSink SectionRenderer
        StatefulAgentLoop StatefulResult StopPolicy SyncCallInEventLoopError SystemPromptBuilder
        SystemPromptContext TimerRunner TodoRuntimeProjector build_agent_system_prompt
        build_explore_subagent_system_prompt build_subagent_system_prompt default_runtime_projectors
        format_timer_message format_tool_catalog get_tool_definitions phase validate_tool_args
        wait_or_steer
    """.split(),
    "power_loop.store": """
        AppendResult BackgroundTaskRow CURRENT_SCHEMA_VERSION ColumnSpec CompactionRow
        DEFAULT_DB_PATH DEFAULT_TABLE_PREFIX Database Dialect FollowUpRow HeldLease HookEventRow
        InboxRepository InboxRow IndexSpec KEEP LeaseToken MAX_SPAWN_DEPTH MUTATE_SKIP Maintenance
        MessageRow MessageState MigrationStep MySQLDialect NewHookEvent NewMessage NoteRow
        PostgresDialect RoundUsage SchemaPolicy SendAccounting SessionKind SessionRow
        SessionStateRow SessionStatsRow SessionStatus SessionStore SqliteDatabase SqliteDialect
        SubagentLifecycle TableSpec TimerRow TimerStatus ToolCallRecord Transaction UsageRoundRow
        WorkflowRecordRow all_table_names connect_database ensure_schema hold_lease new_holder_id
        open_store provisioning_ddl
    """.split(),
    "power_loop.structured": """
        StructuredOutputError StructuredOutputSpec extract_json_object parse_structured
        parse_structured_text schema_from_response_format structured_result
    """.split(),
    "power_loop.testing": """
        DatabaseFactory DatabaseReport EventRecorder LoopFactory ReplayDifference ReplayReport
        ScriptExhaustedError ScriptedCall ScriptedLLM ScriptedTurn ToolCallRecord Turn VirtualClock
        assert_events_in_order assert_tool_called assert_tool_not_called check_database
        find_tool_calls replay_session
    """.split(),
    "power_loop.tools": """
        BACKGROUND_RUN_DEFINITION BACKGROUND_TOOL_NAMES BASH_TOOL_DEFINITION
        BackgroundSupervisor CHECK_BACKGROUND_DEFINITION CORE_TOOL_NAMES DEFAULT_BACKGROUND_TIMEOUT_S
        DEFAULT_MAX_RESULT_CHARS DEFAULT_SHELL_BACKEND ENV_HOME ENV_SKILLS_DIR ENV_WORKSPACE
        EXPLORE_TOOL_NAMES FILE_TOOL_DEFINITIONS FILE_TOOL_NAMES FULL_TOOL_NAMES HumanInputRequired
        LOAD_SKILL_DEFINITION LocalShellBackend PASS_TURN_TOOL REQUEST_USER_INPUT_DEFINITION
        RegisteredTool RuntimeEnv SESSION_TOOL_DEFINITIONS SESSION_TOOL_NAMES SKILLS_DIR_ENV
        SchemaValidator ShellBackend Skill SkillLoader TODO_STATE_KEY TOOL_PRESETS ToolArgsValidator
        ToolCallable ToolDefinition ToolEffect ToolHandler ToolHandlerResult ToolOutcome
        ToolRegistry ToolRuntimeContext TurnPassed VIEW_IMAGE_DEFINITION WORKSPACE_TOOL_NAMES
        Workspace build_registry collect_background_updates compile_schema
        create_default_tool_registry execute_tool_call get_default_loader get_runtime_env
        get_tool_runtime_context parse_front_matter register_background_tools register_bash_tool
        register_file_tools register_pass_turn register_request_user_input register_session_tools
        register_skill_tools register_view_image_tool render_background_updates render_todo
        request_pass request_user_input run_shell_command runtime_env_context safe_path
        stop_background_task use_tool_runtime_context validate_tool_args
    """.split(),
    "power_loop.workflow": """
        AgentNode AgentResult BranchNode DirectWorkerLauncher Executor ForeachNode InProcessExecutor
        LoopNode LoopUntil ParallelNode RetryPolicy SequenceNode SharedBudget SpecProblem
        SubprocessExecutor WORKFLOW_TOOL_NAMES WorkerBootstrap WorkerJob WorkerLauncher Workflow
        WorkflowBudget WorkflowNode WorkflowResult WorkflowRunError WorkflowRunHandle WorkflowSpec
        WorkflowSpecError cancel_workflow cleanup_run create_workflow get_workflow in_workflow
        leaf_message_id leaf_session_id list_workflows reap_runs register_workflow_tools rehydrate
        replayable_node_ids resume_detached resume_run run_detached run_leaf_once validate_spec
    """.split(),
}


@pytest.mark.parametrize("module", sorted(PUBLIC_ALL))
def test_public_surface_is_pinned(module: str) -> None:
    names = importlib.import_module(module).__all__
    assert len(names) == len(set(names)), f"{module}.__all__ lists a name twice"
    assert sorted(names) == PUBLIC_ALL[module]
    for name in names:
        assert getattr(importlib.import_module(module), name) is not None, name


def _type_checking_imports() -> dict[str, str]:
    """``{name: subpackage}`` of the ``if TYPE_CHECKING:`` imports in power_loop/__init__.py."""
    tree = ast.parse(Path(power_loop.__file__).read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.level == 1 and stmt.module, ast.dump(stmt)
                for alias in stmt.names:
                    assert alias.asname == alias.name, (
                        f"{alias.name}: re-export it as `{alias.name} as {alias.name}`"
                    )
                    assert alias.name not in found, f"{alias.name} imported twice"
                    found[alias.name] = stmt.module
    return found


def test_one_table_feeds___all___lazy_loading_and_the_type_checking_imports() -> None:
    table = power_loop._EXPORTS
    listed = [name for names in table.values() for name in names]
    assert len(listed) == len(set(listed)), "a name is listed under two subpackages"
    assert _type_checking_imports() == {name: module for module, names in table.items() for name in names}
    assert power_loop.__all__ == ["STABLE_API", "__version__", *listed]
    for module, names in table.items():
        package = importlib.import_module(f"power_loop.{module}")
        for name in names:
            assert name in package.__all__, f"power_loop.{module} does not export {name}"
            assert getattr(power_loop, name) is getattr(package, name)
    assert set(dir(power_loop)) >= set(power_loop.__all__)


def _lazy_imports(package_init: Path) -> dict[str, str]:
    """``{name: relative module}`` of the ``if TYPE_CHECKING:`` imports of a package ``__init__``."""
    found: dict[str, str] = {}
    for node in ast.parse(package_init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.level:
                    for alias in stmt.names:
                        found[alias.asname or alias.name] = "." * stmt.level + (stmt.module or "")
    return found


@pytest.mark.parametrize("module", sorted(set(PUBLIC_ALL) - {"power_loop"}))
def test_a_lazy_subpackage_lists_each_name_once_for_loading_and_for_type_checkers(module: str) -> None:
    # A lazy __init__ names each public name three times: in __all__, in its loading table (_LAZY)
    # and in the TYPE_CHECKING imports that type checkers read. The three must agree.
    package = importlib.import_module(module)
    lazy = getattr(package, "_LAZY", None)
    if lazy is None:
        return  # an eager package: its names are all in __all__ and in its namespace (pinned above)
    assert _lazy_imports(Path(package.__file__)) == dict(lazy)
    assert set(lazy) <= set(package.__all__)
    eager = set(package.__all__) - set(lazy)
    assert all(name in vars(package) for name in eager), f"{module}: {sorted(eager - set(vars(package)))}"
    assert set(dir(package)) >= set(package.__all__)  # dir() lists names not loaded yet, too
