"""The published dict hook API: ``HookContext`` / ``HookResult`` handed to ``AgentHooks.run``.

Handlers registered on :class:`~power_loop.hooks.AgentHooks` get the typed ctx objects when the loop
fires a point. Applications written for the published package may also run a point themselves with a
plain dict of values — ``hooks.run(point, HookContext({...}))`` — which this module implements on the
same handler list: a handler may return a ``HookContext`` or a ``HookResult`` (replacing the context),
a ``dict`` (replacing the values), a ``HookDirective``, or ``None``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import AsyncHookInSyncContext, HookDirectiveError
from ._points import HookDirective, HookPoint

if TYPE_CHECKING:
    from ._contexts import BaseHookCtx

__all__ = ["HookContext", "HookManagerProtocol", "HookResult", "apply_legacy_result"]


@dataclass
class HookContext:
    """The values a dict-style hook run passes to its handlers."""

    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class HookResult:
    """What a dict-style hook run returns: the final context and the last directive set."""

    context: HookContext = field(default_factory=HookContext)
    directive: HookDirective = HookDirective.CONTINUE


def apply_legacy_result(point: HookPoint, handler: str, result: HookResult, value: object) -> None:
    """Fold one handler's return value into ``result`` (the published rules)."""
    if value is None:
        return
    if isinstance(value, HookResult):
        result.context, result.directive = value.context, value.directive
    elif isinstance(value, HookContext):
        result.context = value
    elif isinstance(value, Mapping):
        result.context = HookContext(dict(value))
    elif isinstance(value, HookDirective):
        result.directive = value
    elif isinstance(value, str) and value in HookDirective._value2member_map_:
        result.directive = HookDirective(value)
    else:
        raise HookDirectiveError(
            point.value, value, ["HookContext", "HookResult", "dict", "HookDirective", "None"], handler
        )


def run_legacy(
    point: HookPoint, handlers: Iterable[tuple[Callable[..., Any], bool, str]], context: HookContext
) -> HookResult:
    """Run ``(handler, is_async, description)`` entries synchronously on ``context``."""
    result = HookResult(context=context)
    for handler, is_async, described in handlers:
        if is_async:
            raise AsyncHookInSyncContext(point.value, described)
        value = handler(result.context)
        if isinstance(value, Awaitable):
            close = getattr(value, "close", None)
            if close is not None:
                close()
            raise AsyncHookInSyncContext(point.value, described)
        apply_legacy_result(point, described, result, value)
    return result


async def run_legacy_async(
    point: HookPoint, handlers: Iterable[tuple[Callable[..., Any], bool, str]], context: HookContext
) -> HookResult:
    """Run the entries on ``context``, awaiting async handlers."""
    result = HookResult(context=context)
    for handler, _is_async, described in handlers:
        value = handler(result.context)
        if isinstance(value, Awaitable):
            value = await value
        apply_legacy_result(point, described, result, value)
    return result


@runtime_checkable
class HookManagerProtocol(Protocol):
    """What a hook registry offers (``AgentHooks`` implements it): registration, the typed runners
    and the dict-style runners."""

    def register(
        self, hook_point: HookPoint | str, handler: Callable[..., Any], *, order: int = 0
    ) -> None: ...

    def clear(self, hook_point: HookPoint | str | None = None) -> None: ...

    def run_typed(self, hook_point: HookPoint | str, ctx: BaseHookCtx) -> None: ...

    async def run_typed_async(self, hook_point: HookPoint | str, ctx: BaseHookCtx) -> None: ...

    def run(self, hook_point: HookPoint | str, ctx: Any) -> Any: ...

    async def run_async(self, hook_point: HookPoint | str, context: HookContext) -> HookResult: ...
