"""Catalogue: session archives given to ``import_session``. A bad archive is refused with
``store.archive_invalid`` (or ``session.invalid_id`` for the target id) and nothing is written; a good
one imports into a session that works. The exported session itself stays valid (see ``_harness``)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from _harness import Case, Env, check_history, params, run_case

from power_loop import ArchiveError
from power_loop.testing import ScriptedLLM

BAD, BAD_ID = "store.archive_invalid", "session.invalid_id"
TARGET = "imported"
Archive = dict[str, Any]


async def _nothing_written(env: Env, target: Any) -> None:
    if not isinstance(target, str) or "\x00" in target or target == env.sid:
        return
    store = await env.store()
    for table in ("sessions", "messages", "session_state", "notes"):
        row = await store.db.fetchone(
            f"SELECT COUNT(*) AS n FROM {store.t[table]} WHERE session_id = ?", (target,)
        )
        assert row is not None and int(row["n"]) == 0, f"a refused import wrote to {table}"


def imports(mutate: Callable[[Archive], Any], target: Any = TARGET) -> Any:
    async def action(env: Env) -> str | None:
        store = await env.store()
        data = copy.deepcopy(await store.export_session(env.sid))
        data = mutate(data) or data  # a mutation may return a replacement archive
        try:
            new = await store.import_session(data, new_session_id=target)
        except BaseException:
            await _nothing_written(env, target if target is not None else TARGET)
            raise
        check_history(await env.loop.get_messages(new))
        env.llm.push(ScriptedLLM.text("imported and alive"))
        assert (await env.loop.send("hello", new)).final_text == "imported and alive"
        return None

    return action


def msgs(data: Archive) -> list[dict[str, Any]]:
    return data["tables"]["messages"]


def state(data: Archive) -> dict[str, Any]:
    return data["tables"]["session_state"][0]


def at(seq: int) -> Callable[[Archive], dict[str, Any]]:
    return lambda data: next(m for m in msgs(data) if m["seq"] == seq)


def setter(pick: Callable[[Archive], dict[str, Any]], key: str, value: Any) -> Callable[[Archive], None]:
    def mutate(data: Archive) -> None:
        pick(data)[key] = value

    return mutate


def drop(seq: int) -> Callable[[Archive], None]:
    def mutate(data: Archive) -> None:
        data["tables"]["messages"] = [m for m in msgs(data) if m["seq"] != seq]

    return mutate


def renumber(data: Archive) -> None:
    """Close the seq gaps left by a removed message (so only the history problem remains)."""
    for i, m in enumerate(sorted(msgs(data), key=lambda m: m["seq"]), start=1):
        m["seq"] = i
    state(data)["next_seq"] = len(msgs(data)) + 1


def then(*steps: Callable[[Archive], Any]) -> Callable[[Archive], None]:
    def mutate(data: Archive) -> None:
        for step in steps:
            step(data)

    return mutate


def table(name: str, value: Any) -> Callable[[Archive], None]:
    return lambda data: data["tables"].__setitem__(name, value)


def add_row(name: str, row: dict[str, Any], times: int = 1) -> Callable[[Archive], None]:
    return lambda data: data["tables"].setdefault(name, []).extend(copy.deepcopy(row) for _ in range(times))


def keep(data: Archive) -> None:
    return None


SESSION = lambda data: data["tables"]["sessions"][0]  # noqa: E731
CALL = {"id": "c9", "type": "function", "function": {"name": "echo", "arguments": "{}"}}
PENDING = (
    '{"assistant_seq":2,"tool_calls":[' + '{"id":"zz","type":"function","function":{"name":"echo"}}' + "]}"
)
NOTE = {"note_id": 1, "content": "n", "pinned": 0, "created_at": 1, "updated_at": 1}
STATE_KEY = {"state_key": "k", "value_json": "1", "updated_at": 1}
DEEP_JSON = "[" * 100_000 + "]" * 100_000

CASES = [
    Case("valid", "unchanged", imports(keep), None),
    Case("valid", "keeping the archive's own id", imports(lambda d: d.update(session_id="own"), None), None),
    Case(
        "valid",
        "gap covered by a compaction",
        imports(
            then(
                drop(1),
                add_row(
                    "compactions",
                    {"compact_seq": 1, "note_seq": 4, "from_seq": 1, "to_seq": 1, "created_at": 1},
                ),
            )
        ),
        None,
    ),
    Case("envelope", "a list", imports(lambda d: [d]), BAD),
    Case("envelope", "wrong format", imports(lambda d: d.update(format="zip")), BAD),
    Case("envelope", "version zero", imports(lambda d: d.update(version=0)), BAD),
    Case("envelope", "version as text", imports(lambda d: d.update(version="1")), BAD),
    Case("envelope", "version as bool", imports(lambda d: d.update(version=True)), BAD),
    Case("envelope", "newer version", imports(lambda d: d.update(version=99)), BAD),
    Case("envelope", "session id not text", imports(lambda d: d.update(session_id=5)), BAD),
    Case("envelope", "tables missing", imports(lambda d: d.pop("tables") and None), BAD),
    Case("envelope", "tables a list", imports(lambda d: d.update(tables=[])), BAD),
    Case("envelope", "unknown table", imports(table("secrets", [])), BAD),
    Case("tables", "no session row", imports(table("sessions", [])), BAD),
    Case(
        "tables",
        "two session rows",
        imports(lambda d: SESSION(d) and d["tables"]["sessions"].append(dict(SESSION(d)))),
        BAD,
    ),
    Case("tables", "no state row", imports(table("session_state", [])), BAD),
    Case("tables", "messages not a list", imports(table("messages", {"1": {}})), BAD),
    Case("rows", "row not an object", imports(lambda d: msgs(d).append([1, 2])), BAD),
    Case("rows", "unknown column", imports(setter(at(1), "colour", "red")), BAD),
    Case("rows", "missing required column", imports(lambda d: at(1)(d).pop("created_at") and None), BAD),
    Case("rows", "seq as text", imports(setter(at(1), "seq", "1")), BAD),
    Case("rows", "seq as bool", imports(setter(at(1), "seq", True)), BAD),
    Case("rows", "seq as float", imports(setter(at(1), "seq", 1.0)), BAD),
    Case("rows", "negative seq", imports(setter(at(1), "seq", -1)), BAD),
    Case("rows", "seq zero", imports(setter(at(1), "seq", 0)), BAD),
    Case("rows", "seq beyond 64 bits", imports(setter(at(4), "seq", 2**70)), BAD),
    Case(
        "rows", "negative counter", imports(lambda d: d["tables"]["session_stats"][0].update(sends=-5)), BAD
    ),
    Case("rows", "unknown role", imports(setter(at(1), "role", "robot")), BAD),
    Case("rows", "unknown state", imports(setter(at(1), "state", "zombie")), BAD),
    Case("rows", "unknown session status", imports(setter(SESSION, "status", "weird")), BAD),
    Case("rows", "unknown lifecycle", imports(setter(SESSION, "lifecycle", "forever")), BAD),
    Case(
        "rows",
        "unknown timer status",
        imports(
            add_row(
                "timers",
                {
                    "timer_id": 1,
                    "due_at": 1,
                    "note": "n",
                    "status": "ringing",
                    "created_at": 1,
                    "updated_at": 1,
                },
            )
        ),
        BAD,
    ),
    Case("rows", "tool calls not JSON", imports(setter(at(2), "tool_calls_json", "[{")), BAD),
    Case("rows", "tool calls nested too deeply", imports(setter(at(2), "tool_calls_json", DEEP_JSON)), BAD),
    Case(
        "rows",
        "JSON content not JSON",
        imports(then(setter(at(1), "content_json", 1), setter(at(1), "content", "{"))),
        BAD,
    ),
    Case("rows", "meta not JSON", imports(setter(at(3), "meta_json", "nope")), BAD),
    Case("rows", "lone surrogate in text", imports(setter(SESSION, "system_prompt", "a\ud800")), BAD),
    Case("rows", "NUL in plain text", imports(setter(at(1), "content", "a\x00b")), BAD),
    Case(
        "rows",
        "key longer than 255",
        imports(add_row("session_runtime_state", {**STATE_KEY, "state_key": "k" * 300})),
        BAD,
    ),
    Case("rows", "duplicate note ids", imports(add_row("notes", NOTE, times=2)), BAD),
    Case("rows", "duplicate state keys", imports(add_row("session_runtime_state", STATE_KEY, times=2)), BAD),
    Case("seqs", "duplicate seqs", imports(setter(at(4), "seq", 3)), BAD),
    Case("seqs", "gap", imports(setter(at(4), "seq", 7)), BAD),
    Case("seqs", "next_seq behind the rows", imports(lambda d: state(d).update(next_seq=2)), BAD),
    Case("seqs", "next_seq on the last row", imports(lambda d: state(d).update(next_seq=4)), BAD),
    Case("pairing", "a result removed", imports(then(drop(3), renumber)), BAD),
    Case("pairing", "an orphan result", imports(then(drop(2), renumber)), BAD),
    Case("pairing", "a duplicated result", imports(lambda d: msgs(d).append({**at(3)(d), "seq": 5})), BAD),
    Case("pairing", "result for an unknown call", imports(setter(at(3), "tool_call_id", "nobody")), BAD),
    Case(
        "pairing",
        "user message between call and result",
        imports(
            then(
                setter(at(3), "seq", 99),
                setter(at(4), "seq", 3),
                setter(at(99), "seq", 4),
                setter(at(3), "role", "user"),
            )
        ),
        BAD,
    ),
    Case(
        "pairing",
        "tool calls on a user message",
        imports(setter(at(1), "tool_calls_json", '[{"id":"u1"}]')),
        BAD,
    ),
    Case(
        "pairing",
        "tool call without id",
        imports(setter(at(2), "tool_calls_json", '[{"type":"function"}]')),
        BAD,
    ),
    Case("pairing", "tool calls not a list", imports(setter(at(2), "tool_calls_json", '{"id":"c"}')), BAD),
    Case(
        "pairing",
        "duplicate call ids",
        imports(
            lambda d: at(2)(d).update(
                tool_calls_json=at(2)(d)["tool_calls_json"][:-1] + "," + at(2)(d)["tool_calls_json"][1:]
            )
        ),
        BAD,
    ),
    Case(
        "pairing",
        "compacted-out result of an active call",
        imports(setter(at(3), "state", "compacted_out")),
        BAD,
    ),
    Case("pending", "pending blob not JSON", imports(lambda d: state(d).update(pending_json="{")), BAD),
    Case("pending", "pending blob a list", imports(lambda d: state(d).update(pending_json="[1]")), BAD),
    Case(
        "pending",
        "pending calls not a list",
        imports(lambda d: state(d).update(pending_json='{"tool_calls": 3}')),
        BAD,
    ),
    Case(
        "pending",
        "pending call already answered",
        imports(lambda d: state(d).update(pending_json=PENDING)),
        BAD,
    ),
    Case(
        "pending",
        "pending interactions for another call",
        imports(
            lambda d: state(d).update(
                pending_json='{"tool_calls": [], "pending_interactions": [{"tool_call_id": "q"}]}'
            )
        ),
        BAD,
    ),
    Case("ids", "archive id with NUL", imports(lambda d: d.update(session_id="a\x00b"), None), BAD_ID),
    Case("ids", "target id not text", imports(keep, 123), BAD_ID),
    Case("ids", "target id empty", imports(keep, ""), BAD_ID),
    Case("ids", "target id with NUL", imports(keep, "x\x00y"), BAD_ID),
    Case("ids", "target id too long", imports(keep, "s" * 256), BAD_ID),
    Case("ids", "target exists", imports(keep, "__self__"), BAD),
]


@pytest.mark.parametrize("case", params(CASES))
async def test_archive_case(case: Case, env: Env) -> None:
    if case.name == "target exists":
        case = Case(case.area, case.name, imports(keep, env.sid), case.code)
    await run_case(case, env)


async def test_every_problem_is_listed(env: Env) -> None:
    store = await env.store()
    data = await store.export_session(env.sid)
    setter(at(1), "role", "robot")(data)
    setter(at(2), "seq", -2)(data)
    state(data)["pending_json"] = "{"
    with pytest.raises(ArchiveError) as info:
        await store.import_session(data, new_session_id=TARGET)
    assert len(info.value.problems) == 3, info.value.problems
    assert "nothing was imported" in str(info.value)


BACKEND_CASES = [
    Case("valid", "unchanged", imports(keep), None),
    Case("pairing", "a result removed", imports(then(drop(3), renumber)), BAD),
    Case("seqs", "duplicate seqs", imports(setter(at(4), "seq", 3)), BAD),
    Case("rows", "NUL in plain text", imports(setter(at(1), "content", "a\x00b")), BAD),
    Case("rows", "seq beyond 64 bits", imports(setter(at(4), "seq", 2**70)), BAD),
    Case("ids", "target id with NUL", imports(keep, "x\x00y"), BAD_ID),
]


@pytest.mark.parametrize("case", params(BACKEND_CASES))
async def test_archive_case_on_every_backend(case: Case, backend_env: Env) -> None:
    await run_case(case, backend_env)
