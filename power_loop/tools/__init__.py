"""Tools: definitions, JSON-Schema argument validation, the registry and single-call execution.

See ``docs/tools.md``. Everything here imports with the standard library only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr
from ..base import (
    SchemaValidator,
    ToolRuntimeContext,
    compile_schema,
    get_tool_runtime_context,
    use_tool_runtime_context,
    validate_tool_args,
)
from ._definition import ToolDefinition, ToolEffect, ToolHandlerResult
from ._execute import DEFAULT_MAX_RESULT_CHARS, ToolOutcome, execute_tool_call
from ._human import (
    REQUEST_USER_INPUT_DEFINITION,
    HumanInputRequired,
    register_request_user_input,
    request_user_input,
)
from ._registry import RegisteredTool, ToolCallable, ToolRegistry, build_registry

if TYPE_CHECKING:
    from ._files import FILE_TOOL_DEFINITIONS, FILE_TOOL_NAMES, Workspace, register_file_tools
    from ._presets import (
        CORE_TOOL_NAMES,
        EXPLORE_TOOL_NAMES,
        FULL_TOOL_NAMES,
        TOOL_PRESETS,
        WORKSPACE_TOOL_NAMES,
        create_default_tool_registry,
    )
    from ._session_tools import SESSION_TOOL_DEFINITIONS, SESSION_TOOL_NAMES, register_session_tools
    from ._shell import (
        BASH_TOOL_DEFINITION,
        DEFAULT_SHELL_BACKEND,
        LocalShellBackend,
        ShellBackend,
        register_bash_tool,
        run_shell_command,
    )

__all__ = [
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
    "ToolEffect",
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
]

# The built-in tools load on first use: a loop that never registers them never pays for them (nor for
# the shell runner's subprocess machinery).
_LAZY = {
    **{
        name: "._files"
        for name in ("FILE_TOOL_DEFINITIONS", "FILE_TOOL_NAMES", "Workspace", "register_file_tools")
    },
    **{
        name: "._shell"
        for name in (
            "BASH_TOOL_DEFINITION",
            "DEFAULT_SHELL_BACKEND",
            "LocalShellBackend",
            "ShellBackend",
            "register_bash_tool",
            "run_shell_command",
        )
    },
    **{
        name: "._session_tools"
        for name in ("SESSION_TOOL_DEFINITIONS", "SESSION_TOOL_NAMES", "register_session_tools")
    },
    **{
        name: "._presets"
        for name in (
            "CORE_TOOL_NAMES",
            "EXPLORE_TOOL_NAMES",
            "FULL_TOOL_NAMES",
            "TOOL_PRESETS",
            "WORKSPACE_TOOL_NAMES",
            "create_default_tool_registry",
        )
    },
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
