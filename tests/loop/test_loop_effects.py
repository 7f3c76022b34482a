"""Effect-aware recovery in one process: the tool-call log, the ``tool.reconcile`` hook and the
idempotency key (the SIGKILL version is in ``test_loop_crash.py``)."""

from __future__ import annotations

from typing import Any

import pytest
from loop_helpers import check_history

from power_loop import ConfigError, StatefulAgentLoop, ToolDefinition, ToolRegistry
from power_loop.base import get_tool_runtime_context, idempotency_key
from power_loop.hooks import HookDirective, HookPoint
from power_loop.loop._reconcile import OUTCOME_UNKNOWN
from power_loop.testing import ScriptedLLM

SCHEMA = {"type": "object", "properties": {"x": {"type": "string"}}}


def _registry(runs: list[tuple[str, str | None]], effect: str) -> ToolRegistry:
    def act(x: str) -> str:
        runs.append((x, get_tool_runtime_context(required=True).idempotency_key))
        return f"did {x}"

    registry = ToolRegistry()
    registry.register(ToolDefinition(name="act", description="acts", input_schema=SCHEMA, effect=effect), act)
    return registry


async def _pending(make_loop, *, status: str | None) -> tuple[str, dict[str, Any], Any]:
    """A session whose send stopped with one open ``act`` call, logged ``status`` (None: not logged)."""
    first = make_loop(llm=ScriptedLLM([ScriptedLLM.tool_call("act", {"x": "pay"})]))
    sid = await first.new_session()
    assert (await first.send("go", sid)).status == "pending_tools"
    pending = await first.get_pending(sid)
    store = await first.ensure_store()
    call_id = pending["tool_calls"][0]["id"]
    if status is not None:
        await store.record_tool_calls_started(sid, [(call_id, "act")], assistant_seq=pending["assistant_seq"])
    if status == "finished":
        await store.record_tool_call_finished(sid, call_id, "paid before the crash")
    return sid, pending, store


@pytest.mark.parametrize(
    ("effect", "status", "expected", "reruns"),
    [
        ("side_effect", None, "did pay", 1),  # never started: its first run
        ("side_effect", "started", OUTCOME_UNKNOWN, 0),
        ("side_effect", "finished", "paid before the crash", 0),
        ("idempotent", "started", "did pay", 1),
        ("pure", "started", "did pay", 1),
    ],
)
async def test_resume_per_effect_and_log_state(make_loop, effect, status, expected, reruns):
    sid, _, _ = await _pending(make_loop, status=status)
    runs: list[tuple[str, str | None]] = []
    loop = make_loop(llm=ScriptedLLM(default=ScriptedLLM.text("ok")), tool_registry=_registry(runs, effect))
    result = await loop.resume(sid)
    assert result.status == "completed"
    messages = await loop.get_messages(sid)
    check_history(messages)
    assert [m["content"] for m in messages if m["role"] == "tool"] == [expected]
    assert len(runs) == reruns


@pytest.mark.parametrize("directive", ["output", "short_circuit"])
async def test_the_reconcile_hook_decides_a_started_side_effect(make_loop, directive):
    sid, pending, _ = await _pending(make_loop, status="started")
    call_id = pending["tool_calls"][0]["id"]
    runs: list[tuple[str, str | None]] = []
    seen: list[Any] = []

    async def reconcile(ctx):
        seen.append(ctx)
        if directive == "short_circuit":
            return HookDirective.SHORT_CIRCUIT  # e.g. the payment API says it never arrived
        ctx.output = "the payment went through"
        return None

    loop = make_loop(
        llm=ScriptedLLM(default=ScriptedLLM.text("ok")), tool_registry=_registry(runs, "side_effect")
    )
    loop.hooks.register(HookPoint.TOOL_RECONCILE, reconcile)
    await loop.resume(sid)
    (ctx,) = seen
    assert (ctx.session_id, ctx.tool_name, ctx.tool_args) == (sid, "act", {"x": "pay"})
    key = idempotency_key(sid, call_id, pending["assistant_seq"])
    assert ctx.idempotency_key == key and ctx.started_at > 0
    results = [m["content"] for m in await loop.get_messages(sid) if m["role"] == "tool"]
    if directive == "short_circuit":
        assert results == ["did pay"] and runs == [("pay", key)]
    else:
        assert results == ["the payment went through"] and runs == []


