"""Property tests over random operation sequences (every backend).

Invariants: per-session seqs are contiguous and increasing; the pending blob always equals the
unanswered tool calls; message states only move forward; the active window never splits a tool call
from its result; export → import → export is identical modulo the session id.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from power_loop.errors import HistoryInvariantError
from power_loop.store import MessageState, NewMessage, SessionStore

ORDER = {"active": 0, "compacted_out": 1, "dropped": 2}

ops = st.lists(
    st.one_of(
        st.tuples(st.just("user"), st.text(max_size=8), st.booleans()),
        st.tuples(st.just("assistant"), st.text(max_size=8)),
        st.tuples(st.just("calls"), st.integers(1, 3)),
        st.tuples(st.just("answer"), st.integers(0, 5)),
        st.tuples(st.just("bogus"), st.sampled_from(["zz", "dup"])),
        st.tuples(st.just("abort")),
        st.tuples(
            st.just("state"),
            st.sampled_from(["compacted_out", "dropped", "active"]),
            st.lists(st.integers(1, 30), max_size=4),
        ),
    ),
    max_size=14,
)


def window_ok(rows: list[Any], pending: set[str]) -> bool:
    declared: set[str] = set()
    answered: set[str] = set()
    for m in rows:
        if m.role == "assistant" and m.tool_calls:
            declared |= {tc["id"] for tc in m.tool_calls}
        if m.role == "tool":
            if m.tool_call_id not in declared:
                return False
            answered.add(m.tool_call_id)
    return declared - answered <= pending


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=ops)
async def test_random_operation_sequences(store: SessionStore, script: list[tuple[Any, ...]]) -> None:
    sid = await store.create_session()
    pending: list[str] = []
    answered: list[str] = []
    counter = 0
    count = 0
    for op in script:
        before = [m.state.value for m in await store.load_all_messages(sid)]
        expect_ok = True
        if op[0] == "user":
            expect_ok = not pending
            msgs = [NewMessage("user", op[1])]
            call = store.append_messages(sid, msgs, begin_send=op[2])
        elif op[0] == "assistant":
            expect_ok = not pending
            call = store.append_messages(sid, [NewMessage("assistant", op[1])])
        elif op[0] == "calls":
            expect_ok = not pending
            ids = [f"c{counter + i}" for i in range(op[1])]
            counter += op[1]
            tcs = [{"id": i, "type": "function", "function": {"name": "f", "arguments": "{}"}} for i in ids]
            call = store.append_messages(sid, [NewMessage("assistant", None, tool_calls=tcs)])
        elif op[0] == "answer":
            expect_ok = bool(pending)
            target = pending[op[1] % len(pending)] if pending else "none"
            call = store.append_messages(sid, [NewMessage("tool", "r", tool_call_id=target)])
        elif op[0] == "bogus":
            expect_ok = False
            target = answered[-1] if op[1] == "dup" and answered else "zz"
            call = store.append_messages(sid, [NewMessage("tool", "r", tool_call_id=target)])
        elif op[0] == "abort":
            call = store.abort_pending(sid, reason="x")
        else:
            seqs = [s for s in op[2] if s <= count]
            expect_ok = None  # depends on the window; checked below
            call = store.set_message_state(sid, seqs, op[1])
        try:
            await call
            ok = True
        except HistoryInvariantError:
            ok = False
        if expect_ok is not None:
            assert ok == expect_ok, op
        after_rows = await store.load_all_messages(sid)
        after = [m.state.value for m in after_rows]
        if ok and op[0] in ("user", "assistant", "calls", "answer", "abort"):
            if op[0] == "calls":
                pending = [f"c{counter - op[1] + i}" for i in range(op[1])]
            elif op[0] == "answer":
                answered.append(target)
                pending.remove(target)
            elif op[0] == "abort":
                answered.extend(pending)
                pending = []
        if not ok:
            assert after == before  # a refused write changes nothing
        count = len(after_rows)
        assert [m.seq for m in after_rows] == list(range(1, count + 1))
        assert all(ORDER[a] >= ORDER[b] for a, b in zip(after, before, strict=False))
        state = await store.get_state(sid)
        assert state is not None and state.next_seq == count + 1
        got = [tc["id"] for tc in state.pending["tool_calls"]] if state.pending else []
        assert got == pending
        active = [m for m in after_rows if m.state is MessageState.ACTIVE]
        assert window_ok(active, set(pending))
        assert [m.seq for m in await store.load_active_messages(sid)] == [m.seq for m in active]

    archive = await store.export_session(sid)
    copy_id = await store.import_session(archive, new_session_id=sid + "_copy")
    again = await store.export_session(copy_id)
    for rows in again["tables"].values():
        for row in rows:
            assert row["session_id"] == copy_id
            row["session_id"] = sid
    again["session_id"] = sid
    assert again == archive
