"""OpenTelemetry sink: the span tree of a real send, error statuses, lifecycle edge cases."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from obs_scenario import assert_no_secrets, run_scenario, script
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from power_loop import AgentEventBus
from power_loop.contrib.otel_sink import OtelSpanBridge, attach_otel_sink
from power_loop.errors import MissingDependencyError
from power_loop.events import AgentEvent
from power_loop.testing import ScriptedLLM


@pytest.fixture
def exporter_and_tracer() -> tuple[InMemorySpanExporter, object]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider.get_tracer("tests")


def _children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


async def test_a_send_becomes_session_round_and_call_spans(
    tmp_path: Path, exporter_and_tracer: tuple
) -> None:
    exporter, tracer = exporter_and_tracer
    bus = AgentEventBus()
    bridge = attach_otel_sink(bus, tracer=tracer)  # type: ignore[arg-type]
    llm = ScriptedLLM([ScriptedLLM.error(ConnectionError("flaky")), *script()])  # type: ignore[list-item]
    result = await run_scenario(bus, tmp_path / "x.db", llm=llm)
    assert bridge.open_sessions == 0
    spans = list(exporter.get_finished_spans())

    sessions = [s for s in spans if s.name == "power_loop.session"]
    assert len(sessions) == 1
    session = sessions[0]
    assert session.parent is None
    assert session.attributes["power_loop.session_id"] == result.session_id
    assert session.attributes["power_loop.end_reason"] == "completed"
    assert session.attributes["power_loop.usage.total_tokens"] == 30
    assert session.status.status_code is StatusCode.UNSET

    rounds = sorted(_children(spans, session), key=lambda s: s.attributes["power_loop.round_index"])
    assert [r.name for r in rounds] == ["power_loop.round", "power_loop.round"]
    assert [r.attributes["power_loop.round_index"] for r in rounds] == [0, 1]
    first, second = rounds
    assert sorted(s.name for s in _children(spans, first)) == [
        "power_loop.llm_call",
        "power_loop.llm_call",  # the failed attempt and its retry
        "power_loop.tool_call",
        "power_loop.tool_call",
    ]
    assert [e.name for e in first.events] == ["power_loop.llm_retry"]
    assert [s.name for s in _children(spans, second)] == ["power_loop.llm_call"]

    llm_calls = [s for s in _children(spans, first) if s.name == "power_loop.llm_call"]
    assert sorted(s.status.status_code.name for s in llm_calls) == ["ERROR", "UNSET"]
    tools = {
        s.attributes["power_loop.tool.name"]: s
        for s in _children(spans, first)
        if s.name == "power_loop.tool_call"
    }
    assert tools["boom"].status.status_code is StatusCode.ERROR
    assert tools["boom"].attributes["power_loop.tool.failed"] is True
    assert "RuntimeError" in (tools["boom"].status.description or "")
    assert tools["lookup"].status.status_code is StatusCode.UNSET
    for span in spans:  # children start and end within their parents
        parent = next((p for p in spans if span.parent and p.context.span_id == span.parent.span_id), None)
        if parent is not None:
            assert parent.start_time <= span.start_time <= span.end_time <= parent.end_time
    # No secret in any attribute, status or span event.
    blob = repr([(s.attributes, s.status.description, [e.attributes for e in s.events]) for s in spans])
    assert_no_secrets(blob)
    assert all(s.context.trace_id == session.context.trace_id for s in spans)


async def test_error_and_degraded_sessions_are_marked(tmp_path: Path, exporter_and_tracer: tuple) -> None:
    exporter, tracer = exporter_and_tracer
    bus = AgentEventBus()
    attach_otel_sink(bus, tracer=tracer)  # type: ignore[arg-type]
    llm = ScriptedLLM(
        [ScriptedLLM.error(ConnectionError("down")), ScriptedLLM.error(ConnectionError("down"))]
    )
    result = await run_scenario(bus, tmp_path / "x.db", llm=llm)
    assert result.status == "degraded"
    spans = exporter.get_finished_spans()
    session = next(s for s in spans if s.name == "power_loop.session")
    assert session.status.status_code is StatusCode.ERROR
    assert session.attributes["power_loop.end_reason"] == "degraded"
    round_span = next(s for s in spans if s.name == "power_loop.round")
    assert round_span.status.status_code is StatusCode.ERROR


def test_agent_error_cancel_and_close_end_everything(exporter_and_tracer: tuple) -> None:
    exporter, tracer = exporter_and_tracer
    bus = AgentEventBus()
    bridge = attach_otel_sink(bus, tracer=tracer)  # type: ignore[arg-type]
    bus.publish(AgentEvent("round_started", {"round_index": 0}, session_id="late"))  # joined mid-send
    bus.publish(AgentEvent("tool_call_started", {"name": "slow", "tool_call_id": "c1"}, session_id="late"))
    bus.publish(AgentEvent("loop_cancelled", {"reason": "cancelled"}, session_id="late"))
    bus.publish(
        AgentEvent("agent_error", {"error": "password=oops", "error_type": "StoreError"}, session_id="late")
    )
    assert bridge.open_sessions == 1 and exporter.get_finished_spans() == ()
    bridge.close()
    bridge.close()
    assert bridge.open_sessions == 0 and not bus.wants("round_started")
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"power_loop.session", "power_loop.round", "power_loop.tool_call"}
    session = spans["power_loop.session"]
    assert session.status.status_code is StatusCode.ERROR and "oops" not in (session.status.description or "")
    assert session.attributes["power_loop.cancelled"] is True
    assert [e.name for e in session.events] == ["power_loop.cancelled", "power_loop.agent_error"]
    assert spans["power_loop.tool_call"].parent.span_id == spans["power_loop.round"].context.span_id


def test_subagent_session_nests_under_the_spawn_tool_span(exporter_and_tracer: tuple) -> None:
    exporter, tracer = exporter_and_tracer
    bridge = OtelSpanBridge(tracer)  # type: ignore[arg-type]
    for event in [
        AgentEvent("session_started", session_id="parent"),
        AgentEvent("round_started", {"round_index": 0}, session_id="parent"),
        AgentEvent("tool_call_started", {"name": "spawn_agent", "tool_call_id": "s1"}, session_id="parent"),
        AgentEvent("subagent_task_start", {"sub_session_id": "child", "task": "t"}, session_id="parent"),
        AgentEvent("session_started", session_id="child"),
        AgentEvent("session_ended", {"reason": "completed"}, session_id="child"),
        AgentEvent("tool_call_completed", {"name": "spawn_agent", "tool_call_id": "s1"}, session_id="parent"),
        AgentEvent("round_completed", {"round_index": 0}, session_id="parent"),
        AgentEvent("session_ended", {"reason": "completed"}, session_id="parent"),
        AgentEvent("stream_delta", {"text": "ignored"}, session_id="parent"),
    ]:
        bridge.handle(event)
    spans = exporter.get_finished_spans()
    by_session = {(s.name, s.attributes["power_loop.session_id"]): s for s in spans}
    child = by_session[("power_loop.session", "child")]
    spawn = by_session[("power_loop.tool_call", "parent")]
    assert child.parent is not None and child.parent.span_id == spawn.context.span_id
    assert len(spans) == 4


def test_a_restarted_session_closes_the_stale_span(exporter_and_tracer: tuple) -> None:
    exporter, tracer = exporter_and_tracer
    bridge = OtelSpanBridge(tracer)  # type: ignore[arg-type]
    bridge.handle(AgentEvent("session_started", session_id="s"))
    bridge.handle(AgentEvent("session_started", session_id="s"))
    assert len(exporter.get_finished_spans()) == 1 and bridge.open_sessions == 1


def test_default_tracer_and_missing_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    bridge = attach_otel_sink(AgentEventBus())  # the global (no-op unless configured) provider
    assert bridge.tracer is not None
    bridge.close()
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(MissingDependencyError, match=r"pip install opentelemetry-sdk .*'\.\[otel\]'"):
        attach_otel_sink(AgentEventBus())
