"""power_loop — an embeddable, async agent execution kernel.

``await loop.send(text, session_id=sid)`` runs the LLM ⇄ tool loop through hooks and persists every
message in a store chosen by DSN (SQLite by default; PostgreSQL / MySQL by URL). The core depends on
the standard library only; providers and drivers are optional extras, imported when first used.

Stability tiers: names in :data:`STABLE_API` never change within a major version; the rest of
``__all__`` is provisional; private modules (``_x.py``) are internal.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._lazy import lazy_getattr

# Layer map (SPEC §4, docs/architecture.md): each layer imports only from layers below it, never a
# private module (``_x.py``) of another package, never in a cycle; tests/test_layers.py enforces it.
#
#   9  power_loop (this facade: lazy re-exports of the names below)
#   8  the CLI: __main__, _cli_sessions, _demo
#   7  contrib, testing, workflow    (workflow runs AgentSpec leaves: it sits above agents)
#   6  agents
#   5  loop
#   4  context
#   3  tools, structured
#   2  llm, store, hooks, events      (independent of each other)
#   1  base                           (JSON-Schema validation, structured-output spec, tool runtime context)
#   0  errors, _lazy

if TYPE_CHECKING:
    # `X as X` marks an explicit re-export for type checkers; one statement per subpackage, in the
    # order of _EXPORTS (the sorter would split them), so keep the sorter out.
    # isort: off
    from .errors import (
        AgentSpecError as AgentSpecError,
        ArchiveError as ArchiveError,
        AsyncHookInSyncContext as AsyncHookInSyncContext,
        AsyncToolInSyncContext as AsyncToolInSyncContext,
        BlackboardError as BlackboardError,
        CancellationRequested as CancellationRequested,
        ConfigError as ConfigError,
        CorruptRowError as CorruptRowError,
        HistoryInvariantError as HistoryInvariantError,
        HookDirectiveError as HookDirectiveError,
        InteractionNotFoundError as InteractionNotFoundError,
        InvalidDSN as InvalidDSN,
        InvalidTablePrefix as InvalidTablePrefix,
        LLMError as LLMError,
        LLMNonRetryable as LLMNonRetryable,
        LLMRetryExhausted as LLMRetryExhausted,
        LLMStreamIncomplete as LLMStreamIncomplete,
        LLMTimeout as LLMTimeout,
        LeaseLostError as LeaseLostError,
        LoopClosedError as LoopClosedError,
        MCPError as MCPError,
        MCPToolError as MCPToolError,
        MissingDependencyError as MissingDependencyError,
        NoteRejectedError as NoteRejectedError,
        NotesFullError as NotesFullError,
        PowerLoopError as PowerLoopError,
        ProviderNotAvailable as ProviderNotAvailable,
        SchemaTooNewError as SchemaTooNewError,
        SessionBusy as SessionBusy,
        SessionNotFoundError as SessionNotFoundError,
        SessionPendingError as SessionPendingError,
        SpecValidationError as SpecValidationError,
        StoreAuthError as StoreAuthError,
        StoreClosedError as StoreClosedError,
        StoreConnectionLost as StoreConnectionLost,
        StoreCorruptError as StoreCorruptError,
        StoreDatabaseMissing as StoreDatabaseMissing,
        StoreError as StoreError,
        StoreIntegrityError as StoreIntegrityError,
        StoreSchemaError as StoreSchemaError,
        StoreUnavailable as StoreUnavailable,
        StructuredOutputError as StructuredOutputError,
        ToolNotFound as ToolNotFound,
        ToolValidationError as ToolValidationError,
        WorkspaceViolation as WorkspaceViolation,
    )
    from .llm import (
        AnthropicChatConfig as AnthropicChatConfig,
        CancellationLike as CancellationLike,
        CancellationToken as CancellationToken,
        LLMProviderConfig as LLMProviderConfig,
        LLMRequest as LLMRequest,
        LLMResponse as LLMResponse,
        LLMRetryPolicy as LLMRetryPolicy,
        LLMService as LLMService,
        LLMStreamChunk as LLMStreamChunk,
        LLMTokenUsage as LLMTokenUsage,
        OpenAICompatibleChatConfig as OpenAICompatibleChatConfig,
        create_llm_service_from_config as create_llm_service_from_config,
        create_llm_service_from_env as create_llm_service_from_env,
        with_retry as with_retry,
    )
    from .store import (
        DEFAULT_DB_PATH as DEFAULT_DB_PATH,
        DEFAULT_TABLE_PREFIX as DEFAULT_TABLE_PREFIX,
        LeaseToken as LeaseToken,
        MessageRow as MessageRow,
        MessageState as MessageState,
        NewMessage as NewMessage,
        NoteRow as NoteRow,
        SchemaPolicy as SchemaPolicy,
        SessionKind as SessionKind,
        SessionRow as SessionRow,
        SessionStateRow as SessionStateRow,
        SessionStatsRow as SessionStatsRow,
        SessionStatus as SessionStatus,
        SessionStore as SessionStore,
        SubagentLifecycle as SubagentLifecycle,
        TimerRow as TimerRow,
        open_store as open_store,
    )
    from .hooks import (
        AgentHooks as AgentHooks,
        BaseHookCtx as BaseHookCtx,
        HookDirective as HookDirective,
        HookPoint as HookPoint,
        TimerFireCtx as TimerFireCtx,
    )
    from .events import (
        AgentEvent as AgentEvent,
        AgentEventBus as AgentEventBus,
        AgentEventType as AgentEventType,
        BaseEventPayload as BaseEventPayload,
    )
    from .tools import (
        CORE_TOOL_NAMES as CORE_TOOL_NAMES,
        DEFAULT_SHELL_BACKEND as DEFAULT_SHELL_BACKEND,
        EXPLORE_TOOL_NAMES as EXPLORE_TOOL_NAMES,
        FULL_TOOL_NAMES as FULL_TOOL_NAMES,
        TOOL_PRESETS as TOOL_PRESETS,
        HumanInputRequired as HumanInputRequired,
        LocalShellBackend as LocalShellBackend,
        ShellBackend as ShellBackend,
        ToolDefinition as ToolDefinition,
        ToolHandlerResult as ToolHandlerResult,
        ToolOutcome as ToolOutcome,
        ToolRegistry as ToolRegistry,
        ToolRuntimeContext as ToolRuntimeContext,
        build_registry as build_registry,
        create_default_tool_registry as create_default_tool_registry,
        get_tool_runtime_context as get_tool_runtime_context,
        register_request_user_input as register_request_user_input,
        request_user_input as request_user_input,
        validate_tool_args as validate_tool_args,
    )
    from .structured import (
        StructuredOutputSpec as StructuredOutputSpec,
        parse_structured as parse_structured,
    )
    from .context import (
        DEFAULT_NOTES_POLICY as DEFAULT_NOTES_POLICY,
        AgenticFold as AgenticFold,
        ContextPipeline as ContextPipeline,
        FoldContext as FoldContext,
        FoldResult as FoldResult,
        FoldStrategy as FoldStrategy,
        LLMSummaryFold as LLMSummaryFold,
        MemoryProvider as MemoryProvider,
        MemorySnapshot as MemorySnapshot,
        NoteOp as NoteOp,
        NotesMemory as NotesMemory,
        NotesPolicy as NotesPolicy,
        ProjectedRepresentation as ProjectedRepresentation,
        Representation as Representation,
        TokenEstimator as TokenEstimator,
        VerbatimRepresentation as VerbatimRepresentation,
        estimate_text_tokens as estimate_text_tokens,
        estimate_tokens as estimate_tokens,
        render_notes as render_notes,
        tag_as_memory as tag_as_memory,
        trim_history as trim_history,
    )
    from .loop import (
        DEFAULT_AGENT_SYSTEM_PROMPT as DEFAULT_AGENT_SYSTEM_PROMPT,
        AgentLoopConfig as AgentLoopConfig,
        AgentLoopResult as AgentLoopResult,
        FollowUpQueued as FollowUpQueued,
        LoopMessage as LoopMessage,
        LoopStatus as LoopStatus,
        StatefulAgentLoop as StatefulAgentLoop,
        StatefulResult as StatefulResult,
        SyncCallInEventLoopError as SyncCallInEventLoopError,
        TimerRunner as TimerRunner,
        format_timer_message as format_timer_message,
        format_tool_catalog as format_tool_catalog,
    )
    from .agents import (
        SPAWN_AGENT_DEFINITION as SPAWN_AGENT_DEFINITION,
        AgentSpec as AgentSpec,
        Blackboard as Blackboard,
        BlackboardEntry as BlackboardEntry,
        StoreBlackboard as StoreBlackboard,
        register_blackboard_tools as register_blackboard_tools,
        register_spawn_agent as register_spawn_agent,
        render_entries as render_entries,
        run_agent_spec as run_agent_spec,
    )
    # isort: on

__version__ = "0.1.0"

# Library etiquette: never configure logging for the application.
logging.getLogger("power_loop").addHandler(logging.NullHandler())

STABLE_API: tuple[str, ...] = (
    "StatefulAgentLoop",
    "StatefulResult",
    "FollowUpQueued",
    "AgentLoopConfig",
    "AgentLoopResult",
    "SessionStore",
    "SubagentLifecycle",
    "PowerLoopError",
    "SessionPendingError",
    "SessionNotFoundError",
    "LLMTimeout",
    "LLMRetryExhausted",
    "CancellationRequested",
    "LLMRetryPolicy",
    "CancellationToken",
    "AgentHooks",
    "AgentEventBus",
    "HookPoint",
    "HookDirective",
    "ToolRegistry",
    "ToolDefinition",
    "LLMService",
    "LLMRequest",
    "LLMResponse",
    "LLMStreamChunk",
    "LLMProviderConfig",
    "create_llm_service_from_env",
    "create_llm_service_from_config",
)

#: The public names, by the subpackage that defines them: the one list of them. ``__all__``, lazy
#: loading and ``dir()`` derive from it; the ``TYPE_CHECKING`` imports above repeat it for type
#: checkers, and tests/test_public_api.py checks that the two agree.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "errors": (
        "AgentSpecError",
        "ArchiveError",
        "AsyncHookInSyncContext",
        "AsyncToolInSyncContext",
        "BlackboardError",
        "CancellationRequested",
        "ConfigError",
        "CorruptRowError",
        "HistoryInvariantError",
        "HookDirectiveError",
        "InteractionNotFoundError",
        "InvalidDSN",
        "InvalidTablePrefix",
        "LLMError",
        "LLMNonRetryable",
        "LLMRetryExhausted",
        "LLMStreamIncomplete",
        "LLMTimeout",
        "LeaseLostError",
        "LoopClosedError",
        "MCPError",
        "MCPToolError",
        "MissingDependencyError",
        "NoteRejectedError",
        "NotesFullError",
        "PowerLoopError",
        "ProviderNotAvailable",
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
        "ToolNotFound",
        "ToolValidationError",
        "WorkspaceViolation",
    ),
    "llm": (
        "AnthropicChatConfig",
        "CancellationLike",
        "CancellationToken",
        "LLMProviderConfig",
        "LLMRequest",
        "LLMResponse",
        "LLMRetryPolicy",
        "LLMService",
        "LLMStreamChunk",
        "LLMTokenUsage",
        "OpenAICompatibleChatConfig",
        "create_llm_service_from_config",
        "create_llm_service_from_env",
        "with_retry",
    ),
    "store": (
        "DEFAULT_DB_PATH",
        "DEFAULT_TABLE_PREFIX",
        "LeaseToken",
        "MessageRow",
        "MessageState",
        "NewMessage",
        "NoteRow",
        "SchemaPolicy",
        "SessionKind",
        "SessionRow",
        "SessionStateRow",
        "SessionStatsRow",
        "SessionStatus",
        "SessionStore",
        "SubagentLifecycle",
        "TimerRow",
        "open_store",
    ),
    "hooks": (
        "AgentHooks",
        "BaseHookCtx",
        "HookDirective",
        "HookPoint",
        "TimerFireCtx",
    ),
    "events": (
        "AgentEvent",
        "AgentEventBus",
        "AgentEventType",
        "BaseEventPayload",
    ),
    "tools": (
        "CORE_TOOL_NAMES",
        "DEFAULT_SHELL_BACKEND",
        "EXPLORE_TOOL_NAMES",
        "FULL_TOOL_NAMES",
        "TOOL_PRESETS",
        "HumanInputRequired",
        "LocalShellBackend",
        "ShellBackend",
        "ToolDefinition",
        "ToolHandlerResult",
        "ToolOutcome",
        "ToolRegistry",
        "ToolRuntimeContext",
        "build_registry",
        "create_default_tool_registry",
        "get_tool_runtime_context",
        "register_request_user_input",
        "request_user_input",
        "validate_tool_args",
    ),
    "structured": (
        "StructuredOutputSpec",
        "parse_structured",
    ),
    "context": (
        "DEFAULT_NOTES_POLICY",
        "AgenticFold",
        "ContextPipeline",
        "FoldContext",
        "FoldResult",
        "FoldStrategy",
        "LLMSummaryFold",
        "MemoryProvider",
        "MemorySnapshot",
        "NoteOp",
        "NotesMemory",
        "NotesPolicy",
        "ProjectedRepresentation",
        "Representation",
        "TokenEstimator",
        "VerbatimRepresentation",
        "estimate_text_tokens",
        "estimate_tokens",
        "render_notes",
        "tag_as_memory",
        "trim_history",
    ),
    "loop": (
        "DEFAULT_AGENT_SYSTEM_PROMPT",
        "AgentLoopConfig",
        "AgentLoopResult",
        "FollowUpQueued",
        "LoopMessage",
        "LoopStatus",
        "StatefulAgentLoop",
        "StatefulResult",
        "SyncCallInEventLoopError",
        "TimerRunner",
        "format_timer_message",
        "format_tool_catalog",
    ),
    "agents": (
        "SPAWN_AGENT_DEFINITION",
        "AgentSpec",
        "Blackboard",
        "BlackboardEntry",
        "StoreBlackboard",
        "register_blackboard_tools",
        "register_spawn_agent",
        "render_entries",
        "run_agent_spec",
    ),
}

_LAZY: dict[str, str] = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["STABLE_API", "__version__", *_LAZY]

__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
