"""A user-written FoldStrategy: no LLM at all, just a running list of what the user asked.

A strategy is any object with ``keep_last_sends``, ``trigger_ratio``, ``fold_id`` and
``async fold(context) -> FoldResult | None``. It only decides; the pipeline writes the fold (one
transaction), keeps the audit log intact and rebuilds the same window in any process. Here the fold
also records a durable note (``NoteOp``), which the notes-backed memory shows on every later send.

Run it::

    python examples/21_context_custom_fold.py
"""

from __future__ import annotations

import asyncio
from typing import Any

from power_loop import StatefulAgentLoop
from power_loop.context import (
    ContextPipeline,
    FoldContext,
    FoldResult,
    FoldStrategy,
    NoteOp,
    NotesMemory,
    ProjectedRepresentation,
)
from power_loop.testing import ScriptedLLM


class AskedList:
    """Folds old sends into a bullet list of the user's questions (and notes how many were folded)."""

    keep_last_sends = 2
    trigger_ratio = 0.5
    fold_id = "asked_list"

    async def fold(self, context: FoldContext) -> FoldResult | None:
        lines = context.prior_summary.splitlines() if context.prior_summary else ["The user asked:"]
        for send in context.raw_sends:  # the sends as recorded (context.sends = as currently shown)
            asked = next((m["content"] for m in send.messages if m["role"] == "user"), "")
            lines.append(f"- #{send.send_index}: {asked[:60]}")
        last = context.sends[-1].send_index
        return FoldResult(
            summary="\n".join(lines),
            note_ops=(NoteOp("add", f"sends up to #{last} were folded by {self.fold_id}"),),
        )


async def main() -> None:
    assert isinstance(AskedList(), FoldStrategy)  # the Protocol is runtime-checkable
    rep = ProjectedRepresentation(max_chars=60)
    pipeline = ContextPipeline(representation=rep, fold=AskedList(), memory=NotesMemory(), context_tokens=300)

    def answer(request: Any) -> Any:
        # The newest plain user turn (recalled memory rides after it, named "memory_notes").
        asked = next(m for m in reversed(request.messages) if m["role"] == "user" and not m.get("name"))
        topic = str(asked["content"]).split()[2]
        details = "Details. " * 20
        return ScriptedLLM.text(f"{topic.capitalize()} are handled by billing/{topic}.py. {details}")

    llm = ScriptedLLM(responder=answer)
    async with StatefulAgentLoop(llm=llm, dsn=":memory:", context=pipeline) as loop:
        sid = await loop.new_session()
        for topic in ["pricing", "refunds", "taxes", "currencies", "discounts", "exports"]:
            await loop.send(f"How do {topic} work in the billing service?", sid)
        store = await loop.ensure_store()
        print("What the model saw on the last send (window + memory at the end):")
        for msg in llm.requests[-1].messages:
            label = f"{msg['role']} ({msg['name']})" if msg.get("name") else msg["role"]
            print(f"--- {label}\n{msg['content'][:300]}")
        compactions = await store.list_compactions(sid)
        print(f"\nAudit log: {await store.count_messages(sid)} messages, compactions: {len(compactions)}")
        assert compactions, "the custom strategy folded older sends"
        assert any("folded by asked_list" in n.content for n in await store.list_notes(sid))


if __name__ == "__main__":
    asyncio.run(main())
