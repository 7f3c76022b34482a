from __future__ import annotations

import subprocess
import sys

import power_loop.tools as tools

EXPECTED = {
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
    # built-in tools (loaded lazily)
    "BASH_TOOL_DEFINITION",
    "CORE_TOOL_NAMES",
    "DEFAULT_SHELL_BACKEND",
    "EXPLORE_TOOL_NAMES",
    "FULL_TOOL_NAMES",
    "LocalShellBackend",
    "SESSION_TOOL_DEFINITIONS",
    "SESSION_TOOL_NAMES",
    "ShellBackend",
    "TOOL_PRESETS",
    "WORKSPACE_TOOL_NAMES",
    "create_default_tool_registry",
    "register_bash_tool",
    "register_session_tools",
    "run_shell_command",
}


def test_public_names_pinned() -> None:
    assert set(tools.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(tools, name) is not None


def test_imports_with_the_standard_library_only() -> None:
    code = (
        "import sys; import power_loop.tools; "
        "bad = [m for m in ('jsonschema', 'hypothesis', 'openai', 'anthropic', 'pytest') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
