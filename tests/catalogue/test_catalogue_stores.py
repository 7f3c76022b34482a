"""Catalogue: the store — session ids, table prefixes, damaged files and rows, schema states, database
locations, timers and raw writes. Each ends with a stable code; the environment's session stays valid
(see ``_harness``). Damage is always done to another session or another file."""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from _harness import Case, Env, params, run_case

from power_loop import NewMessage, PowerLoopError, StatefulAgentLoop
from power_loop.store import SessionStore, all_table_names, open_store
from power_loop.testing import ScriptedLLM

BAD_ID, CORRUPT_ROW, CONFIG = "session.invalid_id", "store.corrupt_row", "config.invalid"
UNAVAILABLE, MISMATCH = "store.unavailable", "store.schema_mismatch"
Act = Callable[[Env], Awaitable[Any]]


def ok(fn: Act) -> Any:
    """An action whose own return value is irrelevant (its outcome is "no error" or the raised code)."""

    async def action(env: Env) -> str | None:
        await fn(env)
        return None

    return action


@asynccontextmanager
async def fresh(env: Env, **kwargs: Any) -> AsyncIterator[SessionStore]:
    """Another store handle on the environment's database (as another process would open it)."""
    store = await open_store(env.dsn, table_prefix=env.prefix, **kwargs)
    try:
        yield store
    finally:
        await store.close()


async def victim(env: Env) -> str:
    """Another session with one exchange, for damage the environment's session must not feel."""
    sid = await env.loop.new_session()
    env.llm.push(ScriptedLLM.text("victim"))
    await env.loop.send("hi", sid)
    return sid


def damaged(table: str, column: str, value: Any, read: Callable[[SessionStore, str], Awaitable[Any]]) -> Any:
    """Write ``value`` into ``column`` of the victim's row(s), then ``read`` them on a fresh handle."""

    async def action(env: Env) -> str | None:
        sid = await victim(env)
        store = await env.store()
        bump = ", state_version = state_version + 1" if table == "session_state" else ""
        await store.db.execute(
            f"UPDATE {store.t[table]} SET {column} = ?{bump} WHERE session_id = ?", (value, sid)
        )
        async with fresh(env) as other:
            await read(other, sid)
        return None

    return action


def damaged_then_sent(table: str, column: str, value: Any) -> Any:
    """The loop itself sends to a victim whose state row was damaged."""

    async def action(env: Env) -> str | None:
        sid = await victim(env)
        store = await env.store()
        await store.db.execute(
            f"UPDATE {store.t[table]} SET {column} = ?, state_version = state_version + 1 WHERE session_id = ?",
            (value, sid),
        )
        # Nothing is scripted: the send must fail on the blob before it calls the model.
        await env.loop.send("again", sid)
        return None

    return action


# -- session ids -------------------------------------------------------------------------------------

BAD_IDS: dict[str, Any] = {
    "int": 123,
    "bytes": b"sess",
    "empty": "",
    "NUL": "a\x00b",
    "lone surrogate": "s\ud800",
    "newline": "a\nb",
    "tab": "a\tb",
    "DEL": "a\x7fb",
    "256 chars": "s" * 256,
    "list": ["s"],
}
ID_USES: dict[str, Callable[[Env, Any], Awaitable[Any]]] = {
    "get_session": lambda env, sid: env.loop.store.get_session(sid),  # type: ignore[union-attr]
    "loop.send": lambda env, sid: env.loop.send("hi", sid),
}
ONE_ID_USES: dict[str, Callable[[SessionStore, Any], Awaitable[Any]]] = {
    "create_session": lambda s, sid: s.create_session(session_id=sid),
    "create_session parent": lambda s, sid: s.create_session(parent_session_id=sid),
    "append_messages": lambda s, sid: s.append_messages(sid, [NewMessage("user", "x")]),
    "load_active_messages": lambda s, sid: s.load_active_messages(sid),
    "get_state": lambda s, sid: s.get_state(sid),
    "add_note": lambda s, sid: s.add_note(sid, "n"),
    "create_timer": lambda s, sid: s.create_timer(sid, due_at_ms=1, note="n"),
    "set_runtime_state": lambda s, sid: s.set_runtime_state(sid, "k", 1),
    "export_session": lambda s, sid: s.export_session(sid),
    "close_session": lambda s, sid: s.close_session(sid),
    "acquire_lease": lambda s, sid: s.acquire_lease(sid, holder="h", ttl_s=5),
    "enqueue_follow_up": lambda s, sid: s.enqueue_follow_up(sid, "later"),
}


