"""``AgentHooks``: a per-loop registry of hook handlers.

Every loop owns its own instance (there is no process-wide default registry), so two loops in one
process never see each other's handlers. Handlers are keyed by :class:`HookPoint` members; a point given
as its value (``"tool.before"``) or name (``"TOOL_BEFORE"``) resolves to the same member, so every
spelling fires.

Error policy: an exception raised by a handler propagates unchanged (same type, same traceback), with a
note (:pep:`678`, Python >= 3.11) naming the hook point and the handler. Handlers registered after it at
the same point do not run for that invocation.

:meth:`AgentHooks.audited` gives a view of the same handlers that reports every handler's decision that
changed something (a directive, or a rewritten ctx field): what ``AgentLoopConfig.record_hook_events``
stores. The plain registry pays nothing for it.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ..errors import AsyncHookInSyncContext, ConfigError, HookDirectiveError
from ._legacy import HookContext, HookResult, run_legacy, run_legacy_async
from ._points import ALLOWED_DIRECTIVES, HookDirective, HookPoint, resolve_hook_point

if TYPE_CHECKING:
    from ._contexts import BaseHookCtx

__all__ = ["AgentHooks", "HookAuditSink", "HookHandler"]

HookHandler = Callable[[Any], "HookDirective | Awaitable[HookDirective | None] | None"]
"""A hook handler: ``(ctx) -> HookDirective | None``, plain or ``async``."""

HookAuditSink = Callable[[HookPoint, str, "BaseHookCtx", "HookDirective | None", "dict[str, Any]"], None]
"""Receives one handler's decision from :meth:`AgentHooks.audited`: ``(point, handler name, ctx, the
directive it set or None, {rewritten field: new value})``."""

_H = TypeVar("_H", bound=Callable[..., Any])


class _Entry:
    """One registration. ``seq`` keeps ordering stable among equal ``order`` values."""

    __slots__ = ("handler", "is_async", "order", "seq")

    def __init__(self, handler: HookHandler, order: int, seq: int) -> None:
        self.handler = handler
        self.order = order
        self.seq = seq
        # ``type(handler).__call__`` catches objects whose ``__call__`` is ``async def``.
        self.is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            type(handler).__call__
        )


def _describe(handler: object) -> str:
    name = getattr(handler, "__qualname__", None) or type(handler).__qualname__
    module = getattr(handler, "__module__", None)
    return f"{module}.{name}" if module else str(name)


def _annotate(exc: BaseException, point: HookPoint, handler: object) -> None:
    if sys.version_info >= (3, 11):
        exc.add_note(f"raised by hook handler {_describe(handler)} at hook point {point.value!r}")


class AgentHooks:
    """Hook handlers of one loop, run in ``(order, registration)`` order at each :class:`HookPoint`.

    A handler takes the point's ctx object (see ``CTX_TYPES``), may mutate it, and may return a
    :class:`HookDirective` (or ``None``). Every handler runs; the last directive set wins. A directive
    the point does not honour (see ``ALLOWED_DIRECTIVES``) raises :class:`HookDirectiveError`.
    """

    __slots__ = ("_by_point", "_seq")

    def __init__(self) -> None:
        # Only points with at least one handler are present, so ``has`` is a dict membership test.
        # Values are immutable tuples replaced on change: a handler (un)registering while a point runs
        # does not disturb the iteration in progress.
        self._by_point: dict[HookPoint, tuple[_Entry, ...]] = {}
        self._seq = 0

    def register(self, hook_point: HookPoint | str, handler: HookHandler, *, order: int = 0) -> None:
        """Add ``handler`` at ``hook_point`` (enum, value ``"tool.before"`` or name ``"TOOL_BEFORE"``).

        Lower ``order`` runs first; equal orders run in registration order. Unknown points and
        non-callables raise :class:`~power_loop.errors.ConfigError`.
        """
        point = resolve_hook_point(hook_point)
        if not callable(handler):
            raise ConfigError(f"hook handler for {point.value!r} must be callable, got {handler!r}")
        if not isinstance(order, int) or isinstance(order, bool):
            raise ConfigError(f"hook order must be an int, got {order!r}")
        self._seq += 1
        entries = (*self._by_point.get(point, ()), _Entry(handler, order, self._seq))
        self._by_point[point] = tuple(sorted(entries, key=lambda e: (e.order, e.seq)))

    def on(self, hook_point: HookPoint | str, *, order: int = 0) -> Callable[[_H], _H]:
        """Decorator form of :meth:`register`: ``@hooks.on("tool.before")``; returns the function unchanged."""
        point = resolve_hook_point(hook_point)

        def decorate(fn: _H) -> _H:
            self.register(point, fn, order=order)
            return fn

        return decorate

    def unregister(self, hook_point: HookPoint | str, handler: HookHandler) -> bool:
        """Remove every registration of ``handler`` (compared with ``==``) at the point; True if any."""
        point = resolve_hook_point(hook_point)
        entries = self._by_point.get(point, ())
        kept = tuple(e for e in entries if e.handler != handler)
        if len(kept) == len(entries):
            return False
        if kept:
            self._by_point[point] = kept
        else:
            del self._by_point[point]
        return True

    def clear(self, hook_point: HookPoint | str | None = None) -> None:
        """Remove all handlers at ``hook_point``, or everywhere when it is ``None``."""
        if hook_point is None:
            self._by_point.clear()
        else:
            self._by_point.pop(resolve_hook_point(hook_point), None)

    def has(self, hook_point: HookPoint | str) -> bool:
        """True iff at least one handler is registered at the point (O(1); the loop's hot-path guard)."""
        if hook_point in self._by_point:  # str values hash and compare equal to their member
            return True
        if isinstance(hook_point, HookPoint):
            return False
        return resolve_hook_point(hook_point) in self._by_point

    def handlers(self, hook_point: HookPoint | str) -> tuple[HookHandler, ...]:
        """The handlers at the point, in the order they run."""
        return tuple(e.handler for e in self._by_point.get(resolve_hook_point(hook_point), ()))

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_point.values())

    def __repr__(self) -> str:
        counts = ", ".join(f"{p.value}={len(v)}" for p, v in self._by_point.items())
        return f"AgentHooks({counts})"

    @overload
    def run(self, hook_point: HookPoint | str, ctx: HookContext) -> HookResult: ...

    @overload
    def run(self, hook_point: HookPoint | str, ctx: BaseHookCtx) -> Coroutine[Any, Any, HookDirective]: ...

    def run(
        self, hook_point: HookPoint | str, ctx: BaseHookCtx | HookContext
    ) -> Coroutine[Any, Any, HookDirective] | HookResult:
        """Run every handler at the point on ``ctx``.

        With a typed ctx (what the loop fires) this returns a coroutine: ``await hooks.run(point, ctx)``
        gives ``ctx.directive``. With a published-style :class:`HookContext` it runs synchronously and
        returns a :class:`HookResult` (see :meth:`run_async` for async handlers).
        """
        if isinstance(ctx, HookContext):
            return run_legacy(*self._legacy_entries(hook_point), ctx)
        return self._run_typed(hook_point, ctx)

    async def run_async(self, hook_point: HookPoint | str, context: HookContext) -> HookResult:
        """The dict-style run, awaiting async handlers: the published ``run_async``."""
        return await run_legacy_async(*self._legacy_entries(hook_point), context)

    def _legacy_entries(self, hook_point: HookPoint | str) -> tuple[HookPoint, list[tuple[Any, bool, str]]]:
        point = resolve_hook_point(hook_point)
        return point, [(e.handler, e.is_async, _describe(e.handler)) for e in self._by_point.get(point, ())]

    async def _run_typed(self, hook_point: HookPoint | str, ctx: BaseHookCtx) -> HookDirective:
        point = resolve_hook_point(hook_point)
        allowed = ALLOWED_DIRECTIVES[point]
        for entry in self._by_point.get(point, ()):
            await _call_typed(point, allowed, entry.handler, ctx)
        return ctx.directive

    def audited(self, sink: HookAuditSink) -> AgentHooks:
        """A view running these same handlers (registrations stay shared) that calls ``sink`` after each
        handler that changed something: set another directive, or rewrote a ctx field (compared before
        and after the handler; lists and dicts are copied two levels deep for the comparison).
        Only the awaited :meth:`run` of a typed ctx is audited."""
        return _AuditedHooks(self, sink)

    def run_sync(self, hook_point: HookPoint | str, ctx: BaseHookCtx) -> HookDirective:
        """Synchronous :meth:`run` for callers that cannot await.

        An async handler at the point raises :class:`~power_loop.errors.AsyncHookInSyncContext` before
        any handler runs (or, for a plain callable that returns an awaitable, when it does).
        """
        point = resolve_hook_point(hook_point)
        entries = self._by_point.get(point, ())
        for entry in entries:
            if entry.is_async:
                raise AsyncHookInSyncContext(point.value, _describe(entry.handler))
        allowed = ALLOWED_DIRECTIVES[point]
        for entry in entries:
            try:
                result = entry.handler(ctx)
            except Exception as exc:
                _annotate(exc, point, entry.handler)
                raise
            if inspect.isawaitable(result):
                close = getattr(result, "close", None)
                if close is not None:
                    close()  # a never-awaited coroutine would otherwise warn at garbage collection
                raise AsyncHookInSyncContext(point.value, _describe(entry.handler))
            _apply(point, allowed, entry.handler, ctx, result)
        return ctx.directive

    async def run_typed_async(self, hook_point: HookPoint | str, ctx: BaseHookCtx) -> None:
        """Published-package name for :meth:`run` (the result is on ``ctx.directive``)."""
        await self.run(hook_point, ctx)

    def run_typed(self, hook_point: HookPoint | str, ctx: BaseHookCtx) -> None:
        """Published-package name for :meth:`run_sync` (the result is on ``ctx.directive``)."""
        self.run_sync(hook_point, ctx)


