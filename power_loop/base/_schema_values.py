"""JSON values as the schema validator sees them: type predicates, equality keys and problem text.

Shared by the keyword compilers of ``_schema`` and ``_schema_containers``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "TYPE_PREDICATES",
    "Check",
    "accept",
    "fmt_num",
    "freeze",
    "is_integer",
    "is_multiple",
    "is_number",
    "json_type_name",
    "key_suffix",
    "plural",
    "reject",
    "snippet",
    "summarise",
]

# Internal compiled form: check(instance, json_path, problems) appends problems in place.
Check = Callable[[Any, str, list[str]], None]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_SUB_PROBLEMS = 2
_MAX_SNIPPET = 120


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_integer(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and v.is_integer())


TYPE_PREDICATES: dict[str, Callable[[Any], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": is_integer,
    "number": is_number,
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def json_type_name(value: Any) -> str:
    """The JSON type name of a Python value (``integer`` for 3, ``number`` for 2.5, ``array`` ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return f"non-JSON value ({type(value).__name__})"


def freeze(value: Any) -> Any:
    """A hashable key with JSON equality: 1 == 1.0, but true != 1 and "1" != 1."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z",)
    if isinstance(value, list):
        return ("l", tuple(freeze(v) for v in value))
    if isinstance(value, dict):
        return ("d", frozenset((k, freeze(v)) for k, v in value.items()))
    return ("o", id(value))


def snippet(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > _MAX_SNIPPET:
        text = text[: _MAX_SNIPPET - 3] + "..."
    return text


def key_suffix(key: str) -> str:
    return f".{key}" if _IDENT.match(key) else f"[{json.dumps(key, ensure_ascii=False)}]"


def accept(instance: Any, path: str, problems: list[str]) -> None:
    return None


def reject(instance: Any, path: str, problems: list[str]) -> None:
    problems.append(f"{path}: no value is allowed here")


def fmt_num(n: float) -> str:
    return str(int(n)) if isinstance(n, float) and n.is_integer() and abs(n) < 1e16 else str(n)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def is_multiple(value: float, divisor: float) -> bool:
    if isinstance(divisor, float):
        try:
            quotient = value / divisor
            return int(quotient) == quotient
        except OverflowError:
            # Huge value / tiny divisor overflows floats; exact rational arithmetic cannot.
            from fractions import Fraction  # rare: not worth loading with every validator

            return Fraction(value) % Fraction(divisor) == 0
    return value % divisor == 0


def summarise(branch_problems: list[list[str]]) -> str:
    parts = []
    for i, found in enumerate(branch_problems, 1):
        shown = "; ".join(found[:_MAX_SUB_PROBLEMS])
        if len(found) > _MAX_SUB_PROBLEMS:
            shown += f" (+{len(found) - _MAX_SUB_PROBLEMS} more)"
        parts.append(f"(option {i}) {shown}")
    return " | ".join(parts)
