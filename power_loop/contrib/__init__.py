"""Optional integrations, each imported explicitly (``from power_loop.contrib.jsonl_sink import ...``).

Observability sinks subscribe to a loop's :class:`~power_loop.events.AgentEventBus`:

* :mod:`power_loop.contrib.jsonl_sink` — one sanitised JSON event per line, size-rotated, and ``replay``.
* :mod:`power_loop.contrib.logging_sink` — events as JSON log records on a stdlib logger.
* :mod:`power_loop.contrib.metrics_sink` — counters/histograms for Prometheus, StatsD or an in-memory fake.
* :mod:`power_loop.contrib.otel_sink` — an OpenTelemetry span tree (session → round → llm/tool call).

``power_loop.contrib.mcp`` exposes the tools of an MCP server to a ``ToolRegistry``.

Every sink redacts secrets (see :mod:`power_loop.contrib._redact`). Nothing is imported eagerly here: the
modules import with the standard library only and load their optional SDK when first used.
"""

from __future__ import annotations

__all__: list[str] = []
