"""The pipeline decides, the loop acts: decisions are computed from rows alone, and the context
package neither fires hooks nor publishes events."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import power_loop.context as context_pkg
from power_loop.context import (
    METADATA_KEY,
    STATE_KEY,
    ContextPipeline,
    FoldCommit,
    FoldContext,
    FoldFailure,
    FoldResult,
    LLMSummaryFold,
    NoteOp,
)
from power_loop.loop._cache import SessionWindow
from power_loop.store import MessageRow, MessageState

WORDS = "lorem ipsum dolor sit amet " * 12


def _row(seq: int, send: int, role: str, content: str, **kw: Any) -> MessageRow:
    return MessageRow(
        session_id="s",
        seq=seq,
        role=role,
        name=kw.get("name"),
        content=content,
        tool_calls=None,
        tool_call_id=None,
        round_index=0,
        state=MessageState.ACTIVE,
        meta=kw.get("meta", {}),
        created_at=0,
        send_index=send,
    )


def _rows(sends: int) -> list[MessageRow]:
    rows: list[MessageRow] = []
    for i in range(1, sends + 1):
        rows.append(_row(len(rows) + 1, i, "user", f"q{i} {WORDS}"))
        rows.append(_row(len(rows) + 1, i, "assistant", f"a{i} {WORDS}"))
    rows.append(_row(len(rows) + 1, sends + 1, "user", "now"))
    return rows


def _window(rows: list[MessageRow]) -> SessionWindow:
    return SessionWindow(messages=[], next_seq=rows[-1].seq + 1, system_prompt=None, send_index=6)


class _Fixed:
    keep_last_sends = 2
    trigger_ratio = 0.5
    fold_id = "fixed"

    def __init__(self, result: Any) -> None:
        self.result = result
        self.offered: list[int] = []

    async def fold(self, context: FoldContext) -> FoldResult | None:
        self.offered = [s.send_index for s in context.sends]
        return self.result  # type: ignore[no-any-return]


async def test_fold_decisions_come_from_rows_alone() -> None:
    strategy = _Fixed(FoldResult(summary=" gist ", note_ops=(NoteOp("add", "fact"),)))
    pipeline = ContextPipeline(fold=strategy, context_tokens=400, calibrate=False)
    rows = _rows(5)
    window = _window(rows)
    switch = pipeline.attach_rows(window, rows, {METADATA_KEY: {"representation": "verbatim@1"}})
    assert switch is None and STATE_KEY in window.extra
    plan = pipeline.plan_fold(window)
    assert plan is not None and plan.send_indexes == (1, 2, 3) and plan.budget_tokens == 400
    commit = await pipeline.run_fold(plan, window, session_id="s", llm=None)
    assert isinstance(commit, FoldCommit) and strategy.offered == [1, 2, 3]
    assert (commit.from_seq, commit.to_seq, commit.folded_sends) == (1, 6, 3)
    assert commit.note.content == "gist" and commit.note.meta["to_send"] == 3
    assert commit.after_tokens < plan.before_tokens and commit.note_ops == (NoteOp("add", "fact"),)
    # Nothing changes until the loop has recorded the fold and says so.
    assert window.messages[0]["content"].startswith("q1")
    pipeline.apply_fold(window, commit, note_seq=12)
    assert "gist" in window.messages[0]["content"] and window.messages[1]["content"].startswith("q4")
    assert pipeline.plan_fold(window) is None  # under budget now


async def test_declined_and_under_budget_folds_are_decisions_too() -> None:
    rows = _rows(5)
    declining = ContextPipeline(fold=_Fixed(None), context_tokens=400)
    window = _window(rows)
    declining.attach_rows(window, rows, {})
    plan = declining.plan_fold(window)
    assert plan is not None
    failure = await declining.run_fold(plan, window, session_id="s", llm=None)
    assert failure == FoldFailure("skipped", "fold strategy declined", "fold strategy declined")
    roomy = ContextPipeline(fold=LLMSummaryFold(), context_tokens=100_000)
    window = _window(rows)
    roomy.attach_rows(window, rows, {})
    assert roomy.plan_fold(window) is None


def test_a_representation_switch_is_a_decision() -> None:
    rows = _rows(1)
    pipeline = ContextPipeline(calibrate=False)
    switch = pipeline.attach_rows(
        _window(rows), rows, {METADATA_KEY: {"representation": "projection@1", "calibration": {}}}
    )
    assert switch is not None and (switch.previous, switch.current) == ("projection@1", "verbatim@1")
    assert switch.metadata == {METADATA_KEY: {"representation": "verbatim@1", "calibration": {}}}


def test_the_context_package_neither_fires_hooks_nor_publishes_events() -> None:
    package = Path(context_pkg.__file__).parent
    offending = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [f"{'.' * node.level}{node.module or ''}"]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.lstrip(".").split(".")[0] in ("hooks", "events") or name.startswith(
                    ("power_loop.hooks", "power_loop.events")
                ):
                    offending.append(f"{path.name}: {name}")
    assert offending == []
