"""The shared base: what several layers need and none owns (SPEC §4, layer 1).

* JSON-Schema validation of tool arguments (:func:`compile_schema`, :func:`validate_tool_args`);
* the structured-output spec and parser the provider adapters and the loop share
  (:class:`StructuredOutputSpec`, :func:`schema_from_response_format`, :func:`parse_structured_text`);
* the tool runtime context (:class:`ToolRuntimeContext`), with what tools use of the running loop as
  a small Protocol (:class:`ToolLoop`).

Depends on :mod:`power_loop.errors` and the standard library only. Most names are re-exported by the
package that presents them to users (``power_loop.tools``, ``power_loop.structured``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_dir, lazy_getattr

if TYPE_CHECKING:
    from ._redact import DEFAULT_REDACT_KEYS, REDACTED, redact_secrets, resolve_redact, sanitize
    from ._runtime import (
        ScheduledTimer,
        ToolEventEmitter,
        ToolLoop,
        ToolRuntimeContext,
        get_tool_runtime_context,
        idempotency_key,
        use_tool_runtime_context,
    )
    from ._schema import (
        SchemaValidator,
        compile_schema,
        json_type_name,
        validate_tool_args,
    )
    from ._steps import UncancellableFuture, run_to_completion
    from ._structured import (
        StructuredOutputSpec,
        extract_json_object,
        parse_structured_text,
        schema_from_response_format,
        structured_result,
    )

__all__ = [
    "ScheduledTimer",
    "SchemaValidator",
    "StructuredOutputSpec",
    "ToolEventEmitter",
    "ToolLoop",
    "ToolRuntimeContext",
    "compile_schema",
    "extract_json_object",
    "get_tool_runtime_context",
    "json_type_name",
    "parse_structured_text",
    "schema_from_response_format",
    "structured_result",
    "use_tool_runtime_context",
    "validate_tool_args",
    "DEFAULT_REDACT_KEYS",
    "REDACTED",
    "redact_secrets",
    "resolve_redact",
    "sanitize",
    "idempotency_key",
    "UncancellableFuture",
    "run_to_completion",
]

# Every name loads with its module on first use: the tool runtime context does not bring the
# JSON-Schema validator or the structured-output parser with it.
_MODULES: dict[str, tuple[str, ...]] = {
    "._runtime": (
        "ScheduledTimer",
        "ToolEventEmitter",
        "ToolLoop",
        "ToolRuntimeContext",
        "get_tool_runtime_context",
        "use_tool_runtime_context",
        "idempotency_key",
    ),
    "._schema": (
        "SchemaValidator",
        "compile_schema",
        "json_type_name",
        "validate_tool_args",
    ),
    "._structured": (
        "StructuredOutputSpec",
        "extract_json_object",
        "parse_structured_text",
        "schema_from_response_format",
        "structured_result",
    ),
    "._steps": ("UncancellableFuture", "run_to_completion"),
    "._redact": (
        "DEFAULT_REDACT_KEYS",
        "REDACTED",
        "redact_secrets",
        "resolve_redact",
        "sanitize",
    ),
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}
__getattr__ = lazy_getattr(__name__, _LAZY, globals())
__dir__ = lazy_dir(_LAZY, globals())
