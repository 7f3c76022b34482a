"""StoreBlackboard: entries, limits, rendering and concurrent writers (handles and processes)."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from pathlib import Path

import pytest

from power_loop.agents import (
    Blackboard,
    BlackboardEntry,
    StoreBlackboard,
    register_blackboard_tools,
    render_entries,
)
from power_loop.errors import BlackboardError, PowerLoopError
from power_loop.store import open_store
from power_loop.tools import ToolRegistry, ToolRuntimeContext, use_tool_runtime_context


async def test_post_read_update_remove(store):
    board = StoreBlackboard(store)
    assert isinstance(board, Blackboard)
    assert await board.read("b1") == []
    first = await board.post("b1", text="plan", kind="task", status="open", author="sess_a")
    second = await board.post("b1", text="fyi")
    assert (first.id, second.id) == (1, 2)
    assert first.created_at.endswith("Z") and first.created_at == first.updated_at
    updated = await board.update("b1", 1, status="done")
    assert (updated.text, updated.status, updated.author, updated.created_at) == (
        "plan",
        "done",
        "sess_a",
        first.created_at,
    )
    assert await board.remove("b1", 2) is True
    assert await board.remove("b1", 2) is False
    third = await board.post("b1", text="later")
    assert third.id == 3  # ids are never reused
    assert [e.id for e in await board.read("b1")] == [1, 3]
    assert await board.read("other") == []  # boards are independent
    assert await store.get_shared_state("blackboard:b1", "board") is not None


async def test_invalid_requests_raise_blackboard_error_and_change_nothing(store):
    board = StoreBlackboard(store, max_entries=2, max_text_len=10)
    await board.post("b", text="one")
    await board.post("b", text="two")
    with pytest.raises(BlackboardError, match="full"):
        await board.post("b", text="three")
    with pytest.raises(BlackboardError, match="no entry #9"):
        await board.update("b", 9, text="x")
    with pytest.raises(BlackboardError, match="limit is 10"):
        await board.post("c", text="x" * 11)
    for bad in ("", "bad id!", "x" * 200):
        with pytest.raises(BlackboardError, match="invalid board id"):
            await board.read(bad)
    with pytest.raises(BlackboardError, match="invalid kind"):
        await board.post("c", text="x", kind="a b")
    with pytest.raises(BlackboardError):
        StoreBlackboard(store, max_entries=0)
    assert [e.text for e in await board.read("b")] == ["one", "two"]
    err = BlackboardError("x")
    assert (
        isinstance(err, PowerLoopError) and isinstance(err, ValueError) and err.code == "blackboard.invalid"
    )


def test_render_and_dict_round_trip():
    entry = BlackboardEntry(id=4, text="ship it", kind="task", status="doing", author="sess_1")
    assert entry.render() == "- #4 [task·doing] (sess_1) ship it"
    assert BlackboardEntry(id=5, text="hi").render() == "- #5 [note] hi"
    assert BlackboardEntry.from_dict(entry.to_dict()) == entry
    assert render_entries([]) == ""
    assert render_entries([], header="Board:", empty="(empty)") == "Board:\n(empty)"
    assert render_entries([entry], header="H") == "H\n- #4 [task·doing] (sess_1) ship it"


async def test_concurrent_posts_from_two_handles_lose_nothing(store, make_store):
    other = await make_store()
    boards = [StoreBlackboard(store), StoreBlackboard(other)]
    await asyncio.gather(*(boards[i % 2].post("race", text=f"t{i}", author=f"h{i % 2}") for i in range(30)))
    entries = await boards[0].read("race")
    assert sorted(e.text for e in entries) == sorted(f"t{i}" for i in range(30))
    assert sorted(e.id for e in entries) == list(range(1, 31))


_WRITER = textwrap.dedent("""
    import asyncio, sys, time
    from pathlib import Path
    from power_loop.agents import StoreBlackboard
    from power_loop.store import open_store

    async def main(path, tag, n):
        store = await open_store(path)
        board = StoreBlackboard(store)
        # Start together with the other writers so the posts really interleave.
        Path(path + "." + tag + ".ready").touch()
        deadline = time.monotonic() + 30
        while not Path(path + ".go").exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        for i in range(n):
            await board.post("procs", text=f"{tag}-{i}", author=tag)
        await store.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