def with_id(use: Callable[[Env, Any], Awaitable[Any]], sid: Any) -> Any:
    return ok(lambda env: use(env, sid))


def store_with_id(use: Callable[[SessionStore, Any], Awaitable[Any]], sid: Any) -> Any:
    async def action(env: Env) -> str | None:
        await use(await env.store(), sid)
        return None

    return action


def good_id(sid: str) -> Any:
    async def action(env: Env) -> str | None:
        await (await env.store()).create_session(session_id=sid)
        env.llm.push(ScriptedLLM.text("fine"))
        assert (await env.loop.send("hi", sid)).final_text == "fine"
        return None

    return action


ID_CASES = [
    *(
        Case("ids", f"{use} with {name}", with_id(fn, sid), BAD_ID)
        for use, fn in ID_USES.items()
        for name, sid in BAD_IDS.items()
    ),
    *(Case("ids", f"{use} with NUL", store_with_id(fn, "a\x00b"), BAD_ID) for use, fn in ONE_ID_USES.items()),
    Case("ids", "unicode id works", good_id("séssion-é-\U0001f600"), None),
    Case("ids", "255 character id works", good_id("i" * 255), None),
    Case("ids", "id with spaces and quotes works", good_id("a b 'c' \"d\""), None),
    Case("ids", "unknown id", with_id(ID_USES["loop.send"], "sess_missing"), "session.not_found"),
]

# -- prefixes ----------------------------------------------------------------------------------------


def prefix(value: Any) -> Any:
    return ok(lambda env: open_store(env.dsn, table_prefix=value))


def loop_prefix(value: Any) -> Any:
    async def action(env: Env) -> str | None:
        loop = StatefulAgentLoop(llm=ScriptedLLM(), dsn=env.dsn, table_prefix=value)
        try:
            await loop.new_session()
        finally:
            await loop.aclose()
        return None

    return action


PREFIX = "store.invalid_prefix"
PREFIX_CASES = [
    Case("prefixes", "leading digit", prefix("1pl_"), PREFIX),
    Case("prefixes", "dash", prefix("pl-"), PREFIX),
    Case("prefixes", "space", prefix("p l"), PREFIX),
    Case("prefixes", "SQL injection", prefix("x; DROP TABLE y; --"), PREFIX),
    Case("prefixes", "quote", prefix("p'"), PREFIX),
    Case("prefixes", "non-ASCII", prefix("pé_"), PREFIX),
    Case("prefixes", "too long", prefix("p" * 32), PREFIX),
    Case("prefixes", "not text", prefix(5), PREFIX),
    Case("prefixes", "NUL", prefix("p\x00"), PREFIX),
    Case("prefixes", "through the loop", loop_prefix("bad-prefix"), PREFIX),
]

# -- damaged rows (of another session) ----------------------------------------------------------------


def _messages(s: SessionStore, sid: str) -> Awaitable[Any]:
    return s.load_active_messages(sid)


