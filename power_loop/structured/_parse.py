"""``parse_structured``: the validated JSON object of a model answer (an ``LLMResponse`` or its text)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import StructuredOutputSpec, parse_structured_text
from ..llm import LLMResponse

__all__ = ["parse_structured"]


def parse_structured(
    output: LLMResponse | str, *, schema: StructuredOutputSpec | Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The validated JSON object of a structured answer (an :class:`LLMResponse` or its text).

    With ``schema`` (a JSON Schema dict, a ``response_format`` or a :class:`StructuredOutputSpec`)
    the object is validated in full: a missing top-level required field raises reason
    ``missing_required:<field>``, any other violation ``schema_mismatch`` with the first problems
    (JSON paths) in ``detail``. Raises :class:`~power_loop.errors.StructuredOutputError`.
    """
    text = output if isinstance(output, str) else output.raw_text or output.content_text
    return parse_structured_text(text, schema=schema)
