"""Observability sinks: JSONL (+ replay), logging, metrics and OpenTelemetry spans, with secrets redacted."""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from pathlib import Path

from power_loop import AgentEventBus, StatefulAgentLoop, ToolRegistry
from power_loop.contrib.jsonl_sink import attach_jsonl_sink, replay
from power_loop.contrib.logging_sink import attach_logging_sink
from power_loop.contrib.metrics_sink import InMemoryMetricsBackend, attach_metrics_sink
from power_loop.testing import ScriptedLLM

tools = ToolRegistry()


@tools.tool
def query_db(dsn: str, sql: str) -> str:
    """Run a query (pretend)."""
    return f"ran {sql!r} on {dsn}: 3 rows"


@tools.tool
def flaky() -> str:
    """Always fails."""
    raise RuntimeError("service unavailable")


def otel_tracer() -> tuple[object, object] | None:
    """An in-memory OpenTelemetry tracer, or None when the SDK (`opentelemetry-sdk`) is not installed."""
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


async def demo(workdir: Path) -> None:
    bus = AgentEventBus()

    # 1. JSON Lines, rotated at 64 KiB, secrets redacted.
    jsonl = attach_jsonl_sink(bus, workdir / "events.jsonl", max_bytes=64 * 1024)
    # 2. A log line per tool event (the default logger is "power_loop.events").
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="log  %(message).200s")
    detach_logs = attach_logging_sink(bus, events=["tool_call_completed"])
    # 3. Metrics; swap in PrometheusBackend() or StatsDBackend(host=..., port=...) in production.
    metrics = InMemoryMetricsBackend()
    detach_metrics = attach_metrics_sink(bus, metrics)
    # 4. OpenTelemetry spans (only when the SDK is installed).
    otel = otel_tracer()
    bridge = None
    if otel is not None:
        from power_loop.contrib.otel_sink import attach_otel_sink

        bridge = attach_otel_sink(bus, tracer=otel[1])  # type: ignore[arg-type]

    dsn_with_password = "postgresql://app:s3cr3t-pw@db.internal/app"
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_calls(
                [("query_db", {"dsn": dsn_with_password, "sql": "select 1"}), ("flaky", {})]
            ),
            ScriptedLLM.text("The query returned 3 rows; the other service is down."),
        ]
    )
    async with StatefulAgentLoop(
        llm=llm, dsn=str(workdir / "obs.db"), tool_registry=tools, event_bus=bus
    ) as loop:
        sid = await loop.new_session()
        result = await loop.send("Query the database and ping the service.", sid)

    jsonl.close()
    detach_logs()
    detach_metrics()
    print("answer:", result.final_text)
    print("usage:", result.usage)

    events = list(replay(workdir / "events.jsonl"))
    print(f"jsonl: {len(events)} events replayed, seq {events[0].seq}..{events[-1].seq}")
    text = (workdir / "events.jsonl").read_text(encoding="utf-8")
    assert "s3cr3t-pw" not in text and "app:***@db.internal" in text
    print("jsonl: the DSN password is stored as app:***@db.internal")

    print(
        "metrics: tool calls",
        {labels: n for (name, labels), n in metrics.counters.items() if name.endswith("_tool_calls")},
    )
    print(
        "metrics: rounds",
        metrics.value("power_loop_rounds"),
        "tokens",
        metrics.observed("power_loop_usage_total_tokens"),
    )
    assert metrics.value("power_loop_tool_calls", {"tool": "flaky", "success": "false"}) == 1

    if otel is not None and bridge is not None:
        bridge.close()
        spans = otel[0].get_finished_spans()  # type: ignore[attr-defined]
        print("otel:", ", ".join(f"{s.name}[{s.status.status_code.name}]" for s in spans))
    else:
        print("otel: skipped (pip install opentelemetry-sdk)")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # removed afterwards: the example leaves nothing behind
        await demo(Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
