"""Context handling: every representation x fold strategy combination, offline.

Each combination runs the same 8-send conversation (a user question, one tool call, an answer) under a
small token budget, then prints what the model would be sent for the next send and how much of the
audit log is still there. The pipeline is driven here the way the round engine drives it:
``begin_send`` at each send boundary, ``request_messages`` for each model call, ``end_send`` after.

Run: python examples/context_combinations.py
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from power_loop.context import (
    AgenticFold,
    ContextPipeline,
    LLMSummaryFold,
    ProjectedRepresentation,
    VerbatimRepresentation,
    recall_send,
)
from power_loop.loop._cache import SessionWindow
from power_loop.store import NewMessage, SessionStore, open_store
from power_loop.testing import ScriptedLLM


def summariser() -> ScriptedLLM:
    """An offline model for folds: the agentic fold first saves a note, then both summarise."""

    def respond(request: Any) -> Any:
        first = request.messages[0]["content"]
        if request.tools and "(none)" in first and not any(m["role"] == "tool" for m in request.messages):
            return ScriptedLLM.tool_call("note_add", {"content": "the user works on the billing service"})
        sends = first.count("<send index=")
        return f"<summary>The user asked about the billing service ({sends} more send(s) folded).</summary>"

    return ScriptedLLM(responder=respond)


async def converse(store: SessionStore, pipeline: ContextPipeline, sends: int) -> tuple[str, SessionWindow]:
    sid = await store.create_session()
    window = SessionWindow(messages=[], next_seq=1, system_prompt=None)
    llm = summariser()
    for i in range(sends):
        question = f"Question {i}: where is invoice {1000 + i} computed? " + "context " * 40
        appended = await store.append_messages(sid, [NewMessage(role="user", content=question)], begin_send=True)
        window.messages.append({"role": "user", "content": question})
        window.next_seq, window.send_index = appended.next_seq, appended.send_index
        outcome = await pipeline.begin_send(store, sid, window, llm=llm, model="demo")
        if outcome is not None:
            print(f"  send {appended.send_index}: fold {outcome.status} (sends #{outcome.from_send}-#{outcome.to_send}, "
                  f"~{outcome.before_tokens} -> ~{outcome.after_tokens} tokens)")
        call = {"id": f"c{i}", "type": "function",
                "function": {"name": "grep", "arguments": json.dumps({"pattern": f"invoice_{1000 + i}"})}}
        rows = [
            NewMessage(role="assistant", content="", tool_calls=[call]),
            NewMessage(role="tool", content=f"billing/invoice.py:{40 + i}: def invoice_{1000 + i}()",
                       tool_call_id=f"c{i}", name="grep"),
            NewMessage(role="assistant", content=f"Invoice {1000 + i} is computed in billing/invoice.py."),
        ]
        result = await store.append_messages(sid, rows)
        for row in rows:
            msg: dict[str, Any] = {"role": row.role, "content": row.content}
            if row.tool_calls:
                msg["tool_calls"] = row.tool_calls
            if row.tool_call_id:
                msg["tool_call_id"], msg["name"] = row.tool_call_id, row.name
            window.messages.append(msg)
        window.next_seq = result.next_seq
        await pipeline.end_send(store, sid, window, status="completed")
    return sid, window


async def main() -> None:
    store = await open_store(":memory:")
    representations = [VerbatimRepresentation(), ProjectedRepresentation(max_chars=70)]
    folds = [LLMSummaryFold(keep_last_sends=2), AgenticFold(keep_last_sends=2)]
    for rep in representations:
        for fold in folds:
            budget = 900 if rep.kind == "verbatim" else 400
            pipeline = ContextPipeline(representation=rep, fold=fold, context_tokens=budget)
            print(f"== {rep!r} x {fold!r}")
            sid, window = await converse(store, pipeline, 8)
            stored = await store.count_messages(sid)
            print(f"  window: {len(window.messages)} messages; audit log: {stored} messages (nothing deleted)")
            print("  the model now sees:")
            for msg in pipeline.request_messages(window):
                text = msg["content"].replace("\n", " / ") or f"[calls {msg['tool_calls'][0]['function']['name']}]"
                print(f"    {msg['role']:>9}: {text[:90]}")
            notes = await store.list_notes(sid)
            if notes:
                print(f"  notes captured by the fold: {[n.content for n in notes]}")
    print("recall_send still shows the original send #1:")
    print("  " + (await recall_send(store, sid, 1)).replace("\n", "\n  ")[:400])
    await store.close()


if __name__ == "__main__":
    asyncio.run(main())
