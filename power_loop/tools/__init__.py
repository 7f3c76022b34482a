"""Tools: definitions, JSON-Schema argument validation, the registry and single-call execution.

See ``docs/tools.md``. Everything here imports with the standard library only.
"""

from __future__ import annotations

from ._definition import ToolDefinition, ToolHandlerResult
from ._execute import DEFAULT_MAX_RESULT_CHARS, ToolOutcome, execute_tool_call
from ._files import FILE_TOOL_DEFINITIONS, FILE_TOOL_NAMES, Workspace, register_file_tools
from ._human import (
    REQUEST_USER_INPUT_DEFINITION,
    HumanInputRequired,
    register_request_user_input,
    request_user_input,
)
from ._registry import RegisteredTool, ToolCallable, ToolRegistry, build_registry
from ._schema import SchemaValidator, compile_schema, validate_tool_args

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
    "Workspace",
    "build_registry",
    "compile_schema",
    "execute_tool_call",
    "register_file_tools",
    "register_request_user_input",
    "request_user_input",
    "validate_tool_args",
]
