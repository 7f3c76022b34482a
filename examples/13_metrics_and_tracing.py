"""Metrics and tracing: counters and histograms per tool and round, OpenTelemetry spans per send.

`attach_metrics_sink` feeds a metrics backend (in memory here; `PrometheusBackend()` or
`StatsDBackend(host=..., port=...)` in production); `attach_otel_sink` turns sends, rounds and tool
calls into spans when `opentelemetry-sdk` is installed (skipped otherwise).

Run it::

    python examples/13_metrics_and_tracing.py
"""

from __future__ import annotations

import asyncio
from typing import Any

from power_loop import AgentEventBus, StatefulAgentLoop, ToolRegistry
from power_loop.contrib.metrics_sink import InMemoryMetricsBackend, attach_metrics_sink
from power_loop.testing import ScriptedLLM

tools = ToolRegistry()


@tools.tool
def flaky() -> str:
    """Always fails."""
    raise RuntimeError("service unavailable")


def otel_tracer() -> tuple[Any, Any] | None:
    """An in-memory OpenTelemetry exporter and tracer, or None without `opentelemetry-sdk`."""
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError:
        return None
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider.get_tracer("example")


async def main() -> None:
    bus = AgentEventBus()
    metrics = InMemoryMetricsBackend()
    detach_metrics = attach_metrics_sink(bus, metrics)
    otel = otel_tracer()
    if otel is not None:
        from power_loop.contrib.otel_sink import attach_otel_sink

        bridge = attach_otel_sink(bus, tracer=otel[1])

    llm = ScriptedLLM([ScriptedLLM.tool_call("flaky", {}), ScriptedLLM.text("The service is down.")])
    async with StatefulAgentLoop(llm=llm, dsn=":memory:", tool_registry=tools, event_bus=bus) as loop:
        await loop.send("Ping the service.", await loop.new_session())
    detach_metrics()

    print(
        "tool calls:",
        {labels: n for (name, labels), n in metrics.counters.items() if name.endswith("_tool_calls")},
    )
    print(
        "rounds:",
        metrics.value("power_loop_rounds"),
        "tokens:",
        metrics.observed("power_loop_usage_total_tokens"),
    )
    assert metrics.value("power_loop_tool_calls", {"tool": "flaky", "success": "false"}) == 1
    if otel is not None:
        bridge.close()
        spans = otel[0].get_finished_spans()
        print("otel spans:", ", ".join(f"{s.name}[{s.status.status_code.name}]" for s in spans))
    else:
        print("otel: skipped (pip install opentelemetry-sdk)")


if __name__ == "__main__":
    asyncio.run(main())
