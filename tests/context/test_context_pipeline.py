"""ContextPipeline: warm == cold windows, representation switches, calibration, tools, rebuilds."""

from __future__ import annotations

from typing import Any

import pytest
from context_helpers import Driver, summary_llm

from power_loop.context import (
    METADATA_KEY,
    STATE_KEY,
    ContextPipeline,
    LLMSummaryFold,
    NotesMemory,
    ProjectedRepresentation,
    VerbatimRepresentation,
    row_message,
)
from power_loop.events import AgentEventBus, AgentEventType
from power_loop.loop._cache import SessionWindow
from power_loop.loop._messages import row_to_message
from power_loop.store import NewMessage, SessionStore
from power_loop.tools import ToolDefinition, ToolRegistry

TEXT = "context " * 30


def _registry() -> ToolRegistry:
    registry = ToolRegistry()
    registry.register(
        ToolDefinition("grep", "search", project=lambda args, result: {"i": args.get("i"), "hits": 1}),
        lambda i: "",
    )
    return registry


async def _script(driver: Driver, sends: int) -> None:
    for i in range(sends):
        rounds = (
            [[("grep", {"i": i}, "hit " + TEXT)]]
            if i % 2
            else [[("grep", {"i": i}, "a"), ("grep", {"i": -i}, "b")]]
        )
        await driver.send(f"ask {i} " + TEXT, rounds, final=f"answer {i}")


@pytest.mark.parametrize("rep", [VerbatimRepresentation(), ProjectedRepresentation(max_chars=60)])
async def test_warm_and_cold_loops_send_identical_requests(store: SessionStore, rep: Any) -> None:
    def pipeline() -> ContextPipeline:
        return ContextPipeline(
            representation=rep,
            fold=LLMSummaryFold(keep_last_sends=2),
            memory=NotesMemory(),
            context_tokens=1200 if rep.kind == "verbatim" else 450,
        )

    registry = _registry()
    warm = Driver(store, await store.create_session(), pipeline(), llm=summary_llm(), registry=registry)
    cold = Driver(
        store, await store.create_session(), pipeline(), llm=summary_llm(), registry=registry, warm=False
    )
    for driver in (warm, cold):
        await store.add_note(driver.sid, "remember me")
        await _script(driver, 8)
    assert any(o is not None and o.status == "folded" for o in warm.outcomes)
    assert warm.requests == cold.requests
    assert [o and (o.status, o.from_send, o.to_send) for o in warm.outcomes] == [
        o and (o.status, o.from_send, o.to_send) for o in cold.outcomes
    ]
    assert warm.window is not None and warm.window.messages == await warm.cold_messages()


async def test_row_message_matches_the_engine_conversion(store: SessionStore) -> None:
    sid = await store.create_session()
    call = {"id": "c1", "type": "function", "function": {"name": "t", "arguments": "{}"}}
    await store.append_messages(
        sid,
        [
            NewMessage(role="user", content="hi", name="bob"),
            NewMessage(role="assistant", content="", tool_calls=[call]),
            NewMessage(role="tool", content=[{"type": "text", "text": "x"}], tool_call_id="c1", name="t"),
        ],
        begin_send=True,
    )
    for row in await store.load_all_messages(sid):
        converted = row_message(row)
        assert converted == row_to_message(row) and list(converted) == list(row_to_message(row))


async def test_representation_switch_is_recorded_once(store: SessionStore) -> None:
    bus = AgentEventBus()
    events: list[Any] = []
    bus.subscribe(AgentEventType.STATUS_CHANGED, lambda e: events.append(e.payload))
    sid = await store.create_session(metadata={"owner": "me"})
    verbatim = Driver(store, sid, ContextPipeline(calibrate=False), bus=bus)
    await verbatim.send("one", [[("grep", {"i": 1}, "found")]])
    session = await store.get_session(sid)
    assert session is not None and METADATA_KEY not in session.metadata  # verbatim is the default: no write
    projected = Driver(
        store, sid, ContextPipeline(representation=ProjectedRepresentation(), calibrate=False), bus=bus
    )
    await projected.send("two")
    await projected.send("three")
    session = await store.get_session(sid)
    assert session is not None
    assert session.metadata == {"owner": "me", METADATA_KEY: {"representation": "projection@1"}}
    assert events == [{"kind": "representation_switched", "from": "verbatim@1", "to": "projection@1"}]
    assert projected.requests[-1][:2] == [
        {"role": "user", "content": "[#1] one"},
        {"role": "assistant", "content": '#1 [tools] grep({"i":1}) → found\ndone'},
    ]
    # Switching back renders the same rows verbatim again: nothing was rewritten.
    back = Driver(store, sid, ContextPipeline(calibrate=False), bus=bus)
    await back.send("four")
    assert back.requests[-1][0] == {"role": "user", "content": "one"}
    assert len(events) == 2 and events[-1]["to"] == "verbatim@1"