ROW_CASES = [
    Case("rows", "tool calls not JSON", damaged("messages", "tool_calls_json", "[{", _messages), CORRUPT_ROW),
    Case("rows", "meta not JSON", damaged("messages", "meta_json", "{x", _messages), CORRUPT_ROW),
    Case("rows", "JSON content not JSON", damaged("messages", "content_json", 1, _messages), CORRUPT_ROW),
    Case(
        "rows",
        "unknown message state",
        damaged("messages", "state", "zombie", lambda s, sid: s.load_all_messages(sid)),
        CORRUPT_ROW,
    ),
    Case(
        "rows",
        "config not JSON",
        damaged("sessions", "config_json", "{", lambda s, sid: s.get_session(sid)),
        CORRUPT_ROW,
    ),
    Case(
        "rows",
        "metadata not JSON",
        damaged("sessions", "metadata_json", "nope", lambda s, sid: s.get_session(sid)),
        CORRUPT_ROW,
    ),
    Case(
        "rows",
        "unknown session status",
        damaged("sessions", "status", "weird", lambda s, sid: s.get_session(sid)),
        CORRUPT_ROW,
    ),
    Case(
        "rows",
        "unknown session kind",
        damaged("sessions", "kind", "alien", lambda s, sid: s.list_sessions()),
        CORRUPT_ROW,
    ),
    Case(
        "rows",
        "pending blob not JSON",
        damaged("session_state", "pending_json", "{", lambda s, sid: s.get_state(sid)),
        CORRUPT_ROW,
    ),
    Case(
        "rows",
        "pending blob a list",
        damaged("session_state", "pending_json", "[1]", lambda s, sid: s.get_state(sid)),
        CORRUPT_ROW,
    ),
    Case(
        "rows",
        "pending blob a number",
        damaged("session_state", "pending_json", "7", lambda s, sid: s.get_state(sid)),
        CORRUPT_ROW,
    ),
    Case(
        "rows",
        "pending calls not a list",
        damaged("session_state", "pending_json", '{"tool_calls": 5}', lambda s, sid: s.get_state(sid)),
        CORRUPT_ROW,
    ),
    Case(
        "rows",
        "pending call without id",
        damaged("session_state", "pending_json", '{"tool_calls": [{}]}', lambda s, sid: s.get_state(sid)),
        CORRUPT_ROW,
    ),
    Case(
        "rows",
        "pending interactions not a list",
        damaged(
            "session_state",
            "pending_json",
            '{"tool_calls": [], "pending_interactions": 1}',
            lambda s, sid: s.get_state(sid),
        ),
        CORRUPT_ROW,
    ),
    Case(
        "rows",
        "abort_pending on a corrupt blob",
        damaged("session_state", "pending_json", "[1]", lambda s, sid: s.abort_pending(sid, reason="r")),
        CORRUPT_ROW,
    ),
    Case(
        "rows",
        "append on a corrupt blob",
        damaged(
            "session_state",
            "pending_json",
            '{"tool_calls": "x"}',
            lambda s, sid: s.append_messages(sid, [NewMessage("user", "x")]),
        ),
        CORRUPT_ROW,
    ),
    Case(
        "rows",
        "send on a corrupt blob",
        damaged_then_sent("session_state", "pending_json", "[1]"),
        CORRUPT_ROW,
    ),
    Case(
        "rows",
        "send on an unparsable blob",
        damaged_then_sent("session_state", "pending_json", "{{"),
        CORRUPT_ROW,
    ),
]

# -- files and locations -------------------------------------------------------------------------------


def sqlite_at(make_path: Callable[[Env], str]) -> Any:
    return ok(lambda env: _open_and_close(make_path(env)))


async def _open_and_close(dsn: str) -> None:
    store = await open_store(dsn)
    try:
        await store.create_session()
    finally:
        await store.close()


def _file(env: Env, name: str, data: bytes) -> str:
    path = env.tmp_path / name
    path.write_bytes(data)
    return str(path)


def _truncated_copy(env: Env) -> str:
    data = Path(env.dsn).read_bytes()
    return _file(env, "truncated.db", data[:100] + b"\x00" * 4000)