""")


def _open_gate(path: str, tags: tuple[str, ...]) -> None:
    """Wait until every writer process is ready, then let them all go at once."""
    ready = [Path(f"{path}.{tag}.ready") for tag in tags]
    deadline = time.monotonic() + 30
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    Path(path + ".go").touch()


async def test_concurrent_posts_from_two_processes_lose_nothing(tmp_path: Path):
    path = str(tmp_path / "board.db")
    store = await open_store(path)
    try:
        script = tmp_path / "writer.py"
        script.write_text(_WRITER)
        procs = [
            await asyncio.create_subprocess_exec(sys.executable, str(script), path, tag, "25")
            for tag in ("p1", "p2")
        ]
        board = StoreBlackboard(store)
        await asyncio.to_thread(_open_gate, path, ("p1", "p2"))
        for i in range(25):
            await board.post("procs", text=f"main-{i}", author="main")
        codes = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), 60)
        assert codes == [0, 0]
        entries = await board.read("procs")
        expected = {f"{tag}-{i}" for tag in ("main", "p1", "p2") for i in range(25)}
        assert {e.text for e in entries} == expected
        assert sorted(e.id for e in entries) == list(range(1, 76))
    finally:
        await store.close()


async def test_board_tools(tmp_path: Path):
    store = await open_store(str(tmp_path / "t.db"))
    try:
        board = StoreBlackboard(store)
        registry = ToolRegistry()
        register_blackboard_tools(registry, board, "team", kinds=("note", "task"), statuses=("open", "done"))
        assert {"board_read", "board_post", "board_update", "board_remove"} <= set(registry.names())
        with use_tool_runtime_context(ToolRuntimeContext(session_id="sess_agent")):
            out = await registry.invoke_async(
                "board_post", {"text": "hello", "kind": "task", "status": "open"}
            )
            assert out.startswith("Posted #1.") and "- #1 [task·open] (sess_agent) hello" in out
            assert "(1 entries)" in await registry.invoke_async("board_read", {})
            out = await registry.invoke_async("board_update", {"entry_id": 1, "status": "done"})
            assert "[task·done]" in out
            assert (await registry.invoke_async("board_update", {"entry_id": 7, "text": "x"})).startswith(
                "Error:"
            )
            assert (await registry.invoke_async("board_update", {"entry_id": 1})).startswith("Error:")
            assert "(empty)" in await registry.invoke_async("board_remove", {"entry_id": 1})
            assert (await registry.invoke_async("board_remove", {"entry_id": 1})).startswith("Error:")
        problems = registry.validate("board_post", {"text": "x", "status": "blocked"})
        assert problems is not None and "status" in problems
        with pytest.raises(BlackboardError):
            register_blackboard_tools(ToolRegistry(), board, "bad id")
        with pytest.raises(BlackboardError):
            register_blackboard_tools(ToolRegistry(), board, "ok", default_kind="idea")
    finally:
        await store.close()


async def test_sqlite_blackboard_is_the_store_board_with_published_defaults(store):
    from power_loop import SqliteBlackboard

    board = SqliteBlackboard(store)
    assert isinstance(board, StoreBlackboard) and isinstance(board, Blackboard)
    assert (board.max_entries, board.max_text_len) == (60, 2000)
    for i in range(60):
        await board.post("pub", text=f"entry {i}")
    with pytest.raises(BlackboardError):
        await board.post("pub", text="one too many")
    assert len(await board.read("pub")) == 60


async def test_published_call_shape_uses_the_runtime_env_board_and_the_spec_name(store):
    from power_loop import RuntimeEnv, SqliteBlackboard, runtime_env_context

    registry = ToolRegistry()
    register_blackboard_tools(registry)  # published: no board here, the RuntimeEnv names it
    assert registry.names() == ["board_read", "board_post", "board_update", "board_remove"]
    sid = await store.create_session(metadata={"spec_name": "researcher"})
    post = registry.get("board_post").handler
    with use_tool_runtime_context(ToolRuntimeContext(session_id=sid, store=store)):
        assert await post(text="hello") == "Error: no shared board is configured for this agent."
        board = SqliteBlackboard(store)
        with runtime_env_context(RuntimeEnv(blackboard=board, blackboard_id="team")):
            shown = await post(text="found three papers", status="done")
            assert "(researcher) found three papers" in shown
        other = await store.create_session()
    with use_tool_runtime_context(ToolRuntimeContext(session_id=other, store=store)):
        with runtime_env_context(RuntimeEnv(blackboard=board, blackboard_id="team")):
            assert f"({other}) second" in await post(text="second")
    with pytest.raises(BlackboardError):
        register_blackboard_tools(ToolRegistry(), board)  # a board without its id
