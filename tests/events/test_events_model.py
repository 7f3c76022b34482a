"""AgentEventType, payload dataclasses and AgentEvent (stamping, lazy payload, round trip)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import power_loop.events as events_pkg
from power_loop.errors import ConfigError
from power_loop.events import (
    PAYLOAD_TYPES,
    AgentEvent,
    AgentEventType,
    BaseEventPayload,
    BudgetExceededStatusPayload,
    PhaseEventPayload,
    StatusChangedPayload,
    ToolCallStartedPayload,
)

PUBLISHED_TYPES = [
    "SESSION_STARTED", "SESSION_ENDED", "ROUND_STARTED", "ROUND_COMPLETED", "ROUND_TOOLS_PRESENT",
    "LLM_CALL_STARTED", "LLM_CALL_COMPLETED", "LLM_RETRY_ATTEMPTED", "LLM_DEGRADED", "LOOP_CANCELLED",
    "MEMORY_RECALLED", "MEMORY_FAILED", "STREAM_STARTED", "STREAM_DELTA", "STREAM_THINK_DELTA",
    "STREAM_COMPLETED", "TOOL_CALL_STARTED", "TOOL_CALL_COMPLETED", "TOOL_CALL_FAILED", "STATUS_CHANGED",
    "USAGE_UPDATED", "TIMER_FIRED", "TODO_UPDATED", "USER_NOTIFICATION", "AGENT_ERROR", "SYSTEM_LOG",
    "SUBAGENT_TASK_START", "SUBAGENT_TEXT", "SUBAGENT_LIMIT", "SUBAGENT_COMPLETED",
    "STEER_INTERRUPTED",  # published in 8.0.0 (31 members)
]  # fmt: skip


def test_event_types() -> None:
    names = [t.name for t in AgentEventType]
    assert names[:31] == PUBLISHED_TYPES
    assert names[31:] == [
        "TOOL_CALL_DELTA",
        "FOLLOW_UP_DELIVERED",
        "INPUT_REQUESTED",
        "SEND_COMPLETED",
        "WORKFLOW_STARTED",
        "WORKFLOW_COMPLETED",
        "WORKFLOW_STEP_STARTED",
        "WORKFLOW_STEP_COMPLETED",
    ]
    for t in AgentEventType:
        assert t.value == t.name.lower()
        assert str(t) == t.value


def test_every_type_has_a_payload_class() -> None:
    assert set(PAYLOAD_TYPES) == set(AgentEventType)
    assert PAYLOAD_TYPES[AgentEventType.STREAM_THINK_DELTA] is PAYLOAD_TYPES[AgentEventType.STREAM_DELTA]


def _payload_classes() -> list[type[BaseEventPayload]]:
    return sorted(
        {
            obj
            for obj in vars(events_pkg).values()
            if isinstance(obj, type) and issubclass(obj, BaseEventPayload) and obj is not BaseEventPayload
        },
        key=lambda c: c.__name__,
    )


@pytest.mark.parametrize("cls", _payload_classes(), ids=lambda c: c.__name__)
def test_payload_defaults_and_to_dict(cls: type[BaseEventPayload]) -> None:
    payload = cls()
    d = payload.to_dict()
    json.dumps(d)  # defaults are JSON-friendly
    if cls is PhaseEventPayload:
        assert d == {}
        return
    assert list(d) == [f.name for f in dataclasses.fields(cls)]
    for f in dataclasses.fields(cls):
        assert d[f.name] == getattr(payload, f.name)


def test_status_payload_kinds_and_published_fields() -> None:
    kinds = {
        c.__name__: c().kind
        for c in _payload_classes()
        if issubclass(c, StatusChangedPayload) and c is not StatusChangedPayload
    }
    assert kinds == {
        "AutoCompactStatusPayload": "auto_compact",
        "RoundUsageStatusPayload": "round_usage",
        "HitRoundLimitStatusPayload": "hit_round_limit",
        "BudgetExceededStatusPayload": "budget_exceeded",
    }
    assert BudgetExceededStatusPayload(budget_tokens=5).to_dict() == {
        "kind": "budget_exceeded",
        "budget_tokens": 5,
        "spent_tokens": 0,
        "rounds": 0,
    }
    assert events_pkg.LlmCallStartedPayload().to_dict() == {
        "call_id": "",
        "round_index": 0,
        "attempt": 1,
        "model": "",
    }
    assert PhaseEventPayload(values={"a": 1}).to_dict() == {"a": 1}


def test_seq_and_mono_strictly_increase() -> None:
    evs = [AgentEvent(AgentEventType.STREAM_DELTA) for _ in range(2000)]
    for a, b in itertools.pairwise(evs):
        assert b.seq > a.seq
        assert b.mono > a.mono
    assert all(e.ts > 0 for e in evs)


def test_seq_and_mono_strictly_increase_across_threads() -> None:
    out: list[AgentEvent] = []
    lock = threading.Lock()

    def make() -> None:
        local = [AgentEvent("system_log") for _ in range(500)]
        with lock:
            out.extend(local)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    by_seq = sorted(out, key=lambda e: e.seq)
    assert len({e.seq for e in out}) == len(out)
    for a, b in itertools.pairwise(by_seq):
        assert b.mono > a.mono  # the two stamps agree on order


def test_type_coercion() -> None:
    assert AgentEvent("tool_call_started").type is AgentEventType.TOOL_CALL_STARTED
    assert AgentEvent("TOOL_CALL_STARTED").type is AgentEventType.TOOL_CALL_STARTED
    with pytest.raises(ConfigError):
        AgentEvent("nope")


class CountingPayload(BaseEventPayload):
    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls = 0

    def to_dict(self) -> dict[str, Any]:
        self.calls += 1
        return {"n": self.calls}


def test_payload_dict_is_built_lazily_and_once() -> None:
    data = CountingPayload()
    ev = AgentEvent(AgentEventType.SYSTEM_LOG, data=data)
    assert data.calls == 0
    assert ev.payload == {"n": 1}
    assert ev.payload == {"n": 1}
    assert ev.to_dict()["payload"] == {"n": 1}
    assert data.calls == 1
    ev.payload = {"replaced": True}
    assert ev.payload == {"replaced": True}


def test_explicit_payload_wins_over_data() -> None:
    ev = AgentEvent("system_log", payload={"x": 1}, data=ToolCallStartedPayload(name="n"))
    assert ev.payload == {"x": 1}
    assert AgentEvent("system_log").payload == {}


def test_round_trip_preserves_stamps_and_does_not_advance_counter() -> None:
    ev = AgentEvent(
        AgentEventType.TOOL_CALL_STARTED,
        data=ToolCallStartedPayload(name="read", tool_input={"p": 1}, tool_call_id="c1"),
        session_id="s",
        round_index=2,
        stream_id="main",
        source="subagent",
    )
    d = json.loads(json.dumps(ev.to_dict()))
    assert d["type"] == "tool_call_started"
    assert d["payload"] == {"name": "read", "tool_input": {"p": 1}, "tool_call_id": "c1"}
    before = AgentEvent("system_log").seq
    back = AgentEvent.from_dict(d)
    after = AgentEvent("system_log").seq
    assert after == before + 1  # from_dict took no number
    assert (back.seq, back.ts, back.mono) == (ev.seq, ev.ts, ev.mono)
    assert back == ev
    assert back.to_dict() == ev.to_dict()


def test_from_dict_without_stamps_gets_fresh_ones() -> None:
    last = AgentEvent("system_log")
    ev = AgentEvent.from_dict({"type": "session_started", "payload": {"scope": "main"}})
    assert ev.seq > last.seq and ev.mono > last.mono and ev.ts > 0
    assert ev.payload == {"scope": "main"}


def test_equality_ignores_stamps_only() -> None:
    a = AgentEvent("round_started", payload={"round_index": 1}, session_id="s")
    b = AgentEvent("round_started", payload={"round_index": 1}, session_id="s")
    assert a.seq != b.seq and a == b
    assert a != AgentEvent("round_started", payload={"round_index": 1}, session_id="t")
    assert a != AgentEvent("round_started", payload={"round_index": 2}, session_id="s")
    assert a != AgentEvent("round_completed", payload={"round_index": 1}, session_id="s")
    with pytest.raises(TypeError):
        hash(a)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(list(AgentEventType)),
    st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=5),
    st.one_of(st.none(), st.text(max_size=10)),
    st.one_of(st.none(), st.integers(0, 1000)),
)
def test_round_trip_property(
    etype: AgentEventType, payload: dict[str, Any], session_id: str | None, round_index: int | None
) -> None:
    ev = AgentEvent(etype, payload=payload, session_id=session_id, round_index=round_index)
    back = AgentEvent.from_dict(json.loads(json.dumps(ev.to_dict())))
    assert back == ev
    assert back.to_dict() == ev.to_dict()
