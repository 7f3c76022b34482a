"""A user-written FoldStrategy: no LLM at all, just a running list of what the user asked.

A strategy is any object with ``keep_last_sends``, ``trigger_ratio``, ``fold_id`` and
``async fold(context) -> FoldResult | None``. It only decides; the pipeline writes the fold (one
transaction), keeps the audit log intact and rebuilds the same window in any process. Here the fold
also records a durable note (``NoteOp``), which the notes-backed memory shows on every later send.

Run: python examples/context_custom_fold.py
"""

from __future__ import annotations

import asyncio

from power_loop.context import (
    ContextPipeline,
    FoldContext,
    FoldResult,
    FoldStrategy,
    NoteOp,
    NotesMemory,
    ProjectedRepresentation,
)
from power_loop.loop._cache import SessionWindow
from power_loop.store import NewMessage, open_store


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
    store = await open_store(":memory:")
    sid = await store.create_session()
    pipeline = ContextPipeline(
        representation=ProjectedRepresentation(max_chars=60),
        fold=AskedList(),
        memory=NotesMemory(),
        context_tokens=300,
    )
    window = SessionWindow(messages=[], next_seq=1, system_prompt=None)
    for topic in ["pricing", "refunds", "taxes", "currencies", "discounts", "exports"]:
        question = f"How do {topic} work in the billing service?"
        appended = await store.append_messages(sid, [NewMessage(role="user", content=question)], begin_send=True)
        window.messages.append({"role": "user", "content": question})
        window.next_seq, window.send_index = appended.next_seq, appended.send_index
        outcome = await pipeline.begin_send(store, sid, window)
        if outcome is not None:
            print(f"send {appended.send_index}: {outcome.status}, sends #{outcome.from_send}-#{outcome.to_send} folded")
        answer = f"{topic.capitalize()} are handled by billing/{topic}.py. " + "Details. " * 20
        result = await store.append_messages(sid, [NewMessage(role="assistant", content=answer)])
        window.messages.append({"role": "assistant", "content": answer})
        window.next_seq = result.next_seq
        await pipeline.end_send(store, sid, window, status="completed")
    print("\nWhat the model sees now (window + memory at the end):")
    for msg in pipeline.request_messages(window):
        print(f"--- {msg['role']}{' (' + msg['name'] + ')' if msg.get('name') else ''}\n{msg['content'][:300]}")
    print(f"\nAudit log: {await store.count_messages(sid)} messages, compactions: "
          f"{len(await store.list_compactions(sid))}")
    await store.close()


if __name__ == "__main__":
    asyncio.run(main())