FILE_CASES = [
    Case(
        "files",
        "garbage file",
        sqlite_at(lambda env: _file(env, "garbage.db", os.urandom(8192))),
        "store.corrupt",
    ),
    Case(
        "files",
        "text file",
        sqlite_at(lambda env: _file(env, "notes.txt", b"hello world\n" * 200)),
        "store.corrupt",
    ),
    Case("files", "truncated database", sqlite_at(_truncated_copy), "store.corrupt"),
    Case("files", "empty file is a new database", sqlite_at(lambda env: _file(env, "empty.db", b"")), None),
    Case("files", "a directory", sqlite_at(lambda env: str(env.tmp_path)), UNAVAILABLE),
    Case(
        "files",
        "below a regular file",
        sqlite_at(lambda env: _file(env, "plain", b"x") + "/sub/x.db"),
        UNAVAILABLE,
    ),
    Case(
        "files",
        "directory that cannot be created",
        sqlite_at(lambda env: "/proc/power_loop_nope/x.db"),
        UNAVAILABLE,
    ),
    Case("files", "read-only file system", sqlite_at(lambda env: "/sys/power_loop_nope/x.db"), UNAVAILABLE),
    Case(
        "files",
        "new file in a missing directory",
        sqlite_at(lambda env: str(env.tmp_path / "a" / "b" / "c.db")),
        None,
    ),
    Case("files", "sqlite URL with a host", sqlite_at(lambda env: "sqlite://host/x.db"), "store.invalid_dsn"),
]

# -- schema states -----------------------------------------------------------------------------------


def schema(prepare: Callable[[SessionStore], Awaitable[Any]], **open_kwargs: Any) -> Any:
    """Change the schema under a fresh prefix of the same database, then open a store on it."""

    async def action(env: Env) -> str | None:
        other = f"s{secrets.token_hex(3)}_"
        first = await open_store(env.dsn, table_prefix=other)
        try:
            await prepare(first)
            async with fresh(
                Env(env.dsn, other, env.tmp_path, env.llm, env.registry, env.loop), **open_kwargs
            ) as s:
                sid = await s.create_session()
                await s.append_messages(sid, [NewMessage("user", "x")])
        finally:
            await _drop_prefix(first, other)
            await first.close()
        return None

    return action


def sql(*statements: str) -> Callable[[SessionStore], Awaitable[None]]:
    async def run(store: SessionStore) -> None:
        for stmt in statements:
            await store.db.execute(stmt.format(p=store.table_prefix))

    return run


async def _drop_while_open(env: Env) -> None:
    other = f"s{secrets.token_hex(3)}_"
    store = await open_store(env.dsn, table_prefix=other)
    try:
        sid = await store.create_session()
        await store.db.execute(f"DROP TABLE {other}messages")
        await store.append_messages(sid, [NewMessage("user", "x")])
    finally:
        await _drop_prefix(store, other)
        await store.close()


async def _drop_prefix(store: SessionStore, prefix: str) -> None:
    """Leave the shared server databases clean."""
    for name in all_table_names(prefix):
        await store.db.execute(f"DROP TABLE IF EXISTS {name}")


async def _nothing(store: SessionStore) -> None:
    return None


SCHEMA_CASES = [
    Case("schema", "dropped table, reopened with auto_create", schema(sql("DROP TABLE {p}messages")), None),
    Case("schema", "dropped state table, reopened", schema(sql("DROP TABLE {p}session_state")), None),
    Case("schema", "dropped table, verify", schema(sql("DROP TABLE {p}messages"), schema="verify"), MISMATCH),
    Case("schema", "dropped while open", ok(_drop_while_open), MISMATCH),
    Case("schema", "version row deleted, auto_create", schema(sql("DELETE FROM {p}schema_migrations")), None),
    Case(
        "schema",
        "version row deleted, verify",
        schema(sql("DELETE FROM {p}schema_migrations"), schema="verify"),
        MISMATCH,
    ),
    Case(
        "schema",
        "stamped by a newer version",
        schema(sql("UPDATE {p}schema_migrations SET version = 99")),
        "store.schema_too_new",
    ),
    Case(
        "schema",
        "newer version, verify",
        schema(sql("UPDATE {p}schema_migrations SET version = 99"), schema="verify"),
        "store.schema_too_new",
    ),
    Case(
        "schema",
        "column dropped, verify",
        schema(sql("ALTER TABLE {p}notes DROP COLUMN pinned"), schema="verify"),
        MISMATCH,
    ),
    Case("schema", "unknown schema policy", schema(_nothing, schema="maybe"), CONFIG),
]

# -- timers ------------------------------------------------------------------------------------------


