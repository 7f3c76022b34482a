"""Metrics sink over the in-memory fake, a real prometheus_client registry and StatsD (fake + real UDP)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from obs_scenario import run_scenario, script

from power_loop import AgentEventBus
from power_loop.contrib.metrics_sink import (
    InMemoryMetricsBackend,
    MetricsBackend,
    PrometheusBackend,
    StatsDBackend,
    attach_metrics_sink,
)
from power_loop.errors import ConfigError, MissingDependencyError
from power_loop.events import AgentEvent
from power_loop.testing import ScriptedLLM


def _retrying_llm() -> ScriptedLLM:
    # One provider failure (retried) before the usual script.
    return ScriptedLLM([ScriptedLLM.error(ConnectionError("flaky")), *script()])  # type: ignore[list-item]


async def test_in_memory_backend_after_a_real_send(tmp_path: Path) -> None:
    bus = AgentEventBus()
    metrics = InMemoryMetricsBackend()
    detach = attach_metrics_sink(bus, metrics)
    assert isinstance(metrics, MetricsBackend)
    assert not bus.wants("stream_delta")  # the sink only subscribes to what it uses
    await run_scenario(bus, tmp_path / "x.db", llm=_retrying_llm())
    detach()
    assert not bus.wants("llm_call_completed")

    assert metrics.value("power_loop_llm_calls", {"model": "unknown", "success": "true"}) == 2
    assert metrics.value("power_loop_llm_calls", {"model": "unknown", "success": "false"}) == 1
    assert len(metrics.observed("power_loop_llm_call_duration_ms")) == 3
    assert metrics.value("power_loop_llm_retries", {"error_type": "ConnectionError"}) == 1
    assert metrics.value("power_loop_tool_calls", {"tool": "lookup", "success": "true"}) == 1
    assert metrics.value("power_loop_tool_calls", {"tool": "boom", "success": "false"}) == 1
    assert metrics.value("power_loop_tool_calls") == 2  # the failure is counted once
    assert metrics.value("power_loop_rounds") == 2
    assert metrics.observed("power_loop_usage_total_tokens") == [15.0, 15.0]
    assert metrics.value("power_loop_errors") == 0
    assert metrics.names() == {
        "power_loop_llm_calls",
        "power_loop_llm_call_duration_ms",
        "power_loop_llm_retries",
        "power_loop_tool_calls",
        "power_loop_rounds",
        "power_loop_usage_total_tokens",
    }


def test_errors_prefix_filter_and_usage_fallback() -> None:
    bus = AgentEventBus()
    metrics = InMemoryMetricsBackend()
    attach_metrics_sink(bus, metrics, prefix="app", events=["agent_error", "llm_degraded", "usage_updated"])
    bus.publish(AgentEvent("agent_error", {"error": "x", "error_type": "StoreError"}))
    bus.publish(AgentEvent("llm_degraded", {"reason": "timeout", "error_type": "LLMTimeout"}))
    bus.publish(AgentEvent("usage_updated", {"usage": {"prompt_tokens": 7, "completion_tokens": 3}}))
    bus.publish(AgentEvent("usage_updated", {"usage": {}}))
    bus.publish(AgentEvent("round_started", {"round_index": 0}))  # not in events=
    assert metrics.value("app_errors", {"error_type": "StoreError"}) == 1
    assert metrics.value("app_errors", {"error_type": "LLMTimeout"}) == 1
    assert metrics.observed("app_usage_total_tokens") == [10.0]
    assert metrics.value("app_rounds") == 0
    metrics.gauge("g", 3.5, {"a": "b"})
    assert metrics.gauge_value("g", {"a": "b"}) == 3.5 and metrics.gauge_value("g") is None


def test_backend_must_fit_the_protocol() -> None:
    with pytest.raises(ConfigError):
        attach_metrics_sink(AgentEventBus(), object())  # type: ignore[arg-type]


async def test_prometheus_backend_on_a_real_registry(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    bus = AgentEventBus()
    attach_metrics_sink(bus, PrometheusBackend(registry=registry))
    await run_scenario(bus, tmp_path / "x.db", llm=_retrying_llm())

    sample = registry.get_sample_value
    assert sample("power_loop_llm_calls_total", {"model": "unknown", "success": "true"}) == 2
    assert sample("power_loop_llm_calls_total", {"model": "unknown", "success": "false"}) == 1
    assert sample("power_loop_llm_call_duration_ms_count", {"model": "unknown"}) == 3
    assert sample("power_loop_llm_retries_total", {"error_type": "ConnectionError"}) == 1
    assert sample("power_loop_tool_calls_total", {"tool": "boom", "success": "false"}) == 1
    assert sample("power_loop_tool_calls_total", {"tool": "lookup", "success": "true"}) == 1
    assert sample("power_loop_rounds_total") == 2
    assert sample("power_loop_usage_total_tokens_sum") == 30
    assert sample("power_loop_usage_total_tokens_bucket", {"le": "16.0"}) == 2  # token buckets, not seconds
    exposition = generate_latest(registry).decode()
    assert 'power_loop_tool_calls_total{success="false",tool="boom"} 1.0' in exposition


def test_prometheus_gauge_and_conflicting_use() -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    backend = PrometheusBackend(registry=registry)
    backend.gauge("inflight", 4, {"pool": "a"})
    assert registry.get_sample_value("inflight", {"pool": "a"}) == 4
    with pytest.raises(ConfigError):
        backend.incr("inflight", 1, {"pool": "a"})
    with pytest.raises(ConfigError):
        backend.gauge("inflight", 1, {"other": "x"})


class _FakeStatsClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def incr(self, stat: str, count: int = 1) -> None:
        self.calls.append(("incr", stat, count))

    def timing(self, stat: str, delta: float) -> None:
        self.calls.append(("timing", stat, delta))

    def gauge(self, stat: str, value: float) -> None:
        self.calls.append(("gauge", stat, value))


async def test_statsd_backend_folds_labels_into_names(tmp_path: Path) -> None:
    client = _FakeStatsClient()
    bus = AgentEventBus()
    attach_metrics_sink(bus, StatsDBackend(client=client))
    await run_scenario(bus, tmp_path / "x.db")
    incrs = [(stat, n) for kind, stat, n in client.calls if kind == "incr"]
    assert ("power_loop_tool_calls.success_false.tool_boom", 1) in incrs
    assert ("power_loop_tool_calls.success_true.tool_lookup", 1) in incrs
    assert incrs.count(("power_loop_rounds", 1)) == 2
    timings = [stat for kind, stat, _ in client.calls if kind == "timing"]
    assert timings.count("power_loop_llm_call_duration_ms.model_unknown") == 2
    assert timings.count("power_loop_usage_total_tokens") == 2
    assert StatsDBackend.metric_name("m", {"tool": "a:b|c@d", "k": "v"}) == "m.k_v.tool_a_b_c_d"
    StatsDBackend(client=client).gauge("g", 2.0, {"x": "y"})
    assert client.calls[-1] == ("gauge", "g.x_y", 2.0)


def test_statsd_backend_over_a_real_udp_socket() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(5)
    try:
        port = server.getsockname()[1]
        bus = AgentEventBus()
        attach_metrics_sink(bus, StatsDBackend(host="127.0.0.1", port=port), prefix="svc")
        bus.publish(AgentEvent("tool_call_completed", {"name": "add", "failed": False}))
        bus.publish(
            AgentEvent("llm_call_completed", {"model": "gpt-x", "duration_ms": 12.5, "success": True})
        )
        datagrams = [server.recv(4096).decode() for _ in range(3)]
    finally:
        server.close()
    assert datagrams == [
        "svc_tool_calls.success_true.tool_add:1|c",
        "svc_llm_calls.model_gpt-x.success_true:1|c",
        "svc_llm_call_duration_ms.model_gpt-x:12.500000|ms",
    ]


@pytest.mark.parametrize(
    ("module", "build", "extra"),
    [
        ("prometheus_client", lambda: PrometheusBackend(), "prometheus"),
        ("statsd", lambda: StatsDBackend(), "statsd"),
    ],
)
def test_missing_sdk_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, build: Any, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependencyError, match=rf"pip install -e '\.\[{extra}\]'") as info:
        build()
    assert info.value.extra == extra