async def test_a_send_logs_side_effects_and_gives_handlers_a_stable_key(make_loop):
    runs: list[tuple[str, str | None]] = []
    llm = ScriptedLLM([ScriptedLLM.tool_call("act", {"x": "a"}), ScriptedLLM.text("done")])
    loop: StatefulAgentLoop = make_loop(llm=llm, tool_registry=_registry(runs, "side_effect"))
    sid = await loop.new_session()
    assert (await loop.send("go", sid)).final_text == "done"
    messages = await loop.get_messages(sid)
    call_id = messages[1]["tool_calls"][0]["id"]
    assert runs == [("a", idempotency_key(sid, call_id, 2))]
    key = runs[0][1]
    assert key is not None and key.startswith("pl-") and len(key) == 35
    (record,) = await (await loop.ensure_store()).get_tool_call_records(sid)
    assert (record.tool_call_id, record.status, record.output) == (call_id, "finished", "did a")
    assert record.assistant_seq == 2


async def test_pure_and_idempotent_calls_are_not_logged(make_loop):
    for effect in ("pure", "idempotent"):
        llm = ScriptedLLM([ScriptedLLM.tool_call("act", {"x": "a"}), ScriptedLLM.text("done")])
        loop = make_loop(llm=llm, tool_registry=_registry([], effect))
        sid = await loop.new_session()
        await loop.send("go", sid)
        assert await (await loop.ensure_store()).get_tool_call_records(sid) == []


def test_effect_is_validated_and_defaults_to_side_effect():
    assert ToolDefinition(name="t", description="d").effect == "side_effect"
    with pytest.raises(ConfigError, match="effect"):
        ToolDefinition(name="t", description="d", effect="maybe")  # type: ignore[arg-type]
    assert idempotency_key("s", "c", 2) == idempotency_key("s", "c", 2) != idempotency_key("s", "d", 2)
    assert idempotency_key("s", "c", 2) != idempotency_key("s", "c", 9)  # a reused id in a later turn


def test_the_decorator_and_the_built_in_tools_declare_their_effect():
    registry = ToolRegistry()

    @registry.tool(effect="pure")
    def look(x: str) -> str:
        """Look."""
        return x

    entry = registry.get("look")
    assert entry is not None and entry.definition.effect == "pure"
    from power_loop.tools import FILE_TOOL_DEFINITIONS

    effects = {d.name: d.effect for d in FILE_TOOL_DEFINITIONS.values()}
    assert effects["read_file"] == "pure" and effects["write_file"] == "idempotent"
    assert effects["edit_file"] == "side_effect"


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (None, "<aborted: user gave up>"),
        ("started", "<aborted: user gave up; the call had started, so its effect may have happened>"),
        ("finished", "<aborted: user gave up; the call had already run, so its effect has happened>"),
    ],
)
async def test_aborting_a_logged_side_effect_tells_the_model_its_effect_may_have_happened(
    make_loop, status, said
):
    sid, _, _ = await _pending(make_loop, status=status)
    loop = make_loop(llm=ScriptedLLM(["noted"]), tool_registry=_registry([], "side_effect"))
    assert await loop.abort_pending(sid, reason="user gave up") == 1
    tool = [m for m in await loop.get_messages(sid) if m["role"] == "tool"]
    assert [m["content"] for m in tool] == [said]
    check_history(await loop.get_messages(sid))
    healed = await loop.send("next", sid)  # the session goes on
    assert healed.status == "completed"