def timer(**kwargs: Any) -> Any:
    async def action(env: Env) -> str | None:
        kwargs.setdefault("note", "wake up")
        await env.loop.schedule_timer(env.sid, **kwargs)
        return None

    return action


def store_timer(due_at_ms: Any) -> Any:
    return store_with_id(lambda s, sid: s.create_timer(sid, due_at_ms=due_at_ms, note="n"), "unused")


async def _store_timer_on_env(env: Env, due: Any) -> None:
    await (await env.store()).create_timer(env.sid, due_at_ms=due, note="n")


TIMER_CASES = [
    Case("timers", "NaN delay", timer(delay_s=math.nan), CONFIG),
    Case("timers", "infinite delay", timer(delay_s=math.inf), CONFIG),
    Case("timers", "negative infinite delay", timer(delay_s=-math.inf), CONFIG),
    Case("timers", "negative delay", timer(delay_s=-1), CONFIG),
    Case("timers", "absurd delay", timer(delay_s=1e30), CONFIG),
    Case("timers", "bool delay", timer(delay_s=True), CONFIG),
    Case("timers", "text delay", timer(delay_s="5"), CONFIG),
    Case("timers", "NaN due time", timer(due_at_ms=math.nan), CONFIG),
    Case("timers", "due time beyond 64 bits", timer(due_at_ms=2**70), CONFIG),
    Case("timers", "negative due time", timer(due_at_ms=-1), CONFIG),
    Case("timers", "zero interval", timer(delay_s=5, interval_s=0), CONFIG),
    Case("timers", "fractional interval", timer(delay_s=5, interval_s=1.5), CONFIG),
    Case("timers", "NaN interval", timer(delay_s=5, interval_s=math.nan), CONFIG),
    Case("timers", "blank note", timer(delay_s=5, note="  "), CONFIG),
    Case("timers", "both delay and due time", timer(delay_s=5, due_at_ms=1), CONFIG),
    Case("timers", "store: NaN due time", ok(lambda env: _store_timer_on_env(env, math.nan)), CONFIG),
    Case("timers", "store: float due time", ok(lambda env: _store_timer_on_env(env, 1.5)), CONFIG),
    Case("timers", "valid delay", timer(delay_s=60), None),
]

# -- raw writes and history --------------------------------------------------------------------------


async def _duplicate_session_row(env: Env) -> None:
    store = await env.store()
    await store.db.execute(
        f"INSERT INTO {store.t['sessions']} (session_id, created_at, updated_at) VALUES (?, ?, ?)",
        (env.sid, 1, 1),
    )


def append(*messages: NewMessage) -> Any:
    return ok(lambda env: _append_to_victim(env, list(messages)))


async def _append_to_victim(env: Env, messages: list[NewMessage]) -> None:
    sid = await victim(env)
    await (await env.store()).append_messages(sid, messages)


async def _set_state(env: Env, seqs: list[Any], state: str) -> None:
    await (await env.store()).set_message_state(env.sid, seqs, state)


CALLS = [{"id": "c1", "type": "function", "function": {"name": "echo", "arguments": "{}"}}]
HISTORY = "history.invalid"
WRITE_CASES = [
    Case("writes", "duplicate primary key", ok(_duplicate_session_row), "store.integrity"),
    Case("writes", "result without a call", append(NewMessage("tool", "r", tool_call_id="c1")), HISTORY),
    Case(
        "writes",
        "user while a call is open",
        append(NewMessage("assistant", None, tool_calls=CALLS), NewMessage("user", "u")),
        HISTORY,
    ),
    Case(
        "writes",
        "call without id",
        append(NewMessage("assistant", None, tool_calls=[{"type": "function"}])),
        HISTORY,
    ),
    Case(
        "writes", "duplicate call ids", append(NewMessage("assistant", None, tool_calls=CALLS * 2)), HISTORY
    ),
    Case("writes", "empty role", append(NewMessage("", "x")), HISTORY),
    Case("writes", "content with lone surrogates", append(NewMessage("user", "\ud800\udfff")), None),
    Case("writes", "content with NUL", append(NewMessage("user", "\x00")), None),
    Case("writes", "unknown message state", ok(lambda env: _set_state(env, [1], "zombie")), CONFIG),
    Case(
        "writes", "message state with a text seq", ok(lambda env: _set_state(env, ["1"], "dropped")), CONFIG
    ),
    Case(
        "writes",
        "message state for a missing seq",
        ok(lambda env: _set_state(env, [999], "dropped")),
        HISTORY,
    ),
    Case(
        "writes",
        "message state splitting a tool pair",
        ok(lambda env: _set_state(env, [2], "compacted_out")),
        HISTORY,
    ),
]

