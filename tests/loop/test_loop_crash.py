"""SIGKILL inside a tool call, then recovery from another process by each route (SPEC §2.5)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from loop_helpers import check_history, make_tools

from power_loop import StatefulAgentLoop, ToolDefinition, ToolRegistry
from power_loop.hooks import HookDirective, HookPoint
from power_loop.loop._reconcile import OUTCOME_UNKNOWN
from power_loop.store import open_store
from power_loop.testing import ScriptedLLM

WORKER = textwrap.dedent(
    """
    import asyncio, sys, time
    from power_loop import StatefulAgentLoop, ToolDefinition, ToolRegistry
    from power_loop.testing import ScriptedLLM

    dsn, prefix, marker = sys.argv[1], sys.argv[2], sys.argv[3]

    def stuck(x):
        open(marker, "w").write("in tool")
        time.sleep(600)

    registry = ToolRegistry()
    registry.register(
        ToolDefinition(name="stuck", description="never returns",
                       input_schema={"type": "object", "properties": {"x": {"type": "string"}}}),
        stuck,
    )

    async def main():
        llm = ScriptedLLM([ScriptedLLM.tool_calls([("stuck", {"x": "a"}), ("stuck", {"x": "b"})])])
        loop = StatefulAgentLoop(llm=llm, dsn=dsn, table_prefix=prefix, tool_registry=registry)
        sid = await loop.new_session()
        print(sid, flush=True)
        await loop.send("do the thing", sid)

    asyncio.run(main())
    """
)


def _crash_mid_tool(tmp_path: Path, target: dict[str, str]) -> str:
    dsn, prefix = target["dsn"], target["table_prefix"]
    marker = tmp_path / "marker"
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, dsn, prefix, str(marker)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        sid = proc.stdout.readline().strip()
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None, "worker died before reaching the tool"
            assert time.monotonic() < deadline, "worker never reached the tool"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return sid


@pytest.mark.parametrize("route", ["resume", "abort_pending", "heal_pending"])
async def test_sigkill_inside_a_tool_call_is_recoverable(tmp_path, target, route):
    sid = _crash_mid_tool(tmp_path, target)
    llm = ScriptedLLM(default=ScriptedLLM.text("recovered"))
    loop = StatefulAgentLoop(llm=llm, **target, tool_registry=make_tools(stuck=lambda x: f"ran {x}"))
    try:
        pending = await loop.get_pending(sid)
        assert pending is not None and len(pending["tool_calls"]) == 2
        if route == "resume":
            result = await loop.resume(sid)
            assert result.status == "completed"
        elif route == "abort_pending":
            assert await loop.abort_pending(sid, reason="worker crashed") == 2
            result = await loop.send("continue", sid)
        else:
            result = await loop.send("continue", sid, heal_pending=True)
        assert result.final_text == "recovered"
        messages = await loop.get_messages(sid)
        check_history(messages)
        results = [m["content"] for m in messages if m["role"] == "tool"]
        if route == "resume":  # "stuck" is side-effecting (the default) and had started
            assert results == [OUTCOME_UNKNOWN, OUTCOME_UNKNOWN]
        else:
            assert all(r.startswith("<aborted:") for r in results) and len(results) == 2
        assert await loop.get_pending(sid) is None
    finally:
        await loop.aclose()


EFFECT_WORKER = textwrap.dedent(
    """
    import asyncio, sys, time
    from power_loop import StatefulAgentLoop, ToolDefinition, ToolRegistry
    from power_loop.base import get_tool_runtime_context
    from power_loop.testing import ScriptedLLM

    dsn, prefix, log = sys.argv[1], sys.argv[2], sys.argv[3]

    def tool(effect):
        def run(x):
            key = get_tool_runtime_context(required=True).idempotency_key
            with open(log, "a") as f:
                f.write(f"{effect} {x} {key}\\n")
            if x == "slow":
                time.sleep(600)
            return f"{effect} done"
        return run

    registry = ToolRegistry()
    for effect in ("pure", "idempotent", "side_effect"):
        registry.register(
            ToolDefinition(name=effect, description=effect, effect=effect,
                           input_schema={"type": "object", "properties": {"x": {"type": "string"}}}),
            tool(effect),
        )

    async def main():
        calls = [(e, {"x": x}) for e in ("pure", "idempotent", "side_effect") for x in ("fast", "slow")]
        llm = ScriptedLLM([ScriptedLLM.tool_calls(calls)])
        loop = StatefulAgentLoop(llm=llm, dsn=dsn, table_prefix=prefix, tool_registry=registry)
        sid = await loop.new_session()
        print(sid, flush=True)
        await loop.send("do the things", sid)

    asyncio.run(main())
    """
)


async def _crash_with_effects(tmp_path: Path, target: dict[str, str]) -> tuple[str, Path]:
    """Six calls (a fast and a slow one per effect class); SIGKILL once all have started and the fast
    side-effecting one is logged finished."""
    log = tmp_path / "executions.log"
    proc = subprocess.Popen(  # noqa: ASYNC220 - the test owns the child and kills it
        [sys.executable, "-c", EFFECT_WORKER, target["dsn"], target["table_prefix"], str(log)],
        stdout=subprocess.PIPE,
        text=True,
    )
    store = None
    try:
        assert proc.stdout is not None
        sid = proc.stdout.readline().strip()
        store = await open_store(target["dsn"], table_prefix=target["table_prefix"])
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "worker died before running its tools"
            assert time.monotonic() < deadline, "worker never ran its tools"
            finished = [r for r in await store.get_tool_call_records(sid) if r.status == "finished"]
            if log.exists() and len(log.read_text().splitlines()) == 6 and finished:
                break
            await asyncio.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        if store is not None:
            await store.close()
    assert proc.returncode == -signal.SIGKILL
    return sid, log


def _recovery_registry(log: Path) -> ToolRegistry:
    from power_loop.base import get_tool_runtime_context

    registry = ToolRegistry()
    for effect in ("pure", "idempotent", "side_effect"):

        def run(x: str, effect: str = effect) -> str:
            key = get_tool_runtime_context(required=True).idempotency_key
            with open(log, "a") as f:
                f.write(f"{effect} {x} {key}\n")
            return f"{effect} redone"

        schema = {"type": "object", "properties": {"x": {"type": "string"}}}
        registry.register(
            ToolDefinition(name=effect, description=effect, effect=effect, input_schema=schema), run
        )
    return registry


@pytest.mark.parametrize("reconcile", ["default", "hook"])
async def test_recovery_reruns_pure_and_idempotent_calls_but_never_a_started_side_effect(
    tmp_path, target, reconcile
):
    sid, log = await _crash_with_effects(tmp_path, target)
    lines = log.read_text().splitlines()
    keys_before = {tuple(line.split()[:2]): line.split()[2] for line in lines}
    loop = StatefulAgentLoop(
        llm=ScriptedLLM(default=ScriptedLLM.text("recovered")),
        **target,
        tool_registry=_recovery_registry(log),
    )
    seen: list[tuple[str, str]] = []
    if reconcile == "hook":

        async def decide(ctx):
            seen.append((ctx.tool_name, ctx.idempotency_key))
            ctx.output = f"checked {ctx.tool_args['x']}: it went through"
            return HookDirective.CONTINUE

        loop.hooks.register(HookPoint.TOOL_RECONCILE, decide)
    try:
        result = await loop.resume(sid)
        assert result.status == "completed" and result.final_text == "recovered"
        messages = await loop.get_messages(sid)
        check_history(messages)
        assert await loop.get_pending(sid) is None
    finally:
        await loop.aclose()
    runs: dict[str, int] = {}
    for line in log.read_text().splitlines():
        effect, x, key = line.split()
        runs[effect] = runs.get(effect, 0) + 1
        assert key == keys_before[(effect, x)]  # the same idempotency key on every run of a call
    # Re-executions per effect class: both pure and both idempotent calls ran again; no side effect did.
    assert runs == {"pure": 4, "idempotent": 4, "side_effect": 2}
    results = {m["tool_call_id"]: m["content"] for m in messages if m["role"] == "tool"}
    calls = [c for m in messages if m.get("tool_calls") for c in m["tool_calls"]]
    by_name = {}
    for c in calls:
        by_name.setdefault(c["function"]["name"], []).append(results[c["id"]])
    assert by_name["pure"] == ["pure redone"] * 2 and by_name["idempotent"] == ["idempotent redone"] * 2
    side = by_name["side_effect"]
    # The fast side-effecting call finished before the crash: its logged output answers it.
    assert side[0] == "side_effect done"
    if reconcile == "default":
        assert side[1] == OUTCOME_UNKNOWN
    else:
        assert side[1] == "checked slow: it went through"
        assert [name for name, _ in seen] == ["side_effect"]
        assert seen[0][1] == keys_before[("side_effect", "slow")]
