"""Build an OpenTelemetry span tree from events.

One send becomes::

    power_loop.session                      (session_started … session_ended)
    └── power_loop.round                    (round_started … round_completed), one per round
        ├── power_loop.llm_call             (llm_call_started … llm_call_completed), one per attempt
        └── power_loop.tool_call            (tool_call_started … tool_call_completed), one per call

Spans are timed with the events' wall-clock ``ts``, so the tree is faithful even when the bus delivers
events later (background dispatch). Failed LLM attempts, failed tool calls and sessions ending in
``error``/``degraded`` get an ERROR status. A sub-agent's session (announced by ``subagent_task_start``)
becomes a child of the parent's open ``spawn_agent`` tool span (else its round). The session span's parent
is whatever span is current when ``session_started`` is handled (your request span, typically).

Attributes carry names, ids, counts and token usage; tool arguments and outputs are never attached, and
error descriptions are scrubbed of secrets (:func:`~power_loop.contrib._redact.scrub_text`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import MissingDependencyError
from ..events import AgentEvent, AgentEventType, EventBusProtocol
from ._redact import resolve_redact, sanitize
from ._subscribe import subscribe_filtered

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = ["OtelSpanBridge", "attach_otel_sink"]

SESSION_SPAN = "power_loop.session"
ROUND_SPAN = "power_loop.round"
LLM_CALL_SPAN = "power_loop.llm_call"
TOOL_CALL_SPAN = "power_loop.tool_call"

_ERROR_REASONS = frozenset({"error", "degraded"})
_DESCRIPTION_LEN = 200
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _import_trace() -> Any:
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise MissingDependencyError("opentelemetry-sdk", "otel", "the OpenTelemetry sink") from exc
    return trace


def _ns(event: AgentEvent) -> int:
    return int(event.ts * 1_000_000_000)


class _Open:
    """The open spans of one session."""

    __slots__ = ("calls", "round", "session", "usage")

    def __init__(self, session: Span) -> None:
        self.session = session
        self.round: Span | None = None
        self.calls: dict[str, tuple[str, Span]] = {}  # key -> (tool name or "", span)
        self.usage = dict.fromkeys(_USAGE_KEYS, 0)


class OtelSpanBridge:
    """Turns events into spans on ``tracer``; feed it with :meth:`handle` (or :func:`attach_otel_sink`).

    Thread-safe. :meth:`close` detaches it from the bus and ends every span still open.
    """

    def __init__(self, tracer: Tracer) -> None:
        self._trace = _import_trace()
        self.tracer = tracer
        self._lock = threading.Lock()
        self._open: dict[str | None, _Open] = {}
        self._sub_parents: dict[str, Span] = {}
        self._detach: Callable[[], None] | None = None
        self._redact = resolve_redact(None)
        ET = AgentEventType
        self.routes: dict[AgentEventType, Callable[[AgentEvent], None]] = {
            ET.SESSION_STARTED: self._session_started,
            ET.SESSION_ENDED: self._session_ended,
            ET.ROUND_STARTED: self._round_started,
            ET.ROUND_COMPLETED: self._round_completed,
            ET.LLM_CALL_STARTED: self._llm_started,
            ET.LLM_CALL_COMPLETED: self._llm_completed,
            ET.LLM_RETRY_ATTEMPTED: self._retry,
            ET.LLM_DEGRADED: self._degraded,
            ET.TOOL_CALL_STARTED: self._tool_started,
            ET.TOOL_CALL_FAILED: self._tool_failed,
            ET.TOOL_CALL_COMPLETED: self._tool_completed,
            ET.USAGE_UPDATED: self._usage,
            ET.AGENT_ERROR: self._agent_error,
            ET.LOOP_CANCELLED: self._cancelled,
            ET.SUBAGENT_TASK_START: self._subagent_start,
        }

    # ------------------------------------------------------------------ plumbing

    def handle(self, event: AgentEvent) -> None:
        """Apply one event to the span tree (events of other types are ignored)."""
        route = self.routes.get(event.type)
        if route is not None:
            with self._lock:
                route(event)

    def close(self) -> None:
        """Detach from the bus and end every open span (idempotent)."""
        detach, self._detach = self._detach, None
        if detach is not None:
            detach()
        with self._lock:
            for sid in list(self._open):
                self._end_session(sid, None)
            self._sub_parents.clear()

    @property
    def open_sessions(self) -> int:
        """How many session spans are open."""
        return len(self._open)

    def _start(self, name: str, parent: Span | None, event: AgentEvent, attributes: dict[str, Any]) -> Span:
        context = self._trace.set_span_in_context(parent) if parent is not None else None
        if event.session_id is not None:
            attributes["power_loop.session_id"] = event.session_id
        span: Span = self.tracer.start_span(
            name, context=context, attributes=attributes, start_time=_ns(event)
        )
        return span

    def _error(self, span: Span, description: str) -> None:
        text = sanitize(description, redact_keys=self._redact, max_field_len=_DESCRIPTION_LEN)
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, text))

    def _session(self, event: AgentEvent) -> _Open:
        """The open session of ``event``, opening one if the bridge joined mid-send."""
        state = self._open.get(event.session_id)
        if state is None:
            state = self._open_session(event)
        return state

    def _open_session(self, event: AgentEvent) -> _Open:
        parent = self._sub_parents.pop(event.session_id, None) if event.session_id else None
        span = self._start(SESSION_SPAN, parent, event, {})
        state = self._open[event.session_id] = _Open(span)
        return state

    def _end_session(self, sid: str | None, end_time: int | None) -> None:
        state = self._open.pop(sid, None)
        if state is None:
            return
        self._end_round(state, end_time)
        for name, value in state.usage.items():
            state.session.set_attribute(f"power_loop.usage.{name}", value)
        state.session.end(end_time=end_time)

    def _end_round(self, state: _Open, end_time: int | None) -> None:
        for _, span in state.calls.values():  # calls whose terminal event never came
            span.end(end_time=end_time)
        state.calls.clear()
        if state.round is not None:
            state.round.end(end_time=end_time)
            state.round = None

    # ------------------------------------------------------------------ sessions and rounds

    def _session_started(self, event: AgentEvent) -> None:
        self._end_session(event.session_id, _ns(event))  # a session span left open by a lost event
        state = self._open_session(event)
        state.session.set_attribute("power_loop.scope", str(event.payload.get("scope", "main")))

    def _session_ended(self, event: AgentEvent) -> None:
        state = self._open.get(event.session_id)
        if state is None:
            return
        reason = str(event.payload.get("reason", ""))
        state.session.set_attribute("power_loop.end_reason", reason)
        if reason in _ERROR_REASONS:
            self._error(state.session, f"session ended: {reason}")
        self._end_session(event.session_id, _ns(event))

    def _round_started(self, event: AgentEvent) -> None:
        state = self._session(event)
        self._end_round(state, _ns(event))
        index = event.payload.get("round_index", event.round_index)
        state.round = self._start(ROUND_SPAN, state.session, event, {"power_loop.round_index": index or 0})

    def _round_completed(self, event: AgentEvent) -> None:
        state = self._open.get(event.session_id)
        if state is None or state.round is None:
            return
        state.round.set_attribute("power_loop.has_tools", bool(event.payload.get("has_tools")))
        self._end_round(state, _ns(event))

    def _parent(self, state: _Open) -> Span:
        return state.round if state.round is not None else state.session

    # ------------------------------------------------------------------ calls

    def _llm_started(self, event: AgentEvent) -> None:
        state = self._session(event)
        p = event.payload
        attributes = {
            "power_loop.llm.call_id": str(p.get("call_id", "")),
            "power_loop.llm.attempt": int(p.get("attempt", 1)),
            "power_loop.llm.model": str(p.get("model", "")),
        }
        span = self._start(LLM_CALL_SPAN, self._parent(state), event, attributes)
        state.calls[f"llm:{p.get('call_id', '')}"] = ("", span)

    def _llm_completed(self, event: AgentEvent) -> None:
        state = self._open.get(event.session_id)
        p = event.payload
        entry = state.calls.pop(f"llm:{p.get('call_id', '')}", None) if state is not None else None
        if entry is None:
            return
        span = entry[1]
        span.set_attribute("power_loop.llm.duration_ms", float(p.get("duration_ms") or 0.0))
        for key in _USAGE_KEYS:
            value = p.get(key)
            if isinstance(value, int):
                span.set_attribute(f"power_loop.usage.{key}", value)
        if not p.get("success", True):
            self._error(span, f"LLM call failed: {p.get('error_type') or 'error'}")
        span.end(end_time=_ns(event))

    def _tool_started(self, event: AgentEvent) -> None:
        state = self._session(event)
        p = event.payload
        call_id, name = str(p.get("tool_call_id", "")), str(p.get("name", ""))
        attributes = {"power_loop.tool.name": name, "power_loop.tool.call_id": call_id}
        state.calls[f"tool:{call_id or name}"] = (
            name,
            self._start(TOOL_CALL_SPAN, self._parent(state), event, attributes),
        )

    def _tool_span(self, event: AgentEvent, *, pop: bool) -> Span | None:
        state = self._open.get(event.session_id)
        if state is None:
            return None
        p = event.payload
        key = f"tool:{p.get('tool_call_id') or p.get('name', '')}"
        entry = state.calls.pop(key, None) if pop else state.calls.get(key)
        return entry[1] if entry is not None else None

    def _tool_failed(self, event: AgentEvent) -> None:
        span = self._tool_span(event, pop=False)
        if span is not None:
            self._error(span, str(event.payload.get("output", "tool failed")))

    def _tool_completed(self, event: AgentEvent) -> None:
        span = self._tool_span(event, pop=True)
        if span is None:
            return
        failed = bool(event.payload.get("failed"))
        span.set_attribute("power_loop.tool.failed", failed)
        if failed:  # also covers a missed tool_call_failed; setting the same status twice is harmless
            self._error(span, str(event.payload.get("output", "tool failed")))
        span.end(end_time=_ns(event))

    # ------------------------------------------------------------------ annotations

    def _retry(self, event: AgentEvent) -> None:
        state = self._session(event)
        p = event.payload
        attributes: dict[str, Any] = {
            "attempt": int(p.get("attempt", 0)),
            "error_type": str(p.get("error_type", "")),
        }
        self._parent(state).add_event("power_loop.llm_retry", attributes, timestamp=_ns(event))

    def _degraded(self, event: AgentEvent) -> None:
        state = self._session(event)
        p = event.payload
        description = f"LLM degraded ({p.get('reason', '')}): {p.get('error_type', '')}"
        for span in {id(s): s for s in (self._parent(state), state.session)}.values():
            self._error(span, description)

    def _usage(self, event: AgentEvent) -> None:
        state = self._session(event)
        usage = event.payload.get("usage") or {}
        for key in _USAGE_KEYS:
            value = usage.get(key)
            if isinstance(value, int):
                state.usage[key] += value
                if state.round is not None:
                    state.round.set_attribute(f"power_loop.usage.{key}", value)

    def _agent_error(self, event: AgentEvent) -> None:
        state = self._session(event)
        p = event.payload
        error_type = str(p.get("error_type", "")) or "error"
        state.session.add_event("power_loop.agent_error", {"error_type": error_type}, timestamp=_ns(event))
        self._error(state.session, f"{error_type}: {p.get('error', '')}")

    def _cancelled(self, event: AgentEvent) -> None:
        state = self._session(event)
        reason = str(event.payload.get("reason", "cancelled"))
        state.session.set_attribute("power_loop.cancelled", True)
        state.session.add_event("power_loop.cancelled", {"reason": reason}, timestamp=_ns(event))

    def _subagent_start(self, event: AgentEvent) -> None:
        child = event.payload.get("sub_session_id")
        state = self._open.get(event.session_id)
        if not child or state is None:
            return
        spawns = [span for name, span in state.calls.values() if name == "spawn_agent"]
        self._sub_parents[str(child)] = spawns[-1] if spawns else self._parent(state)


def attach_otel_sink(bus: EventBusProtocol, *, tracer: Tracer | None = None) -> OtelSpanBridge:
    """Feed ``bus`` events into a new :class:`OtelSpanBridge`; ``bridge.close()`` detaches it.

    ``tracer`` defaults to ``opentelemetry.trace.get_tracer("power_loop")`` (the global provider). Needs
    ``pip install opentelemetry-sdk`` (the ``otel`` extra of a checkout).
    """
    if tracer is None:
        tracer = _import_trace().get_tracer("power_loop")
    bridge = OtelSpanBridge(tracer)
    bridge._detach = subscribe_filtered(bus, bridge.handle, None, default=bridge.routes)
    return bridge
