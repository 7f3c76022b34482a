"""Logging sink: one JSON record per event on a stdlib logger, redacted, filterable, detachable."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from obs_scenario import assert_no_secrets, run_scenario

from power_loop import AgentEventBus
from power_loop.contrib.logging_sink import DEFAULT_LOGGER_NAME, attach_logging_sink, event_log_record
from power_loop.events import AgentEvent


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected() -> object:
    logger = logging.getLogger(DEFAULT_LOGGER_NAME)
    handler = _Collect()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


async def test_records_are_json_lines_without_secrets(tmp_path: Path, collected: _Collect) -> None:
    bus = AgentEventBus()
    detach = attach_logging_sink(bus)
    await run_scenario(bus, tmp_path / "x.db")
    detach()

    records = collected.records
    assert records and all(r.levelno == logging.INFO and r.name == "power_loop.events" for r in records)
    messages = [r.getMessage() for r in records]
    assert_no_secrets("\n".join(messages))
    parsed = [json.loads(m) for m in messages]
    assert parsed[0]["event"] == "session_started" and parsed[-1]["event"] == "session_ended"
    seqs = [p["seq"] for p in parsed]
    assert seqs == sorted(seqs)
    failed = next(p for p in parsed if p["event"] == "tool_call_failed")
    assert set(failed) == {"event", "seq", "ts", "session_id", "round_index", "payload"}
    assert failed["payload"]["name"] == "boom" and "***" in failed["payload"]["output"]
    assert "round_index" not in parsed[0]  # optional fields only when set
    assert records[0].power_loop_event == parsed[0]  # type: ignore[attr-defined]

    count = len(records)
    bus.publish(AgentEvent("system_log", {"message": "after detach"}))
    assert len(records) == count


def test_custom_logger_level_filter_and_field_cap(collected: _Collect) -> None:
    bus = AgentEventBus()
    logger = logging.getLogger("tests.contrib.custom")
    handler = _Collect()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        attach_logging_sink(
            bus, logger=logger, level=logging.WARNING, events=["agent_error"], max_field_len=8
        )
        bus.publish(AgentEvent("system_log", {"message": "ignored"}))
        bus.publish(
            AgentEvent("agent_error", {"error": "e" * 20, "error_type": "X"}, session_id="s", source="sub")
        )
    finally:
        logger.removeHandler(handler)
    assert len(handler.records) == 1 and not collected.records
    record = handler.records[0]
    assert record.levelno == logging.WARNING
    body = json.loads(record.getMessage())
    assert body["source"] == "sub" and body["payload"]["error"] == "e" * 8 + "…(+12)"


def test_nothing_is_serialised_when_the_level_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    import power_loop.contrib.logging_sink as module

    built: list[AgentEvent] = []
    real = module.event_log_record
    monkeypatch.setattr(
        module, "event_log_record", lambda event, **kw: built.append(event) or real(event, **kw)
    )
    bus = AgentEventBus()
    logger = logging.getLogger("tests.contrib.quiet")
    logger.setLevel(logging.ERROR)
    attach_logging_sink(bus, logger=logger)  # INFO < ERROR: skipped before any work
    bus.publish(AgentEvent("system_log", {"message": "x"}))
    assert built == []
    logger.setLevel(logging.INFO)
    bus.publish(AgentEvent("system_log", {"message": "y"}))
    assert [e.payload["message"] for e in built] == ["y"]


def test_event_log_record_shape() -> None:
    event = AgentEvent(
        "tool_call_started", {"name": "t", "tool_input": {"password": "pw"}}, session_id="s", round_index=2
    )
    record = event_log_record(event)
    assert record == {
        "event": "tool_call_started",
        "seq": event.seq,
        "ts": event.ts,
        "session_id": "s",
        "round_index": 2,
        "payload": {"name": "t", "tool_input": {"password": "***"}},
    }
