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
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, unquote

from ..errors import ConfigError

__all__ = ["SchemaValidator", "compile_schema", "json_type_name", "validate_tool_args"]

#: A compiled validator: ``validator(instance) -> list of problems`` (empty when valid).
SchemaValidator = Callable[[Any], list[str]]

# Internal compiled form: check(instance, json_path, problems) appends problems in place.
_Check = Callable[[Any, str, list[str]], None]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_SUB_PROBLEMS = 2
_MAX_SNIPPET = 120


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_integer(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and v.is_integer())


_TYPE_PREDICATES: dict[str, Callable[[Any], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": _is_integer,
    "number": _is_number,
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


def _freeze(value: Any) -> Any:
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
        return ("l", tuple(_freeze(v) for v in value))
    if isinstance(value, dict):
        return ("d", frozenset((k, _freeze(v)) for k, v in value.items()))
    return ("o", id(value))


def _snippet(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > _MAX_SNIPPET:
        text = text[: _MAX_SNIPPET - 3] + "..."
    return text


def _key_suffix(key: str) -> str:
    return f".{key}" if _IDENT.match(key) else f"[{json.dumps(key, ensure_ascii=False)}]"


def _accept(instance: Any, path: str, problems: list[str]) -> None:
    return None


def _reject(instance: Any, path: str, problems: list[str]) -> None:
    problems.append(f"{path}: no value is allowed here")


def _fmt_num(n: float) -> str:
    return str(int(n)) if isinstance(n, float) and n.is_integer() and abs(n) < 1e16 else str(n)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class _Compiler:
    """Turns one root schema into a check closure; ``$ref`` targets are compiled once and shared."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.refs: dict[str, list[_Check]] = {}

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def fail(where: str, message: str) -> ConfigError:
        return ConfigError(f"invalid JSON Schema at {where}: {message}")

    def count(self, schema: Mapping[str, Any], key: str, where: str) -> int | None:
        if key not in schema:
            return None
        value = schema[key]
        if not _is_integer(value) or value < 0:
            raise self.fail(where, f"{key!r} must be a non-negative integer, got {_snippet(value)}")
        return int(value)

    def number(self, schema: Mapping[str, Any], key: str, where: str) -> float | None:
        if key not in schema:
            return None
        value = schema[key]
        if not _is_number(value) or (isinstance(value, float) and not math.isfinite(value)):
            raise self.fail(where, f"{key!r} must be a finite number, got {_snippet(value)}")
        return value  # type: ignore[no-any-return]

    def regex(self, pattern: Any, where: str, key: str) -> re.Pattern[str]:
        if not isinstance(pattern, str):
            raise self.fail(where, f"{key!r} must be a regular expression string, got {_snippet(pattern)}")
        try:
            return re.compile(pattern)
        except re.error as exc:
            raise self.fail(where, f"{key!r} {pattern!r} is not a valid regular expression: {exc}")

    def schema_list(self, schema: Mapping[str, Any], key: str, where: str) -> list[_Check]:
        value = schema[key]
        if not isinstance(value, list) or not value:
            raise self.fail(where, f"{key!r} must be a non-empty list of schemas")
        return [self.compile(sub, f"{where}/{key}/{i}") for i, sub in enumerate(value)]

    # -- entry point -----------------------------------------------------------------------
    def compile(self, schema: Any, where: str) -> _Check:
        if schema is True:
            return _accept
        if schema is False:
            return _reject
        if not isinstance(schema, dict):
            raise self.fail(where, f"a schema must be an object or a boolean, got {_snippet(schema)}")

        type_check = self.compile_type(schema, where)
        checks: list[_Check] = []
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
                return _accept
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
            or not all(isinstance(n, str) and n in _TYPE_PREDICATES for n in names)
        ):
            raise self.fail(
                where,
                f"'type' must be one of {sorted(_TYPE_PREDICATES)} or a non-empty list of them, "
                f"got {_snippet(raw)}",
            )
        expected = " or ".join(names)
        if len(names) == 1:
            return _TYPE_PREDICATES[names[0]], expected
        predicates = tuple(_TYPE_PREDICATES[n] for n in names)
        return (lambda v: any(p(v) for p in predicates)), expected

    def compile_ref(self, ref: Any, where: str) -> _Check:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise self.fail(
                where, f"only local '$ref' values ('#/$defs/...') are supported, got {_snippet(ref)}"
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

    def compile_enum_const(self, schema: Mapping[str, Any], where: str) -> list[_Check]:
        checks: list[_Check] = []
        if "enum" in schema:
            options = schema["enum"]
            if not isinstance(options, list):
                raise self.fail(where, "'enum' must be a list of allowed values")
            allowed = frozenset(_freeze(v) for v in options)
            listed = ", ".join(_snippet(v) for v in options)
            if len(listed) > 300:
                listed = listed[:297] + "..."

            def check_enum(instance: Any, path: str, problems: list[str]) -> None:
                if _freeze(instance) not in allowed:
                    problems.append(f"{path}: must be one of {listed}; got {_snippet(instance)}")

            checks.append(check_enum)
        if "const" in schema:
            const = schema["const"]
            frozen = _freeze(const)
            shown = _snippet(const)

            def check_const(instance: Any, path: str, problems: list[str]) -> None:
                if _freeze(instance) != frozen:
                    problems.append(f"{path}: must be exactly {shown}; got {_snippet(instance)}")

            checks.append(check_const)
        return checks

    def compile_number(self, schema: Mapping[str, Any], where: str) -> list[_Check]:
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
            bounds.append((lambda v: v >= lo, f">= {_fmt_num(lo)}"))
        if maximum is not None:
            hi = maximum
            bounds.append((lambda v: v <= hi, f"<= {_fmt_num(hi)}"))
        if ex_min is not None:
            xlo = ex_min
            bounds.append((lambda v: v > xlo, f"> {_fmt_num(xlo)}"))
        if ex_max is not None:
            xhi = ex_max
            bounds.append((lambda v: v < xhi, f"< {_fmt_num(xhi)}"))
        divisor = self.number(schema, "multipleOf", where)
        if divisor is not None and divisor <= 0:
            raise self.fail(where, f"'multipleOf' must be greater than 0, got {_snippet(divisor)}")
        if not bounds and divisor is None:
            return []

        def check_number(instance: Any, path: str, problems: list[str]) -> None:
            if not _is_number(instance):
                return
            for ok, text in bounds:
                if not ok(instance):
                    problems.append(f"{path}: must be {text}, got {_fmt_num(instance)}")
            if divisor is not None and not _is_multiple(instance, divisor):
                problems.append(
                    f"{path}: must be a multiple of {_fmt_num(divisor)}, got {_fmt_num(instance)}"
                )

        return [check_number]

    def compile_string(self, schema: Mapping[str, Any], where: str) -> list[_Check]:
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
                problems.append(f"{path}: must be at least {_plural(min_len, 'character')} long, got {n}")
            if max_len is not None and n > max_len:
                problems.append(f"{path}: must be at most {_plural(max_len, 'character')} long, got {n}")
            if regex is not None and regex.search(instance) is None:
                problems.append(f"{path}: must match the pattern {regex.pattern!r}; got {_snippet(instance)}")

        return [check_string]

    def compile_array(self, schema: Mapping[str, Any], where: str) -> list[_Check]:
        min_items = self.count(schema, "minItems", where)
        max_items = self.count(schema, "maxItems", where)
        unique = schema.get("uniqueItems", False)
        if not isinstance(unique, bool):
            raise self.fail(where, "'uniqueItems' must be a boolean")
        prefix: list[_Check] = []
        items: _Check | None = None
        closed = False  # items: false after prefixItems → no further items allowed
        raw_items = schema.get("items")
        if "prefixItems" in schema:
            raw_prefix = schema["prefixItems"]
            if not isinstance(raw_prefix, list):
                raise self.fail(where, "'prefixItems' must be a list of schemas")
            prefix = [self.compile(s, f"{where}/prefixItems/{i}") for i, s in enumerate(raw_prefix)]
        if isinstance(raw_items, list):  # pre-2020 tuple validation
            prefix = [self.compile(s, f"{where}/items/{i}") for i, s in enumerate(raw_items)]
            raw_items = schema.get("additionalItems")
            tail_key = "additionalItems"
        else:
            tail_key = "items"
        if raw_items is False:
            closed = True
        elif raw_items is not None:
            items = self.compile(raw_items, f"{where}/{tail_key}")
        if (
            min_items is None
            and max_items is None
            and not unique
            and not prefix
            and items is None
            and not closed
        ):
            return []
        n_prefix = len(prefix)

        def check_array(instance: Any, path: str, problems: list[str]) -> None:
            if not isinstance(instance, list):
                return
            n = len(instance)
            if min_items is not None and n < min_items:
                problems.append(f"{path}: expected at least {_plural(min_items, 'item')}, got {n}")
            if max_items is not None and n > max_items:
                problems.append(f"{path}: expected at most {_plural(max_items, 'item')}, got {n}")
            if closed and n > n_prefix:
                problems.append(f"{path}: expected at most {_plural(n_prefix, 'item')}, got {n}")
            if unique and n > 1:
                seen: dict[Any, int] = {}
                for i, value in enumerate(instance):
                    key = _freeze(value)
                    if key in seen:
                        problems.append(
                            f"{path}: items must be unique, but [{seen[key]}] and [{i}] are equal"
                        )
                        break
                    seen[key] = i
            for i in range(min(n, n_prefix)):
                prefix[i](instance[i], f"{path}[{i}]", problems)
            if items is not None:
                for i in range(n_prefix, n):
                    items(instance[i], f"{path}[{i}]", problems)

        return [check_array]

    def compile_object(self, schema: Mapping[str, Any], where: str) -> list[_Check]:
        raw_props = schema.get("properties", {})
        if not isinstance(raw_props, dict):
            raise self.fail(where, "'properties' must be an object mapping names to schemas")
        props = {
            key: (self.compile(sub, f"{where}/properties/{key}"), _key_suffix(key))
            for key, sub in raw_props.items()
        }
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise self.fail(
                where, "'required' must be a list of property names (on the object schema, not on a property)"
            )
        raw_patterns = schema.get("patternProperties", {})
        if not isinstance(raw_patterns, dict):
            raise self.fail(where, "'patternProperties' must be an object mapping regexes to schemas")
        patterns = [
            (self.regex(rx, where, "patternProperties"), self.compile(sub, f"{where}/patternProperties/{rx}"))
            for rx, sub in raw_patterns.items()
        ]
        raw_additional = schema.get("additionalProperties", True)
        forbid_extra = raw_additional is False
        additional = (
            None
            if raw_additional in (True, False)
            else self.compile(raw_additional, f"{where}/additionalProperties")
        )
        min_props = self.count(schema, "minProperties", where)
        max_props = self.count(schema, "maxProperties", where)
        if (
            not props
            and not required
            and not patterns
            and not forbid_extra
            and additional is None
            and min_props is None
            and max_props is None
        ):
            return []
        required_t = tuple(dict.fromkeys(required))
        prop_items = tuple((k, c, s) for k, (c, s) in props.items())
        walk_all_keys = bool(patterns) or forbid_extra or additional is not None
        allowed_text = ", ".join(json.dumps(k, ensure_ascii=False) for k in props) or "none"

        def check_object(instance: Any, path: str, problems: list[str]) -> None:
            if not isinstance(instance, dict):
                return
            for name in required_t:
                if name not in instance:
                    problems.append(
                        f"{path}: missing required property {json.dumps(name, ensure_ascii=False)}"
                    )
            n = len(instance)
            if min_props is not None and n < min_props:
                problems.append(f"{path}: expected at least {_plural(min_props, 'property')}, got {n}")
            if max_props is not None and n > max_props:
                problems.append(f"{path}: expected at most {_plural(max_props, 'property')}, got {n}")
            if not walk_all_keys:
                for key, check, suffix in prop_items:
                    if key in instance:
                        check(instance[key], path + suffix, problems)
                return
            unexpected: list[str] = []
            for key, value in instance.items():
                matched = False
                entry = props.get(key)
                if entry is not None:
                    matched = True
                    entry[0](value, path + entry[1], problems)
                for rx, check in patterns:
                    if rx.search(key) is not None:
                        matched = True
                        check(value, path + _key_suffix(key), problems)
                if not matched:
                    if forbid_extra:
                        unexpected.append(json.dumps(key, ensure_ascii=False))
                    elif additional is not None:
                        additional(value, path + _key_suffix(key), problems)
            if unexpected:
                noun = "property" if len(unexpected) == 1 else "properties"
                problems.append(
                    f"{path}: unexpected {noun} {', '.join(unexpected)} (allowed: {allowed_text})"
                )

        return [check_object]

    def compile_combinators(self, schema: Mapping[str, Any], where: str) -> list[_Check]:
        checks: list[_Check] = []
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
                    f"{path}: does not match any allowed alternative: {_summarise(branch_problems)}"
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
                        f"{path}: must match exactly one alternative but matches none: {_summarise(branch_problems)}"
                    )
                elif len(matches) > 1:
                    shown = " and ".join(f"#{i + 1}" for i in matches[:3])
                    problems.append(f"{path}: must match exactly one alternative but matches {shown}")

            checks.append(check_one)
        if "not" in schema:
            negated = self.compile(schema["not"], f"{where}/not")
            shown = _snippet(schema["not"])

            def check_not(instance: Any, path: str, problems: list[str]) -> None:
                found: list[str] = []
                negated(instance, path, found)
                if not found:
                    problems.append(f"{path}: must not match the schema {shown}")

            checks.append(check_not)
        return checks


def _is_multiple(value: float, divisor: float) -> bool:
    if isinstance(divisor, float):
        try:
            quotient = value / divisor
            return int(quotient) == quotient
        except OverflowError:
            # Huge value / tiny divisor overflows floats; exact rational arithmetic cannot.
            from fractions import Fraction  # rare: not worth loading with every validator

            return Fraction(value) % Fraction(divisor) == 0
    return value % divisor == 0


def _summarise(branch_problems: list[list[str]]) -> str:
    parts = []
    for i, found in enumerate(branch_problems, 1):
        shown = "; ".join(found[:_MAX_SUB_PROBLEMS])
        if len(found) > _MAX_SUB_PROBLEMS:
            shown += f" (+{len(found) - _MAX_SUB_PROBLEMS} more)"
        parts.append(f"(option {i}) {shown}")
    return " | ".join(parts)


def compile_schema(schema: Any) -> SchemaValidator:
    """Compile ``schema`` once into ``validator(instance) -> list[str]`` (empty list = valid).

    Raises :class:`~power_loop.errors.ConfigError` if the schema itself is malformed.
    """
    compiler = _Compiler(schema)
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
