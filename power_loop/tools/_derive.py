"""Derive a ``ToolDefinition`` from a Python function's signature, annotations and docstring."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union

from ..errors import ConfigError
from ._definition import ToolDefinition, ToolEffect

__all__ = ["annotation_schema", "derive_definition"]

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
}
_JSON_DEFAULT_TYPES = (str, int, float, bool, type(None))


def annotation_schema(annotation: Any, where: str) -> dict[str, Any]:
    """JSON Schema for one type annotation; ``ConfigError`` names ``where`` if it has no JSON form."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return {}
    if annotation in _SCALARS:
        return dict(_SCALARS[annotation])
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is tuple and args and Ellipsis not in args:  # fixed-length tuple[int, str]
        return {
            "type": "array",
            "prefixItems": [annotation_schema(a, where) for a in args],
            "items": False,
            "minItems": len(args),
        }
    if annotation in (list, tuple) or origin in (list, tuple, set, frozenset):
        schema: dict[str, Any] = {"type": "array"}
        if args:
            schema["items"] = annotation_schema(args[0], where)
        if origin in (set, frozenset):
            schema["uniqueItems"] = True
        return schema
    if annotation is dict or origin is dict:
        schema = {"type": "object"}
        if len(args) == 2 and args[1] is not Any:
            schema["additionalProperties"] = annotation_schema(args[1], where)
        return schema
    if origin is Literal:
        values = list(args)
        schema = {"enum": values}
        kinds = {type(v) for v in values}
        if len(kinds) == 1 and next(iter(kinds)) in _SCALARS:
            schema["type"] = _SCALARS[next(iter(kinds))]["type"]
        return schema
    if origin is Union or (hasattr(types, "UnionType") and isinstance(annotation, types.UnionType)):
        members = [annotation_schema(a, where) for a in args]
        if all(set(m) == {"type"} and isinstance(m["type"], str) for m in members):
            return {"type": [m["type"] for m in members]}
        return {"anyOf": members}
    raise ConfigError(
        f"{where}: cannot derive a JSON Schema from annotation {annotation!r}; "
        "use str/int/float/bool/list/dict/Optional/Literal or pass schema=... explicitly"
    )


def _docstring_description(fn: Callable[..., Any]) -> str | None:
    doc = inspect.getdoc(fn)
    return doc.strip() if doc else None


def derive_definition(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    schema: dict[str, Any] | None = None,
    effect: ToolEffect = "side_effect",
) -> ToolDefinition:
    """Build the definition ``ToolRegistry.tool`` registers for ``fn``.

    Parameters without defaults are required; JSON-scalar defaults are advertised as ``default``;
    without ``**kwargs`` extra arguments are rejected (``additionalProperties: false``) so the model
    gets a validation message instead of a ``TypeError`` from the call.
    """
    tool_name = name or getattr(fn, "__name__", None)
    if not tool_name:
        raise ConfigError("cannot derive a tool name from this callable; pass name=...")
    text = description if description is not None else _docstring_description(fn)
    if not text:
        raise ConfigError(f"tool {tool_name!r} needs a description: add a docstring or pass description=...")
    if schema is not None:
        return ToolDefinition(name=tool_name, description=text, input_schema=schema, effect=effect)

    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # unresolvable forward references, etc.
        raise ConfigError(f"tool {tool_name!r}: cannot resolve type annotations ({exc}); pass schema=...")
    properties: dict[str, Any] = {}
    required: list[str] = []
    open_ended = False
    for param in inspect.signature(fn).parameters.values():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            open_ended = True
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise ConfigError(
                f"tool {tool_name!r}: positional-only parameter {param.name!r} cannot receive a keyword argument"
            )
        prop = annotation_schema(
            hints.get(param.name, param.annotation), f"tool {tool_name!r} parameter {param.name!r}"
        )
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
        elif isinstance(param.default, _JSON_DEFAULT_TYPES):
            prop["default"] = param.default
        properties[param.name] = prop
    derived: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        derived["required"] = required
    if not open_ended:
        derived["additionalProperties"] = False
    return ToolDefinition(name=tool_name, description=text, input_schema=derived, effect=effect)
