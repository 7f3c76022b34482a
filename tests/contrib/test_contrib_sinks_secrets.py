"""All sinks on one bus at once: no secret reaches any output; modules import with the stdlib only."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from obs_scenario import SECRETS, assert_no_secrets, run_scenario
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from power_loop import AgentEventBus
from power_loop.contrib.jsonl_sink import attach_jsonl_sink, replay
from power_loop.contrib.logging_sink import attach_logging_sink
from power_loop.contrib.metrics_sink import InMemoryMetricsBackend, attach_metrics_sink
from power_loop.contrib.otel_sink import attach_otel_sink
from power_loop.events import AgentEvent


async def test_no_sink_output_contains_a_secret(tmp_path: Path) -> None:
    bus = AgentEventBus()
    raw: list[str] = []
    bus.subscribe(None, lambda e: raw.append(json.dumps(e.to_dict(), default=str)))

    jsonl = attach_jsonl_sink(bus, tmp_path / "ev.jsonl", max_bytes=2048, backup_count=20)
    logger = logging.getLogger("tests.contrib.secrets")
    logger.setLevel(logging.DEBUG)
    log_lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: log_lines.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    detach_log = attach_logging_sink(bus, logger=logger)
    metrics = InMemoryMetricsBackend()
    attach_metrics_sink(bus, metrics)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel = attach_otel_sink(bus, tracer=provider.get_tracer("t"))
    try:
        await run_scenario(bus, tmp_path / "x.db")
        # An event stream from loop.stream() carries streamed argument fragments too.
        bus.publish(
            AgentEvent("tool_call_delta", {"index": 0, "name": "lookup", "arguments_delta": SECRETS[0][3:]})
        )
    finally:
        jsonl.close()
        detach_log()
        logger.removeHandler(handler)
        otel.close()

    # The raw events do carry the secrets, so the assertions below are meaningful.
    raw_text = "\n".join(raw)
    assert all(secret in raw_text for secret in SECRETS)

    _assert_rotated_files_clean(tmp_path)
    assert_no_secrets(json.dumps([e.to_dict() for e in replay(tmp_path / "ev.jsonl")]))
    assert log_lines and len(log_lines) == len(raw)
    assert_no_secrets("\n".join(log_lines))
    assert_no_secrets(repr((metrics.counters, metrics.observations, metrics.gauges)))
    spans = exporter.get_finished_spans()
    assert spans
    assert_no_secrets(
        repr([(s.name, s.attributes, s.status.description, [e.attributes for e in s.events]) for s in spans])
    )


def _assert_rotated_files_clean(directory: Path) -> None:
    files = sorted(directory.glob("ev.jsonl*"))
    assert len(files) > 1  # rotation happened; every file is checked
    assert_no_secrets("".join(f.read_text(encoding="utf-8") for f in files))


def test_contrib_modules_import_with_the_standard_library_only() -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'prometheus_client', 'statsd', 'opentelemetry'}:\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import power_loop.contrib, power_loop.contrib._redact\n"
        "import power_loop.contrib.jsonl_sink, power_loop.contrib.logging_sink\n"
        "import power_loop.contrib.metrics_sink, power_loop.contrib.otel_sink\n"
        "from power_loop.errors import MissingDependencyError\n"
        "from power_loop.contrib.metrics_sink import PrometheusBackend\n"
        "try:\n"
        "    PrometheusBackend()\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'prometheus_client', 'statsd', 'opentelemetry'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    lines = out.stdout.splitlines()
    assert lines == [
        "PrometheusBackend needs the optional package 'prometheus-client': pip install prometheus-client"
        " (from a power_loop checkout: pip install -e '.[prometheus]')",
        "[]",
    ]
