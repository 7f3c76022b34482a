"""Turn events into counters and histograms on a pluggable :class:`MetricsBackend`.

Metrics (``<p>`` is ``prefix``, default ``power_loop``):

* ``<p>_llm_calls`` counter {model, success} and ``<p>_llm_call_duration_ms`` histogram {model}, from
  ``llm_call_completed`` (every attempt);
* ``<p>_llm_retries`` counter {error_type}, from ``llm_retry_attempted``;
* ``<p>_tool_calls`` counter {tool, success}, from ``tool_call_completed`` (so a failure counts once);
* ``<p>_rounds`` counter, from ``round_started``;
* ``<p>_errors`` counter {error_type}, from ``agent_error``, ``llm_degraded`` and ``memory_failed``;
* ``<p>_usage_total_tokens`` histogram, from ``usage_updated`` (one observation per LLM call).

Backends: :class:`PrometheusBackend` (``prometheus_client``), :class:`StatsDBackend` (``statsd``) and
:class:`InMemoryMetricsBackend` (no dependency; for tests and ad-hoc inspection). Label values never
carry payload text, so secrets cannot reach a metric.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigError, MissingDependencyError
from ..events import AgentEvent, AgentEventType, EventBusProtocol
from ._subscribe import subscribe_filtered

__all__ = [
    "InMemoryMetricsBackend",
    "MetricsBackend",
    "PrometheusBackend",
    "StatsDBackend",
    "attach_metrics_sink",
]

Labels = Mapping[str, str]
_LabelKey = tuple[tuple[str, str], ...]


@runtime_checkable
class MetricsBackend(Protocol):
    """Where the metrics sink writes: counters, histogram observations and gauges, with string labels."""

    def incr(self, name: str, value: float = 1, labels: Labels | None = None) -> None: ...

    def observe(self, name: str, value: float, labels: Labels | None = None) -> None: ...

    def gauge(self, name: str, value: float, labels: Labels | None = None) -> None: ...


def _key(labels: Labels | None) -> _LabelKey:
    return tuple(sorted((str(k), str(v)) for k, v in (labels or {}).items()))


class InMemoryMetricsBackend:
    """A :class:`MetricsBackend` that keeps everything in dicts (thread-safe); read it back with the helpers.

    ``counters``/``gauges`` map ``(name, sorted label pairs)`` to a number; ``observations`` to the list of
    observed values.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[tuple[str, _LabelKey], float] = {}
        self.observations: dict[tuple[str, _LabelKey], list[float]] = {}
        self.gauges: dict[tuple[str, _LabelKey], float] = {}

    def incr(self, name: str, value: float = 1, labels: Labels | None = None) -> None:
        key = (name, _key(labels))
        with self._lock:
            self.counters[key] = self.counters.get(key, 0) + value

    def observe(self, name: str, value: float, labels: Labels | None = None) -> None:
        with self._lock:
            self.observations.setdefault((name, _key(labels)), []).append(value)

    def gauge(self, name: str, value: float, labels: Labels | None = None) -> None:
        with self._lock:
            self.gauges[(name, _key(labels))] = value

    def value(self, name: str, labels: Labels | None = None) -> float:
        """A counter's value for exactly ``labels``; with ``labels=None`` the sum over all label sets."""
        with self._lock:
            if labels is not None:
                return self.counters.get((name, _key(labels)), 0)
            return sum(v for (n, _), v in self.counters.items() if n == name)

    def observed(self, name: str, labels: Labels | None = None) -> list[float]:
        """Values observed for ``name`` (exact ``labels``, or all label sets when ``None``), in order."""
        with self._lock:
            if labels is not None:
                return list(self.observations.get((name, _key(labels)), []))
            return [v for (n, _), vs in self.observations.items() if n == name for v in vs]

    def gauge_value(self, name: str, labels: Labels | None = None) -> float | None:
        """The last value set for a gauge, or ``None``."""
        with self._lock:
            return self.gauges.get((name, _key(labels)))

    def names(self) -> set[str]:
        """Every metric name written so far."""
        with self._lock:
            return {n for (n, _) in (*self.counters, *self.observations, *self.gauges)}


