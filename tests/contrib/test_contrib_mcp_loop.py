"""A full StatefulAgentLoop conversation whose tools run in a real MCP server process."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from power_loop import StatefulAgentLoop, ToolRegistry
from power_loop.contrib.mcp import StdioMCPClient, register_mcp_tools
from power_loop.testing import ScriptedLLM

SERVER = str(Path(__file__).with_name("mcp_server_fixture.py"))


def _tool_messages(llm: ScriptedLLM, request_index: int) -> list[dict[str, object]]:
    return [m for m in llm.requests[request_index].messages if m.get("role") == "tool"]


async def test_loop_calls_mcp_tools_and_persists_their_results(tmp_path: Path) -> None:
    dsn = str(tmp_path / "x.db")
    registry = ToolRegistry()
    async with StdioMCPClient(sys.executable, [SERVER], timeout_s=10) as client:
        names = await register_mcp_tools(registry, client, prefix="calc_")
        assert "calc_add" in names and "calc_loose_echo" in names
        llm = ScriptedLLM(
            [
                ScriptedLLM.tool_calls(
                    [("calc_add", {"a": 19, "b": 23}), ("calc_fail", {"reason": "quota"})]
                ),
                ScriptedLLM.tool_call("calc_loose_echo", {"text": "hi"}),
                ScriptedLLM.text("19 + 23 = 42"),
            ]
        )
        async with StatefulAgentLoop(llm=llm, dsn=dsn, tool_registry=registry) as loop:
            sid = await loop.new_session()
            result = await loop.send("add 19 and 23", sid)
        assert result.status == "completed"
        assert result.final_text == "19 + 23 = 42"
        assert result.tool_calls == 3

        # The model was offered the MCP tools under their local names ...
        offered = {t["function"]["name"] for t in llm.requests[0].tools or []}
        assert {"calc_add", "calc_fail", "calc_loose_echo", "calc_pid"} <= offered
        # ... and saw what the server process computed, including its error result.
        first = _tool_messages(llm, 1)
        assert first[0]["content"] == "42"
        assert "failed on purpose: quota" in str(first[1]["content"])
        assert "MCPToolError" in str(first[1]["content"])
        assert _tool_messages(llm, 2)[-1]["content"] == '{"text": "hi"}'

    # The results are durable: a new loop on the same DSN replays them to the model.
    llm2 = ScriptedLLM([ScriptedLLM.text("done")])
    async with StatefulAgentLoop(llm=llm2, dsn=dsn, tool_registry=ToolRegistry()) as loop:
        await loop.send("thanks", sid)
    assert _tool_messages(llm2, 0)[0]["content"] == "42"


async def test_a_server_killed_mid_session_becomes_a_failed_tool_result(tmp_path: Path) -> None:
    registry = ToolRegistry()
    async with StdioMCPClient(sys.executable, [SERVER], timeout_s=10, name="calc-server") as client:
        await register_mcp_tools(registry, client)
        llm = ScriptedLLM(
            [
                ScriptedLLM.tool_call("pid", {}),
                ScriptedLLM.tool_call("add", {"a": 1, "b": 2}),
                ScriptedLLM.text("the calculator is down"),
            ]
        )
        killed: list[int] = []
        async with StatefulAgentLoop(llm=llm, dsn=str(tmp_path / "x.db"), tool_registry=registry) as loop:
            sid = await loop.new_session()
            # Kill the server between the two tool rounds: the first round reports its pid.
            original = registry.get("pid")
            assert original is not None

            async def pid_then_kill(arguments: dict[str, object], /) -> str:
                pid = await client.call_tool("pid", arguments)
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return pid

            registry.register(original.definition, pid_then_kill, overwrite=True)
            result = await loop.send("what is 1 + 2?", sid)
        assert killed
        assert result.status == "completed"
        assert result.final_text == "the calculator is down"
        failure = _tool_messages(llm, 2)[-1]["content"]
        assert "MCPError" in str(failure) and "calc-server" in str(failure) and "exited" in str(failure)
