"""The tool registry: name → (definition, handler, compiled argument validator)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ..base import compile_schema
from ..errors import AsyncToolInSyncContext, ConfigError, ToolNotFound, ToolValidationError
from ._definition import ToolDefinition, ToolEffect
from ._derive import derive_definition

if TYPE_CHECKING:
    from ..base import SchemaValidator

__all__ = ["RegisteredTool", "ToolCallable", "ToolRegistry", "build_registry", "format_problems"]

#: A tool handler: called as ``handler(**args)`` (or ``handler(args)``, see ``ToolRegistry.register``);
#: may be sync or async and return anything (str, ``ToolHandlerResult``, JSON-able data).
ToolCallable = Callable[..., Any]
_F = TypeVar("_F", bound=Callable[..., Any])

_MAX_PROBLEMS_SHOWN = 20


@dataclass(frozen=True, slots=True)
class RegisteredTool:
    """One registry entry. ``call_with_dict`` means the handler takes the arguments as one dict."""

    definition: ToolDefinition
    handler: ToolCallable
    is_async: bool = False
    call_with_dict: bool = False
    validator: SchemaValidator | None = field(default=None, compare=False, repr=False)

    def check_args(self, args: Mapping[str, Any]) -> list[str]:
        """Schema problems of ``args`` (empty when valid)."""
        validator = self.validator
        if validator is None:
            validator = compile_schema(self.definition.parameters_schema())
        return validator(args if isinstance(args, dict) else dict(args))

    def call(self, args: Mapping[str, Any]) -> Any:
        """Call the handler with already-validated ``args`` using its calling convention."""
        if self.call_with_dict:
            return self.handler(dict(args))
        return self.handler(**args)

    async def call_async(self, args: Mapping[str, Any]) -> Any:
        """Call the handler from async code: coroutines awaited, sync handlers run in a worker thread.

        ``asyncio.to_thread`` copies the current context, so contextvars set by the loop are visible
        inside sync handlers, and a slow sync handler never blocks the event loop.
        """
        if self.is_async:
            result = self.call(args)
        elif self.call_with_dict:
            result = await asyncio.to_thread(self.handler, dict(args))
        else:
            result = await asyncio.to_thread(self.handler, **args)
        if inspect.isawaitable(result):
            result = await result
        return result


def format_problems(tool_name: str, problems: list[str]) -> str:
    """The model-facing message for schema problems: one line per problem, then what to do."""
    shown = problems[:_MAX_PROBLEMS_SHOWN]
    lines = [f"Error: invalid arguments for tool {tool_name!r}:"]
    lines.extend(f"- {p}" for p in shown)
    if len(problems) > len(shown):
        lines.append(f"- ... and {len(problems) - len(shown)} more problem(s)")
    lines.append("Fix these problems and call the tool again with arguments matching its schema.")
    return "\n".join(lines)


def _is_async_callable(handler: Any) -> bool:
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(handler, "__call__", None)  # noqa: B004 - we need the bound __call__ itself
    return call is not None and inspect.iscoroutinefunction(call)


def _takes_args_dict(handler: Any, definition: ToolDefinition) -> bool:
    """True for handlers shaped ``def h(args)``: one required positional parameter that is not a tool argument.

    Decided once at registration from the signature; we never "retry with a dict" after a
    ``TypeError``, because that would run a handler twice when the TypeError came from its body.
    """
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):  # some builtins have no introspectable signature
        return False
    params = list(signature.parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return False
    positional = [
        p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    required_others = [
        p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    ]
    if len(positional) != 1 or required_others:
        return False
    only = positional[0]
    if only.default is not inspect.Parameter.empty:
        return False  # ``def h(verbose=False)`` is an ordinary keyword handler
    properties = definition.input_schema.get("properties") or {}
    if only.kind is inspect.Parameter.POSITIONAL_ONLY:
        return True
    return only.name not in properties and only.name not in definition.required_params


class ToolRegistry:
    """An ordered set of tools. Registration validates and compiles each schema once.

    Handlers are called as ``handler(**args)``. A handler whose signature is a single positional
    parameter that is not one of the tool's argument names (``def handler(args): ...``) is instead
    called with the arguments dict.

    A name can be :meth:`reserve`-d: it keeps its place in the order but is not a tool until someone
    registers it (the built-in presets reserve the note and recall tools, which the context layer
    provides when a loop uses the registry).
    """

    __slots__ = ("_open", "_openai_cache", "_tools")

    def __init__(self) -> None:
        # None marks a reserved place (see reserve()); every lookup treats it as absent. `_open`
        # counts them, so a registry without reservations (the usual case) lists in one step.
        self._tools: dict[str, RegisteredTool | None] = {}
        self._open = 0
        self._openai_cache: list[dict[str, Any]] | None = None

    # -- registration ------------------------------------------------------------------------
    def register(self, definition: ToolDefinition, handler: ToolCallable, *, overwrite: bool = False) -> None:
        """Add a tool. A duplicate name raises ``ConfigError`` (a ``ValueError``) unless ``overwrite``."""
        if not isinstance(definition, ToolDefinition):
            raise ConfigError(f"register() needs a ToolDefinition, got {type(definition).__name__}")
        if not callable(handler):
            raise ConfigError(f"tool {definition.name!r}: handler is not callable")
        if self._tools.get(definition.name) is not None and not overwrite:
            raise ConfigError(
                f"Tool already registered: {definition.name} (pass overwrite=True to replace it)"
            )
        validator = compile_schema(definition.parameters_schema())
        if definition.name in self._tools and self._tools[definition.name] is None:
            self._open -= 1
        self._tools[definition.name] = RegisteredTool(
            definition=definition,
            handler=handler,
            is_async=_is_async_callable(handler),
            call_with_dict=_takes_args_dict(handler, definition),
            validator=validator,
        )
        self._openai_cache = None

    def reserve(self, name: str) -> None:
        """Keep a place in the order for a tool registered later (no effect on a known name).

        Until then the name is not a tool: not in :meth:`names`, not sent to the model, unknown when
        called. :meth:`register` fills the place; :meth:`reserved` lists the open ones.
        """
        if name not in self._tools:
            self._tools[name] = None
            self._open += 1

    def reserved(self) -> list[str]:
        """Reserved names not registered yet, in order."""
        if not self._open:
            return []
        return [name for name, entry in self._tools.items() if entry is None]

    def unregister(self, name: str) -> None:
        """Remove a tool (or a reservation); silently does nothing if it is not registered."""
        if name not in self._tools:
            return
        if self._tools.pop(name) is None:
            self._open -= 1
        else:
            self._openai_cache = None

    @overload
    def tool(self, func: _F, /) -> _F: ...

    @overload
    def tool(
        self,
        func: None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        schema: dict[str, Any] | None = None,
        overwrite: bool = False,
        effect: ToolEffect = "side_effect",
    ) -> Callable[[_F], _F]: ...

    def tool(
        self,
        func: _F | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        schema: dict[str, Any] | None = None,
        overwrite: bool = False,
        effect: ToolEffect = "side_effect",
    ) -> _F | Callable[[_F], _F]:
        """Decorator registering a function as a tool; returns the function unchanged.

        The name defaults to the function name, the description to its docstring, and the schema is
        derived from its signature (``str``/``int``/``float``/``bool``/``list[...]``/``dict[...]``/
        ``Optional``/``Literal``; parameters without defaults are required) unless ``schema`` is given.
        Usable bare (``@registry.tool``) or configured (``@registry.tool(description="...")``);
        ``effect`` is the definition's `ToolEffect` (what crash recovery may do with the call).
        """

        def decorate(fn: _F) -> _F:
            definition = derive_definition(
                fn, name=name, description=description, schema=schema, effect=effect
            )
            self.register(definition, fn, overwrite=overwrite)
            return fn

        if func is not None:
            return decorate(func)
        return decorate

    # -- lookup ------------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return self._tools.get(name) is not None

    def get(self, name: str) -> RegisteredTool | None:
        return self._tools.get(name)

    def definitions(self) -> list[ToolDefinition]:
        """All definitions in registration order."""
        return [t.definition for t in self._tools.values() if t is not None]

    def names(self) -> list[str]:
        """All tool names in registration order."""
        if not self._open:
            return list(self._tools)
        return [name for name, entry in self._tools.items() if entry is not None]

    def __len__(self) -> int:
        return len(self._tools) - self._open

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._tools.get(name) is not None

    def __repr__(self) -> str:
        return f"ToolRegistry({self.names()!r})"

    def subset(self, names: Iterable[str]) -> ToolRegistry:
        """A new registry with only the named tools and reservations (unknown names ignored);
        handlers are shared."""
        wanted = set(names)
        child = ToolRegistry()
        child._tools = {name: entry for name, entry in self._tools.items() if name in wanted}
        child._open = sum(1 for entry in child._tools.values() if entry is None)
        return child

    def to_openai_tools(self) -> list[dict[str, Any]]:
        """The ``tools`` list for an LLM request (cached until the registry changes)."""
        if self._openai_cache is None:
            self._openai_cache = [
                t.definition.to_openai_tool() for t in self._tools.values() if t is not None
            ]
        return list(self._openai_cache)

    # -- validation and invocation -----------------------------------------------------------
    def validate(self, name: str, args: Mapping[str, Any]) -> str | None:
        """``None`` when ``args`` are valid for tool ``name``; otherwise a model-facing error message."""
        entry = self._tools.get(name)
        if entry is None:
            return f"Unknown tool: {name}"
        if not isinstance(args, Mapping):
            return f"Error: arguments for tool {name!r} must be a JSON object, got {type(args).__name__}"
        problems = entry.check_args(args)
        return format_problems(name, problems) if problems else None

    def _checked(self, name: str, args: Mapping[str, Any]) -> RegisteredTool:
        entry = self._tools.get(name)
        if entry is None:
            raise ToolNotFound(name)
        message = self.validate(name, args)
        if message is not None:
            raise ToolValidationError(name, message)
        return entry

    def invoke(self, name: str, args: Mapping[str, Any]) -> Any:
        """Validate and call a tool synchronously and return the handler's raw result.

        Raises ``ToolNotFound``, ``ToolValidationError``, or ``AsyncToolInSyncContext`` when the
        handler is a coroutine function (or returns an awaitable).
        """
        entry = self._tools.get(name)
        if entry is None:
            raise ToolNotFound(name)
        if entry.is_async:
            raise AsyncToolInSyncContext(name)
        entry = self._checked(name, args)
        result = entry.call(args)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()  # avoid a "coroutine was never awaited" warning
            raise AsyncToolInSyncContext(name)
        return result

    async def invoke_async(self, name: str, args: Mapping[str, Any]) -> Any:
        """Validate and call a tool from async code and return the handler's raw result.

        Async handlers are awaited; sync handlers run in a worker thread (contextvars propagate);
        an awaitable returned by a sync handler is awaited too.
        """
        entry = self._checked(name, args)
        return await entry.call_async(args)


def build_registry(
    definitions: Iterable[ToolDefinition],
    handlers: Mapping[str, ToolCallable | Callable[..., Awaitable[Any]]],
) -> ToolRegistry:
    """A registry from definitions plus a name → handler mapping (``ConfigError`` if one is missing)."""
    registry = ToolRegistry()
    for definition in definitions:
        handler = handlers.get(definition.name)
        if handler is None:
            raise ConfigError(f"no handler given for tool {definition.name!r}")
        registry.register(definition, handler)
    return registry
