"""Property tests over whole sessions: sends with tool calls, folds, recalls, notes, representation
switches, cache loss and export/import, checked after every step.

Invariants: (a) every request is structurally valid (checked inside the driver on each request);
(b) folds happen only at send boundaries and cover whole sends; (c) recall returns the exact
originals; (d) a warm window equals a cold rebuild from the store; (e) export → import preserves
everything the window is built from. Plus: over 30 long sends the request stays bounded while the
audit log keeps every message.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from context_helpers import Driver, summary_llm
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from power_loop.context import (
    STATE_KEY,
    ContextPipeline,
    LLMSummaryFold,
    NotesMemory,
    ProjectedRepresentation,
    VerbatimRepresentation,
    is_compact_note,
    recall_send,
    request_chars,
)
from power_loop.store import MessageState, SessionStore, open_store
from power_loop.tools import ToolDefinition, ToolRegistry

WORDS = st.text(alphabet="abcdefghij klmnop", min_size=1, max_size=120)


def _pipelines() -> dict[str, ContextPipeline]:
    fold = LLMSummaryFold(keep_last_sends=2)
    return {
        "verbatim": ContextPipeline(
            representation=VerbatimRepresentation(), fold=fold, memory=NotesMemory(), context_tokens=700
        ),
        "projection": ContextPipeline(
            representation=ProjectedRepresentation(max_chars=50),
            fold=fold,
            memory=NotesMemory(),
            context_tokens=350,
        ),
    }


def _registry() -> ToolRegistry:
    registry = ToolRegistry()
    registry.register(
        ToolDefinition("lookup", "look something up", project=lambda a, r: {"k": a.get("k")}), lambda k: ""
    )
    registry.register(ToolDefinition("shell", "run a command"), lambda cmd: "")
    return registry


async def check_fold_boundaries(store: SessionStore, sid: str) -> None:
    """(b): each summary note directly follows the opening user row of its send, and every send's
    rows share one state (a fold never splits a send and never touches the send it ran in)."""
    rows = await store.load_all_messages(sid)
    by_seq = {r.seq: r for r in rows}
    states: dict[int, set[MessageState]] = {}
    for row in rows:
        if is_compact_note(row):
            opener = by_seq.get(row.seq - 1)
            assert opener is not None and opener.role == "user" and opener.send_index == row.send_index
            assert row.meta["to_send"] < (row.send_index or 0)
        else:
            states.setdefault(row.send_index or 0, set()).add(row.state)
    assert all(len(s) == 1 for s in states.values()), states
    if states:
        assert states[max(states)] == {MessageState.ACTIVE}
    assert sum(1 for r in rows if is_compact_note(r) and r.state is MessageState.ACTIVE) <= 1


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.mkdtemp(prefix="plctx_")
        self.store: SessionStore = self.run(open_store(str(Path(self.tmp) / "s.db")))
        self.pipelines = _pipelines()
        self.registry = _registry()
        self.originals: dict[int, list[str]] = {}
        self.sends = 0
        self.calls = 0

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    @initialize(rep=st.sampled_from(["verbatim", "projection"]))
    def start(self, rep: str) -> None:
        sid = self.run(self.store.create_session())
        self.driver = Driver(self.store, sid, self.pipelines[rep], llm=summary_llm(), registry=self.registry)

    @rule(
        text=WORDS,
        rounds=st.lists(
            st.lists(st.tuples(st.sampled_from(["lookup", "shell"]), WORDS), min_size=1, max_size=3),
            max_size=2,
        ),
        final=WORDS,
    )
    def send(self, text: str, rounds: list[list[tuple[str, str]]], final: str) -> None:
        script = []
        contents = [text]
        for calls in rounds:
            batch = []
            for name, result in calls:
                self.calls += 1
                batch.append((name, {"k": self.calls}, f"{result} #{self.calls}"))
                contents.append(f"{result} #{self.calls}")
            script.append(batch)
        contents.append(final)
        outcome = self.run(self.driver.send(text, script, final=final))
        event(f"fold {outcome.status}" if outcome is not None else "no fold needed")
        self.sends += 1
        assert self.driver.window is not None
        self.originals[self.driver.window.send_index] = contents

    @rule()
    def lose_the_cache(self) -> None:
        self.driver.window = None

    @rule()
    def switch_representation(self) -> None:
        current = self.driver.pipeline.representation.kind
        self.driver.pipeline = self.pipelines["projection" if current == "verbatim" else "verbatim"]

    @rule(text=WORDS)
    def add_note(self, text: str) -> None:
        self.run(self.store.add_note(self.driver.sid, text))

    @rule(data=st.data())
    def recall(self, data: st.DataObject) -> None:
        if not self.originals:
            return
        index = data.draw(st.sampled_from(sorted(self.originals)))
        shown = self.run(recall_send(self.store, self.driver.sid, index, max_chars=10_000))
        for content in self.originals[index]:
            assert content in shown  # (c) the exact originals come back

    @rule()
    def export_import(self) -> None:
        archive = self.run(self.store.export_session(self.driver.sid))
        archive = json.loads(json.dumps(archive))
        copy_id = self.run(self.store.import_session(archive, new_session_id=self.driver.sid + "_copy"))
        original = self.run(self.driver.cold_messages())
        twin = Driver(self.store, copy_id, self.driver.pipeline, registry=self.registry)
        assert self.run(twin.cold_messages()) == original  # (e)
        assert (
            self.run(self.store.list_notes(copy_id)) != []
            or self.run(self.store.list_notes(self.driver.sid)) == []
        )
        self.run(self.store.close_session(copy_id))

    @invariant()
    def warm_equals_cold(self) -> None:
        if getattr(self, "driver", None) is None or self.driver.window is None:
            return
        state = self.driver.window.extra.get(STATE_KEY)
        if state is not None and state.rep_key != self.driver.pipeline.representation_key:
            return  # switched since the last send: the next send detects it and rebuilds
        assert self.driver.window.messages == self.run(self.driver.cold_messages())  # (d)

    @invariant()
    def folds_only_at_send_boundaries(self) -> None:
        if getattr(self, "driver", None) is not None:
            self.run(check_fold_boundaries(self.store, self.driver.sid))

    def teardown(self) -> None:
        try:
            self.run(self.store.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)


SessionMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_context_session_machine = SessionMachine.TestCase


async def test_thirty_long_sends_stay_bounded(store: SessionStore) -> None:
    pipeline = ContextPipeline(
        representation=ProjectedRepresentation(max_chars=120),
        fold=LLMSummaryFold(keep_last_sends=3),
        context_tokens=2000,
    )
    sid = await store.create_session()
    driver = Driver(store, sid, pipeline, llm=summary_llm(), registry=_registry())
    sizes: list[int] = []
    for i in range(30):
        big = f"send {i}: " + "the quick brown fox " * 150  # ~3,000 characters each way
        await driver.send(big, [[("shell", {"cmd": i}, "output " * 400)]], final="done " * 100)
        sizes.append(request_chars(driver.requests[-1]))
    assert await store.count_messages(sid) == 30 * 4 + len(await store.list_compactions(sid))
    assert max(sizes[10:]) <= 2 * max(sizes[:5])  # bounded, not growing with the session
    assert sizes[-1] < sum(sizes[:5])
    text = await recall_send(store, sid, 1, max_chars=100_000)
    assert "the quick brown fox " * 150 in text and "output " * 400 in text
