"""Notes under a NotesPolicy, the note tools, the runtime context, and memory providers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from context_helpers import Driver

from power_loop.context import (
    ContextPipeline,
    MemoryProvider,
    MemorySnapshot,
    NotesMemory,
    NotesPolicy,
    ToolRuntimeContext,
    add_note_checked,
    get_tool_runtime_context,
    register_note_tools,
    render_notes,
    tag_as_memory,
    update_note_checked,
    use_tool_runtime_context,
)
from power_loop.errors import ConfigError, NoteRejectedError, NotesFullError
from power_loop.events import AgentEventBus, AgentEventType
from power_loop.hooks import AgentHooks, HookDirective, HookPoint
from power_loop.store import NoteRow, SessionStore
from power_loop.tools import ToolRegistry, execute_tool_call


@pytest.mark.parametrize(
    "kwargs", [{"max_notes": 0}, {"max_note_chars": -1}, {"inject_max_chars": True}, {"eviction": "lru"}]
)
def test_policy_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        NotesPolicy(**kwargs)


async def test_reject_policy(store: SessionStore) -> None:
    sid = await store.create_session()
    policy = NotesPolicy(max_notes=2, max_note_chars=10)
    await add_note_checked(store, sid, "one", policy=policy)
    await add_note_checked(store, sid, "  two  ", policy=policy)
    with pytest.raises(NotesFullError) as full:
        await add_note_checked(store, sid, "three", policy=policy)
    assert full.value.code == "notes.full"
    with pytest.raises(NoteRejectedError) as long:
        await update_note_checked(store, sid, 1, content="x" * 11, policy=policy)
    assert long.value.code == "notes.rejected" and "never truncated" in str(long.value)
    with pytest.raises(NoteRejectedError):
        await add_note_checked(store, sid, "   ", policy=policy)
    assert [n.content for n in await store.list_notes(sid)] == ["one", "two"]
    assert await update_note_checked(store, sid, 2, pinned=True, policy=policy)
    assert not await update_note_checked(store, sid, 42, content="nope", policy=policy)


async def test_fifo_policy_evicts_oldest_unpinned(store: SessionStore) -> None:
    sid = await store.create_session()
    policy = NotesPolicy(max_notes=2, eviction="fifo")
    await add_note_checked(store, sid, "pinned", pinned=True, policy=policy)
    await add_note_checked(store, sid, "old", policy=policy)
    await add_note_checked(store, sid, "new", policy=policy)
    assert [n.content for n in await store.list_notes(sid)] == ["pinned", "new"]
    newest = (await store.list_notes(sid))[-1]
    assert await update_note_checked(store, sid, newest.note_id, pinned=True, policy=policy)
    with pytest.raises(NotesFullError, match="pinned"):
        await add_note_checked(store, sid, "more", policy=policy)


def _note(i: int, text: str, pinned: bool = False) -> NoteRow:
    return NoteRow("s", i, text, pinned, 0, 0)


def test_render_notes_keeps_pinned_and_elides_oldest() -> None:
    assert render_notes([]) == ""
    notes = [_note(1, "a" * 50), _note(2, "b" * 50, pinned=True), _note(3, "c" * 50), _note(4, "d" * 50)]
    full = render_notes(notes)
    assert full.splitlines() == [
        "Notes (4):",
        "#2 [pinned] " + "b" * 50,
        "#1 " + "a" * 50,
        "#3 " + "c" * 50,
        "#4 " + "d" * 50,
    ]
    small = render_notes(notes, policy=NotesPolicy(inject_max_chars=200))
    lines = small.splitlines()
    assert lines[1].startswith("#2 [pinned]") and lines[-1].endswith("not shown)")
    assert "#1 " not in small and "#4 " in small and len(small) <= 200


async def test_note_tools_use_the_runtime_context(store: SessionStore) -> None:
    sid = await store.create_session()
    registry = ToolRegistry()
    assert register_note_tools(registry, policy=NotesPolicy(max_notes=1)) == [
        "note_add",
        "note_update",
        "note_delete",
    ]

    async def call(name: str, args: str) -> Any:
        return await execute_tool_call(
            registry, {"id": "c", "type": "function", "function": {"name": name, "arguments": args}}
        )

    outside = await call("note_add", '{"content": "x"}')
    assert outside.failed and "needs a session" in outside.output
    with use_tool_runtime_context(ToolRuntimeContext(session_id=sid, store=store)):
        added = await call("note_add", '{"content": "likes tea"}')
        assert not added.failed and added.output == "saved note #1"
        full = await call("note_add", '{"content": "two"}')
        assert full.failed and "already has 1 notes" in full.output
        assert (
            await call("note_update", '{"note_id": 1, "content": "likes green tea"}')
        ).output == "updated note #1"
        assert (await call("note_update", '{"note_id": 9, "pinned": true}')).failed
        assert (await call("note_delete", '{"note_id": 9}')).failed
        schema = await call("note_add", '{"content": ""}')
        assert schema.failed  # rejected by the JSON Schema before the handler runs
        assert [n.content for n in await store.list_notes(sid)] == ["likes green tea"]
        assert (await call("note_delete", '{"note_id": 1}')).output == "deleted note #1"
    no_store = ToolRuntimeContext(session_id=sid)
    assert not no_store.has_session_store
    with use_tool_runtime_context(no_store):
        assert "need a session store" in (await call("note_add", '{"content": "x"}')).output
    assert get_tool_runtime_context() is None


async def test_runtime_context_is_per_task() -> None:
    seen: dict[str, str | None] = {}

    async def worker(name: str) -> None:
        with use_tool_runtime_context(ToolRuntimeContext(session_id=name)):
            await asyncio.sleep(0)
            ctx = get_tool_runtime_context()
            seen[name] = None if ctx is None else ctx.session_id
            seen[name + "-thread"] = await asyncio.to_thread(
                lambda: get_tool_runtime_context(required=True).session_id
            )

    await asyncio.gather(worker("a"), worker("b"))
    assert seen == {"a": "a", "b": "b", "a-thread": "a", "b-thread": "b"}
    with pytest.raises(ConfigError):
        get_tool_runtime_context(required=True)


def test_tag_as_memory() -> None:
    tagged = tag_as_memory([{"role": "system", "name": "memory_notes", "content": "n"}, {"content": "x"}])
    assert tagged == [
        {"role": "user", "content": "<memory>\nn\n</memory>", "name": "memory_notes"},
        {"role": "user", "content": "<memory>\nx\n</memory>", "name": "memory_1"},
    ]


async def test_notes_memory_recalls_notes_and_works_with_explicit_store(store: SessionStore) -> None:
    sid = await store.create_session()
    memory = NotesMemory(store)
    assert isinstance(memory, MemoryProvider)
    assert await memory.recall(messages=[], session_id=sid) == []
    await store.add_note(sid, "timezone is UTC+2", pinned=True)
    recalled = await memory.recall(messages=[], session_id=sid)
    assert recalled == [
        {"role": "user", "name": "memory_notes", "content": "Notes (1):\n#1 [pinned] timezone is UTC+2"}
    ]
    assert await NotesMemory().recall(messages=[], session_id=sid) == []  # no store anywhere
    assert await memory.remember(snapshot=MemorySnapshot(session_id=sid), session_id=sid) is None


async def test_memory_is_ephemeral_at_the_end_and_prefix_stays_stable(store: SessionStore) -> None:
    bus = AgentEventBus()
    recalled_events: list[Any] = []
    bus.subscribe(AgentEventType.MEMORY_RECALLED, lambda e: recalled_events.append(e.data))
    pipeline = ContextPipeline(memory=NotesMemory())
    sid = await store.create_session()
    await store.add_note(sid, "user is Ada")
    driver = Driver(store, sid, pipeline, bus=bus)
    await driver.send("hi", [[("t", {}, "r")]])
    await driver.send("again")
    first, second, third = driver.requests
    assert first[-1]["name"] == "memory_notes" and "user is Ada" in first[-1]["content"]
    assert second[:-1] == first[:-1] + second[len(first) - 1 : -1]  # request 2 extends request 1's prefix
    assert second[-1] == first[-1] and third[-1] == first[-1]
    assert all(m.get("name") != "memory_notes" for m in driver.window.messages)  # type: ignore[union-attr]
    assert all(r.name != "memory_notes" for r in await store.load_all_messages(sid))  # never stored
    assert [(e.returned, e.injected) for e in recalled_events] == [(1, 1), (1, 1)]


class _Flaky:
    def __init__(self) -> None:
        self.snapshots: list[MemorySnapshot] = []

    async def recall(
        self, *, messages: list[Any], session_id: str | None, budget_tokens: int = 1500
    ) -> list[Any]:
        raise RuntimeError("vector db down")

    async def remember(self, *, snapshot: MemorySnapshot, session_id: str | None) -> None:
        self.snapshots.append(snapshot)
        raise OSError("disk full")


async def test_memory_failures_emit_events_and_never_fail_the_send(store: SessionStore) -> None:
    bus = AgentEventBus()
    failed: list[Any] = []
    bus.subscribe(AgentEventType.MEMORY_FAILED, lambda e: failed.append(e.data))
    memory = _Flaky()
    driver = Driver(store, await store.create_session(), ContextPipeline(memory=memory), bus=bus)
    await driver.send("hi")
    assert [(f.phase, f.error_type) for f in failed] == [("recall", "RuntimeError"), ("remember", "OSError")]
    assert memory.snapshots[0].final_text == "done" and memory.snapshots[0].status == "completed"
    assert driver.requests[0] == [{"role": "user", "content": "hi"}]


class _Static:
    async def recall(
        self, *, messages: list[Any], session_id: str | None, budget_tokens: int = 1500
    ) -> list[Any]:
        return [
            {"role": "system", "name": "memory_a", "content": "A"},
            {"role": "system", "name": "b", "content": "B"},
        ]

    async def remember(self, *, snapshot: MemorySnapshot, session_id: str | None) -> None:
        return None


@pytest.mark.parametrize("directive", [HookDirective.CONTINUE, HookDirective.SKIP])
async def test_memory_recalled_hook_filters_or_skips(store: SessionStore, directive: HookDirective) -> None:
    hooks = AgentHooks()

    def hook(ctx: Any) -> HookDirective:
        assert ctx.budget_tokens == 1500 and len(ctx.recalled) == 2
        ctx.recalled = ctx.recalled[1:]
        return directive

    hooks.register(HookPoint.MEMORY_RECALLED, hook)
    driver = Driver(store, await store.create_session(), ContextPipeline(memory=_Static()), hooks=hooks)
    await driver.send("hi")
    request = driver.requests[0]
    if directive is HookDirective.SKIP:
        assert request == [{"role": "user", "content": "hi"}]
    else:
        assert request[-1] == {"role": "user", "content": "<memory>\nB\n</memory>", "name": "memory_b"}


async def test_sqlite_note_memory_is_notes_memory_with_a_required_store(store: SessionStore) -> None:
    from power_loop import SQLiteNoteMemory

    sid = await store.create_session()
    await store.add_note(sid, "likes tea")
    memory = SQLiteNoteMemory(store)
    assert isinstance(memory, NotesMemory) and isinstance(memory, MemoryProvider)
    assert repr(memory).startswith("SQLiteNoteMemory(")
    recalled = await memory.recall(messages=[], session_id=sid)
    assert recalled and "likes tea" in recalled[0]["content"]
    with pytest.raises(TypeError):
        SQLiteNoteMemory()  # type: ignore[call-arg]
