"""Tools: definitions, JSON-Schema argument validation, the registry and single-call execution.

See ``docs/tools.md``. Everything here imports with the standard library only.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._definition import ToolDefinition, ToolHandlerResult
from ._execute import DEFAULT_MAX_RESULT_CHARS, ToolOutcome, execute_tool_call
from ._human import (
    REQUEST_USER_INPUT_DEFINITION,
    HumanInputRequired,
    register_request_user_input,
    request_user_input,
)
from ._registry import RegisteredTool, ToolCallable, ToolRegistry, build_registry
from ._runtime import ToolRuntimeContext, get_tool_runtime_context, use_tool_runtime_context
from ._schema import SchemaValidator, compile_schema, validate_tool_args

if TYPE_CHECKING:
    from ._files import FILE_TOOL_DEFINITIONS, FILE_TOOL_NAMES, Workspace, register_file_tools

__all__ = [
    "DEFAULT_MAX_RESULT_CHARS",
    "FILE_TOOL_DEFINITIONS",
    "FILE_TOOL_NAMES",
    "REQUEST_USER_INPUT_DEFINITION",
    "HumanInputRequired",
    "RegisteredTool",
    "SchemaValidator",
    "ToolCallable",
    "ToolDefinition",
    "ToolHandlerResult",
    "ToolOutcome",
    "ToolRegistry",
    "ToolRuntimeContext",
    "Workspace",
    "build_registry",
    "compile_schema",
    "execute_tool_call",
    "get_tool_runtime_context",
    "register_file_tools",
    "register_request_user_input",
    "request_user_input",
    "use_tool_runtime_context",
    "validate_tool_args",
]

# The workspace file tools load on first use: a loop that never registers them never pays for them.
_LAZY = {name: "._files" for name in ("FILE_TOOL_DEFINITIONS", "FILE_TOOL_NAMES", "Workspace", "register_file_tools")}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'power_loop.tools' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
