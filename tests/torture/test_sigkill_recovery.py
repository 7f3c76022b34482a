"""SIGKILL at random points of tool-using sends, then recovery by each route in this process.

A worker process drives one session through sends whose rounds call a pure, an idempotent and a
side-effecting tool (each logging its runs with its idempotency key) and reports every finished send
with the session's message count. The test kills it after a random delay — anywhere: in the model call, a tool, a commit
— and recovers the session by ``resume``, ``abort_pending`` or ``send(heal_pending=True)``. Checked
after every kill: nothing committed lost, history valid, the session resumable and sendable, and no
side-effecting call executed twice; at the end, no message stored twice (every send's user message is
unique, and so is every call's result). Re-runs of the pure and idempotent tools are counted
too (allowed: recovery re-runs them). Kill points are random, so coverage varies from run to run; the
assertions hold at every point, so the outcome does not. A summary line gives the figures.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from loop_helpers import check_history

from power_loop import StatefulAgentLoop, ToolDefinition, ToolRegistry
from power_loop.base import get_tool_runtime_context
from power_loop.testing import ScriptedLLM

pytestmark = [pytest.mark.torture, pytest.mark.slow]

KILLS = int(os.environ.get("POWER_LOOP_TORTURE_N", "6"))
ROUTES = ("resume", "abort_pending", "heal_pending")
EFFECTS = ("pure", "idempotent", "side_effect")

WORKER = textwrap.dedent(
    """
    import asyncio, random, sys, time
    from power_loop import StatefulAgentLoop, ToolDefinition, ToolRegistry
    from power_loop.base import get_tool_runtime_context
    from power_loop.testing import ScriptedLLM

    dsn, prefix, sid, log, seed = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    rng = random.Random(seed)

    def tool(effect):
        def run(x):
            key = get_tool_runtime_context(required=True).idempotency_key
            with open(log, "a") as f:
                f.write(f"{effect} {key}\\n")
            time.sleep(rng.random() / 20)
            return f"{effect} {x}"
        return run

    registry = ToolRegistry()
    for effect in ("pure", "idempotent", "side_effect"):
        schema = {"type": "object", "properties": {"x": {"type": "string"}}}
        registry.register(ToolDefinition(name=effect, description=effect, effect=effect,
                                         input_schema=schema), tool(effect))

    def respond(request):
        if request.messages[-1]["role"] == "user":
            return ScriptedLLM.tool_calls([(e, {"x": e}) for e in ("pure", "idempotent", "side_effect")])
        return ScriptedLLM.text("round done")

    async def main():
        loop = StatefulAgentLoop(llm=ScriptedLLM(responder=respond), dsn=dsn, table_prefix=prefix,
                                 tool_registry=registry)
        print("ready", flush=True)
        for n in range(1000):
            await loop.send(f"task {seed}-{n}", sid, heal_pending=True)
            print(len(await loop.get_messages(sid)), flush=True)

    asyncio.run(main())
    """
)


def _recovery_registry(log: Path) -> ToolRegistry:
    registry = ToolRegistry()
    for effect in EFFECTS:

        def run(x: str, effect: str = effect) -> str:
            key = get_tool_runtime_context(required=True).idempotency_key
            with open(log, "a") as f:
                f.write(f"{effect} {key}\n")
            return f"{effect} {x}"

        schema = {"type": "object", "properties": {"x": {"type": "string"}}}
        registry.register(
            ToolDefinition(name=effect, description=effect, effect=effect, input_schema=schema), run
        )
    return registry


def _kill_at_random(target: dict[str, str], sid: str, log: Path, seed: int) -> int:
    """Run the worker, SIGKILL it after a random delay; return the last message count it reported."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, target["dsn"], target["table_prefix"], sid, str(log), str(seed)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(random.Random(seed).uniform(0.0, 1.5))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    counts = [int(line) for line in out.split() if line.isdigit()]
    return counts[-1] if counts else 0