UNSTORABLE = "a\x00b\ud800c"
TEXT_CASES = [
    Case(
        "text",
        "note with NUL and a lone surrogate",
        ok(lambda env: _on_env(env, "add_note", UNSTORABLE)),
        None,
    ),
    Case(
        "text",
        "follow-up with NUL and a lone surrogate",
        ok(lambda env: _on_env(env, "enqueue_follow_up", UNSTORABLE)),
        None,
    ),
    Case(
        "text",
        "system prompt with NUL and a lone surrogate",
        ok(lambda env: _on_env(env, "update_session_prompt", UNSTORABLE)),
        None,
    ),
    Case("text", "timer note with a lone surrogate", timer(delay_s=60, note="wake \ud800"), None),
    Case(
        "text",
        "new session with an unstorable prompt",
        ok(lambda env: env.loop.new_session(system_prompt=UNSTORABLE)),
        None,
    ),
]


async def _on_env(env: Env, method: str, text: str) -> None:
    await getattr(await env.store(), method)(env.sid, text)
    if method == "enqueue_follow_up":  # the next send delivers it: take it now, with its own answer
        env.llm.push(ScriptedLLM.text("noted"))
        await env.loop.send("deliver", env.sid)


# -- integers beyond 64 bits, and non-integers, where the store takes an int ----------------------------


def store_call(call: Callable[[SessionStore, str], Awaitable[Any]]) -> Any:
    async def action(env: Env) -> str | None:
        await call(await env.store(), env.sid)
        return None

    return action


HUGE = 10**5000  # beyond the interpreter's digit limit: not even printable
INT_CASES = [
    Case("ints", "seq beyond 64 bits", store_call(lambda s, sid: s.get_message(sid, 2**70)), CONFIG),
    Case("ints", "seq beyond the digit limit", store_call(lambda s, sid: s.get_message(sid, HUGE)), CONFIG),
    Case("ints", "seq as text", store_call(lambda s, sid: s.get_message(sid, "1")), CONFIG),
    Case("ints", "seq as bool", store_call(lambda s, sid: s.get_message(sid, True)), CONFIG),
    Case(
        "ints", "negative 65-bit timer id", store_call(lambda s, sid: s.cancel_timer(sid, -(2**64))), CONFIG
    ),
    Case("ints", "note id beyond 64 bits", store_call(lambda s, sid: s.delete_note(sid, 2**63)), CONFIG),
    Case(
        "ints",
        "after_seq as float",
        store_call(lambda s, sid: s.load_active_messages(sid, after_seq=1.5)),
        CONFIG,
    ),
    Case(
        "ints", "list limit beyond 64 bits", store_call(lambda s, sid: s.list_sessions(limit=2**70)), CONFIG
    ),
    Case("ints", "due timers limit as float", store_call(lambda s, sid: s.due_timers(limit=1.5)), CONFIG),
    Case("ints", "timer due beyond the digit limit", timer(due_at_ms=HUGE), CONFIG),
    Case("ints", "interval beyond the digit limit", timer(delay_s=5, interval_s=-HUGE), CONFIG),
    Case("ints", "largest 64-bit seq", store_call(lambda s, sid: s.get_message(sid, 2**63 - 1)), None),
]

# -- a full disk, a read-only database (SQLite: simulated with max_page_count / query_only) -----------


