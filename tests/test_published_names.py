"""Every name of published power-loop 3.0.2's ``__all__`` imports from ``power_loop``, as the same kind.

The list is the 204 names of the published ``__all__`` (facts file, top); every one of them exists here.
"""

from __future__ import annotations

import inspect
import typing

import pytest

import power_loop

PUBLISHED_ALL = """
    AgentErrorPayload AgentEvent AgentEventBus AgentEventType AgentHooks AgentLoopConfig
    AgentLoopResult AgentMessage AgentPipeline AgentRunner AgentSpec AgentSpecError AgenticFold
    AnthropicChatConfig AsyncToolInSyncContext AutoCompactStatusPayload BUILTIN_SECTIONS
    BackgroundRuntimeProjector BaseEventPayload BaseHookCtx Blackboard BlackboardEntry
    BlackboardError BudgetExceededStatusPayload CORE_TOOL_NAMES CancellationLike
    CancellationRequested CancellationToken CompactAfterCtx CompactBeforeCtx CompactionFailed
    DEFAULT_AGENT_SYSTEM_PROMPT DEFAULT_DB_PATH DEFAULT_EXPLORE_SUBAGENT_SYSTEM_PROMPT
    DEFAULT_NOTES_POLICY DEFAULT_SHELL_BACKEND DEFAULT_SUBAGENT_SYSTEM_PROMPT DEFAULT_TOOL_HANDLERS
    EXPLORE_TOOL_NAMES EventBusProtocol EventHandler FULL_TOOL_NAMES FoldContext FoldResult
    FoldStrategy FollowUpQueued HitRoundLimitStatusPayload HookContext HookDirective HookHandler
    HookManagerProtocol HookPoint HookResult HumanInputRequired LLMProviderConfig LLMRequest
    LLMResponse LLMRetryExhausted LLMRetryPolicy LLMService LLMStreamChunk LLMSummaryFold LLMTimeout
    LLMTokenUsage LOAD_SKILL_DEFINITION LlmAfterCtx LlmBeforeCtx LlmCallCompletedPayload
    LlmCallStartedPayload LlmDegradedPayload LlmRetryAttemptedPayload LocalShellBackend
    LoopCancelledPayload MAX_SPAWN_DEPTH MemoryFailedPayload MemoryProvider MemoryRecalledCtx
    MemoryRecalledPayload MemorySnapshot MessageAppendCtx MessageRole MessageRow MessageSink
    MessageState NoteOp NotesFullError NotesPolicy NullSink OpenAICompatibleChatConfig PhaseContext
    PhaseEventPayload PhaseResult PowerLoopError ProjectMessageRow ProjectedRepresentation
    ProjectedRow ProjectedSend RUN_AGENT_DEFINITION Representation RoundCompletedPayload
    RoundDecideCtx RoundEndCtx RoundStartCtx RoundStartedPayload RoundToolsPresentPayload
    RoundUsageStatusPayload RuntimeEnv RuntimeEnvError RuntimeMessage RuntimeProjector
    SPAWN_AGENT_DEFINITION SQLiteNoteMemory SQLiteSink STABLE_API SchemaPolicy SessionEndCtx
    SessionEndedPayload SessionKind SessionNotFoundError SessionPendingError SessionRow
    SessionStartCtx SessionStartedPayload SessionStatsRow SessionStatus SessionStore ShellBackend
    SkillLoader SpecValidationError SqliteBlackboard StatefulAgentLoop StatefulResult
    StatusChangedPayload StoreSchemaError StreamCompletedPayload StreamDeltaPayload
    StreamStartedPayload StructuredOutputError StructuredOutputSpec SubagentCompletedPayload
    SubagentLifecycle SubagentLimitPayload SubagentTaskStartPayload SubagentTextPayload
    SystemLogPayload SystemPromptBuilder SystemPromptContext TOOL_PRESETS TimerFireCtx
    TimerFiredPayload TimerRow TimerRunner TodoRuntimeProjector TodoUpdatedPayload ToolAfterCtx
    ToolArgsValidator ToolBeforeCtx ToolCall ToolCallCompletedPayload ToolCallFailedPayload
    ToolCallStartedPayload ToolDefinition ToolErrorCtx ToolHandler ToolHandlerResult ToolNotFound
    ToolRegistry ToolRuntimeContext ToolValidationError ToolsBatchAfterCtx ToolsBatchBeforeCtx
    UsageUpdatedPayload UserNotificationPayload VerbatimRepresentation __version__
    build_agent_system_prompt build_explore_subagent_system_prompt build_registry
    build_subagent_system_prompt create_default_tool_registry create_llm_service_from_config
    create_llm_service_from_env default_runtime_projectors estimate_text_tokens estimate_tokens
    format_tool_catalog get_default_loader get_tool_definitions get_tool_runtime_context open_store
    parse_structured phase register_blackboard_tools register_skill_tools register_spawn_agent
    render_entries render_notes request_user_input run_agent_spec runtime_env_context tag_as_memory
    trim_history validate_tool_args with_retry
""".split()

#: Published as type aliases or protocols rather than classes.
ALIASES = {"MessageRole", "HookHandler", "EventHandler", "CancellationLike"}


def test_the_published_list_has_204_names() -> None:
    assert len(PUBLISHED_ALL) == len(set(PUBLISHED_ALL)) == 204


@pytest.mark.parametrize("name", sorted(PUBLISHED_ALL))
def test_published_name_imports_as_the_same_kind(name: str) -> None:
    obj = getattr(power_loop, name)
    assert name in power_loop.__all__
    if name in ALIASES:
        assert typing.get_origin(obj) is not None or inspect.isclass(obj), name
    elif name.startswith("__") or name.isupper() or name == "STABLE_API":
        assert not inspect.isclass(obj) and not inspect.isfunction(obj), name
    elif name[0].isupper():
        assert inspect.isclass(obj), f"{name} should be a class, got {type(obj).__name__}"
    else:
        assert callable(obj) and not inspect.isclass(obj), f"{name} should be a function"