def _scripted() -> ScriptedLLM:
    def respond(request):
        if request.messages[-1]["role"] == "user":
            return ScriptedLLM.tool_calls([(e, {"x": e}) for e in ("pure", "idempotent", "side_effect")])
        return ScriptedLLM.text("round done")

    return ScriptedLLM(responder=respond)


async def _final_messages(target: dict[str, str], sid: str) -> list[dict[str, Any]]:
    loop = StatefulAgentLoop(llm=_scripted(), **target)
    try:
        return await loop.get_messages(sid)
    finally:
        await loop.aclose()


def _duplicates(messages: list[dict[str, Any]]) -> int:
    """Messages stored twice: a send's (unique) user message, or a second result for one call (call
    ids repeat across worker processes, so results are counted per assistant message)."""
    users = Counter(m["content"] for m in messages if m["role"] == "user")
    twice = sum(n - 1 for n in users.values())
    results: Counter[str] = Counter()
    for m in messages:
        if m["role"] == "tool":
            results[m["tool_call_id"]] += 1
        else:
            twice += sum(n - 1 for n in results.values())
            results.clear()
    return twice + sum(n - 1 for n in results.values())


async def test_sigkill_at_random_points_then_recovery_by_each_route(tmp_path, target):
    figures: Counter[str] = Counter({"lost": 0, "unresumable": 0})
    log = tmp_path / "runs.log"
    setup = StatefulAgentLoop(llm=_scripted(), **target)
    sid = await setup.new_session()
    await setup.aclose()
    base_seed = int(os.environ.get("POWER_LOOP_TORTURE_SEED", str(random.randrange(1 << 30))))
    for kill in range(KILLS):
        seed = base_seed + kill
        reported = await asyncio.to_thread(_kill_at_random, target, sid, log, seed)
        figures["kills"] += 1
        route = ROUTES[kill % len(ROUTES)]
        loop = StatefulAgentLoop(llm=_scripted(), **target, tool_registry=_recovery_registry(log))
        try:
            before = await loop.get_messages(sid)
            if len(before) < reported:
                figures["lost"] += 1
            figures["pending_after_kill"] += await loop.get_pending(sid) is not None
            try:
                if route == "resume":
                    await loop.resume(sid)
                elif route == "abort_pending":
                    await loop.abort_pending(sid, reason="torture")
                result = await loop.send(f"after kill {kill}", sid, heal_pending=route == "heal_pending")
                assert result.status == "completed", (seed, route, result)
            except Exception as exc:
                figures["unresumable"] += 1
                raise AssertionError(f"seed {seed}, route {route}: recovery failed: {exc!r}") from exc
            after = await loop.get_messages(sid)
            check_history(after)
            assert after[: len(before)] == before, f"seed {seed}: recovery rewrote committed rows"
            assert await loop.get_pending(sid) is None
        finally:
            await loop.aclose()
    final = await _final_messages(target, sid)
    figures["messages"] = len(final)
    figures["duplicated"] = _duplicates(final)
    # Started side effects recovery answered without running them again (reconcile's default).
    figures["outcome_unknown"] = sum(
        m["role"] == "tool" and str(m["content"]).startswith("[outcome unknown") for m in final
    )
    lines = [line.split() for line in log.read_text().splitlines()]
    for effect in EFFECTS:
        runs = Counter(words[1] for words in lines if len(words) == 2 and words[0] == effect)
        figures[f"{effect}_calls"] = len(runs)
        figures[f"re_executed_{effect}"] = sum(n - 1 for n in runs.values())
    backend = next((b for b in ("postgres", "mysql") if target["dsn"].startswith(b)), "sqlite")
    print(f"\ntorture[{backend}] seed={base_seed} {dict(figures)}")
    assert figures["lost"] == 0 and figures["unresumable"] == 0 and figures["duplicated"] == 0
    assert figures["re_executed_side_effect"] == 0, dict(figures)