def disk(fill: str, script: Callable[[Env], None], *, message: str = "go", resume: bool = False) -> Any:
    """``fill`` = "full" or "read-only" while one send runs; writes work again afterwards. With
    ``resume`` the send stopped with its tool calls pending: recovery is the documented resume()."""

    async def action(env: Env) -> str | None:
        store = await env.store()
        if fill == "full":
            pages = await store.db.fetchone("PRAGMA page_count")
            assert pages is not None
            await store.db.execute(f"PRAGMA max_page_count = {int(pages['page_count']) + 2}")
        else:
            await store.db.execute("PRAGMA query_only = ON")
        script(env)
        code: str | None = None
        try:
            await env.loop.send(message, env.sid)
        except PowerLoopError as exc:
            code = exc.code
        finally:
            await store.db.execute("PRAGMA max_page_count = 1073741823")
            await store.db.execute("PRAGMA query_only = OFF")
        if resume:
            assert (await env.loop.resume(env.sid)).status == "completed"
        return code

    return action


def _big_result(env: Env) -> None:
    env.result = "z" * 1_000_000
    env.llm.push(ScriptedLLM.tool_call("ret"), ScriptedLLM.text("resumed"))


def _reply(env: Env) -> None:
    env.llm.push(ScriptedLLM.text("w" * 1_000_000))


DISK_CASES = [
    Case(
        "disk",
        "full for the user message",
        disk("full", lambda env: None, message="x" * 200_000),
        UNAVAILABLE,
    ),
    Case("disk", "full for the model reply", disk("full", _reply), UNAVAILABLE),
    Case("disk", "full for a tool result, then resume", disk("full", _big_result, resume=True), UNAVAILABLE),
    Case("disk", "read-only database", disk("read-only", lambda env: None), UNAVAILABLE),
]

CASES = (
    INT_CASES
    + DISK_CASES
    + TEXT_CASES
    + ID_CASES
    + PREFIX_CASES
    + ROW_CASES
    + FILE_CASES
    + SCHEMA_CASES
    + TIMER_CASES
    + WRITE_CASES
)


@pytest.mark.parametrize("case", params(CASES))
async def test_store_case(case: Case, env: Env) -> None:
    await run_case(case, env)


# The backends differ exactly here: ids (PostgreSQL refused NUL and non-text ids on its own), integrity
# errors, text that drivers refuse, corrupt rows, dropped tables.
BACKEND_CASES = [
    Case("ids", "NUL id", with_id(ID_USES["loop.send"], "a\x00b"), BAD_ID),
    Case("ids", "int id", with_id(ID_USES["get_session"], 7), BAD_ID),
    Case("ids", "lone surrogate id", store_with_id(ONE_ID_USES["create_session"], "s\ud800"), BAD_ID),
    Case("writes", "duplicate primary key", ok(_duplicate_session_row), "store.integrity"),
    Case("writes", "content with lone surrogates", append(NewMessage("user", "\ud800\udfff")), None),
    Case(
        "rows",
        "pending blob a list",
        damaged("session_state", "pending_json", "[1]", lambda s, sid: s.get_state(sid)),
        CORRUPT_ROW,
    ),
    Case(
        "rows",
        "send on a corrupt blob",
        damaged_then_sent("session_state", "pending_json", "[1]"),
        CORRUPT_ROW,
    ),
    Case("schema", "dropped table, reopened with auto_create", schema(sql("DROP TABLE {p}messages")), None),
    Case("schema", "dropped while open", ok(_drop_while_open), MISMATCH),
    Case("timers", "NaN delay", timer(delay_s=math.nan), CONFIG),
    *TEXT_CASES,
    Case("ints", "seq beyond 64 bits", store_call(lambda s, sid: s.get_message(sid, 2**70)), CONFIG),
    Case("ints", "timer id beyond 64 bits", store_call(lambda s, sid: s.cancel_timer(sid, 2**70)), CONFIG),
    Case("ints", "largest 64-bit seq", store_call(lambda s, sid: s.get_message(sid, 2**63 - 1)), None),
]


@pytest.mark.parametrize("case", params(BACKEND_CASES))
async def test_store_case_on_every_backend(case: Case, backend_env: Env) -> None:
    await run_case(case, backend_env)
