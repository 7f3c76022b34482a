"""Structured output (C13): ask for a JSON object matching a schema, get it parsed and validated.

The spec and the text parser live in :mod:`power_loop.base` (the provider adapters need them too);
this package adds :func:`parse_structured` for ``LLMResponse`` objects.
"""

from __future__ import annotations

from ..base import (
    StructuredOutputSpec,
    extract_json_object,
    parse_structured_text,
    schema_from_response_format,
    structured_result,
)
from ..errors import StructuredOutputError
from ._parse import parse_structured

__all__ = [
    "StructuredOutputError",
    "StructuredOutputSpec",
    "extract_json_object",
    "parse_structured",
    "parse_structured_text",
    "schema_from_response_format",
    "structured_result",
]
