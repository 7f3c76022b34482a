"""Structured output: a JSON Schema the answer must follow, the provider request shape, and the parser.

``StructuredOutputSpec`` describes the wanted object; ``to_openai_response_format()`` is the
``response_format`` sent to OpenAI-compatible servers (the Anthropic adapter turns the same
``response_format`` into a forced tool). ``parse_structured_text`` turns an answer's text into a
validated dict or raises :class:`~power_loop.errors.StructuredOutputError`.

This lives in the shared base because both the provider adapters (``llm``) and the loop's
``structured`` package need it; ``power_loop.structured.parse_structured`` adds ``LLMResponse`` input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, StructuredOutputError
from ._schema import compile_schema

__all__ = [
    "StructuredOutputSpec",
    "extract_json_object",
    "parse_structured_text",
    "schema_from_response_format",
    "structured_result",
]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?\s*```\s*$", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_MAX_PROBLEMS = 5


@dataclass(frozen=True, slots=True)
class StructuredOutputSpec:
    """The JSON object a model must answer with.

    ``name`` (``[A-Za-z0-9_-]``, at most 64 characters) names the schema for the provider;
    ``strict`` asks OpenAI for strict schema adherence; ``description`` and ``examples`` help the
    model: both are sent as the response format's description (each example as one line of JSON),
    which the Anthropic adapter uses as its answer tool's description. The schema is compiled when
    the spec is built, so a malformed schema fails at once with :class:`~power_loop.errors.ConfigError`.
    """

    name: str
    schema: dict[str, Any]
    strict: bool = True
    description: str | None = None
    examples: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(
                f"StructuredOutputSpec.name must match [A-Za-z0-9_-]{{1,64}}, got {self.name!r}"
            )
        if not isinstance(self.schema, Mapping):
            raise ConfigError("StructuredOutputSpec.schema must be a JSON Schema object (a dict)")
        compile_schema(self.schema)

    def to_openai_response_format(self) -> dict[str, Any]:
        """``{"type": "json_schema", "json_schema": {"name", "schema"[, "strict"][, "description"]}}``."""
        body: dict[str, Any] = {"name": self.name, "schema": dict(self.schema)}
        if self.strict:
            body["strict"] = True
        description = self.full_description()
        if description:
            body["description"] = description
        return {"type": "json_schema", "json_schema": body}

    def full_description(self) -> str | None:
        """``description`` followed by the ``examples`` (one JSON value per line), or ``None``."""
        if not self.examples:
            return self.description
        lines = "\n".join(
            json.dumps(e, ensure_ascii=False, sort_keys=True, default=str) for e in self.examples
        )
        head = f"{self.description}\n\n" if self.description else ""
        return f"{head}Examples of valid answers, one per line:\n{lines}"

    @classmethod
    def from_any(
        cls, value: StructuredOutputSpec | Mapping[str, Any], *, name: str = "output"
    ) -> StructuredOutputSpec:
        """A spec from a spec, an OpenAI ``json_schema`` response format, or a bare JSON Schema."""
        if isinstance(value, StructuredOutputSpec):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"an output schema must be a dict or StructuredOutputSpec, not {type(value).__name__}"
            )
        if value.get("type") == "json_schema" and isinstance(value.get("json_schema"), Mapping):
            body = value["json_schema"]
            return cls(
                name=str(body.get("name") or name),
                schema=dict(body.get("schema") or {}),
                strict=bool(body.get("strict", False)),
                description=body.get("description"),
            )
        return cls(name=name, schema=dict(value))


def schema_from_response_format(response_format: Mapping[str, Any] | None) -> StructuredOutputSpec | None:
    """The spec behind an OpenAI ``response_format``: ``json_schema`` → its schema, ``json_object``
    → any object, anything else (``text``, ``None``) → ``None``."""
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind == "json_schema":
        return StructuredOutputSpec.from_any(response_format)
    if kind == "json_object":
        return StructuredOutputSpec(name="json_object", schema={"type": "object"}, strict=False)
    return None


def _first_balanced_object(text: str) -> str | None:
    """The first ``{...}`` span with balanced braces, ignoring braces inside JSON strings."""
    start = text.find("{")
    while start != -1:
        depth, in_string, escaped = 0, False, False
        for pos in range(start, len(text)):
            ch = text[pos]
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[start : pos + 1]
        start = text.find("{", start + 1)
    return None


def _loads(text: str) -> tuple[Any, str | None]:
    try:
        return json.loads(text, strict=False), None
    except ValueError as exc:
        return None, str(exc)


def extract_json_object(text: str) -> dict[str, Any]:
    """Parse the JSON object in a model answer, forgiving the usual wrapping.

    Tries, in order: the text without a surrounding markdown code fence; the first balanced
    ``{...}`` span (prose around the object); that span with trailing commas removed. Raises
    :class:`StructuredOutputError` with reason ``no_json``, ``invalid_json`` or ``not_object``.
    """
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    if not body:
        raise StructuredOutputError(reason="no_json", raw_text=text, detail="the answer is empty")
    value, error = _loads(body)
    if error is not None:
        span = _first_balanced_object(body)
        if span is None:
            if body.lstrip().startswith("["):
                raise StructuredOutputError(reason="invalid_json", raw_text=text, detail=error)
            reason = "invalid_json" if "{" in body else "no_json"
            raise StructuredOutputError(reason=reason, raw_text=text, detail=error)
        value, error = _loads(span)
        if error is not None:
            value, error = _loads(_TRAILING_COMMA.sub(r"\1", span))
        if error is not None:
            raise StructuredOutputError(reason="invalid_json", raw_text=text, detail=error)
    if not isinstance(value, dict):
        raise StructuredOutputError(
            reason="not_object", raw_text=text, detail=f"expected a JSON object, got {type(value).__name__}"
        )
    return value


def parse_structured_text(
    text: str, *, schema: StructuredOutputSpec | Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The validated JSON object of a structured answer's text.

    With ``schema`` (a JSON Schema dict, a ``response_format`` or a :class:`StructuredOutputSpec`)
    the object is validated in full: a missing top-level required field raises reason
    ``missing_required:<field>``, any other violation ``schema_mismatch`` with the first problems
    (JSON paths) in ``detail``.
    """
    value = extract_json_object(text)
    if schema is None:
        return value
    spec = StructuredOutputSpec.from_any(schema)
    for required in spec.schema.get("required") or ():
        if isinstance(required, str) and required not in value:
            raise StructuredOutputError(
                reason=f"missing_required:{required}",
                raw_text=text,
                detail=f"the required field {required!r} is missing",
            )
    problems = compile_schema(spec.schema)(value)
    if problems:
        raise StructuredOutputError(
            reason="schema_mismatch", raw_text=text, detail="; ".join(problems[:_MAX_PROBLEMS])
        )
    return value


def structured_result(text: str, spec: StructuredOutputSpec) -> tuple[dict[str, Any], str | None]:
    """``(object, None)`` or ``({}, "reason: detail")``: the non-raising form adapters use to fill
    ``LLMResponse.json_data`` / ``parse_error``."""
    try:
        return parse_structured_text(text, schema=spec), None
    except StructuredOutputError as exc:
        return {}, f"{exc.reason}: {exc.detail}" if exc.detail else exc.reason
