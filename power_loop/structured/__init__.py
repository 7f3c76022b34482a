"""Structured output (C13): ask for a JSON object matching a schema, get it parsed and validated."""

from __future__ import annotations

from ..errors import StructuredOutputError
from ._spec import (
    StructuredOutputSpec,
    extract_json_object,
    parse_structured,
    schema_from_response_format,
    structured_result,
)

__all__ = [
    "StructuredOutputError",
    "StructuredOutputSpec",
    "extract_json_object",
    "parse_structured",
    "schema_from_response_format",
    "structured_result",
]
