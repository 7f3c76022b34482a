"""The hook audit trail (``AgentLoopConfig.record_hook_events``) on every loop backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from loop_helpers import make_tools

from power_loop import AgentHooks, AgentLoopConfig, HookDirective, HookPoint, StatefulAgentLoop
from power_loop.errors import ConfigError
from power_loop.hooks import MessageAppendCtx, RoundDecideCtx, ToolBeforeCtx
from power_loop.testing import ScriptedLLM

SECRET = "sk-abcdefghijklmnop1234"


def _hooks() -> AgentHooks:
    hooks = AgentHooks()

    def deny_rm(ctx: ToolBeforeCtx) -> HookDirective | None:
        if ctx.tool_args.get("x") == "rm":
            ctx.output = f"refused (key {SECRET})"
            return HookDirective.SKIP
        return None

    def rewrite_args(ctx: ToolBeforeCtx) -> None:
        if ctx.tool_args.get("x") == "ls":
            ctx.tool_args["x"] = "ls -l"

    def looks_only(ctx: RoundDecideCtx) -> None:  # changes nothing: never recorded
        assert ctx.tool_calls

    hooks.register(HookPoint.TOOL_BEFORE, deny_rm)
    hooks.register(HookPoint.TOOL_BEFORE, rewrite_args)
    hooks.register(HookPoint.ROUND_DECIDE, looks_only)
    return hooks


def _llm() -> ScriptedLLM:
    return ScriptedLLM(
        [
            ScriptedLLM.tool_calls([("shell", {"x": "rm"}), ("shell", {"x": "ls"})]),
            ScriptedLLM.text("done"),
        ]
    )


async def _run(make_loop: Callable[..., StatefulAgentLoop], mode: str) -> tuple[StatefulAgentLoop, str]:
    seen: list[str] = []
    loop = make_loop(
        llm=_llm(),
        hooks=_hooks(),
        tool_registry=make_tools(shell=lambda x: seen.append(x) or f"ran {x}"),
        config=AgentLoopConfig(record_hook_events=mode),
    )
    sid = await loop.new_session()
    result = await loop.send("clean up", sid)
    assert result.status == "completed"
    assert seen == ["ls -l"]  # the hooks did their work whatever is recorded
    return loop, sid


async def test_off_records_nothing(make_loop: Callable[..., StatefulAgentLoop]) -> None:
    loop, sid = await _run(make_loop, "off")
    assert await loop.list_hook_events(sid) == []


async def test_metadata_records_each_changing_decision(make_loop: Callable[..., StatefulAgentLoop]) -> None:
    loop, sid = await _run(make_loop, "metadata")
    events = await loop.list_hook_events(sid)
    assert [(e.point, e.decision, e.changed) for e in events] == [
        ("tool.before", "skip", ("output",)),
        ("tool.before", "rewrite", ("tool_args",)),
    ]
    skip, rewrite = events
    assert skip.hook.endswith("deny_rm") and rewrite.hook.endswith("rewrite_args")
    assert {e.send_index for e in events} == {1} and {e.round_index for e in events} == {0}
    assert [e.seq for e in events] == [1, 2] and all(e.created_at > 0 for e in events)
    assert all(e.values is None for e in events)  # metadata only
    assert await loop.list_hook_events(sid, send_index=2) == []


async def test_full_records_the_new_values_redacted(make_loop: Callable[..., StatefulAgentLoop]) -> None:
    loop, sid = await _run(make_loop, "full")
    skip, rewrite = await loop.list_hook_events(sid)
    assert skip.values is not None and SECRET not in str(skip.values)
    assert skip.values["output"].startswith("refused (key ***")
    assert rewrite.values == {"tool_args": {"x": "ls -l"}}


async def test_user_row_and_session_end_decisions_are_recorded(
    make_loop: Callable[..., StatefulAgentLoop],
) -> None:
    hooks = AgentHooks()

    def scrub(ctx: MessageAppendCtx) -> None:
        if ctx.message.get("role") == "user":
            ctx.message = {**ctx.message, "content": "[scrubbed]"}

    def end(ctx: Any) -> None:
        ctx.final_text = "rewritten at the end"

    hooks.register(HookPoint.MESSAGE_APPEND, scrub)
    hooks.register(HookPoint.SESSION_END, end)
    loop = make_loop(
        llm=ScriptedLLM([ScriptedLLM.text("ok"), ScriptedLLM.text("ok again")]),
        hooks=hooks,
        config=AgentLoopConfig(record_hook_events="metadata"),
    )
    sid = await loop.new_session()
    await loop.send("my password is hunter2", sid)
    await loop.send("again", sid)
    events = await loop.list_hook_events(sid)
    assert [(e.send_index, e.point, e.decision) for e in events] == [
        (1, "message.append", "rewrite"),
        (1, "session.end", "rewrite"),
        (2, "message.append", "rewrite"),
        (2, "session.end", "rewrite"),
    ]
    assert (await loop.get_messages(sid))[0]["content"] == "[scrubbed]"


async def test_a_directive_overridden_by_a_later_handler_is_recorded(
    make_loop: Callable[..., StatefulAgentLoop],
) -> None:
    hooks = AgentHooks()
    hooks.register(HookPoint.TOOL_BEFORE, lambda ctx: HookDirective.SKIP)
    hooks.register(HookPoint.TOOL_BEFORE, lambda ctx: HookDirective.CONTINUE)
    loop = make_loop(
        llm=ScriptedLLM([ScriptedLLM.tool_call("shell", {"x": "a"}), ScriptedLLM.text("done")]),
        hooks=hooks,
        tool_registry=make_tools(shell=lambda x: "ran"),
        config=AgentLoopConfig(record_hook_events="metadata"),
    )
    sid = await loop.new_session()
    await loop.send("go", sid)
    assert [e.decision for e in await loop.list_hook_events(sid)] == ["skip", "continue"]


async def test_events_are_exported_and_deleted_with_the_session(
    make_loop: Callable[..., StatefulAgentLoop],
) -> None:
    loop, sid = await _run(make_loop, "metadata")
    store = await loop.ensure_store()
    archive = await store.export_session(sid)
    assert len(archive["tables"]["hook_events"]) == 2
    copy = await store.import_session(archive, new_session_id="sess_" + "c" * 24)
    assert len(await store.list_hook_events(copy)) == 2
    await loop.close_session(sid)
    assert await store.list_hook_events(sid) == []


def test_the_mode_is_validated() -> None:
    with pytest.raises(ConfigError, match="record_hook_events"):
        AgentLoopConfig(record_hook_events="everything")
    config = AgentLoopConfig()
    with pytest.raises(ConfigError):
        config.record_hook_events = "yes"
    assert config.record_hook_events == "off"


async def test_recording_adds_no_round_trip(make_loop: Callable[..., StatefulAgentLoop]) -> None:
    """Decisions made during rounds ride on the round's own append: the same number of writes as
    without recording, and no separate write when nothing is left at the end of the send."""
    counts: dict[str, dict[str, int]] = {}
    for mode in ("off", "metadata", "full"):
        loop = make_loop(
            llm=_llm(),
            hooks=_hooks(),
            tool_registry=make_tools(shell=lambda x: f"ran {x}"),
            config=AgentLoopConfig(record_hook_events=mode),
        )
        store = await loop.ensure_store()
        seen = counts[mode] = {"append_messages": 0, "record_hook_events": 0}
        for name in seen:
            original = getattr(store, name)

            async def counted(
                *args: Any, _name: str = name, _original: Any = original, _seen: Any = seen, **kwargs: Any
            ) -> Any:
                _seen[_name] += 1
                return await _original(*args, **kwargs)

            setattr(store, name, counted)
        sid = await loop.new_session()
        await loop.send("clean up", sid)
        assert len(await loop.list_hook_events(sid)) == (0 if mode == "off" else 2)
    assert counts["metadata"] == counts["full"] == counts["off"]
    assert counts["off"]["record_hook_events"] == 0
