"""A small, fast JSON-Schema validator (stdlib only) for tool arguments.

Every tool call the model makes is validated against the tool's schema before its handler runs, so
validation is on the hot path: a schema is compiled once (at registration) into a tree of closures,
and validating an instance is then a walk of that tree with no keyword dispatch.

Supported (Draft 2020-12 semantics): ``type`` (also as a list), ``properties``, ``required``,
``additionalProperties``, ``patternProperties``, ``minProperties``/``maxProperties``, ``enum``,
``const``, ``items``, ``prefixItems``, ``minItems``/``maxItems``, ``uniqueItems``, ``minimum``,
``maximum``, ``exclusiveMinimum``/``exclusiveMaximum``, ``multipleOf``, ``minLength``/``maxLength``
(code points), ``pattern`` (``re.search``), ``anyOf``/``oneOf``/``allOf``/``not``, local ``$ref``
(``#``, ``#/$defs/...``, ``#/definitions/...``) including recursive references, and ``true``/``false``
as schemas. ``format`` is an annotation only. Unknown keywords are ignored. Two older spellings are
accepted for compatibility: ``items`` as a list (tuple validation, with ``additionalItems``) and the
draft-4 boolean ``exclusiveMinimum``/``exclusiveMaximum`` modifiers.

Problems come back as readable strings prefixed with a JSON path (``$.items[2].name: expected
string, got integer``) because they are sent to the model, which must be able to fix its call.
A malformed schema raises :class:`~power_loop.errors.ConfigError` when compiled, never at call time.

This module holds the compiler, the scalar and combinator keywords and the entry points; the array and
object keywords are in ``_schema_containers``, JSON value helpers and problem text in ``_schema_values``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, unquote

from ..errors import ConfigError
from ._schema_containers import compile_array, compile_object
from ._schema_values import (
    TYPE_PREDICATES,
    Check,
    accept,
    fmt_num,
    freeze,
    is_integer,
    is_multiple,
    is_number,
    json_type_name,
    plural,
    reject,
    snippet,
    summarise,
)

__all__ = ["SchemaValidator", "compile_schema", "json_type_name", "validate_tool_args"]

#: A compiled validator: ``validator(instance) -> list of problems`` (empty when valid).
SchemaValidator = Callable[[Any], list[str]]


class SchemaCompiler:
    """Turns one root schema into a check closure; ``$ref`` targets are compiled once and shared."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.refs: dict[str, list[Check]] = {}

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def fail(where: str, message: str) -> ConfigError:
        return ConfigError(f"invalid JSON Schema at {where}: {message}")

    def count(self, schema: Mapping[str, Any], key: str, where: str) -> int | None:
        if key not in schema:
            return None
        value = schema[key]
        if not is_integer(value) or value < 0:
            raise self.fail(where, f"{key!r} must be a non-negative integer, got {snippet(value)}")
        return int(value)

    def number(self, schema: Mapping[str, Any], key: str, where: str) -> float | None:
        if key not in schema:
            return None
        value = schema[key]
        if not is_number(value) or (isinstance(value, float) and not math.isfinite(value)):
            raise self.fail(where, f"{key!r} must be a finite number, got {snippet(value)}")
        return value  # type: ignore[no-any-return]

    def regex(self, pattern: Any, where: str, key: str) -> re.Pattern[str]:
        if not isinstance(pattern, str):
            raise self.fail(where, f"{key!r} must be a regular expression string, got {snippet(pattern)}")
        try:
            return re.compile(pattern)
        except re.error as exc:
            raise self.fail(where, f"{key!r} {pattern!r} is not a valid regular expression: {exc}")

    def schema_list(self, schema: Mapping[str, Any], key: str, where: str) -> list[Check]:
        value = schema[key]
        if not isinstance(value, list) or not value:
            raise self.fail(where, f"{key!r} must be a non-empty list of schemas")
        return [self.compile(sub, f"{where}/{key}/{i}") for i, sub in enumerate(value)]

    # -- entry point -----------------------------------------------------------------------
    def compile(self, schema: Any, where: str) -> Check:
        if schema is True:
            return accept
        if schema is False:
            return reject
        if not isinstance(schema, dict):
            raise self.fail(where, f"a schema must be an object or a boolean, got {snippet(schema)}")

        type_check = self.compile_type(schema, where)
        checks: list[Check] = []
        if "$ref" in schema:
            checks.append(self.compile_ref(schema["$ref"], where))
        for builder in (
            self.compile_enum_const,
            self.compile_number,
            self.compile_string,
            self.compile_array,
            self.compile_object,
            self.compile_combinators,
        ):
            checks.extend(builder(schema, where))

        if type_check is None:
            if not checks:
                return accept
            if len(checks) == 1:
                return checks[0]

            def run(instance: Any, path: str, problems: list[str]) -> None:
                for check in checks:
                    check(instance, path, problems)

            return run

        predicate, expected = type_check

        def run_typed(instance: Any, path: str, problems: list[str]) -> None:
            # A type mismatch makes every other keyword's complaint noise; report only the type.
            if not predicate(instance):
                problems.append(f"{path}: expected {expected}, got {json_type_name(instance)}")
                return
            for check in checks:
                check(instance, path, problems)

        return run_typed

    # -- keywords --------------------------------------------------------------------------
    def compile_type(self, schema: Mapping[str, Any], where: str) -> tuple[Callable[[Any], bool], str] | None:
        if "type" not in schema:
            return None
        raw = schema["type"]
        names = [raw] if isinstance(raw, str) else raw
        if (
            not isinstance(names, list)
            or not names
            or not all(isinstance(n, str) and n in TYPE_PREDICATES for n in names)
        ):
            raise self.fail(
                where,
                f"'type' must be one of {sorted(TYPE_PREDICATES)} or a non-empty list of them, "
                f"got {snippet(raw)}",
            )
        expected = " or ".join(names)
        if len(names) == 1:
            return TYPE_PREDICATES[names[0]], expected
        predicates = tuple(TYPE_PREDICATES[n] for n in names)
        return (lambda v: any(p(v) for p in predicates)), expected

    def compile_ref(self, ref: Any, where: str) -> Check:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise self.fail(
                where, f"only local '$ref' values ('#/$defs/...') are supported, got {snippet(ref)}"
            )
        cell = self.refs.get(ref)
        if cell is None:
            cell = []
            self.refs[ref] = cell  # registered before compiling so recursive schemas terminate
            cell.append(self.compile(self.resolve(ref, where), ref))

        def check(instance: Any, path: str, problems: list[str]) -> None:
            cell[0](instance, path, problems)

        return check

    def resolve(self, ref: str, where: str) -> Any:
        node = self.root
        pointer = ref[1:]
        if not pointer:
            return node
        if not pointer.startswith("/"):
            raise self.fail(where, f"'$ref' {ref!r} is not a JSON pointer ('#/$defs/name')")
        for token in pointer[1:].split("/"):
            token = unquote(token).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                raise self.fail(where, f"'$ref' {ref!r} does not resolve inside this schema")
        return node

    def compile_enum_const(self, schema: Mapping[str, Any], where: str) -> list[Check]:
        checks: list[Check] = []
        if "enum" in schema:
            options = schema["enum"]
            if not isinstance(options, list):
                raise self.fail(where, "'enum' must be a list of allowed values")
            allowed = frozenset(freeze(v) for v in options)
            listed = ", ".join(snippet(v) for v in options)
            if len(listed) > 300:
                listed = listed[:297] + "..."

            def check_enum(instance: Any, path: str, problems: list[str]) -> None:
                if freeze(instance) not in allowed:
                    problems.append(f"{path}: must be one of {listed}; got {snippet(instance)}")

            checks.append(check_enum)
        if "const" in schema:
            const = schema["const"]
            frozen = freeze(const)
            shown = snippet(const)

            def check_const(instance: Any, path: str, problems: list[str]) -> None:
                if freeze(instance) != frozen:
                    problems.append(f"{path}: must be exactly {shown}; got {snippet(instance)}")

            checks.append(check_const)
        return checks

    def compile_number(self, schema: Mapping[str, Any], where: str) -> list[Check]:
        bounds: list[tuple[Callable[[Any], bool], str]] = []
        minimum = self.number(schema, "minimum", where)
        maximum = self.number(schema, "maximum", where)
        ex_min = ex_max = None
        # Draft-4 spelling: a boolean exclusiveMinimum/exclusiveMaximum turns minimum/maximum exclusive.
        if schema.get("exclusiveMinimum") is True:
            ex_min, minimum = minimum, None
        elif not isinstance(schema.get("exclusiveMinimum"), bool):
            ex_min = self.number(schema, "exclusiveMinimum", where)
        if schema.get("exclusiveMaximum") is True:
            ex_max, maximum = maximum, None
        elif not isinstance(schema.get("exclusiveMaximum"), bool):
            ex_max = self.number(schema, "exclusiveMaximum", where)
        if minimum is not None:
            lo = minimum
            bounds.append((lambda v: v >= lo, f">= {fmt_num(lo)}"))
        if maximum is not None:
            hi = maximum
            bounds.append((lambda v: v <= hi, f"<= {fmt_num(hi)}"))
        if ex_min is not None:
            xlo = ex_min
            bounds.append((lambda v: v > xlo, f"> {fmt_num(xlo)}"))
        if ex_max is not None:
            xhi = ex_max
            bounds.append((lambda v: v < xhi, f"< {fmt_num(xhi)}"))
        divisor = self.number(schema, "multipleOf", where)
        if divisor is not None and divisor <= 0:
            raise self.fail(where, f"'multipleOf' must be greater than 0, got {snippet(divisor)}")
        if not bounds and divisor is None:
            return []

        def check_number(instance: Any, path: str, problems: list[str]) -> None:
            if not is_number(instance):
                return
            for ok, text in bounds:
                if not ok(instance):
                    problems.append(f"{path}: must be {text}, got {fmt_num(instance)}")
            if divisor is not None and not is_multiple(instance, divisor):
                problems.append(f"{path}: must be a multiple of {fmt_num(divisor)}, got {fmt_num(instance)}")

        return [check_number]

    def compile_string(self, schema: Mapping[str, Any], where: str) -> list[Check]:
        min_len = self.count(schema, "minLength", where)
        max_len = self.count(schema, "maxLength", where)
        regex = self.regex(schema["pattern"], where, "pattern") if "pattern" in schema else None
        if min_len is None and max_len is None and regex is None:
            return []

        def check_string(instance: Any, path: str, problems: list[str]) -> None:
            if not isinstance(instance, str):
                return
            n = len(instance)  # code points, as JSON Schema requires
            if min_len is not None and n < min_len:
                problems.append(f"{path}: must be at least {plural(min_len, 'character')} long, got {n}")
            if max_len is not None and n > max_len:
                problems.append(f"{path}: must be at most {plural(max_len, 'character')} long, got {n}")
            if regex is not None and regex.search(instance) is None:
                problems.append(f"{path}: must match the pattern {regex.pattern!r}; got {snippet(instance)}")

        return [check_string]

    def compile_array(self, schema: Mapping[str, Any], where: str) -> list[Check]:
        return compile_array(self, schema, where)

    def compile_object(self, schema: Mapping[str, Any], where: str) -> list[Check]:
        return compile_object(self, schema, where)

    def compile_combinators(self, schema: Mapping[str, Any], where: str) -> list[Check]:
        checks: list[Check] = []
        if "allOf" in schema:
            checks.extend(self.schema_list(schema, "allOf", where))
        if "anyOf" in schema:
            any_of = self.schema_list(schema, "anyOf", where)

            def check_any(instance: Any, path: str, problems: list[str]) -> None:
                branch_problems: list[list[str]] = []
                for check in any_of:
                    found: list[str] = []
                    check(instance, path, found)
                    if not found:
                        return
                    branch_problems.append(found)
                problems.append(
                    f"{path}: does not match any allowed alternative: {summarise(branch_problems)}"
                )

            checks.append(check_any)
        if "oneOf" in schema:
            one_of = self.schema_list(schema, "oneOf", where)

            def check_one(instance: Any, path: str, problems: list[str]) -> None:
                matches: list[int] = []
                branch_problems: list[list[str]] = []
                for i, check in enumerate(one_of):
                    found: list[str] = []
                    check(instance, path, found)
                    if found:
                        branch_problems.append(found)
                    else:
                        matches.append(i)
                if not matches:
                    problems.append(
                        f"{path}: must match exactly one alternative but matches none: {summarise(branch_problems)}"
                    )
                elif len(matches) > 1:
                    shown = " and ".join(f"#{i + 1}" for i in matches[:3])
                    problems.append(f"{path}: must match exactly one alternative but matches {shown}")

            checks.append(check_one)
        if "not" in schema:
            negated = self.compile(schema["not"], f"{where}/not")
            shown = snippet(schema["not"])

            def check_not(instance: Any, path: str, problems: list[str]) -> None:
                found: list[str] = []
                negated(instance, path, found)
                if not found:
                    problems.append(f"{path}: must not match the schema {shown}")

            checks.append(check_not)
        return checks


