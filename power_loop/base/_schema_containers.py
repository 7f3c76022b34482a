"""The container keywords of the schema validator: arrays (``items``, ``prefixItems``, ``minItems``,
``maxItems``, ``uniqueItems``) and objects (``properties``, ``required``, ``patternProperties``,
``additionalProperties``, ``minProperties``, ``maxProperties``).

Each ``compile_*`` reads its keywords once through the compiler (which owns error reporting and
sub-schema compilation) and returns the check closures, none when the schema uses no such keyword.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._schema_values import Check, freeze, key_suffix, plural

if TYPE_CHECKING:
    from ._schema import SchemaCompiler

__all__ = ["compile_array", "compile_object"]


# ------------------------------------------------------------------------------------------ arrays


def _item_checks(
    c: SchemaCompiler, schema: Mapping[str, Any], where: str
) -> tuple[list[Check], Check | None, bool]:
    """``(prefix checks, check of the further items or None, closed)``; closed: ``items: false``
    after the prefix, so no further items are allowed."""
    prefix: list[Check] = []
    raw_items = schema.get("items")
    if "prefixItems" in schema:
        raw_prefix = schema["prefixItems"]
        if not isinstance(raw_prefix, list):
            raise c.fail(where, "'prefixItems' must be a list of schemas")
        prefix = [c.compile(s, f"{where}/prefixItems/{i}") for i, s in enumerate(raw_prefix)]
    if isinstance(raw_items, list):  # pre-2020 tuple validation
        prefix = [c.compile(s, f"{where}/items/{i}") for i, s in enumerate(raw_items)]
        raw_items = schema.get("additionalItems")
        tail_key = "additionalItems"
    else:
        tail_key = "items"
    if raw_items is False:
        return prefix, None, True
    items = None if raw_items is None else c.compile(raw_items, f"{where}/{tail_key}")
    return prefix, items, False


def _first_duplicate(values: list[Any]) -> tuple[int, int] | None:
    seen: dict[Any, int] = {}
    for i, value in enumerate(values):
        key = freeze(value)
        if key in seen:
            return seen[key], i
        seen[key] = i
    return None


def compile_array(c: SchemaCompiler, schema: Mapping[str, Any], where: str) -> list[Check]:
    min_items = c.count(schema, "minItems", where)
    max_items = c.count(schema, "maxItems", where)
    unique = schema.get("uniqueItems", False)
    if not isinstance(unique, bool):
        raise c.fail(where, "'uniqueItems' must be a boolean")
    prefix, items, closed = _item_checks(c, schema, where)
    if min_items is None and max_items is None and not unique and not prefix and items is None and not closed:
        return []
    n_prefix = len(prefix)

    def check_array(instance: Any, path: str, problems: list[str]) -> None:
        if not isinstance(instance, list):
            return
        n = len(instance)
        if min_items is not None and n < min_items:
            problems.append(f"{path}: expected at least {plural(min_items, 'item')}, got {n}")
        if max_items is not None and n > max_items:
            problems.append(f"{path}: expected at most {plural(max_items, 'item')}, got {n}")
        if closed and n > n_prefix:
            problems.append(f"{path}: expected at most {plural(n_prefix, 'item')}, got {n}")
        if unique and n > 1:
            pair = _first_duplicate(instance)
            if pair is not None:
                problems.append(f"{path}: items must be unique, but [{pair[0]}] and [{pair[1]}] are equal")
        for i in range(min(n, n_prefix)):
            prefix[i](instance[i], f"{path}[{i}]", problems)
        if items is not None:
            for i in range(n_prefix, n):
                items(instance[i], f"{path}[{i}]", problems)

    return [check_array]


# ----------------------------------------------------------------------------------------- objects


class _ObjectRules:
    """The object keywords of one schema, compiled (a plain class: the validator loads with tools)."""

    __slots__ = ("additional", "forbid_extra", "max_props", "min_props", "patterns", "props", "required")

    def __init__(self, c: SchemaCompiler, schema: Mapping[str, Any], where: str) -> None:
        # Read in the order the keywords are reported: the first malformed one raises.
        raw_props = schema.get("properties", {})
        if not isinstance(raw_props, dict):
            raise c.fail(where, "'properties' must be an object mapping names to schemas")
        #: name -> (check, JSON-path suffix)
        self.props: dict[str, tuple[Check, str]] = {
            key: (c.compile(sub, f"{where}/properties/{key}"), key_suffix(key))
            for key, sub in raw_props.items()
        }
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise c.fail(
                where, "'required' must be a list of property names (on the object schema, not on a property)"
            )
        self.required = tuple(dict.fromkeys(required))
        raw_patterns = schema.get("patternProperties", {})
        if not isinstance(raw_patterns, dict):
            raise c.fail(where, "'patternProperties' must be an object mapping regexes to schemas")
        self.patterns: list[tuple[re.Pattern[str], Check]] = [
            (c.regex(rx, where, "patternProperties"), c.compile(sub, f"{where}/patternProperties/{rx}"))
            for rx, sub in raw_patterns.items()
        ]
        raw_additional = schema.get("additionalProperties", True)
        self.forbid_extra = raw_additional is False
        self.additional: Check | None = (
            None
            if raw_additional in (True, False)
            else c.compile(raw_additional, f"{where}/additionalProperties")
        )
        self.min_props = c.count(schema, "minProperties", where)
        self.max_props = c.count(schema, "maxProperties", where)

    @property
    def empty(self) -> bool:
        return not (
            self.props
            or self.required
            or self.patterns
            or self.forbid_extra
            or self.additional is not None
            or self.min_props is not None
            or self.max_props is not None
        )


def _check_every_key(
    rules: _ObjectRules, instance: dict[str, Any], path: str, problems: list[str]
) -> list[str]:
    """Check each key against properties, patterns and additionalProperties; returns the keys that
    ``additionalProperties: false`` forbids (JSON-quoted)."""
    unexpected: list[str] = []
    for key, value in instance.items():
        matched = False
        entry = rules.props.get(key)
        if entry is not None:
            matched = True
            entry[0](value, path + entry[1], problems)
        for rx, check in rules.patterns:
            if rx.search(key) is not None:
                matched = True
                check(value, path + key_suffix(key), problems)
        if not matched:
            if rules.forbid_extra:
                unexpected.append(json.dumps(key, ensure_ascii=False))
            elif rules.additional is not None:
                rules.additional(value, path + key_suffix(key), problems)
    return unexpected


def compile_object(c: SchemaCompiler, schema: Mapping[str, Any], where: str) -> list[Check]:
    rules = _ObjectRules(c, schema, where)
    if rules.empty:
        return []
    min_props, max_props = rules.min_props, rules.max_props
    prop_items = tuple((k, check, suffix) for k, (check, suffix) in rules.props.items())
    walk_all_keys = bool(rules.patterns) or rules.forbid_extra or rules.additional is not None
    allowed_text = ", ".join(json.dumps(k, ensure_ascii=False) for k in rules.props) or "none"

    def check_object(instance: Any, path: str, problems: list[str]) -> None:
        if not isinstance(instance, dict):
            return
        for name in rules.required:
            if name not in instance:
                problems.append(f"{path}: missing required property {json.dumps(name, ensure_ascii=False)}")
        n = len(instance)
        if min_props is not None and n < min_props:
            problems.append(f"{path}: expected at least {plural(min_props, 'property')}, got {n}")
        if max_props is not None and n > max_props:
            problems.append(f"{path}: expected at most {plural(max_props, 'property')}, got {n}")
        if not walk_all_keys:
            for key, check, suffix in prop_items:
                if key in instance:
                    check(instance[key], path + suffix, problems)
            return
        unexpected = _check_every_key(rules, instance, path, problems)
        if unexpected:
            noun = "property" if len(unexpected) == 1 else "properties"
            problems.append(f"{path}: unexpected {noun} {', '.join(unexpected)} (allowed: {allowed_text})")

    return [check_object]