#: Ctx fields an audit never compares: bookkeeping, the cancellation handle, read-only objects.
_NOT_AUDITED = frozenset({"directive", "round_index", "session_id", "stop_event", "error", "spec"})


def _copy(value: Any) -> Any:
    """A copy of ``value`` to compare against later: lists and dicts (and those inside them) copied."""
    if isinstance(value, list):
        return [dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v for v in value]
    if isinstance(value, dict):
        return {
            k: dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v
            for k, v in value.items()
        }
    return value


class _AuditedHooks(AgentHooks):
    """:meth:`AgentHooks.audited`: the same registrations, each typed run reported to a sink."""

    __slots__ = ("_sink",)

    def __init__(self, base: AgentHooks, sink: HookAuditSink) -> None:
        self._by_point = base._by_point  # shared: (un)registering on either is seen by both
        self._seq = base._seq
        self._sink = sink

    async def _run_typed(self, hook_point: HookPoint | str, ctx: BaseHookCtx) -> HookDirective:
        point = resolve_hook_point(hook_point)
        allowed = ALLOWED_DIRECTIVES[point]
        names = [f.name for f in dataclasses.fields(ctx) if f.name not in _NOT_AUDITED]
        for entry in self._by_point.get(point, ()):
            before = {name: _copy(getattr(ctx, name)) for name in names}
            directive = ctx.directive
            await _call_typed(point, allowed, entry.handler, ctx)
            changed = {n: getattr(ctx, n) for n in names if _differs(before[n], getattr(ctx, n))}
            if changed or ctx.directive is not directive:
                new = ctx.directive if ctx.directive is not directive else None
                self._sink(point, _describe(entry.handler), ctx, new, changed)
        return ctx.directive


