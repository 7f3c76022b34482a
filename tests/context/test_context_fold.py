"""Fold strategies on their own, and folding through the pipeline against every store backend."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from context_helpers import Driver, summary_llm

from power_loop.context import (
    AgenticFold,
    ContextPipeline,
    FoldContext,
    FoldResult,
    FoldStrategy,
    LLMSummaryFold,
    NoteOp,
    ProjectedRepresentation,
    SendView,
    VerbatimRepresentation,
    extract_summary,
    recall_compacted,
    recall_send,
    render_transcript,
)
from power_loop.errors import ConfigError
from power_loop.events import AgentEventBus, AgentEventType
from power_loop.hooks import AgentHooks, HookDirective, HookPoint
from power_loop.store import MessageState, SessionStore
from power_loop.testing import ScriptedLLM

SENDS = (
    SendView(1, ({"role": "user", "content": "my name is Ada"}, {"role": "assistant", "content": "hi Ada"})),
    SendView(2, ({"role": "user", "content": "use tabs"}, {"role": "assistant", "content": "ok"})),
)


def _ctx(**kw: Any) -> FoldContext:
    base: dict[str, Any] = {"session_id": "s", "sends": SENDS, "representation": VerbatimRepresentation()}
    base.update(kw)
    return FoldContext(**base)


def test_transcript_and_summary_extraction() -> None:
    text = render_transcript(SENDS, prior_summary="earlier stuff")
    assert text.index("<previous_summary>") < text.index("<send index=1>") < text.index("<send index=2>")
    assert "[user] my name is Ada" in text
    assert extract_summary("blah <summary>\n X \n</summary> tail") == "X"
    assert extract_summary("<summary>unterminated") == "unterminated"
    assert extract_summary("no tags") == "no tags"


async def test_llm_summary_fold_makes_one_call_at_temperature_zero() -> None:
    llm = ScriptedLLM(["<summary>Ada likes tabs</summary>"])
    fold = LLMSummaryFold(summary_max_tokens=321)
    assert isinstance(fold, FoldStrategy)
    result = await fold.fold(_ctx(llm=llm, prior_summary="before"))
    assert result == FoldResult(summary="Ada likes tabs")
    request = llm.last_request
    assert request.temperature == 0.0 and request.max_tokens == 321 and request.tools is None
    assert "my name is Ada" in request.messages[0]["content"] and "before" in request.messages[0]["content"]


async def test_summary_llm_takes_precedence_and_empty_summary_declines() -> None:
    own = ScriptedLLM(["<summary></summary>"])
    loop_llm = ScriptedLLM([])
    assert await LLMSummaryFold(summary_llm=own).fold(_ctx(llm=loop_llm)) is None
    assert len(own.requests) == 1 and not loop_llm.requests
    with pytest.raises(ConfigError):
        await LLMSummaryFold().fold(_ctx(llm=None))


async def test_agentic_fold_captures_notes_then_summarises() -> None:
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_calls(
                [
                    ("note_add", {"content": "user is Ada", "pinned": True}),
                    ("note_update", {"note_id": 99, "content": "x"}),
                ]
            ),
            ScriptedLLM.tool_call("note_add", {"content": "prefers tabs"}),
            "<summary>set-up done</summary>",
        ]
    )
    result = await AgenticFold(max_rounds=3).fold(_ctx(llm=llm))
    assert result is not None and result.summary == "set-up done"
    assert result.note_ops == (NoteOp("add", "user is Ada", True), NoteOp("add", "prefers tabs", None))
    second = llm.requests[1]
    tool_replies = [m["content"] for m in second.messages if m["role"] == "tool"]
    assert tool_replies == ["captured", "Error: no note with id 99"]
    assert llm.requests[0].tools is not None and llm.requests[0].temperature == 0.0


async def test_agentic_fold_forces_a_summary_after_max_rounds() -> None:
    llm = ScriptedLLM([ScriptedLLM.tool_call("note_add", {"content": "a"}), "<summary>final</summary>"])
    result = await AgenticFold(max_rounds=1).fold(_ctx(llm=llm))
    assert result is not None and result.summary == "final" and len(result.note_ops) == 1
    assert llm.requests[1].tools is None


async def test_agentic_fold_falls_back_to_a_plain_summary_without_notes() -> None:
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call("note_add", {"content": "kept?"}),
            ScriptedLLM.error(RuntimeError("provider hiccup")),
            "<summary>plain</summary>",
        ]
    )
    result = await AgenticFold().fold(_ctx(llm=llm))
    assert result == FoldResult(summary="plain")
    assert llm.requests[-1].tools is None


@pytest.mark.parametrize(
    "make",
    [
        lambda: LLMSummaryFold(keep_last_sends=0),
        lambda: LLMSummaryFold(trigger_ratio=0),
        lambda: LLMSummaryFold(trigger_ratio=1.5),
        lambda: LLMSummaryFold(summary_max_tokens=0),
        lambda: AgenticFold(max_rounds=0),
        lambda: NoteOp("delete"),  # type: ignore[arg-type]
        lambda: NoteOp("add"),
        lambda: NoteOp("update", content="x"),
    ],
)
def test_validation(make: Any) -> None:
    with pytest.raises(ConfigError):
        make()


# ---------------------------------------------------------------------------- through the pipeline

LONG = "lorem ipsum " * 20


async def _drive(store: SessionStore, pipeline: ContextPipeline, sends: int, **kw: Any) -> Driver:
    sid = await store.create_session()
    driver = Driver(store, sid, pipeline, llm=kw.pop("llm", summary_llm()), **kw)
    for i in range(sends):
        await driver.send(f"q{i} {LONG}", [[("grep", {"i": i}, f"result {i} " + LONG)]], final=f"answer {i}")
    return driver


@pytest.mark.parametrize("rep", [VerbatimRepresentation(), ProjectedRepresentation(max_chars=80)])
async def test_folds_keep_whole_sends_and_the_audit_log(store: SessionStore, rep: Any) -> None:
    pipeline = ContextPipeline(representation=rep, fold=LLMSummaryFold(keep_last_sends=2), context_tokens=900)
    driver = await _drive(store, pipeline, 9)
    folds = [o for o in driver.outcomes if o is not None and o.status == "folded"]
    assert folds, "the budget should have forced folds"
    rows = await store.load_all_messages(driver.sid)
    assert len([r for r in rows if r.name != "compact_note"]) == 9 * 4  # nothing lost
    states: dict[int, set[MessageState]] = {}
    for r in rows:
        if r.name != "compact_note":
            states.setdefault(r.send_index or 0, set()).add(r.state)
    assert all(len(s) == 1 for s in states.values()), "a send was split by a fold"
    assert states[9] == {MessageState.ACTIVE}
    active_notes = [r for r in rows if r.name == "compact_note" and r.state is MessageState.ACTIVE]
    assert len(active_notes) == 1 and active_notes[0].meta["from_send"] == 1
    assert driver.window is not None and driver.window.messages == await driver.cold_messages()
    comps = await store.list_compactions(driver.sid)
    assert len(comps) == len(folds) and all(c.before_tokens and c.after_tokens for c in comps)
    assert all(c.after_tokens < c.before_tokens for c in comps)  # type: ignore[operator]
    # Recall still returns the originals of a folded send.
    text = await recall_send(store, driver.sid, 1)
    assert f"q0 {LONG}" in text and f"result 0 {LONG}" in text and "compact_note" not in text
    found = await recall_compacted(store, driver.sid, query="RESULT 0", limit=5)
    assert found.startswith("1 of 1 compacted") and f"result 0 {LONG}" in found


async def test_fold_hooks_events_and_skip(store: SessionStore) -> None:
    hooks = AgentHooks()
    bus = AgentEventBus()
    seen: list[Any] = []
    bus.subscribe(AgentEventType.STATUS_CHANGED, lambda e: seen.append(e.data))
    after: list[tuple[int, int]] = []
    skip = {"on": True}

    def before(ctx: Any) -> HookDirective:
        return HookDirective.SKIP if skip["on"] else HookDirective.CONTINUE

    hooks.register(HookPoint.COMPACT_BEFORE, before)
    hooks.register(
        HookPoint.COMPACT_AFTER,
        lambda ctx: after.append((ctx.messages_before_count, ctx.messages_after_count)),
    )
    pipeline = ContextPipeline(fold=LLMSummaryFold(keep_last_sends=1), context_tokens=400)
    driver = await _drive(store, pipeline, 4, hooks=hooks, bus=bus)
    assert [o.status for o in driver.outcomes if o is not None] == ["skipped", "skipped"]
    assert not await store.list_compactions(driver.sid)
    skip["on"] = False
    await driver.send("next " + LONG)
    assert driver.outcomes[-1].status == "folded"
    assert after and after[0][1] < after[0][0]
    phases = [getattr(p, "phase", None) for p in seen]
    assert phases == ["skipped", "skipped", "started", "completed"]
    assert seen[-1].before_tokens > seen[-1].after_tokens > 0


class _Slow:
    keep_last_sends = 1
    trigger_ratio = 0.5
    fold_id = "slow"

    async def fold(self, context: FoldContext) -> FoldResult | None:
        await asyncio.sleep(10)
        return FoldResult(summary="never")


class _Broken:
    keep_last_sends = 1
    trigger_ratio = 0.5
    fold_id = "broken"

    async def fold(self, context: FoldContext) -> FoldResult | None:
        raise RuntimeError("summariser down")


class _Refusing:
    keep_last_sends = 1
    trigger_ratio = 0.5
    fold_id = "refusing"

    async def fold(self, context: FoldContext) -> FoldResult | None:
        from power_loop import CompactionFailed

        raise CompactionFailed("cannot summarise this")


@pytest.mark.parametrize(
    "strategy, reason",
    [(_Slow(), "timeout"), (_Broken(), "RuntimeError"), (_Refusing(), "CompactionFailed: cannot summarise")],
)
async def test_failed_folds_skip_with_an_event(store: SessionStore, strategy: Any, reason: str) -> None:
    bus = AgentEventBus()
    seen: list[Any] = []
    bus.subscribe(AgentEventType.STATUS_CHANGED, lambda e: seen.append(e.data))
    pipeline = ContextPipeline(fold=strategy, context_tokens=300, fold_timeout_s=0.05)
    driver = await _drive(store, pipeline, 3, bus=bus)
    failed = [o for o in driver.outcomes if o is not None]
    assert failed and all(o.status == "failed" and reason in o.reason for o in failed)
    assert [p.phase for p in seen if p.phase == "failed"] and reason in seen[-1].trigger
    assert not await store.list_compactions(driver.sid)
    assert len(await store.load_active_messages(driver.sid)) == 3 * 4  # every send still whole


class _KeepNewestOffered:
    """A user-written strategy: folds only the oldest offered send, with a fixed text and a note."""

    keep_last_sends = 1
    trigger_ratio = 0.5
    fold_id = "custom"

    def __init__(self) -> None:
        self.offered: list[list[int]] = []

    async def fold(self, context: FoldContext) -> FoldResult | None:
        indexes = [s.send_index for s in context.sends]
        self.offered.append(indexes)
        assert [s.send_index for s in context.raw_sends] == indexes
        return FoldResult(
            summary=f"custom through #{indexes[0]}",
            fold_through=indexes[0],
            note_ops=(NoteOp("add", f"folded #{indexes[0]}"), NoteOp("update", "x", note_id=404)),
        )


async def test_custom_strategy_fold_through_and_note_ops(store: SessionStore) -> None:
    strategy = _KeepNewestOffered()
    pipeline = ContextPipeline(representation=ProjectedRepresentation(), fold=strategy, context_tokens=300)
    driver = await _drive(store, pipeline, 4)
    folded = [o for o in driver.outcomes if o is not None and o.status == "folded"]
    assert folded and all(o.from_send == 1 for o in folded)
    assert [o.to_send for o in folded] == list(range(1, len(folded) + 1))
    assert all(o.notes_applied == 1 and o.note_problems == ("note #404 does not exist",) for o in folded)
    notes = await store.list_notes(driver.sid)
    assert [n.content for n in notes] == [f"folded #{i}" for i in range(1, len(folded) + 1)]
    assert driver.window is not None and driver.window.messages == await driver.cold_messages()


class _Bad:
    keep_last_sends = 1
    trigger_ratio = 0.5
    fold_id = "bad"

    def __init__(self, result: Any) -> None:
        self.result = result

    async def fold(self, context: FoldContext) -> Any:
        return self.result


@pytest.mark.parametrize(
    "result, status, reason",
    [
        (None, "skipped", "declined"),
        ("text", "failed", "not FoldResult"),
        (FoldResult(summary="  "), "failed", "empty summary"),
        (FoldResult(summary="s", fold_through=999), "failed", "not one of the offered"),
    ],
)
async def test_invalid_results_never_fold(store: SessionStore, result: Any, status: str, reason: str) -> None:
    pipeline = ContextPipeline(fold=_Bad(result), context_tokens=300)
    driver = await _drive(store, pipeline, 3)
    outcomes = [o for o in driver.outcomes if o is not None]
    assert outcomes and all(o.status == status and reason in o.reason for o in outcomes)
    assert not await store.list_compactions(driver.sid)


async def test_agentic_fold_notes_land_in_the_store(store: SessionStore) -> None:
    def respond(request: Any) -> Any:
        if request.tools and not any(m["role"] == "tool" for m in request.messages):
            return ScriptedLLM.tool_call("note_add", {"content": "durable fact"})
        return "<summary>agentic summary</summary>"

    llm = ScriptedLLM(responder=respond)
    pipeline = ContextPipeline(fold=AgenticFold(keep_last_sends=1), context_tokens=400)
    driver = await _drive(store, pipeline, 3, llm=llm)
    assert any(o is not None and o.status == "folded" for o in driver.outcomes)
    assert "durable fact" in [n.content for n in await store.list_notes(driver.sid)]
    assert "agentic summary" in driver.requests[-1][0]["content"]


def test_pipeline_rejects_non_protocol_parts() -> None:
    with pytest.raises(ConfigError):
        ContextPipeline(representation=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        ContextPipeline(fold=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        ContextPipeline(memory=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        ContextPipeline(context_tokens=0)
    with pytest.raises(ConfigError):
        ContextPipeline(fold_timeout_s=0)


async def test_record_compaction_also_seqs_is_atomic(store: SessionStore) -> None:
    from power_loop.errors import HistoryInvariantError
    from power_loop.store import NewMessage

    sid = await store.create_session()
    await store.append_messages(sid, [NewMessage(role="user", content="a")], begin_send=True)
    note1 = await store.record_compaction(
        sid, from_seq=1, to_seq=1, note=NewMessage(role="system", name="compact_note", content="s1")
    )
    call = {"id": "c1", "type": "function", "function": {"name": "t", "arguments": "{}"}}
    await store.append_messages(
        sid,
        [
            NewMessage(role="user", content="b"),
            NewMessage(role="assistant", content="", tool_calls=[call]),
            NewMessage(role="tool", content="r", tool_call_id="c1"),
        ],
        begin_send=True,
    )
    # Compacting the call (seq 4) without its result (seq 5) is refused and changes nothing.
    with pytest.raises(HistoryInvariantError):
        await store.record_compaction(
            sid,
            from_seq=3,
            to_seq=3,
            also_seqs=[4],
            note=NewMessage(role="system", name="compact_note", content="bad"),
        )
    assert [r.seq for r in await store.load_active_messages(sid)] == [2, 3, 4, 5]
    await store.record_compaction(
        sid,
        from_seq=3,
        to_seq=5,
        also_seqs=[note1.note_seq],
        note=NewMessage(role="system", name="compact_note", content="s2"),
    )
    active = await store.load_active_messages(sid)
    assert [(r.seq, r.content) for r in active] == [(6, "s2")]
    assert len(await store.list_compactions(sid)) == 2
