"""Phases of custom pipelines: the published ``phase`` decorator, ``PhaseContext``, ``PhaseResult``
and ``AgentRunner``.

A *phase* is one step of an application's own pipeline (prepare data, call a service, post-process)
that should be observable and steerable like the loop's steps: ``@phase(before=..., after=...,
error=..., start_event=..., end_event=...)`` runs the dict-style hooks (``HookContext``) at the given
points around the function and publishes :class:`~power_loop.events.PhaseEventPayload` events. The
hooks and bus are the owner's (``self.hooks`` / ``self.bus`` of a method's object) or those of the
current :class:`AgentRunner` scope.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..events import AgentEvent, AgentEventBus, AgentEventType, PhaseEventPayload, resolve_event_type
from ..hooks import AgentHooks, HookContext, HookDirective, HookPoint, HookResult, resolve_hook_point

__all__ = ["AgentRunner", "PhaseContext", "PhaseResult", "current_runner", "phase"]

HD = HookDirective


@dataclass
class PhaseContext:
    """What a phase's hooks and events see: free-form ``values``, the round and the session."""

    values: dict[str, Any] = field(default_factory=dict)
    round_index: int = 0
    session_id: str | None = None


@dataclass
class PhaseResult:
    """A phase's outcome: its ``output``, the hooks' last ``directive`` and the final ``values``."""

    output: Any = None
    directive: HookDirective = HookDirective.CONTINUE
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def should_break(self) -> bool:
        """A hook asked to stop the pipeline (``BREAK``)."""
        return self.directive == HD.BREAK

    @property
    def should_skip(self) -> bool:
        """A hook skipped the phase's work (``SKIP``)."""
        return self.directive == HD.SKIP

    @property
    def is_short_circuit(self) -> bool:
        """A hook supplied the output instead of the phase (``SHORT_CIRCUIT``)."""
        return self.directive == HD.SHORT_CIRCUIT


@dataclass(frozen=True)
class _Scope:
    runner: AgentRunner
    session_id: str | None


_SCOPE: ContextVar[_Scope | None] = ContextVar("power_loop_runner_scope", default=None)


class AgentRunner:
    """Hooks and an event bus for a piece of work, made current by :meth:`session`.

    Phases (and :class:`~power_loop.AgentPipeline` objects created without hooks or a bus) inside
    ``with runner.session(session_id=...)`` use this runner's hooks and bus. Without arguments the
    runner gets its own fresh ones (nothing is shared process-wide).
    """

    def __init__(self, *, event_bus: AgentEventBus | None = None, hooks: AgentHooks | None = None) -> None:
        self._event_bus = event_bus if event_bus is not None else AgentEventBus()
        self._hooks = hooks if hooks is not None else AgentHooks()

    @property
    def hooks(self) -> AgentHooks:
        """The runner's hooks."""
        return self._hooks

    @property
    def event_bus(self) -> AgentEventBus:
        """The runner's event bus."""
        return self._event_bus

    @contextmanager
    def session(self, *, session_id: str | None = None) -> Iterator[AgentRunner]:
        """Make this runner (and ``session_id``) current for the block; nested scopes restore."""
        token = _SCOPE.set(_Scope(self, session_id))
        try:
            yield self
        finally:
            _SCOPE.reset(token)

    @asynccontextmanager
    async def session_async(self, *, session_id: str | None = None) -> AsyncIterator[AgentRunner]:
        """:meth:`session` for async code; on exit waits for event handlers the block started."""
        token = _SCOPE.set(_Scope(self, session_id))
        try:
            yield self
        finally:
            _SCOPE.reset(token)
            await self._event_bus.drain()

    def __repr__(self) -> str:
        return f"AgentRunner(hooks={self._hooks!r}, event_bus={self._event_bus!r})"


def current_runner() -> tuple[AgentRunner | None, str | None]:
    """The current :class:`AgentRunner` and its session id (``(None, None)`` outside a scope)."""
    scope = _SCOPE.get()
    return (scope.runner, scope.session_id) if scope is not None else (None, None)