# Histogram buckets suited to the two kinds of values the sink observes (prometheus defaults are seconds).
_MS_BUCKETS = (
    1.0,
    5.0,
    10.0,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1000.0,
    2500.0,
    5000.0,
    10000.0,
    30000.0,
    60000.0,
)
_TOKEN_BUCKETS = (16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0)


class PrometheusBackend:
    """A :class:`MetricsBackend` over ``prometheus_client``: ``incr`` → Counter, ``observe`` → Histogram,
    ``gauge`` → Gauge, created on first use with the label names of that first call.

    ``registry`` defaults to ``prometheus_client.REGISTRY`` (what ``start_http_server`` exposes); use one
    backend per registry, since a registry refuses a second metric of the same name. Names ending in
    ``_ms`` get millisecond buckets and ``_tokens`` token-count buckets. Counters are exposed by
    prometheus_client with a ``_total`` suffix.
    """

    def __init__(self, *, registry: Any = None) -> None:
        try:
            import prometheus_client
        except ImportError as exc:
            raise MissingDependencyError("prometheus-client", "prometheus", "PrometheusBackend") from exc
        self._prom = prometheus_client
        self.registry = registry if registry is not None else prometheus_client.REGISTRY
        self._metrics: dict[str, tuple[str, tuple[str, ...], Any]] = {}
        self._lock = threading.Lock()

    def _metric(self, kind: str, name: str, labels: Labels | None) -> Any:
        label_names = tuple(sorted(labels or ()))
        with self._lock:
            known = self._metrics.get(name)
            if known is None:
                metric = self._create(kind, name, label_names)
                self._metrics[name] = (kind, label_names, metric)
            else:
                known_kind, known_labels, metric = known
                if (known_kind, known_labels) != (kind, label_names):
                    raise ConfigError(
                        f"metric {name!r} was first used as a {known_kind} with labels {list(known_labels)}, "
                        f"now as a {kind} with labels {list(label_names)}"
                    )
        return metric.labels(**labels) if labels else metric

    def _create(self, kind: str, name: str, label_names: tuple[str, ...]) -> Any:
        doc = f"power_loop {name.replace('_', ' ')}"
        common: dict[str, Any] = {"labelnames": label_names, "registry": self.registry}
        if kind == "counter":
            return self._prom.Counter(name, doc, **common)
        if kind == "gauge":
            return self._prom.Gauge(name, doc, **common)
        if name.endswith("_ms"):
            common["buckets"] = _MS_BUCKETS
        elif name.endswith("_tokens"):
            common["buckets"] = _TOKEN_BUCKETS
        return self._prom.Histogram(name, doc, **common)

    def incr(self, name: str, value: float = 1, labels: Labels | None = None) -> None:
        self._metric("counter", name, labels).inc(value)

    def observe(self, name: str, value: float, labels: Labels | None = None) -> None:
        self._metric("histogram", name, labels).observe(value)

    def gauge(self, name: str, value: float, labels: Labels | None = None) -> None:
        self._metric("gauge", name, labels).set(value)


_STATSD_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


class StatsDBackend:
    """A :class:`MetricsBackend` over a ``statsd.StatsClient`` (UDP): ``incr`` → counter, ``observe`` →
    timer, ``gauge`` → gauge.

    StatsD has no labels, so they are folded into the name as ``.key_value`` (sorted by key; characters
    outside ``[A-Za-z0-9_-]`` become ``_``): ``power_loop_tool_calls.success_true.tool_add``. Pass
    ``client`` (anything with ``incr``/``timing``/``gauge``) to reuse a configured one; otherwise one is
    created for ``host:port``.
    """

    def __init__(self, *, client: Any = None, host: str = "127.0.0.1", port: int = 8125) -> None:
        if client is None:
            try:
                import statsd
            except ImportError as exc:
                raise MissingDependencyError("statsd", "statsd", "StatsDBackend") from exc
            client = statsd.StatsClient(host, port)
        self.client = client

    @staticmethod
    def metric_name(name: str, labels: Labels | None = None) -> str:
        """``name`` with ``labels`` folded in, as sent to StatsD."""
        parts = [name]
        for key, value in sorted((labels or {}).items()):
            parts.append(f"{_STATSD_UNSAFE.sub('_', str(key))}_{_STATSD_UNSAFE.sub('_', str(value))}")
        return ".".join(parts)

    def incr(self, name: str, value: float = 1, labels: Labels | None = None) -> None:
        self.client.incr(self.metric_name(name, labels), int(value))

    def observe(self, name: str, value: float, labels: Labels | None = None) -> None:
        self.client.timing(self.metric_name(name, labels), value)

    def gauge(self, name: str, value: float, labels: Labels | None = None) -> None:
        self.client.gauge(self.metric_name(name, labels), value)


