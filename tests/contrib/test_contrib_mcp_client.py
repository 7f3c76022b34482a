"""StdioMCPClient against a real MCP server process (tests/contrib/mcp_server_fixture.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from power_loop.contrib.mcp import MCPToolSource, McpToolSpec, StdioMCPClient
from power_loop.errors import ConfigError, MCPError, MCPToolError, MissingDependencyError, PowerLoopError

SERVER = str(Path(__file__).with_name("mcp_server_fixture.py"))


def _alive(pid: int) -> bool:
    """True while ``pid`` exists, zombies included (signal 0 still reaches an unreaped child)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
async def client() -> AsyncIterator[StdioMCPClient]:
    async with StdioMCPClient(sys.executable, [SERVER], timeout_s=10) as c:
        yield c


async def test_lists_the_servers_tools(client: StdioMCPClient) -> None:
    assert isinstance(client, MCPToolSource)
    specs = await client.list_tools()
    by_name = {s.name: s for s in specs}
    assert list(by_name) == ["add", "fail", "loose.echo", "pid", "sleep", "picture", "where"]
    assert by_name["add"] == McpToolSpec(
        "add",
        "Add two integers.",
        {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    )
    assert by_name["loose.echo"].input_schema["properties"]["text"] == {"type": "frobnicate"}


async def test_call_tool_returns_the_servers_text(client: StdioMCPClient) -> None:
    assert await client.call_tool("add", {"a": 20, "b": 22}) == "42"
    assert client.connected


async def test_non_text_blocks_are_described_and_joined_by_newline(client: StdioMCPClient) -> None:
    text = await client.call_tool("picture", {})
    assert text == "a red dot\n[image: image/png, 12 base64 chars]"


async def test_an_error_result_raises_mcp_tool_error(client: StdioMCPClient) -> None:
    with pytest.raises(MCPToolError) as info:
        await client.call_tool("fail", {"reason": "disk full"})
    err = info.value
    assert isinstance(err, MCPError) and isinstance(err, PowerLoopError)
    assert err.code == "mcp.tool_error"
    assert err.tool_name == "fail"
    assert err.content == "failed on purpose: disk full"
    assert "disk full" in str(err)
    # A failed tool does not break the connection.
    assert await client.call_tool("add", {"a": 1, "b": 1}) == "2"


async def test_a_slow_tool_times_out_with_a_clear_error() -> None:
    # The call timeout is short, but the handshake keeps its own (default >= 30 s) budget: on a loaded
    # machine starting the server alone can take longer than a short call timeout.
    client = StdioMCPClient(sys.executable, [SERVER], timeout_s=2, name="fixture")
    assert client.connect_timeout_s == 30
    async with client as c:
        with pytest.raises(MCPError) as info:
            await c.call_tool("sleep", {"seconds": 120})
        assert info.value.code == "mcp.error"
        assert "no answer within 2s" in str(info.value)
        assert "fixture" in str(info.value)
        assert await c.call_tool("add", {"a": 2, "b": 2}) == "4"  # still usable afterwards


async def test_close_stops_and_reaps_the_server_process() -> None:
    c = await StdioMCPClient(sys.executable, [SERVER], timeout_s=10).connect()
    pid = int(await c.call_tool("pid"))
    assert _alive(pid)
    await c.aclose()
    assert not _alive(pid)
    assert not c.connected
    await c.aclose()  # idempotent
    with pytest.raises(MCPError, match="closed"):
        await c.call_tool("add", {"a": 1, "b": 2})
    with pytest.raises(MCPError, match="closed"):
        await c.connect()


async def test_server_killed_mid_session_gives_a_clear_error_not_a_hang() -> None:
    async with StdioMCPClient(sys.executable, [SERVER], timeout_s=10, name="calc") as c:
        pid = int(await c.call_tool("pid"))
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(MCPError) as info:
            await c.call_tool("add", {"a": 1, "b": 2})
        assert not isinstance(info.value, MCPToolError)
        assert "exited" in str(info.value) and "calc" in str(info.value)
        # Later calls fail fast too, and the client reports the lost connection.
        with pytest.raises(MCPError, match="exited"):
            await c.list_tools()
        assert not c.connected
    assert not _alive(pid)


async def test_server_killed_while_a_call_is_in_flight(client: StdioMCPClient) -> None:
    pid = int(await client.call_tool("pid"))
    call = asyncio.create_task(client.call_tool("sleep", {"seconds": 30}))
    await asyncio.sleep(0.2)  # let the request reach the server (the outcome is the same either way)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(MCPError, match="exited"):
        await call


async def test_a_missing_command_is_a_clear_start_error() -> None:
    c = StdioMCPClient("/nonexistent/mcp-server-binary", timeout_s=5)
    with pytest.raises(MCPError, match="could not start the server process"):
        await c.connect()
    assert not c.connected


async def test_a_server_that_exits_at_start_is_a_clear_error() -> None:
    c = StdioMCPClient(sys.executable, [SERVER, "--crash-on-start"], timeout_s=5)
    with pytest.raises(MCPError, match="exited or closed its stdout during the handshake"):
        await c.connect()


async def test_a_server_that_never_answers_the_handshake_times_out_and_is_cleaned_up(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(120)"
    c = StdioMCPClient(sys.executable, ["-c", script, str(pid_file)], timeout_s=10, connect_timeout_s=1)
    with pytest.raises(MCPError, match="did not complete the MCP handshake within 1s"):
        await c.connect()
    pid = int(pid_file.read_text())
    assert not _alive(pid)


async def test_calls_before_connect_are_refused() -> None:
    c = StdioMCPClient(sys.executable, [SERVER])
    with pytest.raises(MCPError, match="not connected"):
        await c.call_tool("add", {"a": 1, "b": 2})


async def test_connect_is_idempotent_and_env_and_cwd_reach_the_server(tmp_path: Path) -> None:
    c = StdioMCPClient(sys.executable, [SERVER], env={"POWER_LOOP_MCP_TEST": "1"}, cwd=tmp_path)
    async with c:
        assert await c.connect() is c
        where = json.loads(await c.call_tool("where"))
    assert where == {"cwd": str(tmp_path), "var": "1"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"command": ""}, "needs the server command"),
        ({"command": "x", "args": "--flag"}, "list of strings"),
        ({"command": "x", "timeout_s": 0}, "positive number"),
        ({"command": "x", "timeout_s": True}, "positive number"),
        ({"command": "x", "connect_timeout_s": 0}, "connect_timeout_s must be a positive number"),
        ({"command": "x", "connect_timeout_s": "5"}, "connect_timeout_s must be a positive number"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        StdioMCPClient(**kwargs)  # type: ignore[arg-type]


async def test_missing_sdk_raises_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mcp", None)
    c = StdioMCPClient(sys.executable, [SERVER])
    with pytest.raises(
        MissingDependencyError,
        match=r"pip install mcp \(from a power_loop checkout: pip install -e '\.\[mcp\]'\)",
    ):
        await c.connect()
    assert not c.connected


def test_the_module_imports_without_the_sdk() -> None:
    import subprocess

    code = (
        "import sys; sys.modules['mcp'] = None\n"
        "import power_loop.contrib.mcp as m\n"
        "assert 'mcp.client' not in sys.modules\n"
        "print(m.StdioMCPClient.__name__)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "StdioMCPClient"