def phase(
    *,
    before: HookPoint | str | None = None,
    after: HookPoint | str | None = None,
    error: HookPoint | str | None = None,
    start_event: AgentEventType | str | None = None,
    end_event: AgentEventType | str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Awaitable[PhaseResult]]]:
    """Decorate a step (function or method, sync or async) as a phase; the result is awaitable and
    returns a :class:`PhaseResult`.

    The phase's :class:`PhaseContext` is the first ``PhaseContext`` argument (else a new one in the
    current runner's session). In order: ``start_event`` is published; the ``before`` hooks run on
    ``HookContext(values)`` — ``SKIP`` / ``BREAK`` skip the step, ``SHORT_CIRCUIT`` uses
    ``values["output"]`` as its output; the step runs (returning a value or a ``PhaseResult``); the
    ``after`` hooks see and may replace ``values["output"]``; ``end_event`` is published. A step that
    raises runs the ``error`` hooks with ``values["error"]`` / ``values["error_message"]``: ``SKIP``
    recovers with ``values.get("output")``, anything else re-raises (no end event).
    Unknown hook points or event types raise ``ConfigError`` at decoration.
    """
    points = {
        k: None if p is None else resolve_hook_point(p)
        for k, p in (("b", before), ("a", after), ("e", error))
    }
    starts, ends = (None if e is None else resolve_event_type(e) for e in (start_event, end_event))

    def decorate(fn: Callable[..., Any]) -> Callable[..., Awaitable[PhaseResult]]:
        if not callable(fn):
            raise ConfigError(f"phase() decorates a callable, got {fn!r}")

        @functools.wraps(fn)
        async def run_phase(*args: Any, **kwargs: Any) -> PhaseResult:
            ctx = next((a for a in (*args, *kwargs.values()) if isinstance(a, PhaseContext)), None)
            hooks, bus, session_id = _owner(args[0] if args else None)
            if ctx is None:
                ctx = PhaseContext(session_id=session_id)
            run = _PhaseRun(ctx, hooks, bus)
            await run.publish(starts)
            result = await run.hooks_at(points["b"], {})
            if result is not None and result.directive in (HD.SKIP, HD.BREAK, HD.SHORT_CIRCUIT):
                output = ctx.values.pop("output", None) if result.directive == HD.SHORT_CIRCUIT else None
                await run.publish(ends)
                return PhaseResult(output, HD(result.directive), dict(ctx.values))
            outcome = await run.call(fn, args, kwargs, points["e"])
            after_result = await run.hooks_at(points["a"], {"output": outcome.output})
            if after_result is not None:
                outcome.output = ctx.values.pop("output", outcome.output)
                if after_result.directive != HD.CONTINUE:
                    outcome.directive = HD(after_result.directive)
            outcome.values = dict(ctx.values)
            await run.publish(ends)
            return outcome

        return run_phase

    return decorate


def _owner(first: Any) -> tuple[AgentHooks | None, AgentEventBus | None, str | None]:
    runner, session_id = current_runner()
    hooks = getattr(first, "hooks", None)
    bus = getattr(first, "bus", None)
    if bus is None:
        bus = getattr(first, "event_bus", None)
    if not isinstance(hooks, AgentHooks):
        hooks = runner.hooks if runner is not None else None
    if not isinstance(bus, AgentEventBus):
        bus = runner.event_bus if runner is not None else None
    return hooks, bus, session_id


class _PhaseRun:
    def __init__(self, ctx: PhaseContext, hooks: AgentHooks | None, bus: AgentEventBus | None) -> None:
        self.ctx, self.hooks, self.bus = ctx, hooks, bus

    async def publish(self, event_type: AgentEventType | None) -> None:
        if event_type is None or self.bus is None:
            return
        payload = PhaseEventPayload(values=dict(self.ctx.values))
        await self.bus.publish_async(
            AgentEvent(
                event_type, data=payload, session_id=self.ctx.session_id, round_index=self.ctx.round_index
            )
        )

    async def hooks_at(self, point: HookPoint | None, extra: dict[str, Any]) -> HookResult | None:
        """Run the dict hooks at ``point`` on the ctx values plus ``extra``; the values they return
        become the ctx values (``extra`` keys included, for the caller to pop)."""
        if point is None or self.hooks is None or not self.hooks.has(point):
            return None
        result = await self.hooks.run_async(point, HookContext({**self.ctx.values, **extra}))
        self.ctx.values = dict(result.context.values)
        return result

    async def call(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], error: HookPoint | None
    ) -> PhaseResult:
        try:
            value = fn(*args, **kwargs)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            result = await self.hooks_at(error, {"error": exc, "error_message": str(exc)})
            if result is None or result.directive != HD.SKIP:
                raise
            self.ctx.values.pop("error", None)
            self.ctx.values.pop("error_message", None)
            return PhaseResult(self.ctx.values.pop("output", None), HD.SKIP)
        if isinstance(value, PhaseResult):
            self.ctx.values.update(value.values)
            return PhaseResult(value.output, value.directive)
        return PhaseResult(value)
