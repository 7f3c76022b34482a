"""Every built-in tool at once: ``get_tool_definitions``, ``DEFAULT_TOOL_HANDLERS`` and the
published ``validate_tool_args(tool_name, args)`` call shape.

Both come from an unbound default registry (``create_default_tool_registry(bind=False)``) with the
context layer's note and recall tools filled in, which is why they live here and not in ``tools``:
the handlers find their workspace and session at call time (``runtime_env_context``, the running loop).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

from .. import tools as T
from ..tools import ToolDefinition, ToolRegistry, create_default_tool_registry
from ._reserved import fill_reserved_tools

__all__ = ["DEFAULT_TOOL_HANDLERS", "get_tool_definitions", "validate_tool_args"]


def _registry(
    preset: str | None = None, include: Sequence[str] | None = None, exclude: Sequence[str] | None = None
) -> ToolRegistry:
    return fill_reserved_tools(
        create_default_tool_registry(preset=preset, include=include, exclude=exclude, bind=False)
    )


def get_tool_definitions(
    *, preset: str | None = None, include: Sequence[str] | None = None, exclude: Sequence[str] | None = None
) -> list[ToolDefinition]:
    """The definitions of the built-in tools, selected as ``create_default_tool_registry`` selects them."""
    return _registry(preset, include, exclude).definitions()


class _DefaultHandlers(Mapping[str, Any]):
    """``{tool name: handler}`` for every built-in tool, built on first use (importing the package
    does not build the tools)."""

    __slots__ = ("_handlers",)

    def __init__(self) -> None:
        self._handlers: dict[str, Any] | None = None

    def _all(self) -> dict[str, Any]:
        if self._handlers is None:
            registry = _registry()
            self._handlers = {name: registry.get(name).handler for name in registry.names()}  # type: ignore[union-attr]
        return self._handlers

    def __getitem__(self, name: str) -> Any:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return f"DEFAULT_TOOL_HANDLERS({', '.join(self._all())})"


DEFAULT_TOOL_HANDLERS: Mapping[str, Any] = _DefaultHandlers()
"""Handlers of every built-in tool, unbound: file tools and ``bash`` use the current ``RuntimeEnv``."""


@functools.cache
def _builtin() -> ToolRegistry:
    return _registry()


@overload
def validate_tool_args(schema: str, args: Mapping[str, Any]) -> str | None: ...


@overload
def validate_tool_args(schema: Mapping[str, Any] | bool, args: Any) -> list[str]: ...


def validate_tool_args(schema: str | Mapping[str, Any] | bool, args: Any) -> str | list[str] | None:
    """Check tool arguments; two call shapes.

    ``validate_tool_args(schema, args)`` validates ``args`` against a JSON Schema and returns the
    problems (empty when valid), as ``power_loop.tools.validate_tool_args``. The published
    ``validate_tool_args(tool_name, args)`` checks them against that built-in tool's schema and
    returns ``None`` when they are valid (or no built-in tool has that name), else the message the
    model would get for the call.
    """
    if isinstance(schema, str):
        registry = _builtin()
        return registry.validate(schema, args) if registry.has(schema) else None
    return T.validate_tool_args(schema, args)
