"""SIGKILL inside a tool call, then recovery from another process by each route (SPEC §2.5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from loop_helpers import check_history, make_tools

from power_loop import StatefulAgentLoop
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
        if route == "resume":
            assert results == ["ran a", "ran b"]
        else:
            assert all(r.startswith("<aborted:") for r in results) and len(results) == 2
        assert await loop.get_pending(sid) is None
    finally:
        await loop.aclose()