async def _call_typed(
    point: HookPoint, allowed: frozenset[HookDirective], handler: Any, ctx: BaseHookCtx
) -> None:
    """Run one handler on a typed ctx (awaiting it if async) and apply what it returned."""
    try:
        result = handler(ctx)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        _annotate(exc, point, handler)
        raise
    _apply(point, allowed, handler, ctx, result)


def _differs(before: Any, after: Any) -> bool:
    try:
        return bool(before != after)
    except Exception:  # a value whose comparison fails is reported as changed only if replaced
        return before is not after


def _apply(
    point: HookPoint,
    allowed: frozenset[HookDirective],
    handler: object,
    ctx: BaseHookCtx,
    result: object,
) -> None:
    """Record a handler's return value on ``ctx`` and check the resulting directive is honoured here."""
    if result is not None:
        if isinstance(result, HookDirective):
            ctx.directive = result
        elif isinstance(result, str) and result in HookDirective._value2member_map_:
            ctx.directive = HookDirective(result)
        else:
            raise HookDirectiveError(
                point.value, result, sorted(d.value for d in allowed), _describe(handler)
            )
    # Checked after every handler, so a handler that assigns ``ctx.directive`` directly is caught too.
    if ctx.directive not in allowed:
        raise HookDirectiveError(
            point.value, ctx.directive, sorted(d.value for d in allowed), _describe(handler)
        )
