"""Tools: definitions, JSON-Schema argument validation, the registry and single-call execution.

See ``docs/tools.md``. Everything here imports with the standard library only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_dir, lazy_getattr

if TYPE_CHECKING:
    from ..base import (
        SchemaValidator,
        ToolRuntimeContext,
        compile_schema,
        get_tool_runtime_context,
        use_tool_runtime_context,
        validate_tool_args,
    )
    from ._background import (
        BACKGROUND_RUN_DEFINITION,
        BACKGROUND_TOOL_NAMES,
        CHECK_BACKGROUND_DEFINITION,
        DEFAULT_BACKGROUND_TIMEOUT_S,
        BackgroundSupervisor,
        collect_background_updates,
        register_background_tools,
        render_background_updates,
        stop_background_task,
    )
    from ._definition import (
        ToolDefinition,
        ToolEffect,
        ToolHandlerResult,
    )
    from ._execute import (
        DEFAULT_MAX_RESULT_CHARS,
        ToolOutcome,
        execute_tool_call,
    )
    from ._files import (
        FILE_TOOL_DEFINITIONS,
        FILE_TOOL_NAMES,
        Workspace,
        register_file_tools,
    )
    from ._human import (
        REQUEST_USER_INPUT_DEFINITION,
        HumanInputRequired,
        register_request_user_input,
        request_user_input,
    )
    from ._pass_turn import PASS_TURN_TOOL, TurnPassed, register_pass_turn, request_pass
    from ._presets import (
        CORE_TOOL_NAMES,
        EXPLORE_TOOL_NAMES,
        FULL_TOOL_NAMES,
        TOOL_PRESETS,
        WORKSPACE_TOOL_NAMES,
        create_default_tool_registry,
    )
    from ._protocols import ToolArgsValidator, ToolHandler
    from ._registry import (
        RegisteredTool,
        ToolCallable,
        ToolRegistry,
        build_registry,
    )
    from ._runtime_env import (
        ENV_HOME,
        ENV_SKILLS_DIR,
        ENV_WORKSPACE,
        RuntimeEnv,
        get_runtime_env,
        runtime_env_context,
        safe_path,
    )
    from ._session_tools import (
        SESSION_TOOL_DEFINITIONS,
        SESSION_TOOL_NAMES,
        TODO_STATE_KEY,
        register_session_tools,
        render_todo,
    )
    from ._shell import (
        BASH_TOOL_DEFINITION,
        DEFAULT_SHELL_BACKEND,
        LocalShellBackend,
        ShellBackend,
        register_bash_tool,
        run_shell_command,
    )
    from ._skills import (
        LOAD_SKILL_DEFINITION,
        SKILLS_DIR_ENV,
        Skill,
        SkillLoader,
        get_default_loader,
        parse_front_matter,
        register_skill_tools,
    )
    from ._view_image import VIEW_IMAGE_DEFINITION, register_view_image_tool

__all__ = [
    "PASS_TURN_TOOL",
    "TurnPassed",
    "register_pass_turn",
    "request_pass",
    "BASH_TOOL_DEFINITION",
    "CORE_TOOL_NAMES",
    "DEFAULT_MAX_RESULT_CHARS",
    "DEFAULT_SHELL_BACKEND",
    "EXPLORE_TOOL_NAMES",
    "FILE_TOOL_DEFINITIONS",
    "FILE_TOOL_NAMES",
    "FULL_TOOL_NAMES",
    "REQUEST_USER_INPUT_DEFINITION",
    "SESSION_TOOL_DEFINITIONS",
    "SESSION_TOOL_NAMES",
    "TOOL_PRESETS",
    "WORKSPACE_TOOL_NAMES",
    "HumanInputRequired",
    "LocalShellBackend",
    "RegisteredTool",
    "SchemaValidator",
    "ShellBackend",
    "ToolCallable",
    "ToolDefinition",
    "ToolHandlerResult",
    "ToolOutcome",
    "ToolRegistry",
    "ToolRuntimeContext",
    "Workspace",
    "build_registry",
    "compile_schema",
    "create_default_tool_registry",
    "execute_tool_call",
    "get_tool_runtime_context",
    "register_bash_tool",
    "register_file_tools",
    "register_request_user_input",
    "register_session_tools",
    "request_user_input",
    "run_shell_command",
    "use_tool_runtime_context",
    "validate_tool_args",
    "ENV_HOME",
    "ENV_SKILLS_DIR",
    "ENV_WORKSPACE",
    "RuntimeEnv",
    "get_runtime_env",
    "runtime_env_context",
    "safe_path",
    "TODO_STATE_KEY",
    "render_todo",
    "LOAD_SKILL_DEFINITION",
    "SKILLS_DIR_ENV",
    "Skill",
    "SkillLoader",
    "get_default_loader",
    "parse_front_matter",
    "register_skill_tools",
    "ToolArgsValidator",
    "ToolHandler",
    "BACKGROUND_RUN_DEFINITION",
    "BACKGROUND_TOOL_NAMES",
    "CHECK_BACKGROUND_DEFINITION",
    "DEFAULT_BACKGROUND_TIMEOUT_S",
    "collect_background_updates",
    "register_background_tools",
    "render_background_updates",
    "stop_background_task",
    "BackgroundSupervisor",
    "VIEW_IMAGE_DEFINITION",
    "register_view_image_tool",
    "ToolEffect",
]

# Every name loads with its module on first use: a loop that never registers the built-in tools
# never pays for them (nor for the shell runner's subprocess machinery).
_MODULES: dict[str, tuple[str, ...]] = {
    "._pass_turn": ("PASS_TURN_TOOL", "TurnPassed", "register_pass_turn", "request_pass"),
    "..base": (
        "SchemaValidator",
        "ToolRuntimeContext",
        "compile_schema",
        "get_tool_runtime_context",
        "use_tool_runtime_context",
        "validate_tool_args",
    ),
    "._definition": (
        "ToolDefinition",
        "ToolHandlerResult",
        "ToolEffect",
    ),
    "._execute": (
        "DEFAULT_MAX_RESULT_CHARS",
        "ToolOutcome",
        "execute_tool_call",
    ),
    "._files": (
        "FILE_TOOL_DEFINITIONS",
        "FILE_TOOL_NAMES",
        "Workspace",
        "register_file_tools",
    ),
    "._human": (
        "REQUEST_USER_INPUT_DEFINITION",
        "HumanInputRequired",
        "register_request_user_input",
        "request_user_input",
    ),
    "._presets": (
        "CORE_TOOL_NAMES",
        "EXPLORE_TOOL_NAMES",
        "FULL_TOOL_NAMES",
        "TOOL_PRESETS",
        "WORKSPACE_TOOL_NAMES",
        "create_default_tool_registry",
    ),
    "._registry": (
        "RegisteredTool",
        "ToolCallable",
        "ToolRegistry",
        "build_registry",
    ),
    "._session_tools": (
        "SESSION_TOOL_DEFINITIONS",
        "SESSION_TOOL_NAMES",
        "TODO_STATE_KEY",
        "register_session_tools",
        "render_todo",
    ),
    "._shell": (
        "BASH_TOOL_DEFINITION",
        "DEFAULT_SHELL_BACKEND",
        "LocalShellBackend",
        "ShellBackend",
        "register_bash_tool",
        "run_shell_command",
    ),
    "._runtime_env": (
        "ENV_HOME",
        "ENV_SKILLS_DIR",
        "ENV_WORKSPACE",
        "RuntimeEnv",
        "get_runtime_env",
        "runtime_env_context",
        "safe_path",
    ),
    "._skills": (
        "LOAD_SKILL_DEFINITION",
        "SKILLS_DIR_ENV",
        "Skill",
        "SkillLoader",
        "get_default_loader",
        "parse_front_matter",
        "register_skill_tools",
    ),
    "._protocols": (
        "ToolArgsValidator",
        "ToolHandler",
    ),
    "._background": (
        "BACKGROUND_RUN_DEFINITION",
        "BACKGROUND_TOOL_NAMES",
        "CHECK_BACKGROUND_DEFINITION",
        "DEFAULT_BACKGROUND_TIMEOUT_S",
        "BackgroundSupervisor",
        "collect_background_updates",
        "register_background_tools",
        "render_background_updates",
        "stop_background_task",
    ),
    "._view_image": (
        "VIEW_IMAGE_DEFINITION",
        "register_view_image_tool",
    ),
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}
__getattr__ = lazy_getattr(__name__, _LAZY, globals())
__dir__ = lazy_dir(_LAZY, globals())