def compile_schema(schema: Any) -> SchemaValidator:
    """Compile ``schema`` once into ``validator(instance) -> list[str]`` (empty list = valid).

    Raises :class:`~power_loop.errors.ConfigError` if the schema itself is malformed.
    """
    compiler = SchemaCompiler(schema)
    check = compiler.compile(schema, "#")
    if isinstance(schema, dict):
        # Compile unreferenced definitions too, so a broken one fails at registration time.
        for section in ("$defs", "definitions"):
            defs = schema.get(section)
            if defs is None:
                continue
            if not isinstance(defs, dict):
                raise compiler.fail("#", f"{section!r} must be an object mapping names to schemas")
            for name in defs:
                token = quote(name.replace("~", "~0").replace("/", "~1"), safe="~")
                compiler.compile_ref(f"#/{section}/{token}", "#")

    def validate(instance: Any) -> list[str]:
        problems: list[str] = []
        try:
            check(instance, "$", problems)
        except RecursionError:
            problems.append("$: value is nested too deeply to validate")
        return problems

    return validate


def validate_tool_args(schema: Any, args: Any) -> list[str]:
    """Validate ``args`` against ``schema`` and return the problems (empty when valid).

    Compiles the schema on every call; use :func:`compile_schema` (as ``ToolRegistry`` does) when the
    same schema validates many instances.
    """
    return compile_schema(schema)(args)