def _flag(value: Any) -> str:
    return "true" if value else "false"


class _MetricsHandler:
    """Maps each handled event type to backend calls."""

    def __init__(self, backend: MetricsBackend, prefix: str) -> None:
        self.backend = backend
        self.p = f"{prefix}_" if prefix else ""
        ET = AgentEventType
        self.routes: dict[AgentEventType, Callable[[dict[str, Any]], None]] = {
            ET.LLM_CALL_COMPLETED: self._llm_call,
            ET.LLM_RETRY_ATTEMPTED: self._retry,
            ET.TOOL_CALL_COMPLETED: self._tool_call,
            ET.ROUND_STARTED: self._round,
            ET.AGENT_ERROR: self._error,
            ET.LLM_DEGRADED: self._error,
            ET.MEMORY_FAILED: self._error,
            ET.USAGE_UPDATED: self._usage,
        }

    def __call__(self, event: AgentEvent) -> None:
        route = self.routes.get(event.type)
        if route is not None:
            route(event.payload)

    def _llm_call(self, p: dict[str, Any]) -> None:
        model = str(p.get("model") or "unknown")
        self.backend.incr(f"{self.p}llm_calls", 1, {"model": model, "success": _flag(p.get("success", True))})
        duration = p.get("duration_ms")
        if isinstance(duration, (int, float)):
            self.backend.observe(f"{self.p}llm_call_duration_ms", float(duration), {"model": model})

    def _retry(self, p: dict[str, Any]) -> None:
        self.backend.incr(f"{self.p}llm_retries", 1, {"error_type": str(p.get("error_type") or "unknown")})

    def _tool_call(self, p: dict[str, Any]) -> None:
        # tool_call_completed is the terminal event of every call (tool_call_failed precedes it), so
        # counting only here counts each failure once.
        labels = {"tool": str(p.get("name") or "unknown"), "success": _flag(not p.get("failed", False))}
        self.backend.incr(f"{self.p}tool_calls", 1, labels)

    def _round(self, p: dict[str, Any]) -> None:
        self.backend.incr(f"{self.p}rounds", 1)

    def _error(self, p: dict[str, Any]) -> None:
        self.backend.incr(f"{self.p}errors", 1, {"error_type": str(p.get("error_type") or "unknown")})

    def _usage(self, p: dict[str, Any]) -> None:
        usage = p.get("usage") or {}
        total = usage.get("total_tokens")
        if not isinstance(total, (int, float)):
            parts = [usage.get("prompt_tokens"), usage.get("completion_tokens")]
            if not any(isinstance(x, (int, float)) for x in parts):
                return
            total = sum(x for x in parts if isinstance(x, (int, float)))
        self.backend.observe(f"{self.p}usage_total_tokens", float(total))


def attach_metrics_sink(
    bus: EventBusProtocol,
    backend: MetricsBackend,
    *,
    prefix: str = "power_loop",
    events: Iterable[AgentEventType | str] | None = None,
) -> Callable[[], None]:
    """Record the metrics of the module table on ``backend``; returns a function that detaches the sink.

    Only the event types the sink uses are subscribed (narrowed further by ``events``), so other events
    are never built on its account.
    """
    if not isinstance(backend, MetricsBackend):
        raise ConfigError(f"backend must have incr/observe/gauge methods, got {type(backend).__name__}")
    handler = _MetricsHandler(backend, prefix)
    return subscribe_filtered(bus, handler, events, default=handler.routes)
