"""The shared base: what several layers need and none owns (SPEC §4, layer 1).

* JSON-Schema validation of tool arguments (:func:`compile_schema`, :func:`validate_tool_args`);
* the structured-output spec and parser the provider adapters and the loop share
  (:class:`StructuredOutputSpec`, :func:`schema_from_response_format`, :func:`parse_structured_text`);
* the one secret-redaction rule (:func:`redact_secrets`) every stored, emitted, logged, exported or
  printed error text goes through;
* the tool runtime context (:class:`ToolRuntimeContext`), with what tools use of the running loop as
  a small Protocol (:class:`ToolLoop`).

Depends on :mod:`power_loop.errors` and the standard library only. Most names are re-exported by the
package that presents them to users (``power_loop.tools``, ``power_loop.structured``).
"""

from __future__ import annotations

from ._redact import DEFAULT_REDACT_KEYS, REDACTED, redact_secrets, resolve_redact
from ._runtime import (
    ScheduledTimer,
    ToolEventEmitter,
    ToolLoop,
    ToolRuntimeContext,
    get_tool_runtime_context,
    use_tool_runtime_context,
)
from ._schema import SchemaValidator, compile_schema, json_type_name, validate_tool_args
from ._structured import (
    StructuredOutputSpec,
    extract_json_object,
    parse_structured_text,
    schema_from_response_format,
    structured_result,
)

__all__ = [
    "DEFAULT_REDACT_KEYS",
    "REDACTED",
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
    "redact_secrets",
    "resolve_redact",
    "schema_from_response_format",
    "structured_result",
    "use_tool_runtime_context",
    "validate_tool_args",
]