async def test_calibration_is_persisted_and_restored(store: SessionStore) -> None:
    sid = await store.create_session()
    pipeline = ContextPipeline()
    driver = Driver(store, sid, pipeline)
    await driver.send("x " * 300)
    session = await store.get_session(sid)
    assert session is not None
    calibration = session.metadata[METADATA_KEY]["calibration"]
    assert calibration["m"]["samples"] == 1 and 2.0 < calibration["m"]["chars_per_token"] < 4.0
    state = driver.window.extra[STATE_KEY]  # type: ignore[union-attr]
    assert state.estimator.to_dict() == calibration
    other = Driver(store, sid, ContextPipeline())
    await other.send("y")
    restored = other.window.extra[STATE_KEY]  # type: ignore[union-attr]
    assert restored.estimator.samples("m") == 2
    # An uncalibrated pipeline never writes.
    sid2 = await store.create_session()
    await Driver(store, sid2, ContextPipeline(calibrate=False)).send("z")
    session2 = await store.get_session(sid2)
    assert session2 is not None and METADATA_KEY not in session2.metadata


async def test_estimate_follows_calibration(store: SessionStore) -> None:
    pipeline = ContextPipeline()
    window = SessionWindow(messages=[{"role": "user", "content": "a" * 400}], next_seq=2, system_prompt=None)
    base = pipeline.estimate(window)
    assert base == (16 + 400 + 3) // 4
    sid = await store.create_session()
    await store.append_messages(sid, [NewMessage(role="user", content="a" * 400)], begin_send=True)
    window.send_index = 1
    await Driver(store, sid, pipeline).driver_for(window).attach(recall=False)
    pipeline.observe(window, model="m", messages=window.messages, prompt_tokens=208)
    assert pipeline.estimate(window, model="m") == 208
    assert pipeline.estimate(window, model="other") == base


async def test_cache_tampering_falls_back_to_the_store(store: SessionStore) -> None:
    sid = await store.create_session()
    driver = Driver(store, sid, ContextPipeline(representation=ProjectedRepresentation(), calibrate=False))
    await driver.send("one", [[("grep", {}, "r")]])
    assert driver.window is not None
    # Something replaced the cached messages with raw rows (e.g. a reload after a concurrent write).
    driver.window.messages[:] = [row_message(r) for r in await store.load_active_messages(sid)]
    await driver.send("two")
    assert driver.requests[-1][0] == {"role": "user", "content": "[#1] one"}
    assert driver.window.messages == await driver.cold_messages()


async def test_rebuild_keeps_recalled_memory(store: SessionStore) -> None:
    sid = await store.create_session()
    await store.add_note(sid, "n")
    pipeline = ContextPipeline(memory=NotesMemory(), representation=ProjectedRepresentation())
    driver = Driver(store, sid, pipeline)
    await driver.send("one")
    await driver.send("two")
    assert driver.window is not None
    before = pipeline.request_messages(driver.window)
    pipeline.rebuild(driver.window, await store.load_active_messages(sid))
    assert pipeline.request_messages(driver.window) == before


def test_tool_registration() -> None:
    assert ContextPipeline().tool_names() == []
    assert ContextPipeline(fold=LLMSummaryFold()).tool_names() == ["recall_send", "recall_compacted"]
    assert ContextPipeline(representation=ProjectedRepresentation()).tool_names() == [
        "recall_send",
        "recall_compacted",
    ]
    pipeline = ContextPipeline(fold=LLMSummaryFold(), note_tools=True)
    registry = ToolRegistry()
    assert pipeline.register_tools(registry) == [
        "recall_send",
        "recall_compacted",
        "note_add",
        "note_update",
        "note_delete",
    ]
    assert pipeline.register_tools(registry) == []  # already there: left alone
    assert ContextPipeline.default().fold is not None
    assert "LLMSummaryFold" in repr(ContextPipeline.default())


async def test_recall_tools_read_the_calling_session(store: SessionStore) -> None:
    from power_loop.context import ToolRuntimeContext, use_tool_runtime_context
    from power_loop.tools import execute_tool_call

    registry = ToolRegistry()
    ContextPipeline(fold=LLMSummaryFold()).register_tools(registry)
    sid = await store.create_session()
    driver = Driver(store, sid, ContextPipeline(calibrate=False))
    await driver.send("first question", [[("grep", {"q": 1}, "first result")]], final="first answer")

    async def call(name: str, args: str) -> Any:
        call = {"id": "x", "type": "function", "function": {"name": name, "arguments": args}}
        return await execute_tool_call(registry, call)

    assert (await call("recall_send", '{"send_index": 1}')).failed  # no session outside a send
    with use_tool_runtime_context(ToolRuntimeContext(session_id=sid, store=store)):
        shown = (await call("recall_send", '{"send_index": 1}')).output
        assert shown.startswith("send #1 — 4 message(s)")
        for text in ("first question", "first result", "first answer", 'grep({"q": 1})'):
            assert text in shown
        assert (await call("recall_send", '{"send_index": 7}')).output == "send #7 has no messages"
        assert (await call("recall_compacted", "{}")).output == "0 of 0 compacted message(s)"
