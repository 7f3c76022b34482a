"""Event sinks: every event of a send to a JSON Lines file (replayable, secrets redacted) and to logging.

Sinks subscribe to an `AgentEventBus` handed to the loop. Metrics and OpenTelemetry spans are in
`13_metrics_and_tracing.py`.

Run it::

    python examples/12_event_sinks.py
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from pathlib import Path

from power_loop import AgentEventBus, StatefulAgentLoop, ToolRegistry
from power_loop.contrib.jsonl_sink import attach_jsonl_sink, replay
from power_loop.contrib.logging_sink import attach_logging_sink
from power_loop.testing import ScriptedLLM

tools = ToolRegistry()


@tools.tool
def query_db(dsn: str, sql: str) -> str:
    """Run a query (pretend)."""
    return f"ran {sql!r} on {dsn}: 3 rows"


async def demo(workdir: Path) -> None:
    bus = AgentEventBus()
    # 1. JSON Lines, rotated at 64 KiB, secrets redacted.
    jsonl = attach_jsonl_sink(bus, workdir / "events.jsonl", max_bytes=64 * 1024)
    # 2. A log line per tool event (the default logger is "power_loop.events").
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="log  %(message).200s")
    detach_logs = attach_logging_sink(bus, events=["tool_call_completed"])

    dsn_with_password = "postgresql://app:s3cr3t-pw@db.internal/app"
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call("query_db", {"dsn": dsn_with_password, "sql": "select 1"}),
            ScriptedLLM.text("The query returned 3 rows."),
        ]
    )
    async with StatefulAgentLoop(llm=llm, dsn=":memory:", tool_registry=tools, event_bus=bus) as loop:
        result = await loop.send("Query the database.", await loop.new_session())
    jsonl.close()
    detach_logs()
    print("answer:", result.final_text)

    events = list(replay(workdir / "events.jsonl"))
    print(f"jsonl: {len(events)} events replayed, seq {events[0].seq}..{events[-1].seq}")
    print("jsonl: types", sorted({e.type.value for e in events})[:6], "...")
    text = (workdir / "events.jsonl").read_text(encoding="utf-8")
    assert "s3cr3t-pw" not in text and "app:***@db.internal" in text
    print("jsonl: the DSN password is stored as app:***@db.internal")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # removed afterwards: the example leaves nothing behind
        asyncio.run(demo(Path(tmp)))


if __name__ == "__main__":
    main()
